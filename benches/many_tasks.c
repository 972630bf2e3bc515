/* Holds N tasks alive for the bootstrap benchmark: forks N children that pause, prints
 * "ready" on stdout, and on end of stdin kills them and exits.
 *   many_tasks N [CONTAINERS]
 * With CONTAINERS > 0, one child in N/CONTAINERS first unshares its own mount, uts, ipc
 * and net namespaces and forks the following children from there (a machine with that
 * many isolated groups). */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    int groups = argc > 2 ? atoi(argv[2]) : 0;
    int per = groups > 0 ? n / groups : n + 1;
    pid_t *kids = calloc(n, sizeof *kids);
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p < 0) { perror("fork"); n = i; break; }
        if (p == 0) {
            if (groups > 0 && i % per == 0)
                unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET);
            for (;;) pause();
        }
        kids[i] = p;
    }
    printf("ready %d\n", n);
    fflush(stdout);
    char buf[64];
    while (fread(buf, 1, sizeof buf, stdin) > 0) {}
    for (int i = 0; i < n; i++) kill(kids[i], SIGKILL);
    while (wait(NULL) > 0) {}
    return 0;
}
