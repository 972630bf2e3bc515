/* Spins for argv[1] seconds (30 by default) in two named functions, so that a profile of
 * it shows `main;nswatch_ct_spin;nswatch_ct_leaf`. Built statically into a root of its own
 * (tests/container_symbols.rs): the host has no file at its path. */
#include <stdlib.h>
#include <time.h>

volatile unsigned long nswatch_ct_sink;

__attribute__((noinline)) unsigned long nswatch_ct_leaf(unsigned long x)
{
	for (int i = 0; i < 2000; i++)
		x = x * 6364136223846793005UL + 1442695040888963407UL;
	return x;
}

__attribute__((noinline)) void nswatch_ct_spin(void)
{
	for (int k = 0; k < 1000; k++)
		nswatch_ct_sink = nswatch_ct_leaf(nswatch_ct_sink);
}

int main(int argc, char **argv)
{
	time_t end = time(NULL) + (argc > 1 ? atoi(argv[1]) : 30);
	while (time(NULL) < end)
		nswatch_ct_spin();
	return 0;
}
