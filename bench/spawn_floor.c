/* The spawn floor: the least a parent can spend to run a plugin.
 *
 * posix_spawn()s PLUGIN ARGS... N times with stdout on a pipe, reads the
 * output to EOF and reaps the child, sequentially. Prints the parent's own
 * CPU time per execution (user+system from getrusage(RUSAGE_SELF), the
 * children's excluded) and executions per second. Every agent figure in
 * bench/ is reported as a ratio to this, measured in the same run.
 *
 * Build: cc -O2 -o spawn_floor spawn_floor.c
 * Usage: spawn_floor N PLUGIN [ARGS...]
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double seconds(struct timeval tv) { return tv.tv_sec + tv.tv_usec / 1e6; }

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s N PLUGIN [ARGS...]\n", argv[0]);
        return 64;
    }
    long n = atol(argv[1]);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    char buf[4096];
    for (long i = 0; i < n; i++) {
        int fds[2];
        if (pipe(fds) != 0) return 70;
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
        posix_spawn_file_actions_addclose(&actions, fds[0]);
        posix_spawn_file_actions_addclose(&actions, fds[1]);
        pid_t pid;
        if (posix_spawn(&pid, argv[2], &actions, NULL, argv + 2, environ) != 0) return 70;
        posix_spawn_file_actions_destroy(&actions);
        close(fds[1]);
        while (read(fds[0], buf, sizeof buf) > 0) {
        }
        close(fds[0]);
        int status;
        waitpid(pid, &status, 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    struct rusage self;
    getrusage(RUSAGE_SELF, &self);
    double cpu = seconds(self.ru_utime) + seconds(self.ru_stime);
    double wall = (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
    printf("executions=%ld cpu_per_exec_ms=%.4f execs_per_sec=%.1f\n", n, cpu * 1000 / n, n / wall);
    return 0;
}
