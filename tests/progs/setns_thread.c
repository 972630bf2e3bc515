// A multi-threaded process one of whose threads moved into another network namespace:
// the main thread stays where it started, the second thread setns()es to NSFILE (a
// /proc/PID/ns/net). Prints "ready pid=P main=T moved=T" once both are in place, then
// sleeps until killed. For tests/live_iter.rs. Usage: setns_thread NSFILE
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *nsfile;
static pthread_barrier_t moved;
static long moved_tid;

static void *mover(void *arg)
{
	(void)arg;
	int fd = open(nsfile, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
		perror("setns");
		exit(1);
	}
	moved_tid = syscall(SYS_gettid);
	pthread_barrier_wait(&moved);
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: setns_thread NSFILE\n");
		return 2;
	}
	nsfile = argv[1];
	pthread_barrier_init(&moved, NULL, 2);
	pthread_t t;
	if (pthread_create(&t, NULL, mover, NULL) != 0)
		return 1;
	pthread_barrier_wait(&moved);
	printf("ready pid=%d main=%ld moved=%ld\n", getpid(), (long)syscall(SYS_gettid), moved_tid);
	fflush(stdout);
	for (;;)
		pause();
}
