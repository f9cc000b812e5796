// The kernel and libc APIs Swift's Glibc module leaves out. For the guard's loop: fanotify
// (glibc's <sys/fanotify.h>) and signalfd, which puts the stop signals in the loop's poll set.
#include <sys/fanotify.h>
#include <sys/signalfd.h>
#include <fcntl.h>
#include <spawn.h>

// glibc's GNU extensions, declared here since Swift's Glibc module is built without
// _GNU_SOURCE: ukeyd spawns a VM's swtpm with a key on one pipe and none of its own
// descriptors (posix_spawn_file_actions_addclosefrom_np, glibc 2.34+).
extern int pipe2(int pipefd[2], int flags);
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
static inline int ukey_pipe_cloexec(int pipefd[2]) { return pipe2(pipefd, O_CLOEXEC); }
static inline int ukey_spawn_close_from(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}
