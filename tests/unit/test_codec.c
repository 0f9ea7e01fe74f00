/*
 * Tests of the binary and base64 forms of a histogram (src/core/hist_codec.c, src/core/b64.c)
 * against /work/shared/ref/circllhist.md §2 and, differentially, against the model of upstream
 * (tests/model/llmodel.c), which keeps upstream's bugs: the count width-table truncation, the
 * unsorted and unmerged decode, the lenient libmtev base64 decoder.
 *
 * Where Sonde and upstream differ by design (Sonde's lenient decoder sorts records, sums
 * repeated buckets, reads {0,e} as {0,0} and empties the histogram on every failure), the
 * contents are compared after normalizing both sides: sorted by bucket, repeated buckets summed
 * (saturating), zero counts dropped, {0,e} mapped to {0,0}.
 *
 * The cases that decode unsorted input run in a child process (in_child()): an earlier Sonde
 * made some of those inputs crash (see test_decode_unsorted_then_sorted_tail), and a crash
 * should fail one case, not end the run.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/b64.h"
#include "core/err.h"
#include "core/hist.h"
#include "llmodel.h"
#include "llmodel_sn.h"
#include "t.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define P2(k)    (1ULL << (k))

/* ------------------------------------------------------------------------------------------
 * Helpers
 */

struct rec {
    int val, exp;
    uint64_t count;
};

/* Sonde's and the model's histogram of the same raw buckets. */
static struct sn_hist *mk(const struct rec *r, size_t n)
{
    struct sn_hist *h = sn_hist_create();

    for (size_t i = 0; i < n; i++)
        T_EQ(sn_hist_insert_raw(h, sn_bucket_make(r[i].val, r[i].exp), r[i].count), 0);
    return h;
}

static struct llm_hist *mk_model(const struct rec *r, size_t n)
{
    struct llm_hist *m = llm_create();

    for (size_t i = 0; i < n; i++)
        llm_insert_raw(m, lb(sn_bucket_make(r[i].val, r[i].exp)), r[i].count);
    return m;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

/* Counts upstream's width table truncates: [2^32, 2^36) and [2^48, 2^52). */
static bool truncated_count(uint64_t c)
{
    return (c >= P2(32) && c < P2(36)) || (c >= P2(48) && c < P2(52));
}

struct pair {
    uint16_t ord;
    uint64_t count;
};

static int pair_cmp(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    return (x->ord > y->ord) - (x->ord < y->ord);
}

/* Sorts, sums repeated buckets (saturating) and drops zero counts; returns the new length. */
static size_t normalize(struct pair *p, size_t n)
{
    size_t k = 0, m = 0;

    qsort(p, n, sizeof(*p), pair_cmp);
    for (size_t i = 0; i < n; i++) {
        if (k && p[k - 1].ord == p[i].ord)
            p[k - 1].count = sat_add(p[k - 1].count, p[i].count);
        else
            p[k++] = p[i];
    }
    for (size_t i = 0; i < k; i++)
        if (p[i].count)
            p[m++] = p[i];
    return m;
}

/* sn_bucket_ord() maps {0,e} to the zero ordinal, as Sonde's decoder reads it. */
static size_t pairs_of_model(const struct llm_hist *m, struct pair *p)
{
    struct llm_bucket b;
    uint64_t c;
    int i;

    for (i = 0; llm_get(m, i, &b, &c); i++) {
        p[i].ord = sn_bucket_ord(sn_bucket_make(b.val, b.exp));
        p[i].count = c;
    }
    return normalize(p, (size_t)i);
}

static size_t pairs_of_sonde(const struct sn_hist *h, struct pair *p)
{
    struct sn_bucket b;
    uint64_t c;
    size_t i;

    for (i = 0; sn_hist_bucket_at(h, i, &b, &c); i++) {
        p[i].ord = sn_bucket_ord(b);
        p[i].count = c;
    }
    return normalize(p, i);
}

/* True when h and m hold the same normalized contents; notes the first difference. */
static bool agree(const struct sn_hist *h, const struct llm_hist *m)
{
    size_t nh = sn_hist_nbuckets(h), nm = (size_t)llm_used(m), i;
    struct pair *a = malloc((nh + 1) * sizeof(*a)), *b = malloc((nm + 1) * sizeof(*b));
    bool ok;

    nh = pairs_of_sonde(h, a);
    nm = pairs_of_model(m, b);
    for (i = 0; i < nh && i < nm; i++)
        if (a[i].ord != b[i].ord || a[i].count != b[i].count)
            break;
    ok = nh == nm && i == nh;
    if (!ok)
        t_note("contents differ at entry %zu of %zu/%zu: sonde ord %d count %llu, model ord %d "
               "count %llu",
               i, nh, nm, i < nh ? a[i].ord : -1, i < nh ? (unsigned long long)a[i].count : 0ULL,
               i < nm ? b[i].ord : -1, i < nm ? (unsigned long long)b[i].count : 0ULL);
    free(a);
    free(b);
    return ok;
}

/*
 * What a decoded histogram must look like: buckets strictly ascending, no zero counts, and
 * every bucket found again by sn_hist_bucket_count() (which goes through the index).
 */
static bool decoded_ok(const struct sn_hist *h)
{
    struct sn_bucket b;
    uint64_t c;
    int prev = -1;

    for (size_t i = 0; sn_hist_bucket_at(h, i, &b, &c); i++) {
        if ((int)sn_bucket_ord(b) <= prev || c == 0) {
            t_note("bucket %zu {%d,%d}:%llu out of order or zero", i, b.val, b.exp,
                   (unsigned long long)c);
            return false;
        }
        if (sn_hist_bucket_count(h, b) != c) {
            t_note("bucket %zu {%d,%d}: sn_hist_bucket_count gives %llu, bucket_at %llu", i, b.val,
                   b.exp, (unsigned long long)sn_hist_bucket_count(h, b), (unsigned long long)c);
            return false;
        }
        prev = sn_bucket_ord(b);
    }
    return true;
}

/* Checks that h holds exactly want[0..n) in this order. */
static void expect_buckets(const struct sn_hist *h, const struct rec *want, size_t n)
{
    struct sn_bucket b;
    uint64_t c;

    T_EQU(sn_hist_nbuckets(h), n);
    for (size_t i = 0; i < n && sn_hist_bucket_at(h, i, &b, &c); i++) {
        t_note("bucket %zu", i);
        T_EQ(b.val, want[i].val);
        T_EQ(b.exp, want[i].exp);
        T_EQU(c, want[i].count);
    }
    t_note("%s", "");
}

/* A histogram with a few buckets and an index, to see that failed decodes empty it. */
static struct sn_hist *prefilled(void)
{
    struct sn_hist *h = sn_hist_create();

    sn_hist_insert(h, 1.0, 3);
    sn_hist_insert(h, -42.0, 1);
    sn_hist_insert(h, 1e9, 7);
    return h;
}

/* Heap copy of exactly n bytes, so that ASan catches any read past the end. */
static void *exact_copy(const void *p, size_t n)
{
    void *q = malloc(n ? n : 1);

    if (n)
        memcpy(q, p, n);
    return q;
}

/* Lenient (flags 0) or strict binary decode of buf[0..len) from an exact heap copy. */
static ssize_t decode(struct sn_hist *h, const void *buf, size_t len, unsigned flags)
{
    void *p = exact_copy(buf, len);
    ssize_t r = sn_hist_decode(h, p, len, flags);

    free(p);
    return r;
}

static ssize_t decode_b64(struct sn_hist *h, const char *s, size_t len, unsigned flags)
{
    char *p = exact_copy(s, len);
    ssize_t r = sn_hist_decode_b64(h, p, len, flags);

    free(p);
    return r;
}

static ssize_t model_decode(struct llm_hist *m, const void *buf, size_t len)
{
    void *p = exact_copy(buf, len);
    ssize_t r = llm_deserialize(m, p, (ssize_t)len);

    free(p);
    return r;
}

static ssize_t model_decode_b64(struct llm_hist *m, const char *s, size_t len)
{
    char *p = exact_copy(s, len);
    ssize_t r = llm_deserialize_b64(m, p, (ssize_t)len);

    free(p);
    return r;
}

/*
 * Decodes buf leniently with Sonde and the model: checks the same result (rc_want for Sonde;
 * the model's -1 for any Sonde error), the same normalized contents, Sonde's sorted form, and
 * that a histogram that had contents before is left empty on failure.
 */
static void lenient_like_model(const void *buf, size_t len, ssize_t rc_want)
{
    struct sn_hist *h = prefilled();
    struct llm_hist *m = llm_create();
    ssize_t r = decode(h, buf, len, 0), rm = model_decode(m, buf, len);

    T_EQ(r, rc_want);
    T_EQ(rm, rc_want < 0 ? -1 : rc_want);
    if (r < 0) {
        T_EQU(sn_hist_nbuckets(h), 0);
        T_EQU(sn_hist_count(h), 0);
    } else {
        T_OK(agree(h, m));
        T_OK(decoded_ok(h));
    }
    sn_hist_destroy(h);
    llm_destroy(m);
}

/* Strict binary decode must fail with code want and leave a prefilled histogram empty. */
static void strict_fails(const void *buf, size_t len, ssize_t want)
{
    struct sn_hist *h = prefilled();

    T_EQ(decode(h, buf, len, SN_HIST_STRICT), want);
    T_EQU(sn_hist_nbuckets(h), 0);
    sn_hist_destroy(h);
}

/*
 * Runs fn in a child process and relays its report lines. The case fails if the child dies
 * (signal, sanitizer exit), exits non-zero, or reports a failed check ("#   " lines).
 */
static void in_child(void (*fn)(void))
{
    int fd[2], status = 0;
    bool at_line_start = true, failed_check = false;
    char buf[4096];
    ssize_t n;
    pid_t pid;

    fflush(stdout);
    if (!T_OK(pipe(fd) == 0))
        return;
    pid = fork();
    if (!T_OK(pid >= 0))
        return;
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], STDOUT_FILENO);
        close(fd[1]);
        fn();
        fflush(stdout);
        _exit(0);
    }
    close(fd[1]);
    while ((n = read(fd[0], buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (at_line_start && i + 4 <= n && memcmp(buf + i, "#   ", 4) == 0)
                failed_check = true;
            at_line_start = buf[i] == '\n';
        }
        fwrite(buf, 1, (size_t)n, stdout);
    }
    close(fd[0]);
    fflush(stdout);
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status))
        t_note("child killed by signal %d", WTERMSIG(status));
    else if (WEXITSTATUS(status))
        t_note("child exited with status %d (sanitizer report above?)", WEXITSTATUS(status));
    T_OK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    T_OK(!failed_check);
}

