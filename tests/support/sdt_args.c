/*
 * sdt_args: a workload with one USDT probe of many arguments (<sys/sdt.h>), the target of the
 * recorder's usdt test (tests/bpf/test_rec_groups.c): a hit's arguments past the fourth go to
 * a second ring slot.
 *
 *   sdt_args N
 *
 * fires sonde_rec:many(i, -i, 2 i, i << 40, -7, 42, i + 1000000) for i = 0 .. N-1 and exits 0
 * (a bad argument: exit 2).
 */
#include <stdlib.h>

#include <sys/sdt.h>

int main(int argc, char **argv)
{
    char *end;
    long n = argc == 2 ? strtol(argv[1], &end, 10) : -1;

    if (n < 0 || n > 1000000 || *end)
        return 2;
    for (long i = 0; i < n; i++) {
        long a = i, b = -i, c = 2 * i, d = i << 40, e = -7, f = 42, g = i + 1000000;
        DTRACE_PROBE7(sonde_rec, many, a, b, c, d, e, f, g);
    }
    return 0;
}
