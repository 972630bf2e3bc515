/*
 * The kernel's cost of writing a growing file, as `nswatch record -o` does: TOTAL bytes in
 * 256 KiB writes, plainly or with the blocks reserved 8 MiB ahead
 * (fallocate(FALLOC_FL_KEEP_SIZE), then the rest given back by truncating to the size).
 *
 *   file_write FILE TOTAL plain|reserved
 *
 * Prints the writer's CPU time (CLOCK_THREAD_CPUTIME_ID) per byte. The file is removed.
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
		fprintf(stderr, "usage: %s FILE TOTAL plain|reserved\n", argv[0]);
		return 2;
	}
	long total = atol(argv[2]);
	int reserved = strcmp(argv[3], "reserved") == 0;
	char *buf = malloc(CHUNK);
	/* NDJSON-like bytes: lines of 196. */
	for (int i = 0; i < CHUNK; i++)
		buf[i] = i % 196 == 195 ? '\n' : 'a' + i % 26;
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	struct timespec a, b;
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
	double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
	printf("%s %.3f\n", argv[3], ns / total);
	close(fd);
	unlink(argv[1]);
	return 0;
}