/* Random bucket: every valid kind, clustered exponents half the time so buckets repeat. */
static struct sn_bucket rand_bucket(void)
{
    uint64_t r = t_rand();
    int val, exp;

    switch (r % 16) {
    case 0:
        return sn_bucket_make(0, 0);
    case 1:
        return sn_bucket_make(-1, 0);
    default:
        val = 10 + (int)((r >> 8) % 90);
        exp = (r & 16) ? (int)((r >> 16) % 256) - 128 : (int)((r >> 16) % 5) - 2;
        return sn_bucket_make((r >> 32) & 1 ? -val : val, exp);
    }
}

/* Random count of every width, with the tag boundaries 2^k and 2^k - 1 and zero often. */
static uint64_t rand_count(void)
{
    uint64_t r = t_rand();
    unsigned k = (unsigned)(r % 65);

    switch ((r >> 8) % 8) {
    case 0:
        return 0;
    case 1:
        return k == 64 ? UINT64_MAX : P2(k);
    case 2:
        return k == 64 ? UINT64_MAX : P2(k) - 1;
    default:
        return t_rand() >> ((r >> 16) % 64);
    }
}

/*
 * The same random histogram (up to maxb inserts) in Sonde and in the model. When plain, no
 * count falls in upstream's truncated ranges, so that round trips through its bytes are exact.
 */
static void rand_hists(struct sn_hist *h, struct llm_hist *m, unsigned maxb, bool plain)
{
    unsigned n = (unsigned)(t_rand() % (maxb + 1));

    sn_hist_clear(h);
    llm_clear(m);
    for (unsigned i = 0; i < n; i++) {
        struct sn_bucket b = rand_bucket();
        uint64_t c = rand_count();
        while (plain && truncated_count(c))
            c = rand_count();
        T_EQ(sn_hist_insert_raw(h, b, c), 0);
        llm_insert_raw(m, lb(b), c);
    }
}

static bool has_truncated_count(const struct sn_hist *h)
{
    uint64_t c;

    for (size_t i = 0; sn_hist_bucket_at(h, i, NULL, &c); i++)
        if (truncated_count(c))
            return true;
    return false;
}

/* ------------------------------------------------------------------------------------------
 * 1. Exact bytes
 */

static const uint8_t worked_bin[] = {
    0x00, 0x06,             /* N = 6, big-endian */
    0x0a, 0xfe, 0x00, 0x01, /* {10,-2}: 0.01 */
    0x0a, 0x00, 0x00, 0x01, /* {10,0}: 1.0 */
    0x63, 0x00, 0x00, 0x01, /* {99,0}: 9.9 */
    0x0a, 0x01, 0x00, 0x01, /* {10,1}: 10 */
    0x63, 0x01, 0x00, 0x01, /* {99,1}: 99.99 */
    0x0a, 0x02, 0x00, 0x01, /* {10,2}: 100 */
};
static const char worked_b64[] = "AAYK/gABCgAAAWMAAAEKAQABYwEAAQoCAAE=";

static struct sn_hist *worked_hist(void)
{
    static const double v[] = {1.0, 9.9, 10, 99.99, 100, 0.01};
    struct sn_hist *h = sn_hist_create();

    for (size_t i = 0; i < NELEM(v); i++)
        T_EQ(sn_hist_insert(h, v[i], 1), 0);
    return h;
}

static void test_worked_example(void)
{
    static const double v[] = {1.0, 9.9, 10, 99.99, 100, 0.01};
    struct sn_hist *h = worked_hist(), *d = sn_hist_create();
    struct llm_hist *m = llm_create();
    uint8_t buf[64], mbuf[64];
    char s[64], ms[64];

    for (size_t i = 0; i < NELEM(v); i++)
        llm_insert(m, v[i], 1);
    T_EQU(sn_hist_encoded_len(h, 0), 26);
    T_EQ(sn_hist_encode(h, buf, sizeof(buf), 0), 26);
    T_MEM(buf, worked_bin, 26);
    T_EQ(llm_serialize(m, mbuf, sizeof(mbuf)), 26);
    T_MEM(buf, mbuf, 26);
    T_EQ(sn_hist_encode(h, buf, sizeof(buf), SN_HIST_EXACT_WIDTHS), 26);
    T_MEM(buf, worked_bin, 26);

    T_EQU(sn_hist_b64_len(h, 0), 36);
    T_EQ(sn_hist_encode_b64(h, s, sizeof(s), 0), 36);
    T_STR(s, worked_b64);
    T_EQ(llm_serialize_b64(m, ms, sizeof(ms)), 36);
    ms[36] = '\0';
    T_STR(s, ms);

    T_EQ(decode(d, worked_bin, 26, 0), 26);
    T_OK(sn_hist_equal(d, h));
    T_EQ(decode(d, worked_bin, 26, SN_HIST_STRICT), 26);
    T_OK(sn_hist_equal(d, h));
    T_EQ(decode_b64(d, worked_b64, 36, 0), 26);
    T_OK(sn_hist_equal(d, h));
    T_EQ(decode_b64(d, worked_b64, 36, SN_HIST_STRICT), 26);
    T_OK(sn_hist_equal(d, h));
    sn_hist_destroy(h);
    sn_hist_destroy(d);
    llm_destroy(m);
}

static void test_empty(void)
{
    struct sn_hist *h = sn_hist_create(), *d = prefilled();
    struct llm_hist *m = llm_create();
    uint8_t buf[8], mbuf[8];
    char s[8];

    T_EQU(sn_hist_encoded_len(h, 0), 2);
    T_EQ(sn_hist_encode(h, buf, sizeof(buf), 0), 2);
    T_MEM(buf, "\x00\x00", 2);
    T_EQ(llm_serialize(m, mbuf, sizeof(mbuf)), 2);
    T_MEM(buf, mbuf, 2);
    T_EQU(sn_hist_b64_len(h, 0), 4);
    T_EQ(sn_hist_encode_b64(h, s, sizeof(s), 0), 4);
    T_STR(s, "AAA=");
    T_EQ(decode(d, "\x00\x00", 2, SN_HIST_STRICT), 2);
    T_EQU(sn_hist_nbuckets(d), 0);
    sn_hist_destroy(d);
    d = prefilled();
    T_EQ(decode_b64(d, "AAA=", 4, SN_HIST_STRICT), 2);
    T_EQU(sn_hist_nbuckets(d), 0);
    sn_hist_destroy(h);
    sn_hist_destroy(d);
    llm_destroy(m);
}

static void test_zero_counts_not_written(void)
{
    static const struct rec r[] = {{20, 0, 0}, {30, 0, 5}, {-40, 3, 0}, {0, 0, 0}, {-1, 0, 0}};
    static const uint8_t want[] = {0x00, 0x01, 0x1e, 0x00, 0x00, 0x05};
    struct sn_hist *h = mk(r, NELEM(r));
    struct llm_hist *m = mk_model(r, NELEM(r));
    uint8_t buf[32], mbuf[32];

    T_EQU(sn_hist_nbuckets(h), 5); /* kept in memory, as upstream keeps them */
    T_EQU(sn_hist_encoded_len(h, 0), sizeof(want));
    T_EQ(sn_hist_encode(h, buf, sizeof(buf), 0), sizeof(want));
    T_MEM(buf, want, sizeof(want));
    T_EQ(llm_serialize(m, mbuf, sizeof(mbuf)), sizeof(want));
    T_MEM(buf, mbuf, sizeof(want));
    sn_hist_destroy(h);
    llm_destroy(m);
}

static void test_negative_zero_nan_buckets(void)
{
    static const struct rec r[] = {{99, 127, 1}, {10, -128, 2},  {0, 0, 3},
                                   {-1, 0, 4},   {-10, -128, 5}, {-99, 127, 6}};
    /* ascending: NaN, then negatives from -inf, zero, positives */
    static const struct rec sorted[] = {{-1, 0, 4}, {-99, 127, 6}, {-10, -128, 5},
                                        {0, 0, 3},  {10, -128, 2}, {99, 127, 1}};
    static const uint8_t want[] = {
        0x00, 0x06, 0xff, 0x00, 0x00, 0x04, 0x9d, 0x7f, 0x00, 0x06, 0xf6, 0x80, 0x00,
        0x05, 0x00, 0x00, 0x00, 0x03, 0x0a, 0x80, 0x00, 0x02, 0x63, 0x7f, 0x00, 0x01,
    };
    struct sn_hist *h = mk(r, NELEM(r)), *d = sn_hist_create(), *x = sn_hist_create();
    struct llm_hist *m = mk_model(r, NELEM(r));
    uint8_t buf[64], mbuf[64];
    char s[64], ms[64];

    T_EQ(sn_hist_encode(h, buf, sizeof(buf), 0), sizeof(want));
    T_MEM(buf, want, sizeof(want));
    T_EQ(llm_serialize(m, mbuf, sizeof(mbuf)), sizeof(want));
    T_MEM(buf, mbuf, sizeof(want));
    T_EQ(sn_hist_encode_b64(h, s, sizeof(s), 0), 36);
    T_EQ(llm_serialize_b64(m, ms, sizeof(ms)), 36);
    ms[36] = '\0';
    T_STR(s, ms);
    T_EQ(decode(d, want, sizeof(want), SN_HIST_STRICT), sizeof(want));
    expect_buckets(d, sorted, NELEM(sorted));
    T_EQ(decode_b64(d, s, 36, SN_HIST_STRICT), sizeof(want));
    T_OK(sn_hist_equal(d, h));

    /* the same buckets reached from doubles */
    T_EQ(sn_hist_insert(x, NAN, 1), 0);
    T_EQ(sn_hist_insert(x, -0.0, 1), 0);
    T_EQ(sn_hist_insert(x, -2.5, 1), 0);
    T_EQ(sn_hist_encode(x, buf, sizeof(buf), 0), 14);
    T_MEM(buf, "\x00\x03\xff\x00\x00\x01\xe7\x00\x00\x01\x00\x00\x00\x01", 14);
    sn_hist_destroy(h);
    sn_hist_destroy(d);
    sn_hist_destroy(x);
    llm_destroy(m);
}

