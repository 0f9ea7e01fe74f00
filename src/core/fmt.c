/*
 * Number formatting; see fmt.h.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
