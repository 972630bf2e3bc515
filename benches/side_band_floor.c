/*
 * The kernel's share of a side-band tracer's cost: opens on every CPU the events
 * `nswatch record` opens (the same attr: a dummy software event asking for task, comm,
 * namespaces and cgroup records, TID|TIME|CPU|IDENTIFIER, CLOCK_MONOTONIC, a watermark of
 * half the ring), holds open the namespace files of every namespace its records name
 * (as nswatch holds its own and those of live groups), and drains the rings without
 * looking at more than the record type. What a workload pays beside it is what the
 * kernel's writing of the records costs, with no tracer work on top: the floor under
 * any tracer built on these records.
 *
 *   side_band_floor [record] [--count-only] [--ring-pages N] [--no-namespaces]
 *
 * Runs until SIGINT/SIGTERM, then prints, in the words of nswatch's summary (so that
 * benches/live_capture.sh reads it as it reads nswatch's):
 *   nswatch record: <n> records (side-band floor, <k> namespaces held), lost records <l>; late 0, namespace syscalls 0
 * --no-namespaces leaves the namespaces records out (the attr without `namespaces`).
 * Held files are never closed: it runs for one measurement.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_CPUS 1024
#define MAX_HELD 65536

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void die(const char *what)
{
	fprintf(stderr, "side_band_floor: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* The files /proc/PID/ns/ names for the link_info slots of a NAMESPACES record. */
static const char *const LINK_NAMES[NR_NAMESPACES] = {
	[NET_NS_INDEX] = "net", [UTS_NS_INDEX] = "uts",   [IPC_NS_INDEX] = "ipc",
	[PID_NS_INDEX] = "pid", [USER_NS_INDEX] = "user", [MNT_NS_INDEX] = "mnt",
	[CGROUP_NS_INDEX] = "cgroup",
};

static uint64_t held[MAX_HELD];
static size_t n_held;

/* Holds namespace `ino` through /proc/PID/ns/NAME, once. A task already gone leaves it
 * for a later record of the same namespace. */
static void hold(uint32_t pid, int slot, uint64_t ino)
{
	for (size_t i = 0; i < n_held; i++)
		if (held[i] == ino)
			return;
	if (n_held == MAX_HELD)
		return;
	char path[64];
	snprintf(path, sizeof path, "/proc/%u/ns/%s", pid, LINK_NAMES[slot]);
	if (open(path, O_RDONLY | O_CLOEXEC) >= 0)
		held[n_held++] = ino;
}

struct ring {
	int fd;
	struct perf_event_mmap_page *meta;
	const unsigned char *data;
	uint64_t size;
};

/* Copies `len` bytes at ring offset `at`, across the wrap. */
static void ring_copy(const struct ring *r, uint64_t at, void *to, size_t len)
{
	for (size_t i = 0; i < len; i++)
		((unsigned char *)to)[i] = r->data[(at + i) % r->size];
}

static void drain(const struct ring *r, uint64_t *records, uint64_t *lost)
{
	uint64_t head = __atomic_load_n(&r->meta->data_head, __ATOMIC_ACQUIRE);
	uint64_t tail = r->meta->data_tail;
	while (tail < head) {
		struct perf_event_header h;
		ring_copy(r, tail, &h, sizeof h);
		if (h.size < sizeof h)
			break;
		if (h.type == PERF_RECORD_NAMESPACES) {
			/* header, pid, tid, nr_namespaces, then nr (dev, ino) pairs */
			uint32_t pid;
			uint64_t nr, link[2];
			ring_copy(r, tail + 8, &pid, 4);
			ring_copy(r, tail + 16, &nr, 8);
			for (uint64_t i = 0; i < nr && i < NR_NAMESPACES; i++) {
				ring_copy(r, tail + 24 + 16 * i, link, 16);
				hold(pid, (int)i, link[1]);
			}
		} else if (h.type == PERF_RECORD_LOST) {
			uint64_t n;
			ring_copy(r, tail + 16, &n, 8); /* header, id, lost */
			*lost += n;
		}
		tail += h.size;
		(*records)++;
	}
	__atomic_store_n(&r->meta->data_tail, tail, __ATOMIC_RELEASE);
}

int main(int argc, char **argv)
{
	long pages = 256;
	int namespaces = 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--ring-pages") == 0 && i + 1 < argc)
			pages = atol(argv[++i]);
		else if (strcmp(argv[i], "--no-namespaces") == 0)
			namespaces = 0;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	/* nswatch's own namespaces, held as it holds them (pid_for_children and
	 * time_for_children too: nsfs files all the same). */
	static const char *const own[] = {"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"};
	for (size_t i = 0; i < sizeof own / sizeof *own; i++) {
		char path[64];
		snprintf(path, sizeof path, "/proc/self/ns/%s", own[i]);
		(void)open(path, O_RDONLY | O_CLOEXEC);
	}

	long page = sysconf(_SC_PAGESIZE);
	int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu > MAX_CPUS)
		ncpu = MAX_CPUS;
	static struct ring rings[MAX_CPUS];
	static struct pollfd polls[MAX_CPUS];
	for (int c = 0; c < ncpu; c++) {
		struct perf_event_attr a;
		memset(&a, 0, sizeof a);
		a.type = PERF_TYPE_SOFTWARE;
		a.size = sizeof a;
		a.config = PERF_COUNT_SW_DUMMY;
		a.sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CPU |
				PERF_SAMPLE_IDENTIFIER;
		a.disabled = 1;
		a.task = 1;
		a.comm = 1;
		a.comm_exec = 1;
		a.namespaces = namespaces;
		a.cgroup = 1;
		a.sample_id_all = 1;
		a.use_clockid = 1;
		a.clockid = CLOCK_MONOTONIC;
		a.watermark = 1;
		a.wakeup_watermark = (uint32_t)(pages * page / 2);
		int fd = (int)syscall(SYS_perf_event_open, &a, -1, c, -1, PERF_FLAG_FD_CLOEXEC);
		if (fd < 0)
			die("perf_event_open");
		void *m = mmap(NULL, (size_t)(pages + 1) * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED)
			die("mmap");
		rings[c] = (struct ring){fd, m, (const unsigned char *)m + page, (uint64_t)pages * page};
		polls[c] = (struct pollfd){.fd = fd, .events = POLLIN};
	}
	for (int c = 0; c < ncpu; c++)
		if (ioctl(rings[c].fd, PERF_EVENT_IOC_ENABLE, 0) != 0)
			die("PERF_EVENT_IOC_ENABLE");

	uint64_t records = 0, lost = 0;
	while (!stop) {
		/* nswatch's default --latency: its longest sleep below the watermark. */
		poll(polls, ncpu, 250);
		for (int c = 0; c < ncpu; c++)
			drain(&rings[c], &records, &lost);
	}
	for (int c = 0; c < ncpu; c++)
		drain(&rings[c], &records, &lost);
	fprintf(stderr,
		"nswatch record: %llu records (side-band floor, %zu namespaces held), lost records %llu; "
		"late 0, namespace syscalls 0\n",
		(unsigned long long)records, n_held, (unsigned long long)lost);
	return 0;
}
