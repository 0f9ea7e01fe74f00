/*
 * A trigger's condition text (serve/trigger_cond.h): each form with its exact values (units,
 * rates, bands, "for"), spaces anywhere between tokens, and every kind of bad text refused
 * with its message.
 */
#include <string.h>

#include "serve/trigger_cond.h"
#include "t.h"

static struct sn_tcond ok(const char *text)
{
    struct sn_tcond c;
    char why[256] = "";
    int rc = sn_tcond_parse(text, &c, why, sizeof(why));
    if (rc != 0)
        t_note("\"%s\": %s", text, why);
    T_EQ(rc, 0);
    return c;
}

static void bad(const char *text, const char *what)
{
    struct sn_tcond c;
    char why[256] = "";
    T_EQ(sn_tcond_parse(text, &c, why, sizeof(why)), -22);
    if (!strstr(why, what))
        t_note("\"%s\": %s (wanted \"%s\")", text, why, what);
    T_OK(strstr(why, what) != NULL);
}

static void test_forms(void)
{
    struct sn_tcond c = ok("p99 > 10ms for 3s");
    T_EQ(c.kind, SN_TCOND_PCT);
    T_NEAR(c.pct, 99, 0);
    T_NEAR(c.threshold, 10e6, 0);
    T_EQ(c.for_s, 3);
    c = ok("p99.9>1.5us");
    T_NEAR(c.pct, 99.9, 1e-12);
    T_NEAR(c.threshold, 1500, 1e-9);
    T_EQ(c.for_s, 1);
    c = ok("  p50 >  250   for 10 ");
    T_NEAR(c.threshold, 250, 0); /* the instrumentation's unit */
    T_EQ(c.for_s, 10);
    c = ok("p1 > 2 s");
    T_NEAR(c.threshold, 2e9, 0);
    c = ok("p99 > 7ns for 3600s");
    T_NEAR(c.threshold, 7, 0);
    T_EQ(c.for_s, 3600);
    c = ok("count > 5000/s for 2s");
    T_EQ(c.kind, SN_TCOND_RATE);
    T_NEAR(c.threshold, 5000, 0);
    T_EQ(c.for_s, 2);
    c = ok("count>0");
    T_NEAR(c.threshold, 0, 0);
    c = ok("count in [5ms, 20ms) > 10 for 4s");
    T_EQ(c.kind, SN_TCOND_BAND);
    T_NEAR(c.lo, 5e6, 0);
    T_NEAR(c.hi, 20e6, 0);
    T_NEAR(c.threshold, 10, 0);
    T_EQ(c.for_s, 4);
    c = ok("count in[0,1s)>2.5/s");
    T_NEAR(c.lo, 0, 0);
    T_NEAR(c.hi, 1e9, 0);
    T_NEAR(c.threshold, 2.5, 0);
}

static void test_refused(void)
{
    bad("", "a condition begins with");
    bad("median > 3", "a condition begins with");
    bad("p0 > 1ms", "above 0 and below 100");
    bad("p100 > 1ms", "above 0 and below 100");
    bad("p99 < 1ms", "expected \">\" after the percentile");
    bad("count = 3", "expected \">\" after the count");
    bad("p99 >= 1ms", "only \">\"");
    bad("p99 > -1ms", "must not be negative");
    bad("p99 > ms", "the threshold: expected a number");
    bad("p99 > 1e3", "unexpected \"e3\"");
    bad("p99 > 10 parsecs", "unexpected \"parsecs\"");
    bad("p99 > 10ms for 0s", "\"for\": a whole number of seconds from 1 to 3600");
    bad("p99 > 10ms for 3601s", "from 1 to 3600");
    bad("p99 > 10ms for 1.5s", "a whole number");
    bad("p99 > 10ms for -1s", "must be positive");
    bad("p99 > 10ms for", "\"for\": expected a number");
    bad("p99 > 10ms for 3s and more", "unexpected \"and more\"");
    bad("count in 5ms, 20ms) > 1", "count in [LO, HI)");
    bad("count in [5ms 20ms) > 1", "count in [LO, HI)");
    bad("count in [5ms, 20ms] > 1", "count in [LO, HI)");
    bad("count in [20ms, 5ms) > 1", "LO below HI");
    bad("count in [5ms, 5ms) > 1", "LO below HI");
    bad("p99 > 99999999999999999999s", "too large");
    bad("count > 9999999999999999", "the rate: too large");
    bad("p99 > 1111111111111111111111111111111111111111111", "expected a number");
    char big[300];
    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    memcpy(big, "p99 > 1", 7);
    bad(big, "at most 128 bytes");
}

int main(void)
{
    t_run("each form's values", test_forms);
    t_run("bad conditions, each its message", test_refused);
    return t_done();
}
