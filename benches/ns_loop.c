// A tight loop of one syscall, timed by itself: prints "MODE N ns_per_call".
//   ns_loop setns N     setns(own uts namespace fd, CLONE_NEWUTS): traced by the probe
//   ns_loop getppid N   an unrelated syscall: pays only the probe's early return
//   ns_loop fork N      fork(), the child exits at once, waitpid(): what a plain fork
//                       costs the probe (it looks, then lets it go)
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	long n = atol(argv[2]);
	int fd = open("/proc/self/ns/uts", O_RDONLY);
	int setns_mode = !strcmp(argv[1], "setns");
	int fork_mode = !strcmp(argv[1], "fork");
	double t0 = now();
	for (long i = 0; i < n; i++) {
		if (setns_mode) {
			if (setns(fd, CLONE_NEWUTS))
				return 1;
		} else if (fork_mode) {
			pid_t p = fork();
			if (p < 0)
				return 1;
			if (p == 0)
				_exit(0);
			waitpid(p, NULL, 0);
		} else {
			syscall(SYS_getppid);
		}
	}
	printf("%s %ld %.1f\n", argv[1], n, (now() - t0) / n);
	return 0;
}
