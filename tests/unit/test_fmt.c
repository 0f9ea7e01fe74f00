/*
 * core/fmt.c: numbers, values in their unit (times, sizes) and local times, as the CLI
 * prints them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fmt.h"
#include "t.h"

static const char *unit(double v, enum sn_unit_kind k, double scale, bool ascii)
{
    static char buf[64];
    struct sn_unit u = {k, scale, ascii};
    sn_fmt_unit(buf, sizeof(buf), v, &u);
    return buf;
}

static void test_time_units(void)
{
    T_STR(unit(0, SN_FMT_UNIT_TIME, 1, true), "0 ns");
    T_STR(unit(355, SN_FMT_UNIT_TIME, 1, true), "355 ns");
    T_STR(unit(999.4, SN_FMT_UNIT_TIME, 1, true), "999 ns");
    T_STR(unit(999.5, SN_FMT_UNIT_TIME, 1, true), "1.00 us");
    T_STR(unit(3050, SN_FMT_UNIT_TIME, 1, false), "3.05 \xc2\xb5s");
    T_STR(unit(12900, SN_FMT_UNIT_TIME, 1, true), "12.9 us");
    T_STR(unit(1200000, SN_FMT_UNIT_TIME, 1, true), "1.20 ms");
    T_STR(unit(2104055.5, SN_FMT_UNIT_TIME, 1, true), "2.10 ms");
    T_STR(unit(12e9, SN_FMT_UNIT_TIME, 1, true), "12.0 s");
    T_STR(unit(5, SN_FMT_UNIT_TIME, 1e6, true), "5.00 ms"); /* a field in ms (power -3) */
    T_STR(unit(-2500, SN_FMT_UNIT_TIME, 1, true), "-2.50 us");
}

static void test_size_units(void)
{
    T_STR(unit(0, SN_FMT_UNIT_SIZE, 1, true), "0 B");
    T_STR(unit(1023, SN_FMT_UNIT_SIZE, 1, true), "1023 B");
    T_STR(unit(4096, SN_FMT_UNIT_SIZE, 1, true), "4.00 KiB");
    T_STR(unit(1536 * 1024, SN_FMT_UNIT_SIZE, 1, true), "1.50 MiB");
    T_STR(unit(300.0 * 1024 * 1024 * 1024, SN_FMT_UNIT_SIZE, 1, true), "300 GiB");
}

static void test_no_unit(void)
{
    char buf[64];
    T_STR(unit(16, SN_FMT_UNIT_NONE, 1, true), "16");
    T_STR(unit(15212.765957446813, SN_FMT_UNIT_NONE, 1, true), "15212.8");
    T_STR(unit(NAN, SN_FMT_UNIT_TIME, 1, true), "-");
    sn_fmt_unit(buf, sizeof(buf), 0.5, NULL);
    T_STR(buf, "0.5");
}

static void test_unit_of_ca(void)
{
    struct sn_unit u = sn_unit_of_ca("seconds", -9);
    T_EQ(u.kind, SN_FMT_UNIT_TIME);
    T_DEQ(u.scale, 1.0);
    u = sn_unit_of_ca("seconds", -3);
    T_DEQ(u.scale, 1e6);
    T_EQ(sn_unit_of_ca("bytes", 0).kind, SN_FMT_UNIT_SIZE);
    T_EQ(sn_unit_of_ca("percent", 0).kind, SN_FMT_UNIT_NONE);
    T_EQ(sn_unit_of_ca(NULL, 0).kind, SN_FMT_UNIT_NONE);
}

static void test_local_time(void)
{
    char buf[SN_FMT_TIME_LEN];
    setenv("TZ", "UTC", 1);
    tzset();
    T_EQ(sn_fmt_time(buf, 1763812345), 19);
    T_STR(buf, "2025-11-22 11:52:25");
    setenv("TZ", "UTC-2", 1);
    tzset();
    sn_fmt_time(buf, 1763812345);
    T_STR(buf, "2025-11-22 13:52:25");
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("time units", test_time_units);
    t_run("size units", test_size_units);
    t_run("no unit", test_no_unit);
    t_run("CA types", test_unit_of_ca);
    t_run("local time", test_local_time);
    return t_done();
}
