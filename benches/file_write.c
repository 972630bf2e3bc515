/*
 * The kernel's cost of writing a growing file, as `nswatch record -o` does: TOTAL bytes in
 * 256 KiB writes, plainly or with the blocks reserved 8 MiB ahead
 * (fallocate(FALLOC_FL_KEEP_SIZE), then the rest given back by truncating to the size),
 * or with O_DIRECT from an aligned buffer (no copy into the page cache; each write waits
 * for the device).
 *
 *   file_write FILE TOTAL plain|reserved|direct
 *
 * Prints the writer's CPU time (CLOCK_THREAD_CPUTIME_ID) per byte, then the wall time per
 * byte. The file is removed.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)
#define RESERVE (8L << 20)

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s FILE TOTAL plain|reserved|direct\n", argv[0]);
		return 2;
	}
	long total = atol(argv[2]);
	int reserved = strcmp(argv[3], "reserved") == 0;
	int direct = strcmp(argv[3], "direct") == 0;
	char *buf;
	if (posix_memalign((void **)&buf, 4096, CHUNK) != 0)
		return 1;
	/* NDJSON-like bytes: lines of 196. */
	for (int i = 0; i < CHUNK; i++)
		buf[i] = i % 196 == 195 ? '\n' : 'a' + i % 26;
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | (direct ? O_DIRECT : 0), 0644);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	struct timespec a, b, wa, wb;
	clock_gettime(CLOCK_MONOTONIC, &wa);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
	long ahead = 0;
	for (long done = 0; done < total; done += CHUNK) {
		if (reserved && done + CHUNK > ahead) {
			long end = done + CHUNK + RESERVE;
			if (fallocate(fd, FALLOC_FL_KEEP_SIZE, ahead, end - ahead) == 0)
				ahead = end;
			else
				reserved = 0;
		}
		if (write(fd, buf, CHUNK) != CHUNK) {
			perror("write");
			return 1;
		}
	}
	if (ahead > total && ftruncate(fd, total) != 0)
		perror("ftruncate");
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
	clock_gettime(CLOCK_MONOTONIC, &wb);
	double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
	double wall = (wb.tv_sec - wa.tv_sec) * 1e9 + (wb.tv_nsec - wa.tv_nsec);
	printf("%s %.3f %.3f\n", argv[3], ns / total, wall / total);
	close(fd);
	unlink(argv[1]);
	return 0;
}
