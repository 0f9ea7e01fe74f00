/*
 * Fuzz target: stored records (src/store/record.h). Properties: no crash, out-of-bounds read
 * or undefined behaviour; a failed decode leaves the slot empty and sn_rec_buckets() agrees
 * that the record is bad (or fails on the keys only, which it cannot check); a decoded record
 * has entries in strictly ascending key order, each key from the names table, and encodes
 * back to exactly the input bytes (the format has one encoding per slot), with as many buckets
 * as sn_rec_buckets() counts. Each input is tried as it is and with its last four bytes
 * replaced by the right checksum, so mutations reach the parser behind it.
 *
 * The names table is small, with a hole (id 2) and ids not in the order of their names, so
 * unknown and unordered keys are reachable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "core/err.h"
#include "core/hist.h"
#include "fuzz_check.h"
#include "store/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {"write", "read", NULL, "open", "close", "other", "", "a"};
#define NNAMES (sizeof(names) / sizeof(names[0]))

static uint32_t id_of(const char *key)
{
    for (uint32_t id = 0; id < NNAMES; id++)
        if (names[id] && strcmp(names[id], key) == 0)
            return id;
    FUZZ_CHECK(!"a decoded key outside the names table");
    return 0;
}

static size_t nonempty(const struct sn_hist *h)
{
    size_t n = 0;
    uint64_t c;

    for (size_t i = 0; h && sn_hist_bucket_at(h, i, NULL, &c); i++)
        n += c != 0;
    return n;
}

static void one(const uint8_t *data, size_t size)
{
    struct sn_ds_slot s;
    struct sn_rec_info info;
    int rc = sn_rec_decode(data, size, names, NNAMES, &s, &info);
    ssize_t nb = sn_rec_buckets(data, size);

    if (rc < 0) {
        FUZZ_CHECK(s.n == 0 && s.e == NULL && s.total == NULL && s.src == NULL && s.nsrc == 0);
        FUZZ_CHECK(nb < 0 || rc == SN_E_CORRUPT); /* a key error: only decode sees it */
        return;
    }
    FUZZ_CHECK(nb >= 0);
    FUZZ_CHECK(info.arity <= SN_WIRE_NUMERIC_BY_KEY);
    size_t buckets = nonempty(s.total) * (info.arity != SN_WIRE_NUMERIC_BY_KEY);
    uint32_t *ids = malloc((s.n + 1) * sizeof(*ids));
    FUZZ_CHECK(ids);
    for (size_t i = 0; i < s.n; i++) {
        FUZZ_CHECK(i == 0 || strcmp(s.e[i - 1].key, s.e[i].key) < 0);
        ids[i] = id_of(s.e[i].key);
        buckets += nonempty(s.e[i].hist);
    }
    for (uint32_t j = 1; j < s.nsrc; j++)
        FUZZ_CHECK(s.src[j - 1] < s.src[j]);
    FUZZ_CHECK((size_t)nb == buckets);

    struct sn_rec_buf b = {0};
    FUZZ_CHECK(sn_rec_encode(&s, info.arity, info.values, ids, s.src, &b) == (ssize_t)size);
    FUZZ_CHECK(b.len == size && memcmp(b.p, data, size) == 0);
    sn_rec_buf_fini(&b);
    free(ids);
    sn_ds_slot_fini(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size);
    if (size >= 4) {
        uint8_t *fixed = malloc(size);
        FUZZ_CHECK(fixed);
        memcpy(fixed, data, size);
        uint32_t crc = sn_crc32c(0, fixed, size - 4);
        for (int k = 0; k < 4; k++)
            fixed[size - 4 + k] = (uint8_t)(crc >> (8 * k));
        one(fixed, size);
        free(fixed);
    }
    return 0;
}
