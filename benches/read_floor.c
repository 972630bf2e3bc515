/*
 * The floor under any reader of a perf.data file in time order: maps the file, walks its
 * records, queues each one by its time (in two queues, as nswatch's order.rs does: the
 * records that come in time order, and the others, sorted when a release needs them),
 * releases them by perf's rule (at the end of round N, everything no newer than the
 * newest record of round N-1), and touches each released record as little as a reader of
 * these events must: its header, its pid and tid, and for NAMESPACES its seven links,
 * compared with the last two sets seen. Nothing is decoded further, no model is kept,
 * nothing is printed but a summary on stderr. A full reader (`nswatch report`, `perf
 * script`) spends this much and its own work on top: two variants of the walk measured as
 * long on a setns storm's capture (the event made at the first touch instead of a second
 * touch at release; pread into a buffer instead of the map).
 *
 *   read_floor FILE
 *
 * A little-endian file-mode capture, one sample_type for every attr, TIME in it.
 * Anything else, or a record that runs past the data section, is an error with its file
 * offset (exit 1).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PERF_MAGIC2 0x32454c4946524550ULL /* "PERFILE2", little-endian */
#define SAMPLE_IP (1U << 0)
#define SAMPLE_TID (1U << 1)
#define SAMPLE_TIME (1U << 2)
#define SAMPLE_ID (1U << 6)
#define SAMPLE_CPU (1U << 7)
#define SAMPLE_STREAM_ID (1U << 9)
#define SAMPLE_IDENTIFIER (1U << 16)
#define RECORD_SAMPLE 9
#define RECORD_NAMESPACES 16
#define RECORD_USER_START 64
#define RECORD_HEADER_TRACING_DATA 66
#define RECORD_FINISHED_ROUND 68
#define RECORD_AUXTRACE 71
#define LINKS_BYTES (7 * 16)

struct item {
	uint64_t time;
	uint64_t seq; /* arrival order: equal times keep it */
	uint64_t off;
};

struct queue {
	struct item *v;
	size_t head, len, cap;
};

static const uint8_t *map;
static uint64_t data_end;
static uint64_t records, checksum;
static uint8_t last[LINKS_BYTES], before_last[LINKS_BYTES];

static void fail(const char *what, uint64_t off)
{
	fprintf(stderr, "read_floor: at offset %#" PRIx64 ": %s\n", off, what);
	exit(1);
}

static void push(struct queue *q, struct item it)
{
	if (q->head > 4096 && q->head * 2 > q->len) {
		memmove(q->v, q->v + q->head, (q->len - q->head) * sizeof *q->v);
		q->len -= q->head;
		q->head = 0;
	}
	if (q->len == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 1 << 16;
		q->v = realloc(q->v, q->cap * sizeof *q->v);
		if (!q->v) {
			perror("read_floor: realloc");
			exit(1);
		}
	}
	q->v[q->len++] = it;
}

