// The kernel's fanotify API (glibc's <sys/fanotify.h>), which Swift's Glibc module leaves out.
#include <sys/fanotify.h>
#include <fcntl.h>
