/*
 * Rollup records on the bus (src/fleet/rollup_msg.h): every arity round-trips with its keys,
 * sources, counts, histograms and the values flag; every truncation and a flipped byte in each
 * part are refused, never read past; a tier that is not a rollup's is refused both ways.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hist.h"
#include "fleet/rollup_msg.h"
#include "store/tiers.h"
#include "t.h"
#include "wire/frame.h"

static const char *const names[] = {"h0", "web-1.example.com", "h2"};

/* A slot of arity a: keys "read" and "write" (or none), histograms where the arity has them. */
static void make(struct sn_ds_slot *s, uint8_t a, bool values)
{
    static uint32_t src[] = {0, 2};
    memset(s, 0, sizeof(*s));
    s->t = 1796616000;
    s->nsrc = 2;
    s->src = src;
    s->over_cap = 3;
    s->map_full = 1;
    bool keyed = a == SN_WIRE_DISCRETE || a == SN_WIRE_NUMERIC_BY_KEY;
    bool hists = a == SN_WIRE_NUMERIC_BY_KEY || values;
    if (keyed) {
        s->n = 2;
        s->e = calloc(2, sizeof(*s->e));
        s->e[0].key = strdup("read");
        s->e[1].key = strdup("write");
        for (int i = 0; i < 2; i++) {
            s->e[i].count = 5 + (uint64_t)i;
            if (hists) {
                s->e[i].hist = sn_hist_create();
                sn_hist_insert(s->e[i].hist, 1e-4 * (i + 1), 5 + (uint64_t)i);
            }
        }
        s->count = 11;
    } else {
        s->count = 42;
    }
    if (a == SN_WIRE_NUMERIC || (a == SN_WIRE_SCALAR && values)) {
        s->total = sn_hist_create();
        sn_hist_insert(s->total, 2.5e-3, 42);
    }
}

static void unmake(struct sn_ds_slot *s)
{
    s->src = NULL; /* static */
    s->nsrc = 0;
    sn_ds_slot_fini(s);
}

static void test_round_trips(void)
{
    for (uint8_t a = 0; a < 4; a++)
        for (int values = 0; values < 2; values++) {
            if (values && a >= SN_WIRE_NUMERIC)
                continue; /* values: a point metric's (scalar or discrete) */
            struct sn_ds_slot s;
            struct sn_rec_buf b = {0};
            struct sn_rollup_msg m;
            make(&s, a, values);
            ssize_t n = sn_rollup_msg_encode(&s, a, values, SN_TIER_1H, s.t, names, &b);
            T_OK(n > 14);
            T_EQ(sn_rollup_msg_decode(b.p, b.len, &m), 0);
            T_EQ(m.tier, SN_TIER_1H);
            T_EQ(m.t, s.t);
            T_EQ(m.slot.t, s.t);
            T_EQ(m.arity, a);
            T_EQ(m.values, values);
            T_EQU(m.slot.count, s.count);
            T_EQU(m.slot.over_cap, 3);
            T_EQU(m.slot.map_full, 1);
            T_EQ(m.slot.n, s.n);
            for (size_t i = 0; i < s.n && i < m.slot.n; i++) {
                T_OK(strcmp(m.slot.e[i].key, s.e[i].key) == 0);
                T_EQU(m.slot.e[i].count, s.e[i].count);
                if (s.e[i].hist)
                    T_EQU(sn_hist_count(m.slot.e[i].hist), sn_hist_count(s.e[i].hist));
            }
            if (s.total)
                T_EQU(sn_hist_count(m.slot.total), 42);
            /* the sources by name, in the slot's order */
            T_EQ(m.slot.nsrc, 2);
            T_OK(m.src && strcmp(m.src[m.slot.src[0]], "h0") == 0 &&
                 strcmp(m.src[m.slot.src[1]], "h2") == 0);
            /* every truncation refused */
            for (size_t cut = 0; cut < b.len; cut++) {
                struct sn_rollup_msg x;
                int rc = sn_rollup_msg_decode(b.p, cut, &x);
                T_OK(rc == SN_E_TRUNCATED || rc == SN_E_CORRUPT);
                T_OK(x.src == NULL && x.slot.n == 0);
            }
            /* a flipped byte anywhere: refused, or (in a name) a message with another name */
            for (size_t at = 0; at < b.len; at++) {
                struct sn_rollup_msg x;
                b.p[at] ^= 0x40;
                int rc = sn_rollup_msg_decode(b.p, b.len, &x);
                b.p[at] ^= 0x40;
                T_OK(rc < 0 || rc == 0);
                sn_rollup_msg_fini(&x);
            }
            sn_rollup_msg_fini(&m);
            sn_rec_buf_fini(&b);
            unmake(&s);
        }
}

static void test_refusals(void)
{
    struct sn_ds_slot s;
    struct sn_rec_buf b = {0};
    struct sn_rollup_msg m;

    make(&s, SN_WIRE_DISCRETE, false);
    T_EQ(sn_rollup_msg_encode(&s, SN_WIRE_DISCRETE, false, SN_TIER_RAW, s.t, names, &b), -EINVAL);
    T_EQ(sn_rollup_msg_encode(&s, SN_WIRE_DISCRETE, false, 4, s.t, names, &b), -EINVAL);
    T_OK(sn_rollup_msg_encode(&s, SN_WIRE_DISCRETE, false, SN_TIER_1D, s.t, names, &b) > 0);
    b.p[5] = 0; /* the tier */
    T_EQ(sn_rollup_msg_decode(b.p, b.len, &m), SN_E_CORRUPT);
    b.p[5] = SN_TIER_1D;
    b.p[0] = 'X'; /* the magic */
    T_EQ(sn_rollup_msg_decode(b.p, b.len, &m), SN_E_CORRUPT);
    b.p[0] = 'S';
    b.p[4] = 2; /* the version */
    T_EQ(sn_rollup_msg_decode(b.p, b.len, &m), SN_E_CORRUPT);
    b.p[4] = 1;
    T_EQ(sn_rollup_msg_decode(b.p, b.len, &m), 0);
    sn_rollup_msg_fini(&m);
    /* a source the record names but the message does not: refused */
    const char *one[] = {"h0", "x", ""}; /* the slot's second source (2) has no name */
    T_EQ(sn_rollup_msg_encode(&s, SN_WIRE_DISCRETE, false, SN_TIER_1M, s.t, one, &b), -EINVAL);
    sn_rec_buf_fini(&b);
    unmake(&s);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("round_trips", test_round_trips);
    t_run("refusals", test_refusals);
    return t_done();
}
