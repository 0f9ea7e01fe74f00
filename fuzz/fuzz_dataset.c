/*
 * Fuzz target: dataset files (sn_ds_load(), src/agg/dataset.h). The input is loaded into a
 * fresh dataset of each arity (granularity from the file's header when it is in range, so
 * mutations get past that check). Properties: no crash or leak; a refusal is -EINVAL (or
 * -ENOMEM); whatever state a load leaves, sn_ds_save() succeeds and its bytes load into a
 * fresh dataset that saves to the very same bytes (save and load are idempotent); sums over
 * the whole retention equal the slots' counts added up. Each input is also tried with every
 * checksum inside it fixed (the slots' frames and the file's), so mutations reach the parser
 * behind them. A byte of the header also picks a key cap (none, 1, 2 or 3 keys), so that loads
 * fold keys into "other" and the fold is idempotent too.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agg/dataset.h"
#include "core/crc32c.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1700000000

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Rewrites the checksum of each slot's frame and of the file, as far as the layout parses. */
static void fix_crcs(uint8_t *b, size_t len)
{
    size_t end, at = 16;

    if (len < 16)
        return;
    end = len - 4;
    uint32_t nsrc = rd32(b + 12);
    for (uint32_t i = 0; i < nsrc && at + 4 <= end; i++) {
        uint32_t n = rd32(b + at);
        at += 4;
        if (n > end - at)
            goto out;
        at += n;
    }
    if (at + 4 > end)
        goto out;
    uint32_t nslots = rd32(b + at);
    at += 4;
    for (uint32_t k = 0; k < nslots && at + 20 <= end; k++) { /* i64 t, i64 count, u32 n */
        uint32_t n = rd32(b + at + 16);
        at += 20;
        if ((uint64_t)n * 4 > end - at)
            break;
        at += (size_t)n * 4;
        if (at + 4 > end)
            break;
        uint32_t flen = rd32(b + at);
        at += 4;
        if (flen > end - at)
            break;
        if (flen >= 8)
            wr32(b + at + flen - 4, sn_crc32c(0, b + at, flen - 4));
        at += flen;
    }
out:
    wr32(b + end, sn_crc32c(0, b, end));
}

static void check_sums(const struct sn_dataset *ds)
{
    const struct sn_ds_opts *o = sn_ds_opts(ds);
    int64_t g = o->granularity;
    int64_t start = NOW - (int64_t)o->retention - 2 * g, dur = (int64_t)o->retention + 20 + 4 * g;
    struct sn_ds_slot sum;

    start -= ((start % g) + g) % g;
    dur = (dur + g - 1) / g * g;
    FUZZ_CHECK(sn_ds_sum(ds, start, dur, &sum) == 0);
    uint64_t want = 0;
    for (int64_t t = start; t < start + dur; t += g) {
        const struct sn_ds_slot *s = sn_ds_slot_at(ds, t);
        if (s) {
            FUZZ_CHECK(s->t == t && s->nsrc >= 1);
            for (uint32_t i = 1; i < s->nsrc; i++)
                FUZZ_CHECK(s->src[i - 1] < s->src[i]);
            for (uint32_t i = 0; i < s->nsrc; i++)
                FUZZ_CHECK(sn_ds_source_name(ds, s->src[i]) != NULL);
            for (size_t i = 1; i < s->n; i++)
                FUZZ_CHECK(strcmp(s->e[i - 1].key, s->e[i].key) < 0);
            want = want + s->count < want ? UINT64_MAX : want + s->count;
        }
        if (o->point) /* the first slot only */
            break;
    }
    FUZZ_CHECK(sum.count == want);
    sn_ds_slot_fini(&sum);
    (void)sn_ds_min_reporting(ds, start, dur);
    (void)sn_ds_reported_between(ds, NOW - 15, NOW - 5);
    (void)sn_ds_sources_since(ds, NOW - 15);
}

/* Saves ds, loads the bytes into a fresh dataset, saves that: the same bytes. */
static void check_round_trip(const struct sn_dataset *ds)
{
    unsigned char *b1 = NULL, *b2 = NULL;
    size_t l1 = 0, l2 = 0;

    FUZZ_CHECK(sn_ds_save(ds, &b1, &l1) == 0);
    struct sn_dataset *d2 = sn_ds_create(sn_ds_opts(ds));
    FUZZ_CHECK(d2);
    FUZZ_CHECK(sn_ds_load(d2, b1, l1, NOW) == 0);
    FUZZ_CHECK(sn_ds_save(d2, &b2, &l2) == 0);
    FUZZ_CHECK(l1 == l2 && memcmp(b1, b2, l1) == 0);
    for (uint32_t i = 0; sn_ds_source_name(ds, i); i++)
        FUZZ_CHECK(strcmp(sn_ds_source_name(ds, i), sn_ds_source_name(d2, i)) == 0);
    free(b1);
    free(b2);
    sn_ds_destroy(d2);
}

static void one(const uint8_t *data, size_t size)
{
    uint32_t g = size >= 12 ? rd32(data + 8) : 1;

    if (g < 1 || g > 3600)
        g = 1;
    for (uint8_t a = 0; a < 4; a++) {
        struct sn_ds_opts o = {.arity = a,
                               .granularity = g,
                               .retention = 600 * g,
                               .point = size > 6 && (data[6] & 1),
                               .key_cap = size > 7 ? data[7] % 4 : 0}; /* 0: none */
        struct sn_dataset *ds = sn_ds_create(&o);
        FUZZ_CHECK(ds);
        int rc = sn_ds_load(ds, data, size, NOW);
        FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
        if (rc == 0 || a == (size > 5 ? data[5] : 0)) {
            check_sums(ds);
            check_round_trip(ds);
            sn_ds_expire(ds, NOW + 300 * (int64_t)g);
            check_round_trip(ds);
        }
        sn_ds_destroy(ds);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size);
    if (size >= 16) {
        uint8_t *fixed = malloc(size);
        FUZZ_CHECK(fixed);
        memcpy(fixed, data, size);
        fix_crcs(fixed, size);
        if (memcmp(fixed, data, size) != 0)
            one(fixed, size);
        free(fixed);
    }
    return 0;
}
