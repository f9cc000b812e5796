// The kernel APIs the guard's loop needs that Swift's Glibc module leaves out: fanotify
// (glibc's <sys/fanotify.h>) and signalfd, which puts the stop signals in the loop's poll set.
#include <sys/fanotify.h>
#include <sys/signalfd.h>
#include <fcntl.h>
