// Makes one namespace syscall scenario happen and prints what it did, for
// tests/live_bpf.rs to check nswatch's eBPF events against:
//   call syscall=S tid=T pid=P ret=R errno=E       one per traced call, after it returned
//   ns who=W tid=T dev=D net=I uts=I ...            a task's /proc/self/task/T/ns/* (stat)
//   child tid=T vpid=V                              a forked child: host tid, pid in its ns
//   target pid=P                                    the process a setns fd refers to
// Usage: ns_calls SCENARIO (see main).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static const char *kinds[] = {"net", "uts", "ipc", "pid", "user", "mnt", "cgroup",
			      "time", "pid_for_children", "time_for_children"};


// The host tid: /proc is the host's mount, so /proc/thread-self names the host's number
// even inside a new pid namespace.
static long host_tid(void)
{
	char buf[64] = {0};
	ssize_t n = readlink("/proc/thread-self", buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	char *slash = strrchr(buf, '/');
	return slash ? atol(slash + 1) : -1;
}

static void print_ns(const char *who, long tid)
{
	printf("ns who=%s tid=%ld", who, tid);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		char path[128];
		struct stat st;
		snprintf(path, sizeof(path), "/proc/self/task/%ld/ns/%s", tid, kinds[i]);
		if (stat(path, &st) == 0) {
			if (i == 0)
				printf(" dev=%lu", (unsigned long)st.st_dev);
			printf(" %s=%lu", kinds[i], (unsigned long)st.st_ino);
		}
	}
	printf("\n");
	fflush(stdout);
}

static void print_pid_ns(const char *who, pid_t pid)
{
	printf("ns who=%s tid=%d", who, pid);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		char path[128];
		struct stat st;
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, kinds[i]);
		if (stat(path, &st) == 0) {
			if (i == 0)
				printf(" dev=%lu", (unsigned long)st.st_dev);
			printf(" %s=%lu", kinds[i], (unsigned long)st.st_ino);
		}
	}
	printf("\n");
	fflush(stdout);
}

static void print_call(const char *name, long ret, int err)
{
	printf("call syscall=%s tid=%ld pid=%d ret=%ld errno=%d\n", name, host_tid(), getpid(),
	       ret, ret < 0 ? err : 0);
	fflush(stdout);
}