/* ------------------------------------------------------------------------------------------
 * 2. Count widths
 */

static const struct width_case {
    uint64_t count;
    int tag;          /* upstream's table (default flags) */
    uint64_t written; /* the count those tag+1 bytes hold */
    int exact_tag;    /* SN_HIST_EXACT_WIDTHS */
} widths[] = {
    {1, 0, 1, 0},
    {0xff, 0, 0xff, 0},
    {0x100, 1, 0x100, 1},
    {0xffff, 1, 0xffff, 1},
    {0x10000, 2, 0x10000, 2},
    {0xffffff, 2, 0xffffff, 2},
    {0x1000000, 3, 0x1000000, 3},
    {0xffffffff, 3, 0xffffffff, 3},
    {P2(32), 3, 0, 4},              /* upstream bug: written as 00000000 */
    {P2(32) + 7, 3, 7, 4},          /* truncated mod 2^32 */
    {P2(36) - 1, 3, 0xffffffff, 4}, /* truncated */
    {P2(36), 4, P2(36), 4},         /* the buggy table's limit passed: correct again */
    {P2(40) - 1, 4, P2(40) - 1, 4}, /**/
    {P2(40), 5, P2(40), 5},         /**/
    {P2(48) - 1, 5, P2(48) - 1, 5}, /**/
    {P2(48), 5, 0, 6},              /* upstream bug: written as 000000000000 */
    {P2(52) - 1, 5, P2(48) - 1, 6}, /* truncated mod 2^48 */
    {P2(52), 6, P2(52), 6},         /**/
    {P2(56) - 1, 6, P2(56) - 1, 6}, /**/
    {P2(56), 7, P2(56), 7},         /**/
    {UINT64_MAX, 7, UINT64_MAX, 7}, /**/
};

/* The single-record form of {10,0} with the count in tag+1 little-endian bytes. */
static size_t one_record(uint8_t *buf, int tag, uint64_t count)
{
    buf[0] = 0x00;
    buf[1] = 0x01;
    buf[2] = 0x0a;
    buf[3] = 0x00;
    buf[4] = (uint8_t)tag;
    for (int k = 0; k <= tag; k++)
        buf[5 + k] = (uint8_t)(count >> (8 * k));
    return 6 + (size_t)tag;
}

static void test_widths_upstream(void)
{
    struct sn_hist *d = sn_hist_create();

    for (size_t i = 0; i < NELEM(widths); i++) {
        const struct width_case *w = &widths[i];
        struct rec r = {10, 0, w->count};
        struct sn_hist *h = mk(&r, 1);
        struct llm_hist *m = mk_model(&r, 1);
        uint8_t want[16], buf[32], mbuf[32];
        size_t n = one_record(want, w->tag, w->written);

        t_note("count %llu", (unsigned long long)w->count);
        T_EQU(sn_hist_encoded_len(h, 0), n);
        T_EQ(sn_hist_encode(h, buf, sizeof(buf), 0), n);
        T_MEM(buf, want, n);
        T_EQ(llm_serialize(m, mbuf, sizeof(mbuf)), n);
        T_MEM(buf, mbuf, n);
        /* the lenient reader honours the tag: it gets the written count, 0 drops the bucket */
        T_EQ(decode(d, buf, n, 0), n);
        T_EQU(sn_hist_nbuckets(d), w->written ? 1 : 0);
        T_EQU(sn_hist_bucket_count(d, sn_bucket_make(10, 0)), w->written);
        T_EQ(model_decode(m, buf, n), n);
        T_EQ(llm_used(m), w->written ? 1 : 0);
        sn_hist_destroy(h);
        llm_destroy(m);
    }
    sn_hist_destroy(d);
}

