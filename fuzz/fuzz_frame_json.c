/*
 * Fuzz target: JSON frame bodies (src/wire/frame_json.h). Properties: no crash, leak or
 * out-of-bounds read on any bytes; the result is a frame count within the bound or an error
 * with a message; every frame handed to the callback is one sn_wire_frame_encode() accepts and
 * that decodes back equal (JSON frames enter the same path as binary ones); a frame's total is
 * the sum of its entries; and its JSON form (sn_wire_frame_to_json()) decodes back equal too.
 * Each input is also decoded with a bound of one frame, which must stop
 * at the same first frame.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "wire/frame.h"
#include "wire/frame_json.h"

#define MAX_FRAMES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_equal(const struct sn_wire_frame *a, const struct sn_wire_frame *b)
{
    FUZZ_CHECK(strcmp(a->id, b->id) == 0 && strcmp(a->host, b->host) == 0);
    FUZZ_CHECK(a->t == b->t && a->arity == b->arity && a->total == b->total);
    FUZZ_CHECK(a->over_cap == b->over_cap && a->map_full == b->map_full && a->n == b->n);
    for (size_t i = 0; i < a->n; i++) {
        FUZZ_CHECK(strcmp(a->entries[i].key, b->entries[i].key) == 0);
        FUZZ_CHECK(a->entries[i].count == b->entries[i].count);
        FUZZ_CHECK((a->entries[i].hist != NULL) == (b->entries[i].hist != NULL));
        if (a->entries[i].hist)
            FUZZ_CHECK(sn_hist_equal(a->entries[i].hist, b->entries[i].hist));
    }
}

static int frame(const struct sn_wire_frame *f, void *arg)
{
    size_t *seen = arg, len = sn_wire_frame_len(f);
    unsigned char *buf = malloc(len);
    struct sn_wire_frame d;
    uint64_t sum = 0;

    FUZZ_CHECK(buf);
    FUZZ_CHECK(f->t >= 0);
    for (size_t i = 0; i < f->n; i++)
        sum += f->entries[i].count;
    FUZZ_CHECK(f->arity == SN_WIRE_SCALAR ? f->n == 0 : sum == f->total);
    FUZZ_CHECK(sn_wire_frame_encode(f, buf, len) == (ssize_t)len);
    FUZZ_CHECK(sn_wire_frame_decode(buf, len, &d) == 0);
    check_equal(f, &d);
    sn_wire_frame_fini(&d);
    free(buf);
    /* JSON -> frame -> JSON -> frame: the encoder is the decoder's inverse */
    json_t *j = sn_wire_frame_to_json(f);
    char why[128];
    FUZZ_CHECK(j);
    FUZZ_CHECK(sn_wire_frame_from_json(j, &d, why, sizeof(why)) == 0);
    check_equal(f, &d);
    sn_wire_frame_fini(&d);
    json_decref(j);
    (*seen)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[128];
    size_t seen = 0, seen1 = 0;
    int rc = sn_wire_frames_from_text((const char *)data, size, MAX_FRAMES, frame, &seen, why,
                                      sizeof(why));

    if (rc >= 0) {
        FUZZ_CHECK((size_t)rc == seen && seen <= MAX_FRAMES && why[0] == '\0');
    } else {
        FUZZ_CHECK(rc == -EINVAL || rc == -E2BIG || rc == -ENOMEM);
        FUZZ_CHECK(why[0] != '\0' && memchr(why, '\0', sizeof(why)) != NULL);
        FUZZ_CHECK(seen <= MAX_FRAMES);
    }
    /* with a bound of one: the first frame decodes (or fails) the same way */
    int rc1 =
        sn_wire_frames_from_text((const char *)data, size, 1, frame, &seen1, why, sizeof(why));
    FUZZ_CHECK(seen1 == (seen ? 1u : 0u));
    if (rc == 0 || rc == 1)
        FUZZ_CHECK(rc1 == rc);
    else if (seen > 1 || (seen == 1 && rc < 0))
        FUZZ_CHECK(rc1 == -E2BIG);
    return 0;
}