// A child in new namespaces `flags` that waits until its stdin pipe closes.
static pid_t holder(int flags, int *release)
{
	int go[2], ready[2];
	if (pipe(go) || pipe(ready))
		exit(2);
	pid_t pid = fork();
	if (pid == 0) {
		close(go[1]);
		close(ready[0]);
		if (unshare(flags))
			_exit(3);
		char c = 1;
		if (write(ready[1], &c, 1) != 1)
			_exit(4);
		while (read(go[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(go[0]);
	close(ready[1]);
	char c;
	if (read(ready[0], &c, 1) != 1)
		exit(5);
	*release = go[1];
	return pid;
}

static void release_holder(pid_t pid, int release)
{
	close(release);
	waitpid(pid, NULL, 0);
}

// Forks with the C library's fork() (the clone syscall), its vfork() (the vfork syscall on
// x86_64) or the raw fork syscall, as `how` says, and reports the child.
static void fork_and_report(const char *how)
{
	pid_t child;
	if (!strcmp(how, "vfork")) {
		child = vfork();
#ifdef SYS_fork
	} else if (!strcmp(how, "fork")) {
		child = syscall(SYS_fork);
#endif
	} else {
		how = "clone";
		child = fork();
	}
	if (child == 0) {
		// A vfork child borrows the parent's memory until _exit: stdout is flushed here,
		// so the parent finds its buffer as it left it.
		printf("child tid=%ld vpid=%d\n", host_tid(), getpid());
		print_ns("child", host_tid());
		_exit(0);
	}
	print_call(how, child, errno);
	waitpid(child, NULL, 0);
}

// A thread reports itself: after unshare(CLONE_NEWTIME) it stays in its creator's time
// namespace, as every CLONE_VM child does.
static void *report_thread(void *arg)
{
	(void)arg;
	printf("child tid=%ld vpid=%d\n", host_tid(), getpid());
	print_ns("child", host_tid());
	return NULL;
}

static void *sleeper(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

struct setns_job {
	int fd;
	int nstype;
};

static void *setns_thread(void *arg)
{
	struct setns_job *j = arg;
	long r = setns(j->fd, j->nstype);
	print_call("setns", r, errno);
	print_ns("after", host_tid());
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: ns_calls SCENARIO\n");
		return 2;
	}
	const char *s = argv[1];
	long tid = host_tid();
	if (!strcmp(s, "unshare_net_uts")) {
		print_ns("before", tid);
		long r = unshare(CLONE_NEWNET | CLONE_NEWUTS);
		print_call("unshare", r, errno);
		print_ns("after", tid);
	} else if (!strcmp(s, "unshare_pid_fork") || !strcmp(s, "unshare_time_fork") ||
		   !strcmp(s, "unshare_pid_vfork") || !strcmp(s, "unshare_pid_sysfork")) {
		int flag = s[8] == 'p' ? CLONE_NEWPID : CLONE_NEWTIME;
		print_ns("before", tid);
		long r = unshare(flag);
		print_call("unshare", r, errno);
		print_ns("after", tid);
		fork_and_report(!strcmp(s + 12, "vfork") ? "vfork" :
				!strcmp(s + 12, "sysfork") ? "fork" : "clone");
	} else if (!strcmp(s, "unshare_time_thread")) {
		print_ns("before", tid);
		long r = unshare(CLONE_NEWTIME);
		print_call("unshare", r, errno);
		print_ns("after", tid);
		pthread_t t;
		pthread_create(&t, NULL, report_thread, NULL);
		pthread_join(t, NULL);
	} else if (!strcmp(s, "unshare_time_vfork_exec")) {
		// The vfork child stays in the old time namespace until it execs.
		print_ns("before", tid);
		long r = unshare(CLONE_NEWTIME);
		print_call("unshare", r, errno);
		print_ns("after", tid);
		pid_t child = vfork();
		if (child == 0) {
			execl("/proc/self/exe", argv[0], "report_self", (char *)NULL);
			_exit(127);
		}
		print_call("vfork", child, errno);
		waitpid(child, NULL, 0);
	} else if (!strcmp(s, "report_self")) {
		printf("child tid=%ld vpid=%d\n", tid, getpid());
		print_ns("child", tid);
	} else if (!strcmp(s, "setns_nsfd")) {
		int release;
		pid_t h = holder(CLONE_NEWNET, &release);
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/net", h);
		int fd = open(path, O_RDONLY);
		printf("target pid=%d\n", h);
		print_pid_ns("target", h);
		print_ns("before", tid);
		long r = setns(fd, CLONE_NEWNET);
		print_call("setns", r, errno);
		print_ns("after", tid);
		release_holder(h, release);
	} else if (!strcmp(s, "setns_pidfd")) {
		int release;
		pid_t h = holder(CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC, &release);
		int fd = (int)syscall(SYS_pidfd_open, h, 0);
		printf("target pid=%d\n", h);
		print_pid_ns("target", h);
		print_ns("before", tid);
		long r = setns(fd, CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC);
		print_call("setns", r, errno);
		print_ns("after", tid);
		release_holder(h, release);
	} else if (!strcmp(s, "setns_regular")) {
		int fd = open("/proc/self/exe", O_RDONLY);
		print_ns("before", tid);
		long r = setns(fd, 0);
		print_call("setns", r, errno);
		print_ns("after", tid);
	} else if (!strcmp(s, "setns_closed")) {
		int fd = open("/proc/self/exe", O_RDONLY);
		close(fd);
		long r = setns(fd, 0);
		print_call("setns", r, errno);
	} else if (!strcmp(s, "unshare_user_mt")) {
		pthread_t t;
		pthread_create(&t, NULL, sleeper, NULL);
		long r = unshare(CLONE_NEWUSER);
		print_call("unshare", r, errno);
		print_ns("after", tid);
	} else if (!strcmp(s, "clone3_pid_mnt")) {
		struct clone_args args;
		memset(&args, 0, sizeof(args));
		args.flags = CLONE_NEWPID | CLONE_NEWNS;
		args.exit_signal = SIGCHLD;
		print_ns("before", tid);
		long child = syscall(SYS_clone3, &args, sizeof(args));
		if (child == 0) {
			printf("child tid=%ld vpid=%d\n", host_tid(), getpid());
			print_ns("child", host_tid());
			_exit(0);
		}
		print_call("clone3", child, errno);
		waitpid((pid_t)child, NULL, 0);
	} else if (!strcmp(s, "mt_setns")) {
		int release;
		pid_t h = holder(CLONE_NEWNET, &release);
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/net", h);
		struct setns_job j = {open(path, O_RDONLY), CLONE_NEWNET};
		printf("target pid=%d\n", h);
		print_pid_ns("target", h);
		print_ns("before", tid);
		pthread_t t;
		pthread_create(&t, NULL, setns_thread, &j);
		pthread_join(t, NULL);
		print_ns("main", tid);
		release_holder(h, release);
	} else {
		fprintf(stderr, "ns_calls: unknown scenario %s\n", s);
		return 2;
	}
	return 0;
}