static void test_widths_upstream_bytes(void)
{
    /* the cases the brief spells out, as literal bytes */
    static const struct {
        uint64_t count;
        uint8_t bytes[16];
        size_t n;
    } lit[] = {
        {P2(32), {0, 1, 0x0a, 0, 3, 0, 0, 0, 0}, 9},
        {P2(36) - 1, {0, 1, 0x0a, 0, 3, 0xff, 0xff, 0xff, 0xff}, 9},
        {P2(36), {0, 1, 0x0a, 0, 4, 0, 0, 0, 0, 0x10}, 10},
        {P2(48), {0, 1, 0x0a, 0, 5, 0, 0, 0, 0, 0, 0}, 11},
        {P2(52) - 1, {0, 1, 0x0a, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 11},
        {P2(52), {0, 1, 0x0a, 0, 6, 0, 0, 0, 0, 0, 0, 0x10}, 12},
        {UINT64_MAX, {0, 1, 0x0a, 0, 7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 13},
    };
    uint8_t buf[32];

    for (size_t i = 0; i < NELEM(lit); i++) {
        struct rec r = {10, 0, lit[i].count};
        struct sn_hist *h = mk(&r, 1);

        t_note("count %llu", (unsigned long long)lit[i].count);
        T_EQ(sn_hist_encode(h, buf, sizeof(buf), 0), lit[i].n);
        T_MEM(buf, lit[i].bytes, lit[i].n);
        sn_hist_destroy(h);
    }
}

static void test_widths_exact(void)
{
    struct sn_hist *d = sn_hist_create();

    for (size_t i = 0; i < NELEM(widths); i++) {
        const struct width_case *w = &widths[i];
        struct rec r = {10, 0, w->count};
        struct sn_hist *h = mk(&r, 1);
        uint8_t want[16], buf[32];
        size_t n = one_record(want, w->exact_tag, w->count);

        t_note("count %llu", (unsigned long long)w->count);
        T_EQU(sn_hist_encoded_len(h, SN_HIST_EXACT_WIDTHS), n);
        T_EQ(sn_hist_encode(h, buf, sizeof(buf), SN_HIST_EXACT_WIDTHS), n);
        T_MEM(buf, want, n);
        T_EQ(decode(d, buf, n, SN_HIST_STRICT), n);
        T_OK(sn_hist_equal(d, h));
        T_EQ(decode(d, buf, n, 0), n);
        T_OK(sn_hist_equal(d, h));
        sn_hist_destroy(h);
    }
    sn_hist_destroy(d);
}

/* Upstream's truncated encodings as the strict reader sees them. */
static void test_widths_truncated_strict(void)
{
    struct sn_hist *d = sn_hist_create();
    uint8_t buf[32];
    size_t n;

    /* 2^32 and 2^48 come out as zero counts */
    n = one_record(buf, 3, 0);
    T_EQ(decode(d, buf, n, SN_HIST_STRICT), SN_E_ZERO);
    n = one_record(buf, 5, 0);
    T_EQ(decode(d, buf, n, SN_HIST_STRICT), SN_E_ZERO);
    /* 2^36-1 as ffffffff is the canonical form of 0xffffffff: accepted, value lost */
    n = one_record(buf, 3, 0xffffffff);
    T_EQ(decode(d, buf, n, SN_HIST_STRICT), n);
    T_EQU(sn_hist_count(d), 0xffffffff);
    n = one_record(buf, 5, P2(48) - 1);
    T_EQ(decode(d, buf, n, SN_HIST_STRICT), n);
    T_EQU(sn_hist_count(d), P2(48) - 1);
    sn_hist_destroy(d);
}

/* ------------------------------------------------------------------------------------------
 * 3. Lenient decoding, compared with the model
 */

static void test_decode_short_input(void)
{
    lenient_like_model("", 0, SN_E_TRUNCATED);
    lenient_like_model("\x00", 1, SN_E_TRUNCATED);
    lenient_like_model("\x01", 1, SN_E_TRUNCATED);
    /* N = 1 and nothing after it: upstream stops quietly */
    lenient_like_model("\x00\x01", 2, 2);
    lenient_like_model("\xff\xff", 2, 2);
}

static void test_decode_n_too_large(void)
{
    static const uint8_t b[] = {0x00, 0x03, 0x0a, 0x00, 0x00, 0x07};
    static const struct rec want[] = {{10, 0, 7}};
    struct sn_hist *h = sn_hist_create();

    lenient_like_model(b, sizeof(b), 6);
    T_EQ(decode(h, b, sizeof(b), 0), 6);
    expect_buckets(h, want, 1);
    sn_hist_destroy(h);
}

static void test_decode_bad_tag(void)
{
    static const uint8_t tag8[] = {0x00, 0x01, 0x0a, 0x00, 0x08, 0x01, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t tagff[] = {0x00, 0x01, 0x0a, 0x00, 0xff, 0x01};
    /* a bad tag after a good record, and a bad tag with no count bytes at all */
    static const uint8_t late[] = {0x00, 0x02, 0x0a, 0x00, 0x00, 0x01, 0x0b, 0x00, 0x09};

    lenient_like_model(tag8, sizeof(tag8), SN_E_CORRUPT);
    lenient_like_model(tagff, sizeof(tagff), SN_E_CORRUPT);
    lenient_like_model(late, sizeof(late), SN_E_CORRUPT);
}

static void test_decode_truncated_record(void)
{
    /* N=2: {10,0} tag 0 count 1, then {20,0} tag 3 count 0x04030201 */
    static const uint8_t b[] = {0x00, 0x02, 0x0a, 0x00, 0x00, 0x01, 0x14,
                                0x00, 0x03, 0x01, 0x02, 0x03, 0x04};

    for (size_t len = 3; len < 6; len++) {
        t_note("len %zu", len);
        lenient_like_model(b, len, SN_E_TRUNCATED);
    }
    lenient_like_model(b, 6, 6); /* first record complete, data ends: stops quietly */
    for (size_t len = 7; len < sizeof(b); len++) {
        t_note("len %zu", len);
        lenient_like_model(b, len, SN_E_TRUNCATED);
    }
    lenient_like_model(b, sizeof(b), sizeof(b));
}

static void test_decode_zero_counts_skipped(void)
{
    static const uint8_t b[] = {
        0x00, 0x04, 0x0a, 0x00, 0x00, 0x00,                   /* {10,0} count 0, tag 0 */
        0x14, 0x00, 0x01, 0x00, 0x00,                         /* {20,0} count 0, tag 1 */
        0x1e, 0x00, 0x00, 0x05,                               /* {30,0} count 5 */
        0x28, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* {40,0} count 0, tag 7 */
        0x00, 0x00,
    };
    static const struct rec want[] = {{30, 0, 5}};
    struct sn_hist *h = sn_hist_create();

    lenient_like_model(b, sizeof(b), sizeof(b));
    T_EQ(decode(h, b, sizeof(b), 0), sizeof(b));
    expect_buckets(h, want, 1);
    sn_hist_destroy(h);
}

static void test_decode_invalid_buckets_skipped(void)
{
    static const uint8_t b[] = {
        0x00, 0x09, 0x05, 0x00, 0x00, 0x01, /* val 5 */
        0x64, 0x00, 0x00, 0x01,             /* val 100 */
        0xff, 0x03, 0x00, 0x01,             /* val -1 with exp 3: a NaN that is not {-1,0} */
        0x80, 0x00, 0x00, 0x01,             /* val -128 */
        0x09, 0x05, 0x00, 0x01,             /* val 9 */
        0xf7, 0x00, 0x00, 0x01,             /* val -9 */
        0x9c, 0x00, 0x00, 0x01,             /* val -100 */
        0xff, 0x00, 0x00, 0x03,             /* {-1,0}: the NaN bucket, kept */
        0x14, 0x00, 0x00, 0x02,             /* {20,0}, kept */
    };
    static const struct rec want[] = {{-1, 0, 3}, {20, 0, 2}};
    struct sn_hist *h = sn_hist_create();

    lenient_like_model(b, sizeof(b), sizeof(b));
    T_EQ(decode(h, b, sizeof(b), 0), sizeof(b));
    expect_buckets(h, want, NELEM(want));
    sn_hist_destroy(h);
}

static void test_decode_zero_bucket_any_exp(void)
{
    static const uint8_t one[] = {0x00, 0x01, 0x00, 0x07, 0x00, 0x04};
    static const uint8_t two[] = {0x00, 0x03, 0x00, 0x07, 0x00, 0x04, 0x00,
                                  0x00, 0x00, 0x05, 0x00, 0x80, 0x00, 0x01};
    static const struct rec want1[] = {{0, 0, 4}}, want2[] = {{0, 0, 10}};
    struct sn_hist *h = sn_hist_create();
    uint8_t buf[16];

    lenient_like_model(one, sizeof(one), sizeof(one));
    T_EQ(decode(h, one, sizeof(one), 0), sizeof(one));
    expect_buckets(h, want1, 1);
    /* re-encoded as the canonical zero bucket */
    T_EQ(sn_hist_encode(h, buf, sizeof(buf), 0), 6);
    T_MEM(buf, "\x00\x01\x00\x00\x00\x04", 6);
    /* {0,7}, {0,0} and {0,-128} are one bucket: summed */
    lenient_like_model(two, sizeof(two), sizeof(two));
    T_EQ(decode(h, two, sizeof(two), 0), sizeof(two));
    expect_buckets(h, want2, 1);
    sn_hist_destroy(h);
}

static void body_decode_unsorted(void)
{
    static const uint8_t b[] = {0x00, 0x03, 0x1e, 0x00, 0x00, 0x03, 0x0a,
                                0x00, 0x00, 0x01, 0x14, 0x00, 0x00, 0x02};
    static const uint8_t sorted_bytes[] = {0x00, 0x03, 0x0a, 0x00, 0x00, 0x01, 0x14,
                                           0x00, 0x00, 0x02, 0x1e, 0x00, 0x00, 0x03};
    /* positive, negative, NaN: exactly reversed */
    static const uint8_t rev[] = {0x00, 0x03, 0x0a, 0x00, 0x00, 0x01, 0xf6,
                                  0x00, 0x00, 0x02, 0xff, 0x00, 0x00, 0x03};
    static const struct rec want[] = {{10, 0, 1}, {20, 0, 2}, {30, 0, 3}};
    static const struct rec want_rev[] = {{-1, 0, 3}, {-10, 0, 2}, {10, 0, 1}};
    struct sn_hist *h = sn_hist_create();
    uint8_t buf[32];

    lenient_like_model(b, sizeof(b), sizeof(b));
    T_EQ(decode(h, b, sizeof(b), 0), sizeof(b));
    /* Sonde sorts what upstream keeps in input order */
    expect_buckets(h, want, NELEM(want));
    T_EQ(sn_hist_encode(h, buf, sizeof(buf), 0), sizeof(sorted_bytes));
    T_MEM(buf, sorted_bytes, sizeof(sorted_bytes));
    lenient_like_model(rev, sizeof(rev), sizeof(rev));
    T_EQ(decode(h, rev, sizeof(rev), 0), sizeof(rev));
    expect_buckets(h, want_rev, NELEM(want_rev));
    sn_hist_destroy(h);
}

static void test_decode_unsorted(void)
{
    in_child(body_decode_unsorted);
}

static void body_decode_duplicates(void)
{
    static const uint8_t b[] = {0x00, 0x03, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00,
                                0x00, 0x02, 0x0a, 0x00, 0x01, 0x00, 0x01}; /* 1 + 2 + 256 */
    /* a repeat after a different bucket, and one before it */
    static const uint8_t apart[] = {0x00, 0x04, 0x0a, 0x00, 0x00, 0x01, 0x14, 0x00, 0x00,
                                    0x02, 0x0a, 0x00, 0x00, 0x04, 0x14, 0x00, 0x00, 0x08};
    static const uint8_t sat[] = {0x00, 0x02, 0x0a, 0x00, 0x07, 0xfe, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0x0a, 0x00, 0x00, 0x05};
    static const struct rec want[] = {{10, 0, 259}}, want_apart[] = {{10, 0, 5}, {20, 0, 10}};
    static const struct rec want_sat[] = {{10, 0, UINT64_MAX}};
    struct sn_hist *h = sn_hist_create();

    lenient_like_model(b, sizeof(b), sizeof(b));
    T_EQ(decode(h, b, sizeof(b), 0), sizeof(b));
    expect_buckets(h, want, 1);
    lenient_like_model(apart, sizeof(apart), sizeof(apart));
    T_EQ(decode(h, apart, sizeof(apart), 0), sizeof(apart));
    expect_buckets(h, want_apart, 2);
    /* sums saturate at UINT64_MAX */
    lenient_like_model(sat, sizeof(sat), sizeof(sat));
    T_EQ(decode(h, sat, sizeof(sat), 0), sizeof(sat));
    expect_buckets(h, want_sat, 1);
    sn_hist_destroy(h);
}

static void test_decode_duplicates(void)
{
    in_child(body_decode_duplicates);
}

/*
 * Regression: an earlier decode() sent out-of-order records through sn_hist_insert_raw(),
 * which builds the ordinal index, and then appended later in-order records to ord[]/cnt[]
 * directly without entering them in the index. The stale index made sn_hist_bucket_count()
 * report 0 for those buckets, and crashed insert_new() (a NULL index page in its renumbering
 * loop) as soon as a bucket was inserted before them, by a later record of the same decode
 * (tail4: SIGSEGV inside sn_hist_decode) or by a later sn_hist_insert(). sn_hist_check() would
 * have caught it, but assert() is compiled out by -DNDEBUG (RelWithDebInfo), ASan build too.
 */
static const uint8_t tail3[] = {
    0x00, 0x03, 0x14, 0x00, 0x00, 0x01, /* {20,0} */
    0x0a, 0x00, 0x00, 0x01,             /* {10,0}: out of order, builds the index */
    0x0a, 0x64, 0x00, 0x01,             /* {10,100}: appended, not indexed */
};
static const uint8_t tail4[] = {
    0x00, 0x04, 0x14, 0x00, 0x00, 0x01, /* {20,0} */
    0x0a, 0x00, 0x00, 0x01,             /* {10,0} */
    0x0a, 0x64, 0x00, 0x01,             /* {10,100} */
    0x1e, 0x00, 0x00, 0x01,             /* {30,0}: inserted before {10,100} */
};

static void body_tail_insert_after(void)
{
    struct sn_hist *h = sn_hist_create();

    T_EQ(decode(h, tail3, sizeof(tail3), 0), sizeof(tail3));
    T_EQ(sn_hist_insert(h, 5.0, 1), 0); /* {50,0} goes before {10,100}: it crashed */
    T_EQU(sn_hist_nbuckets(h), 4);
    T_OK(decoded_ok(h));
    sn_hist_destroy(h);
}

static void body_tail_decode4(void)
{
    static const struct rec want[] = {{10, 0, 1}, {20, 0, 1}, {30, 0, 1}, {10, 100, 1}};
    struct sn_hist *h = sn_hist_create();

    T_EQ(decode(h, tail4, sizeof(tail4), 0), sizeof(tail4)); /* it crashed in the decode */
    expect_buckets(h, want, NELEM(want));
    T_OK(decoded_ok(h));
    sn_hist_destroy(h);
}

static void test_decode_unsorted_then_sorted_tail(void)
{
    static const struct rec want[] = {{10, 0, 1}, {20, 0, 1}, {10, 100, 1}};
    struct sn_hist *h = sn_hist_create();

    T_EQ(decode(h, tail3, sizeof(tail3), 0), sizeof(tail3));
    expect_buckets(h, want, NELEM(want));
    T_EQU(sn_hist_bucket_count(h, sn_bucket_make(10, 100)), 1); /* it gave 0 */
    T_OK(decoded_ok(h));
    sn_hist_destroy(h);
    in_child(body_tail_insert_after);
    in_child(body_tail_decode4);
}

static void test_decode_trailing_bytes(void)
{
    static const uint8_t b[] = {0x00, 0x01, 0x0a, 0x00, 0x00, 0x01, 0x14, 0x00, 0x00, 0x01};
    static const uint8_t n0[] = {0x00, 0x00, 0x01, 0x02, 0x03};
    static const struct rec want[] = {{10, 0, 1}};
    struct sn_hist *h = sn_hist_create();

    lenient_like_model(b, sizeof(b), 6);
    T_EQ(decode(h, b, sizeof(b), 0), 6);
    expect_buckets(h, want, 1);
    lenient_like_model(n0, sizeof(n0), 2);
    sn_hist_destroy(h);
}

static void test_decode_failure_empties(void)
{
    static const struct {
        const char *b;
        size_t n;
        unsigned flags;
        ssize_t rc;
    } c[] = {
        {"\x00", 1, 0, SN_E_TRUNCATED},
        {"\x00\x01\x0a\x00\x08\x00", 6, 0, SN_E_CORRUPT},
        {"\x00\x02\x0a\x00\x00\x01\x14\x00\x02\x01", 10, 0, SN_E_TRUNCATED},
        {"\x00\x01\x0a\x00\x00\x00", 6, SN_HIST_STRICT, SN_E_ZERO},
        {"\x00\x02\x14\x00\x00\x01\x0a\x00\x00\x01", 10, SN_HIST_STRICT, SN_E_ORDER},
        {"\x00\x01\x05\x00\x00\x01", 6, SN_HIST_STRICT, SN_E_BUCKET},
        {"\x00\x00\x00", 3, SN_HIST_STRICT, SN_E_TRAILING},
        {"\x00\x02\x0a\x00\x00\x01", 6, SN_HIST_STRICT, SN_E_TRUNCATED},
        {"\x00\x01\x0a\x00\x01\x01\x00", 7, SN_HIST_STRICT, SN_E_CORRUPT},
    };
    static const struct {
        const char *s;
        unsigned flags;
        ssize_t rc;
    } cb[] = {
        {"", 0, SN_E_TRUNCATED},
        {"AA==", 0, SN_E_TRUNCATED},
        {"AAAA", 0, SN_E_TRAILING},
        {"AAEKAAg=", 0, SN_E_CORRUPT},
        {"AAA", SN_HIST_STRICT, SN_E_CORRUPT},
        {"AAAA", SN_HIST_STRICT, SN_E_TRAILING},
    };

    for (size_t i = 0; i < NELEM(c); i++) {
        struct sn_hist *h = prefilled();
        t_note("binary case %zu", i);
        T_EQ(decode(h, c[i].b, c[i].n, c[i].flags), c[i].rc);
        T_EQU(sn_hist_nbuckets(h), 0);
        T_EQU(sn_hist_count(h), 0);
        /* and the histogram is usable afterwards */
        T_EQ(sn_hist_insert(h, 2.0, 1), 0);
        T_EQU(sn_hist_bucket_count(h, sn_bucket_make(20, 0)), 1);
        sn_hist_destroy(h);
    }
    for (size_t i = 0; i < NELEM(cb); i++) {
        struct sn_hist *h = prefilled();
        t_note("base64 case \"%s\"", cb[i].s);
        T_EQ(decode_b64(h, cb[i].s, strlen(cb[i].s), cb[i].flags), cb[i].rc);
        T_EQU(sn_hist_nbuckets(h), 0);
        sn_hist_destroy(h);
    }
}

/* ------------------------------------------------------------------------------------------
 * 4. Strict decoding
 */

static void test_strict_rejects(void)
{
    static const uint8_t n_large[] = {0x00, 0x03, 0x0a, 0x00, 0x00, 0x07};
    static const uint8_t trunc[] = {0x00, 0x01, 0x0a, 0x00, 0x01, 0x01};
    static const uint8_t tag8[] = {0x00, 0x01, 0x0a, 0x00, 0x08, 0x01, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t zero[] = {0x00, 0x01, 0x0a, 0x00, 0x00, 0x00};
    static const uint8_t v5[] = {0x00, 0x01, 0x05, 0x00, 0x00, 0x01};
    static const uint8_t v100[] = {0x00, 0x01, 0x64, 0x00, 0x00, 0x01};
    static const uint8_t nan3[] = {0x00, 0x01, 0xff, 0x03, 0x00, 0x01};
    static const uint8_t zero7[] = {0x00, 0x01, 0x00, 0x07, 0x00, 0x01};
    static const uint8_t unsorted[] = {0x00, 0x02, 0x14, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x01};
    static const uint8_t nan_last[] = {0x00, 0x02, 0x0a, 0x00, 0x00, 0x01, 0xff, 0x00, 0x00, 0x01};
    static const uint8_t dup[] = {0x00, 0x02, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x01};
    static const uint8_t trailing[] = {0x00, 0x01, 0x0a, 0x00, 0x00, 0x01, 0x00};
    static const uint8_t wide1[] = {0x00, 0x01, 0x0a, 0x00, 0x01, 0xff, 0x00};
    static const uint8_t wide7[] = {0x00, 0x01, 0x0a, 0x00, 0x07, 0x01, 0, 0, 0, 0, 0, 0x01, 0x00};
    static const uint8_t wide4[] = {0x00, 0x01, 0x0a, 0x00, 0x04, 0xff, 0xff, 0xff, 0xff, 0x00};

    strict_fails("", 0, SN_E_TRUNCATED);
    strict_fails("\x00", 1, SN_E_TRUNCATED);
    strict_fails(n_large, sizeof(n_large), SN_E_TRUNCATED);
    strict_fails(trunc, sizeof(trunc), SN_E_TRUNCATED);
    strict_fails(tag8, sizeof(tag8), SN_E_CORRUPT);
    strict_fails(zero, sizeof(zero), SN_E_ZERO);
    strict_fails(v5, sizeof(v5), SN_E_BUCKET);
    strict_fails(v100, sizeof(v100), SN_E_BUCKET);
    strict_fails(nan3, sizeof(nan3), SN_E_BUCKET);
    strict_fails(zero7, sizeof(zero7), SN_E_BUCKET);
    strict_fails(unsorted, sizeof(unsorted), SN_E_ORDER);
    strict_fails(nan_last, sizeof(nan_last), SN_E_ORDER);
    strict_fails(dup, sizeof(dup), SN_E_ORDER);
    strict_fails(trailing, sizeof(trailing), SN_E_TRAILING);
    strict_fails(wide1, sizeof(wide1), SN_E_CORRUPT);
    strict_fails(wide7, sizeof(wide7), SN_E_CORRUPT); /* 2^48+1 needs 7 bytes, not 8 */
    strict_fails(wide4, sizeof(wide4), SN_E_CORRUPT);
    /* the lenient reader accepts every one of the record-level quirks */
    lenient_like_model(wide1, sizeof(wide1), sizeof(wide1));
    lenient_like_model(wide7, sizeof(wide7), sizeof(wide7));
    lenient_like_model(zero7, sizeof(zero7), sizeof(zero7));
}

static void test_strict_accepts_canonical(void)
{
    struct sn_hist *h = sn_hist_create(), *d = sn_hist_create();
    struct llm_hist *m = llm_create();
    uint8_t buf[1024], buf2[1024];
    char s[1400];

    t_seed(0x5eed0004);
    for (int it = 0; it < 300; it++) {
        ssize_t n, n2, ns;

        rand_hists(h, m, 60, it & 1);
        n = sn_hist_encode(h, buf, sizeof(buf), SN_HIST_EXACT_WIDTHS);
        T_REQUIRE(n > 0);
        T_EQ(decode(d, buf, (size_t)n, SN_HIST_STRICT), n);
        T_OK(sn_hist_equal(d, h));
        ns = sn_hist_encode_b64(h, s, sizeof(s), SN_HIST_EXACT_WIDTHS);
        T_EQ(decode_b64(d, s, (size_t)ns, SN_HIST_STRICT), n);
        T_OK(sn_hist_equal(d, h));
        /* outside the truncated ranges upstream's bytes are the canonical ones */
        n2 = sn_hist_encode(h, buf2, sizeof(buf2), 0);
        if (!has_truncated_count(h)) {
            T_EQ(n2, n);
            T_MEM(buf2, buf, (size_t)n);
        }
    }
    sn_hist_destroy(h);
    sn_hist_destroy(d);
    llm_destroy(m);
}

/* ------------------------------------------------------------------------------------------
 * 5. Base64
 */

/* sn_b64_decode_lenient() of s must give exactly want[0..n). */
static void lenient_b64(const char *s, size_t len, const void *want, size_t n)
{
    char *p = exact_copy(s, len);
    uint8_t *out = malloc(sn_b64_decoded_max(len));

    t_note("\"%.*s\"", (int)len, s);
    T_EQU(sn_b64_decode_lenient(p, len, out), n);
    T_MEM(out, want, n);
    T_EQ(sn_b64_decode_strict(p, len, out), SN_E_CORRUPT);
    free(out);
    free(p);
}

static void test_b64_lenient_whitespace(void)
{
    static const char s[] = " AAYK /gAB\tCgAA\nAWMA AA EK\r\nAQAB\vYwEA\fA Q o C AAE= \n";
    struct sn_hist *h = sn_hist_create(), *w = worked_hist();
    struct llm_hist *m = llm_create();

    lenient_b64(s, strlen(s), worked_bin, sizeof(worked_bin));
    T_EQ(decode_b64(h, s, strlen(s), 0), 26);
    T_OK(sn_hist_equal(h, w));
    T_EQ(model_decode_b64(m, s, strlen(s)), 26);
    T_OK(agree(h, m));
    T_EQ(decode_b64(h, s, strlen(s), SN_HIST_STRICT), SN_E_CORRUPT);
    sn_hist_destroy(h);
    sn_hist_destroy(w);
    llm_destroy(m);
}

static void test_b64_lenient_stops(void)
{
    /* at the first character outside the alphabet (and not '=' or whitespace) */
    lenient_b64("AAYK!gAB", 8, "\x00\x06\x0a", 3);
    lenient_b64("AAYK-gAB", 8, "\x00\x06\x0a", 3); /* base64url is not the alphabet */
    lenient_b64("AAYK_gAB", 8, "\x00\x06\x0a", 3);
    lenient_b64("AAYK\0gAB", 8, "\x00\x06\x0a", 3);
    lenient_b64("AAYK\xc3\xa9gAB", 9, "\x00\x06\x0a", 3);
    lenient_b64("AAY!KAAA", 8, "", 0); /* the pending "AAY" is dropped */
    /* an incomplete final quad is ignored */
    lenient_b64("AAYKA", 5, "\x00\x06\x0a", 3);
    lenient_b64("AAYKAA", 6, "\x00\x06\x0a", 3);
    lenient_b64("AAYKAAA", 7, "\x00\x06\x0a", 3);
    lenient_b64("AAY", 3, "", 0);
    /* '=' at the start of a quad stops */
    lenient_b64("AAYK=AAA", 8, "\x00\x06\x0a", 3);
    lenient_b64("=AAA", 4, "", 0);
    lenient_b64("AAA==", 5, "\x00\x00", 2); /* "AAA=" is a quad; the second '=' starts one */
}

static void test_b64_lenient_padding_persists(void)
{
    /*
     * "AAE=" has 3 pending characters at its '=': the quad is zero-filled and emits 2 bytes,
     * 00 01. Upstream never resets that output width, so every later quad also emits 2 of its
     * 3 bytes: "CgAA" = 0a 00 (00), "AAEA" = 00 01 (00). Six bytes: 00 01 0a 00 00 01, which
     * is a valid histogram, N=1, {10,0} tag 0 count 1 (one sample of 1.0), and upstream
     * accepts it. An RFC 4648 decoder rejects the string (padding in the middle).
     */
    static const uint8_t want[] = {0x00, 0x01, 0x0a, 0x00, 0x00, 0x01};
    static const struct rec one[] = {{10, 0, 1}};
    struct sn_hist *h = sn_hist_create();
    struct llm_hist *m = llm_create();

    lenient_b64("AAE=CgAAAAEA", 12, want, sizeof(want));
    T_EQ(decode_b64(h, "AAE=CgAAAAEA", 12, 0), 6);
    expect_buckets(h, one, 1);
    T_EQ(model_decode_b64(m, "AAE=CgAAAAEA", 12), 6);
    T_OK(agree(h, m));
    T_EQ(decode_b64(h, "AAE=CgAAAAEA", 12, SN_HIST_STRICT), SN_E_CORRUPT);
    T_EQU(sn_hist_nbuckets(h), 0);

    /* '=' with 1 or 2 pending characters: 1 byte per quad from then on */
    lenient_b64("A=AAAAAAAA", 10, "\x00\x00\x00", 3);
    lenient_b64("AB=AAAAA", 8, "\x00\x00", 2);
    lenient_b64("AAE=CgAAAAE", 11, "\x00\x01\x0a\x00", 4); /* incomplete final quad */
    /* "AA==": the first '=' completes the quad (1 byte), the second starts one: stop */
    lenient_b64("AA==AAAA", 8, "\x00", 1);
    /* the same quirk read by the histogram decoders: 00 00 | 00 00 = N 0 and two extra bytes */
    T_EQ(decode_b64(h, "AAA=AAAA", 8, 0), SN_E_TRAILING);
    T_EQ(model_decode_b64(m, "AAA=AAAA", 8), -1);
    sn_hist_destroy(h);
    llm_destroy(m);
}

static void test_b64_strict_rejects(void)
{
    static const char *bad[] = {
        "AAA",      /* length not a multiple of 4 */
        "AAAAA",    /**/
        "AAB=",     /* non-zero pad bits (2 bytes) */
        "AAC=",     /**/
        "AB==",     /* non-zero pad bits (1 byte) */
        "AP==",     /**/
        "AAA=AAAA", /* padding before the last quad */
        "AA==AAAA", /**/
        "AAAA====", /* a quad of padding */
        "====",     /**/
        "A===",     /**/
        "AA=A",     /**/
        "AAA ",     /* whitespace */
        " AAA",     /**/
        "AA\nA",    /**/
        "AAA!",     /* outside the alphabet */
        "AA-_",     /* base64url */
    };
    uint8_t out[16];

    for (size_t i = 0; i < NELEM(bad); i++) {
        char *p = exact_copy(bad[i], strlen(bad[i]));
        t_note("\"%s\"", bad[i]);
        T_EQ(sn_b64_decode_strict(p, strlen(bad[i]), out), SN_E_CORRUPT);
        free(p);
    }
    T_EQ(sn_b64_decode_strict("AAAA\0", 5, out), SN_E_CORRUPT);
    T_EQ(sn_b64_decode_strict("AA\0=", 4, out), SN_E_CORRUPT);
}

static void test_b64_strict_accepts(void)
{
    static const struct {
        const char *s;
        const char *bytes;
        size_t n;
    } ok[] = {
        {"", "", 0},
        {"AA==", "\x00", 1},
        {"AAA=", "\x00\x00", 2},
        {"AAAA", "\x00\x00\x00", 3},
        {"////", "\xff\xff\xff", 3},
        {"++++", "\xfb\xef\xbe", 3},
        {"/w==", "\xff", 1},
        {"//8=", "\xff\xff", 2},
        {"AAYK/gABCgAAAWMAAAEKAQABYwEAAQoCAAE=", (const char *)worked_bin, 26},
    };
    uint8_t out[64];

    for (size_t i = 0; i < NELEM(ok); i++) {
        size_t len = strlen(ok[i].s);
        char *p = exact_copy(ok[i].s, len);
        char enc[64];
        t_note("\"%s\"", ok[i].s);
        T_EQ(sn_b64_decode_strict(p, len, out), ok[i].n);
        T_MEM(out, ok[i].bytes, ok[i].n);
        T_EQU(sn_b64_decode_lenient(p, len, out), ok[i].n);
        T_MEM(out, ok[i].bytes, ok[i].n);
        T_EQU(sn_b64_encode(ok[i].bytes, ok[i].n, enc), len);
        T_MEM(enc, ok[i].s, len);
        free(p);
    }
}

static void test_b64_random_round_trip(void)
{
    uint8_t src[64];

    t_seed(0x5eed0005);
    for (size_t n = 0; n <= 64; n++) {
        for (int rep = 0; rep < 16; rep++) {
            /* buffers of exactly the documented sizes: ASan sees any write past them */
            size_t len = sn_b64_encoded_len(n);
            char *enc = malloc(len + 1);
            uint8_t *out = malloc(sn_b64_decoded_max(len));

            for (size_t i = 0; i < n; i++)
                src[i] = (uint8_t)t_rand();
            if (rep == 0)
                memset(src, 0xff, n);
            t_note("n %zu rep %d", n, rep);
            T_EQU(len, (n + 2) / 3 * 4);
            T_EQU(sn_b64_encode(src, n, enc), len);
            T_EQ(sn_b64_decode_strict(enc, len, out), n);
            T_MEM(out, src, n);
            T_EQU(sn_b64_decode_lenient(enc, len, out), n);
            T_MEM(out, src, n);
            free(enc);
            free(out);
        }
    }
}

/* Inserts, deletes or replaces characters of s; returns the new length (<= cap). */
static size_t mutate_text(char *s, size_t len, size_t cap)
{
    static const char extra[] = " \t\n\r=!-_.\0\xff+/Aa9";
    unsigned nmut = 1 + (unsigned)(t_rand() % 3);

    for (unsigned k = 0; k < nmut; k++) {
        size_t pos = len ? (size_t)(t_rand() % (len + 1)) : 0;
        char ch = extra[t_rand() % (sizeof(extra) - 1)];

        switch (t_rand() % 6) {
        case 0: /* insert a character from the interesting set */
        case 1:
            if (len < cap) {
                memmove(s + pos + 1, s + pos, len - pos);
                s[pos] = ch;
                len++;
            }
            break;
        case 2: /* delete */
            if (pos < len) {
                memmove(s + pos, s + pos + 1, len - pos - 1);
                len--;
            }
            break;
        case 3: /* replace with any byte */
            if (pos < len)
                s[pos] = (char)t_rand();
            break;
        case 4: /* replace with an alphabet character */
            if (pos < len)
                s[pos] =
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[t_rand() %
                                                                                       64];
            break;
        default: /* truncate */
            len = pos;
            break;
        }
    }
    return len;
}

static void body_b64_lenient_like_model(void)
{
    struct sn_hist *h = sn_hist_create(), *g = sn_hist_create(), *st = sn_hist_create();
    struct llm_hist *m = llm_create(), *m2 = llm_create();
    char s[512], re[512];
    uint8_t bytes[512];

    t_seed(0x5eed0006);
    for (int it = 0; it < 3000; it++) {
        ssize_t ns, rm, rm2, rs, rt, want;
        size_t len, nb;

        rand_hists(g, m, 8, it & 2);
        ns = sn_hist_encode_b64(g, s, sizeof(s), (it & 1) ? SN_HIST_EXACT_WIDTHS : 0);
        T_REQUIRE(ns > 0);
        len = mutate_text(s, (size_t)ns, 400);
        t_note("iteration %d: \"%.*s\"", it, (int)len, s);

        /* the bytes Sonde's lenient decoder produces, as the model would then read them */
        nb = sn_b64_decode_lenient(s, len, bytes);
        T_OK(nb <= sn_b64_decoded_max(len));
        rm = model_decode_b64(m, s, len);
        want = -1;
        if (nb >= 2) {
            rm2 = model_decode(m2, bytes, nb);
            want = rm2 == (ssize_t)nb ? (ssize_t)nb : -1;
        }
        T_EQ(rm, want);
        if (rm >= 0 && want >= 0) {
            /* same contents from the model's decoder and from Sonde's bytes */
            T_EQ(sn_hist_decode(h, bytes, nb, 0), nb);
            T_OK(agree(h, m2));
        }

        /* Sonde's histogram decoder succeeds exactly when the model's does */
        rs = decode_b64(h, s, len, 0);
        T_EQ(rs >= 0 ? rs : -1, rm);
        if (rs >= 0) {
            T_OK(agree(h, m));
            T_OK(decoded_ok(h));
        } else {
            T_EQU(sn_hist_nbuckets(h), 0);
        }

        /* strict success: a lenient success with the same histogram, in canonical form */
        rt = decode_b64(st, s, len, SN_HIST_STRICT);
        if (rt >= 0) {
            T_EQ(rs, rt);
            T_OK(sn_hist_equal(h, st));
            T_EQ(sn_hist_encode_b64(st, re, sizeof(re), SN_HIST_EXACT_WIDTHS), len);
            T_MEM(re, s, len);
        } else {
            T_EQU(sn_hist_nbuckets(st), 0);
        }
    }
    t_note("%s", "");
    sn_hist_destroy(h);
    sn_hist_destroy(g);
    sn_hist_destroy(st);
    llm_destroy(m);
    llm_destroy(m2);
}

static void test_b64_lenient_like_model(void)
{
    in_child(body_b64_lenient_like_model);
}

/* ------------------------------------------------------------------------------------------
 * 6. Differential round trips
 */

static void test_roundtrip_like_model(void)
{
    enum { CAP = 4096 };
    struct sn_hist *h = sn_hist_create(), *d = sn_hist_create();
    struct llm_hist *m = llm_create(), *md = llm_create();
    uint8_t *buf = malloc(CAP), *mbuf = malloc(CAP);
    char *s = malloc(CAP * 2), *ms = malloc(CAP * 2);
    int truncated = 0;

    t_seed(0x5eed0009);
    for (int it = 0; it < 2000; it++) {
        ssize_t n, mn, ns, mns;

        rand_hists(h, m, 60, it & 1);
        t_note("iteration %d", it);
        /* upstream's bytes, byte for byte */
        T_EQU(sn_hist_encoded_len(h, 0), (size_t)llm_serialize_size(m));
        n = sn_hist_encode(h, buf, CAP, 0);
        mn = llm_serialize(m, mbuf, CAP);
        T_EQ(n, mn);
        T_EQU(n, sn_hist_encoded_len(h, 0));
        T_MEM(buf, mbuf, (size_t)n);
        ns = sn_hist_encode_b64(h, s, CAP * 2, 0);
        mns = llm_serialize_b64(m, ms, CAP * 2);
        T_EQ(ns, mns);
        T_EQU(ns, sn_hist_b64_len(h, 0));
        T_EQ(s[ns], '\0');
        T_MEM(s, ms, (size_t)ns);

        /* decoding them back: exact unless a count was truncated, and like the model always */
        T_EQ(decode(d, buf, (size_t)n, 0), n);
        T_EQ(model_decode(md, mbuf, (size_t)mn), mn);
        T_OK(agree(d, md));
        T_EQ(decode_b64(d, s, (size_t)ns, 0), n);
        T_OK(agree(d, md));
        if (has_truncated_count(h)) {
            truncated++;
        } else {
            T_OK(sn_hist_equal(d, h));
            T_EQ(decode(d, buf, (size_t)n, SN_HIST_STRICT), n);
            T_OK(sn_hist_equal(d, h));
        }

        /* exact widths round trip every count, strictly */
        n = sn_hist_encode(h, buf, CAP, SN_HIST_EXACT_WIDTHS);
        T_EQU(n, sn_hist_encoded_len(h, SN_HIST_EXACT_WIDTHS));
        T_EQ(decode(d, buf, (size_t)n, SN_HIST_STRICT), n);
        T_OK(sn_hist_equal(d, h));
        ns = sn_hist_encode_b64(h, s, CAP * 2, SN_HIST_EXACT_WIDTHS);
        T_EQU(ns, sn_hist_b64_len(h, SN_HIST_EXACT_WIDTHS));
        T_EQ(decode_b64(d, s, (size_t)ns, SN_HIST_STRICT), n);
        T_OK(sn_hist_equal(d, h));
    }
    t_note("%s", "");
    T_OK(truncated > 100); /* the generator does reach the truncated ranges */
    free(buf);
    free(mbuf);
    free(s);
    free(ms);
    sn_hist_destroy(h);
    sn_hist_destroy(d);
    llm_destroy(m);
    llm_destroy(md);
}

/* Every one of the 46,082 buckets: the encoders' and decoders' > 8 KB heap paths. */
static void test_roundtrip_every_bucket(void)
{
    struct sn_hist *h = sn_hist_create(), *d = sn_hist_create();
    struct llm_hist *m = llm_create(), *md = llm_create();
    size_t n, ns;
    uint8_t *buf, *mbuf;
    char *s, *ms;

    for (uint32_t o = 0; o < SN_BUCKET_NORD; o++) {
        struct sn_bucket b = sn_bucket_from_ord(o);
        uint64_t c = (uint64_t)o * 0x9e3779b97f4a7c15ULL >> (o % 64);
        c += c == 0;
        T_EQ(sn_hist_insert_raw_end(h, b, c), 0);
        llm_insert_raw(m, lb(b), c);
    }
    T_EQU(sn_hist_nbuckets(h), SN_BUCKET_NORD);
    n = sn_hist_encoded_len(h, 0);
    T_EQU(n, (size_t)llm_serialize_size(m));
    ns = sn_hist_b64_len(h, 0);
    buf = malloc(n);
    mbuf = malloc(n);
    s = malloc(ns + 1);
    ms = malloc(ns + 1);
    T_EQ(sn_hist_encode(h, buf, n, 0), n);
    T_EQ(llm_serialize(m, mbuf, (ssize_t)n), n);
    T_MEM(buf, mbuf, n);
    T_EQ(buf[0] << 8 | buf[1], SN_BUCKET_NORD);
    T_EQ(sn_hist_encode_b64(h, s, ns + 1, 0), ns);
    T_EQ(llm_serialize_b64(m, ms, (ssize_t)ns), ns);
    T_MEM(s, ms, ns);
    T_EQ(decode(d, buf, n, 0), n);
    T_EQ(model_decode(md, mbuf, n), n);
    T_OK(agree(d, md));
    T_EQ(decode_b64(d, s, ns, 0), n);
    T_OK(agree(d, md));
    T_OK(decoded_ok(d));
    free(buf);
    free(mbuf);
    free(s);
    free(ms);

    n = sn_hist_encoded_len(h, SN_HIST_EXACT_WIDTHS);
    ns = sn_hist_b64_len(h, SN_HIST_EXACT_WIDTHS);
    s = malloc(ns + 1);
    T_EQ(sn_hist_encode_b64(h, s, ns + 1, SN_HIST_EXACT_WIDTHS), ns);
    T_EQ(decode_b64(d, s, ns, SN_HIST_STRICT), n);
    T_OK(sn_hist_equal(d, h));
    free(s);
    sn_hist_destroy(h);
    sn_hist_destroy(d);
    llm_destroy(m);
    llm_destroy(md);
}

/* ------------------------------------------------------------------------------------------
 * 7. Mutated encodings, compared with the model
 */

/* Offsets of the whole records of b[0..len) (at most 16); off[n] is where the last one ends. */
static size_t record_offsets(const uint8_t *b, size_t len, size_t off[17])
{
    size_t n = 0, o = 2;

    while (n < 16 && o + 3 <= len && b[o + 2] <= 7 && o + 4 + b[o + 2] <= len) {
        off[n++] = o;
        o += 4 + b[o + 2];
    }
    off[n] = o;
    return n;
}

static size_t mutate_bytes(uint8_t *b, size_t len, size_t cap)
{
    static const uint8_t vals[] = {0x00, 0x05, 0x09, 0x0a, 0x63, 0x64,
                                   0xff, 0xf6, 0x9d, 0x80, 0x7f};
    unsigned nmut = 1 + (unsigned)(t_rand() % 3);

    for (unsigned k = 0; k < nmut; k++) {
        size_t pos = len ? (size_t)(t_rand() % len) : 0;

        size_t off[17], nrec = record_offsets(b, len, off), r, rl;
        uint8_t t[11];

        switch (t_rand() % 12) {
        case 0: /* flip a bit */
            if (len)
                b[pos] ^= (uint8_t)(1u << (t_rand() % 8));
            break;
        case 1: /* any byte */
            if (len)
                b[pos] = (uint8_t)t_rand();
            break;
        case 2: /* a plausible tag, some too large */
            if (len)
                b[pos] = (uint8_t)(t_rand() % 10);
            break;
        case 3: /* an interesting bucket byte */
            if (len)
                b[pos] = vals[t_rand() % sizeof(vals)];
            break;
        case 4: /* truncate */
            len = len ? (size_t)(t_rand() % len) : 0;
            break;
        case 5: /* insert a byte */
            if (len < cap) {
                memmove(b + pos + 1, b + pos, len - pos);
                b[pos] = (uint8_t)(t_rand() % 3 ? t_rand() % 8 : t_rand());
                len++;
            }
            break;
        case 6: /* delete a byte */
            if (len) {
                memmove(b + pos, b + pos + 1, len - pos - 1);
                len--;
            }
            break;
        case 7: /* another N */
            if (len >= 2) {
                unsigned n = (unsigned)(t_rand() % 16);
                b[0] = (uint8_t)(n >> 8);
                b[1] = (uint8_t)n;
            }
            break;
        case 8: /* swap two 4-byte windows past the header */
            if (len >= 10) {
                size_t x = 2 + (size_t)(t_rand() % (len - 5)),
                       y = 2 + (size_t)(t_rand() % (len - 5));
                memcpy(t, b + x, 4);
                memmove(b + x, b + y, 4);
                memcpy(b + y, t, 4);
            }
            break;
        case 9: /* move a whole record to the front: records out of order */
            if (nrec >= 2) {
                r = 1 + (size_t)(t_rand() % (nrec - 1));
                rl = off[r + 1] - off[r];
                memcpy(t, b + off[r], rl);
                memmove(b + 2 + rl, b + 2, off[r] - 2);
                memcpy(b + 2, t, rl);
            }
            break;
        case 10: /* repeat a whole record at a record boundary, and count it in N */
            if (nrec >= 1) {
                r = (size_t)(t_rand() % nrec);
                rl = off[r + 1] - off[r];
                size_t at = off[t_rand() % (nrec + 1)];
                unsigned n = ((unsigned)b[0] << 8 | b[1]) + 1;
                if (len + rl > cap)
                    break;
                memcpy(t, b + off[r], rl);
                memmove(b + at + rl, b + at, len - at);
                memcpy(b + at, t, rl);
                len += rl;
                b[0] = (uint8_t)(n >> 8);
                b[1] = (uint8_t)n;
            }
            break;
        default: /* repeat a slice at another place */
            if (len >= 6) {
                size_t from = 2 + (size_t)(t_rand() % (len - 2)), k2 = 1 + (size_t)(t_rand() % 11);
                size_t at = 2 + (size_t)(t_rand() % (len - 1));
                if (from + k2 > len)
                    k2 = len - from;
                if (len + k2 > cap)
                    break;
                memcpy(t, b + from, k2);
                memmove(b + at + k2, b + at, len - at);
                memcpy(b + at, t, k2);
                len += k2;
            }
            break;
        }
    }
    return len;
}

static void body_mutated_like_model(void)
{
    enum { CAP = 256 };
    struct sn_hist *g = sn_hist_create(), *h = sn_hist_create(), *st = sn_hist_create();
    struct llm_hist *gm = llm_create(), *m = llm_create();
    uint8_t buf[CAP + 16], re[CAP * 8];
    int ok_both = 0, strict_ok = 0, unsorted = 0;

    t_seed(0x5eed0007);
    for (int it = 0; it < 10000; it++) {
        ssize_t n, rs, rm, rt;
        size_t len;
        bool canon;

        rand_hists(g, gm, 10, it & 2);
        n = sn_hist_encode(g, buf, CAP, (it & 1) ? SN_HIST_EXACT_WIDTHS : 0);
        T_REQUIRE(n > 0);
        len = it % 10 ? mutate_bytes(buf, (size_t)n, CAP) : (size_t)n;
        t_note("iteration %d, %zu bytes", it, len);

        rs = decode(h, buf, len, 0);
        rm = model_decode(m, buf, len);
        T_EQ(rs >= 0, rm >= 0);
        if (rs >= 0 && rm >= 0) {
            ok_both++;
            T_EQ(rs, rm);
            T_OK(agree(h, m));
            T_OK(decoded_ok(h));
            for (int i = 1; i < llm_used(m); i++) {
                struct llm_bucket a, b;
                uint64_t ca, cb;
                llm_get(m, i - 1, &a, &ca);
                llm_get(m, i, &b, &cb);
                unsorted += sn_bucket_ord(sn_bucket_make(a.val, a.exp)) >=
                            sn_bucket_ord(sn_bucket_make(b.val, b.exp));
            }
        } else {
            T_EQU(sn_hist_nbuckets(h), 0);
        }

        /* strict accepts exactly the canonical form: what re-encoding the result gives back */
        canon = rs == (ssize_t)len &&
                sn_hist_encode(h, re, sizeof(re), SN_HIST_EXACT_WIDTHS) == (ssize_t)len &&
                memcmp(re, buf, len) == 0;
        rt = decode(st, buf, len, SN_HIST_STRICT);
        T_EQ(rt >= 0, canon);
        if (rt >= 0) {
            strict_ok++;
            T_EQ(rt, len);
            T_OK(sn_hist_equal(st, h));
        } else {
            T_EQU(sn_hist_nbuckets(st), 0);
        }
    }
    t_note("%s", "");
    /* the mutations reach every branch often enough to mean something */
    T_OK(ok_both > 2500);
    T_OK(strict_ok > 1000);
    T_OK(unsorted > 800);
    sn_hist_destroy(g);
    sn_hist_destroy(h);
    sn_hist_destroy(st);
    llm_destroy(gm);
    llm_destroy(m);
}

static void test_mutated_like_model(void)
{
    in_child(body_mutated_like_model);
}

/* ------------------------------------------------------------------------------------------
 * 8. Buffer sizes
 */

/*
 * Exact lengths and -ENOSPC below them. Only bytes at and past len are checked to be untouched:
 * what a failed encode leaves in buf[0..len) is unspecified, and it is not the old contents
 * (records before the one that did not fit are written, the last with an 8-byte count store
 * that spills into the next record's bytes).
 */
static void check_sizes(const struct sn_hist *h, unsigned flags)
{
    size_t n = sn_hist_encoded_len(h, flags), nb = sn_hist_b64_len(h, flags);
    uint8_t *buf = malloc(n + 16);
    char *s = malloc(nb + 16);

    T_EQU(nb, (n + 2) / 3 * 4);
    for (size_t len = 0; len < n; len++) {
        memset(buf, 0xa5, n + 16);
        t_note("flags %u, len %zu of %zu", flags, len, n);
        T_EQ(sn_hist_encode(h, buf, len, flags), -ENOSPC);
        for (size_t i = len; i < n + 16; i++)
            if (!T_EQ(buf[i], 0xa5)) /* nothing written past len */
                break;
    }
    memset(buf, 0xa5, n + 16);
    T_EQ(sn_hist_encode(h, buf, n, flags), n);
    T_EQ(buf[n], 0xa5);
    T_EQ(sn_hist_encode(h, buf, n + 16, flags), n);

    for (size_t len = 0; len <= nb; len++) {
        memset(s, 0x5a, nb + 16);
        t_note("b64 flags %u, len %zu of %zu+1", flags, len, nb);
        T_EQ(sn_hist_encode_b64(h, s, len, flags), -ENOSPC);
        for (size_t i = len; i < nb + 16; i++)
            if (!T_EQ(s[i], 0x5a))
                break;
    }
    memset(s, 0x5a, nb + 16);
    T_EQ(sn_hist_encode_b64(h, s, nb + 1, flags), nb);
    T_EQ(s[nb], '\0');
    T_EQ(s[nb + 1], 0x5a);
    T_EQU(strlen(s), nb);
    t_note("%s", "");
    free(buf);
    free(s);
}

static void test_encode_buffer_sizes(void)
{
    static const struct rec wide[] = {{10, 0, UINT64_MAX}, {20, 0, P2(32)}, {30, 0, P2(48) + 1},
                                      {-1, 0, 1},          {0, 0, 0x1234},  {-99, 127, 0}};
    struct sn_hist *e = sn_hist_create(), *w = worked_hist(), *x = mk(wide, NELEM(wide));
    struct sn_hist *r = sn_hist_create();
    struct llm_hist *m = llm_create();

    check_sizes(e, 0);
    check_sizes(w, 0);
    check_sizes(x, 0);
    check_sizes(x, SN_HIST_EXACT_WIDTHS);
    /* 2^32 written in 4 bytes, 2^48+1 in 6, by default; 5 and 7 with exact widths */
    T_EQU(sn_hist_encoded_len(x, 0), 2 + 11 + 7 + 9 + 4 + 5);
    T_EQU(sn_hist_encoded_len(x, SN_HIST_EXACT_WIDTHS), 2 + 11 + 8 + 10 + 4 + 5);
    t_seed(0x5eed0008);
    for (int i = 0; i < 20; i++) {
        rand_hists(r, m, 30, false);
        check_sizes(r, 0);
        check_sizes(r, SN_HIST_EXACT_WIDTHS);
    }
    sn_hist_destroy(e);
    sn_hist_destroy(w);
    sn_hist_destroy(x);
    sn_hist_destroy(r);
    llm_destroy(m);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    /* 1 */
    t_run("worked example encodes to the spec's bytes and base64", test_worked_example);
    t_run("empty histogram is 00 00 and AAA=", test_empty);
    t_run("zero-count buckets are not written", test_zero_counts_not_written);
    t_run("negative, zero and NaN buckets encode in order and decode",
          test_negative_zero_nan_buckets);
    /* 2 */
    t_run("count widths at every tag boundary, upstream table, like the model",
          test_widths_upstream);
    t_run("count widths: upstream truncation as literal bytes", test_widths_upstream_bytes);
    t_run("count widths at every tag boundary, exact widths, strict round trip", test_widths_exact);
    t_run("count widths: upstream's truncated records under strict decoding",
          test_widths_truncated_strict);
    /* 3 */
    t_run("lenient decode: fewer than 2 bytes is SN_E_TRUNCATED, N with no data is empty",
          test_decode_short_input);
    t_run("lenient decode: N larger than the records present stops quietly",
          test_decode_n_too_large);
    t_run("lenient decode: width tag above 7 is SN_E_CORRUPT", test_decode_bad_tag);
    t_run("lenient decode: a truncated record is SN_E_TRUNCATED", test_decode_truncated_record);
    t_run("lenient decode: zero counts are skipped", test_decode_zero_counts_skipped);
    t_run("lenient decode: invalid buckets are skipped", test_decode_invalid_buckets_skipped);
    t_run("lenient decode: {0,e} reads as the zero bucket", test_decode_zero_bucket_any_exp);
    t_run("lenient decode: unsorted records come out sorted", test_decode_unsorted);
    t_run("lenient decode: repeated buckets are summed, saturating", test_decode_duplicates);
    t_run("lenient decode: unsorted records then a sorted tail keep the index",
          test_decode_unsorted_then_sorted_tail);
    t_run("lenient decode: trailing bytes after N records are not consumed",
          test_decode_trailing_bytes);
    t_run("decode failures leave the histogram empty and usable", test_decode_failure_empties);
    /* 4 */
    t_run("strict decode rejects each lenient quirk with its code", test_strict_rejects);
    t_run("strict decode accepts every canonical encoding", test_strict_accepts_canonical);
    /* 5 */
    t_run("base64 lenient: whitespace anywhere is skipped", test_b64_lenient_whitespace);
    t_run("base64 lenient: stops at non-alphabet, '=' at quad start; drops a partial quad",
          test_b64_lenient_stops);
    t_run("base64 lenient: the width after '=' persists (AAE=CgAAAAEA is 6 bytes)",
          test_b64_lenient_padding_persists);
    t_run("base64 strict: rejects every quirk and non-zero pad bits", test_b64_strict_rejects);
    t_run("base64 strict: accepts canonical strings", test_b64_strict_accepts);
    t_run("base64: random bytes of every length 0..64 round trip", test_b64_random_round_trip);
    t_run("base64: 3000 mutated strings decode like the model", test_b64_lenient_like_model);
    /* 6 */
    t_run("2000 random histograms encode like the model and round trip", test_roundtrip_like_model);
    t_run("every bucket at once: large encodings like the model, round trip",
          test_roundtrip_every_bucket);
    /* 7 */
    t_run("10000 mutated encodings decode like the model; strict accepts only canonical",
          test_mutated_like_model);
    /* 8 */
    t_run("encode: -ENOSPC below the exact length, room for the NUL, lengths exact",
          test_encode_buffer_sizes);
    return t_done();
}
