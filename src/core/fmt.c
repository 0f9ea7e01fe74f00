/*
 * Number formatting; see fmt.h.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fmt.h"

int sn_fmt_double(char buf[SN_FMT_DOUBLE_LEN], double d)
{
    if (isnan(d))
        return snprintf(buf, SN_FMT_DOUBLE_LEN, "nan");
    if (isinf(d))
        return snprintf(buf, SN_FMT_DOUBLE_LEN, d < 0 ? "-inf" : "inf");
    for (int prec = 15; prec <= 17; prec++) {
        int n = snprintf(buf, SN_FMT_DOUBLE_LEN, "%.*g", prec, d);
        if (prec == 17 || strtod(buf, NULL) == d)
            return n;
    }
    return 0; /* not reached */
}

int sn_fmt_json_double(char buf[SN_FMT_DOUBLE_LEN], double d)
{
    if (!isfinite(d))
        return snprintf(buf, SN_FMT_DOUBLE_LEN, "null");
    return sn_fmt_double(buf, d);
}

int sn_fmt_human(char *buf, size_t len, double d, int digits)
{
    double a = fabs(d);

    if (!isfinite(d) || a == 0 || (a >= 1e-4 && a < 1e15)) {
        int n = snprintf(buf, len, "%.*g", digits, d);
        if (isfinite(d) && strchr(buf, 'e')) /* %g chose an exponent: print plainly */
            n = snprintf(buf, len, "%.*f", a >= 1 ? 0 : digits, d);
        return n;
    }
    return snprintf(buf, len, "%.*g", digits, d);
}

struct sn_unit sn_unit_of_ca(const char *unit, int power)
{
    struct sn_unit u = {SN_FMT_UNIT_NONE, 1, false};

    if (unit && strcmp(unit, "seconds") == 0) {
        u.kind = SN_FMT_UNIT_TIME;
        u.scale = pow(10, power + 9);
    } else if (unit && strcmp(unit, "bytes") == 0) {
        u.kind = SN_FMT_UNIT_SIZE;
    }
    return u;
}

/* v (>= 0 in magnitude 1 to 999.5, or a sign and that) with 3 significant digits, then unit. */
static int fmt_sig(char *buf, size_t len, double v, const char *unit)
{
    double a = fabs(v);
    int prec = a < 9.995 ? 2 : a < 99.95 ? 1 : 0;
    return snprintf(buf, len, "%.*f %s", prec, v, unit);
}

int sn_fmt_unit(char *buf, size_t len, double v, const struct sn_unit *u)
{
    double a;

    if (isnan(v))
        return snprintf(buf, len, "-");
    if (!u || u->kind == SN_FMT_UNIT_NONE || !isfinite(v))
        return sn_fmt_human(buf, len, v, 6);
    a = fabs(v * u->scale);
    if (u->kind == SN_FMT_UNIT_TIME) {
        double ns = v * u->scale;
        if (a < 999.5)
            return snprintf(buf, len, "%.0f ns", ns);
        if (a < 999500)
            return fmt_sig(buf, len, ns / 1e3, u->ascii ? "us" : "\xc2\xb5s");
        if (a < 999500000)
            return fmt_sig(buf, len, ns / 1e6, "ms");
        return fmt_sig(buf, len, ns / 1e9, "s");
    } else {
        static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double b = v * u->scale;
        int i = -1;
        if (a < 1023.5)
            return snprintf(buf, len, "%.0f B", b);
        while (i < 5 && fabs(b) >= 1023.5) {
            b /= 1024;
            i++;
        }
        return fmt_sig(buf, len, b, units[i]);
    }
}

int sn_fmt_time(char buf[SN_FMT_TIME_LEN], int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (!localtime_r(&tt, &tm) || strftime(buf, SN_FMT_TIME_LEN, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        return snprintf(buf, SN_FMT_TIME_LEN, "%lld", (long long)t);
    return (int)strlen(buf);
}
