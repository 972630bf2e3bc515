/*
 * Stress generator for nswatch live-capture benchmarks.
 *
 *   gcc -O2 -pthread -o stress benches/stress.c
 *
 *   stress fork N              N times: fork(); child _exit(0); parent waitpid().
 *                              Prints "fork N=<n> elapsed <s> s, <r> forks/s".
 *   stress setns SECONDS THREADS [RATE [CALLS [net|uts]]]
 *                              A helper child unshares a new namespace (net unless uts is
 *                              given) and pauses; THREADS threads alternate setns between
 *                              the original and the helper's namespace for SECONDS, each at
 *                              most RATE calls a second when RATE is given (and not 0), and
 *                              each stopping after CALLS calls when CALLS is (and not 0).
 *                              Prints "setns calls <n> in <s> s, <r> calls/s".
 *                              Needs CAP_SYS_ADMIN (root).
 *
 * Machine-readable line: the last field before "forks/s" / "calls/s" is the rate.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int do_fork(long n)
{
	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		pid_t p = fork();
		if (p < 0)
			die("fork");
		if (p == 0)
			_exit(0);
		int st;
		while (waitpid(p, &st, 0) < 0) {
			if (errno != EINTR)
				die("waitpid");
		}
	}
	double el = now_s() - t0;
	printf("fork N=%ld elapsed %.3f s, %.0f forks/s\n", n, el, n / el);
	return 0;
}

struct setns_arg {
	int fds[2];
	int nstype;
	double start, deadline;
	long rate;
	long max_calls;
	long calls;
};

static atomic_int go;

static void *setns_thread(void *p)
{
	struct setns_arg *a = p;
	long calls = 0;
	while (!atomic_load(&go))
		;
	for (;;) {
		/* Check the clock every 256 calls: cheap enough not to matter. */
		long n = 256;
		if (a->max_calls > 0 && a->max_calls - calls < n)
			n = a->max_calls - calls;
		for (long k = 0; k < n; k++) {
			if (setns(a->fds[k & 1], a->nstype) < 0)
				die("setns");
		}
		calls += n;
		double t = now_s();
		if (t >= a->deadline || (a->max_calls > 0 && calls >= a->max_calls))
			break;
		/* Ahead of the rate: sleep until the calls made are due. */
		double due = a->rate > 0 ? a->start + (double)calls / a->rate : t;
		if (due > t) {
			struct timespec ts = { (time_t)(due - t), (long)((due - t - (time_t)(due - t)) * 1e9) };
			nanosleep(&ts, NULL);
		}
	}
	a->calls = calls;
	return NULL;
}

static int do_setns(double seconds, int threads, long rate, long max_calls, const char *kind)
{
	int nstype;
	if (strcmp(kind, "net") == 0)
		nstype = CLONE_NEWNET;
	else if (strcmp(kind, "uts") == 0)
		nstype = CLONE_NEWUTS;
	else {
		fprintf(stderr, "stress setns: namespace kind %s is neither net nor uts\n", kind);
		return 2;
	}
	int pipefd[2];
	if (pipe(pipefd) < 0)
		die("pipe");
	pid_t helper = fork();
	if (helper < 0)
		die("fork");
	if (helper == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(pipefd[0]);
		char ok = unshare(nstype) == 0 ? 'y' : 'n';
		if (ok == 'n')
			perror("unshare");
		if (write(pipefd[1], &ok, 1) != 1)
			_exit(1);
		close(pipefd[1]);
		for (;;)
			pause();
	}
	close(pipefd[1]);
	char ok = 0;
	if (read(pipefd[0], &ok, 1) != 1 || ok != 'y') {
		kill(helper, SIGKILL);
		waitpid(helper, NULL, 0);
		fprintf(stderr, "helper could not create a %s namespace\n", kind);
		return 1;
	}
	close(pipefd[0]);

	char path[64];
	snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)helper, kind);
	int other = open(path, O_RDONLY | O_CLOEXEC);
	if (other < 0)
		die(path);
	snprintf(path, sizeof path, "/proc/self/ns/%s", kind);
	int self = open(path, O_RDONLY | O_CLOEXEC);
	if (self < 0)
		die(path);

	pthread_t *tids = calloc(threads, sizeof *tids);
	struct setns_arg *args = calloc(threads, sizeof *args);
	for (int i = 0; i < threads; i++) {
		/* Alternate: odd threads start in the other namespace. */
		args[i].fds[0] = (i & 1) ? self : other;
		args[i].fds[1] = (i & 1) ? other : self;
		if (pthread_create(&tids[i], NULL, setns_thread, &args[i]) != 0)
			die("pthread_create");
	}
	double t0 = now_s();
	for (int i = 0; i < threads; i++) {
		args[i].start = t0;
		args[i].deadline = t0 + seconds;
		args[i].rate = rate;
		args[i].max_calls = max_calls;
		args[i].nstype = nstype;
	}
	atomic_store(&go, 1);
	long total = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(tids[i], NULL);
		total += args[i].calls;
	}
	double el = now_s() - t0;
	kill(helper, SIGKILL);
	waitpid(helper, NULL, 0);
	printf("setns threads=%d calls %ld in %.3f s, %.0f calls/s\n", threads, total, el,
	       total / el);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && strcmp(argv[1], "fork") == 0)
		return do_fork(atol(argv[2]));
	if (argc >= 4 && argc <= 7 && strcmp(argv[1], "setns") == 0)
		return do_setns(atof(argv[2]), atoi(argv[3]), argc >= 5 ? atol(argv[4]) : 0,
				argc >= 6 ? atol(argv[5]) : 0, argc == 7 ? argv[6] : "net");
	fprintf(stderr, "usage: %s fork N | %s setns SECONDS THREADS [RATE [CALLS [net|uts]]]\n",
		argv[0], argv[0]);
	return 2;
}