static int by_time(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The least a reader does with a released record: its header, pid and tid, and a
 * NAMESPACES record's links recognised against the last two sets. */
static void hand_on(uint64_t off)
{
	const uint8_t *r = map + off;
	uint32_t type, pid_tid[2];
	uint16_t size;
	memcpy(&type, r, 4);
	memcpy(&size, r + 6, 2);
	memcpy(pid_tid, r + 8, 8);
	if (type == RECORD_NAMESPACES && size >= 24 + LINKS_BYTES) {
		const uint8_t *links = r + 24;
		if (memcmp(links, last, LINKS_BYTES) != 0) {
			if (memcmp(links, before_last, LINKS_BYTES) != 0)
				checksum += 1000003;
			memcpy(before_last, last, LINKS_BYTES);
			memcpy(last, links, LINKS_BYTES);
		}
	}
	checksum += type + size + pid_tid[0] + pid_tid[1];
	records++;
}

/* Hands on, oldest first, every waiting record no newer than `upto`. */
static void release(struct queue *main_q, struct queue *side, int *side_sorted, uint64_t upto)
{
	if (!*side_sorted) {
		qsort(side->v + side->head, side->len - side->head, sizeof *side->v, by_time);
		*side_sorted = 1;
	}
	for (;;) {
		struct item *m = main_q->head < main_q->len ? &main_q->v[main_q->head] : NULL;
		struct item *s = side->head < side->len ? &side->v[side->head] : NULL;
		if (m && m->time > upto)
			m = NULL;
		if (s && s->time > upto)
			s = NULL;
		if (!m && !s)
			break;
		if (m && (!s || m->time <= s->time)) {
			hand_on(m->off);
			main_q->head++;
		} else {
			hand_on(s->off);
			side->head++;
		}
	}
}

static uint64_t u64_at(uint64_t off)
{
	uint64_t v;
	memcpy(&v, map + off, 8);
	return v;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: read_floor FILE\n");
		return 2;
	}
	int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "read_floor: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (st.st_size < 104)
		fail("shorter than a perf.data header", 0);
	map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		perror("read_floor: mmap");
		return 1;
	}
	if (u64_at(0) != PERF_MAGIC2)
		fail("not a little-endian perf.data file (PERFILE2)", 0);
	if (u64_at(8) != 104)
		fail("not a file-mode header (a pipe-mode capture, perf record -o -?)", 8);
	uint64_t attr_size = u64_at(16), attrs_off = u64_at(24), attrs_size = u64_at(32);
	uint64_t data_off = u64_at(40), data_size = u64_at(48);
	data_end = data_off + data_size;
	if (data_end > (uint64_t)st.st_size || data_end < data_off)
		fail("data section past the end of the file", 40);
	if (attr_size < 16 + 32 || attrs_off + attrs_size > (uint64_t)st.st_size)
		fail("attrs section out of range", 16);

	/* One sample_type for all attrs: where a record's time lies follows from it. */
	uint64_t sample_type = 0;
	for (uint64_t a = attrs_off; a + attr_size <= attrs_off + attrs_size; a += attr_size) {
		uint64_t t = u64_at(a + 24);
		if (a != attrs_off && t != sample_type)
			fail("attrs with different sample types", a + 24);
		sample_type = t;
	}
	if (!(sample_type & SAMPLE_TIME))
		fail("no TIME in the sample type: nothing to order by", attrs_off + 24);
	/* A SAMPLE's time after IDENTIFIER, IP, TID; the other records' sample_id trailer
	 * ends with TIME, then ID, STREAM_ID, CPU, IDENTIFIER. */
	uint64_t sample_time_at = 8 + 8 * !!(sample_type & SAMPLE_IDENTIFIER) +
				  8 * !!(sample_type & SAMPLE_IP) + 8 * !!(sample_type & SAMPLE_TID);
	uint64_t trailer_time_back = 8 * (1 + !!(sample_type & SAMPLE_ID) +
					  !!(sample_type & SAMPLE_STREAM_ID) +
					  !!(sample_type & SAMPLE_CPU) +
					  !!(sample_type & SAMPLE_IDENTIFIER));

	struct queue main_q = { 0 }, side = { 0 };
	int side_sorted = 1, have_round = 0;
	uint64_t main_last = 0, round_max = 0, prev_round_max = 0, seq = 0;
	uint64_t off = data_off;
	while (off < data_end) {
		if (data_end - off < 8)
			fail("a record header cut by the end of the data section", off);
		uint32_t type;
		uint16_t size;
		memcpy(&type, map + off, 4);
		memcpy(&size, map + off + 6, 2);
		if (size < 8 || size > data_end - off)
			fail("a record's size runs past the data section (or is under 8)", off);
		if (type == RECORD_HEADER_TRACING_DATA || type == RECORD_AUXTRACE)
			fail("a record followed by a payload: not handled here", off);
		if (type == RECORD_FINISHED_ROUND) {
			if (have_round)
				release(&main_q, &side, &side_sorted, prev_round_max);
			prev_round_max = round_max;
			have_round = 1;
		} else if (type < RECORD_USER_START) {
			uint64_t at = type == RECORD_SAMPLE ? sample_time_at : size - trailer_time_back;
			if (at + 8 > size)
				fail("a record too short for its time", off);
			struct item it = { u64_at(off + at), seq++, off };
			if (it.time > round_max)
				round_max = it.time;
			if (it.time >= main_last) {
				main_last = it.time;
				push(&main_q, it);
			} else {
				if (side.len > side.head && it.time < side.v[side.len - 1].time)
					side_sorted = 0;
				push(&side, it);
			}
		}
		off += size;
	}
	release(&main_q, &side, &side_sorted, UINT64_MAX);
	fprintf(stderr, "read_floor: %" PRIu64 " records in time order (checksum %" PRIu64 ")\n",
		records, checksum);
	return 0;
}
