/*
 * Fuzz target: Zipkin v2 proto3 spans (src/trace/zipkin.h). Properties: no crash, leak,
 * out-of-bounds read or undefined behaviour; a failed decode leaves the batch empty with a
 * reason; a successful one writes JSON (sn_zipkin_span_json()) that jansson reads, that the JSON
 * decoder gives back as equal spans (so proto3's invalid UTF-8, repeated fields and repeated tag
 * keys were normalised the way JSON's are) and that writes the very same text again; and the
 * spans encoded as proto3 again decode to equal spans.
 *
 * sn_span_equal() is the same as fuzz_zipkin_json.c's (each target is one file).
 */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "trace/zipkin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The batch as a JSON list (malloc'd), *len bytes. */
static char *list_json(const struct sn_span_batch *b, size_t *len)
{
    char *buf = NULL;
    size_t cap = 0;
    *len = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (i)
            buf[(*len)++] = ','; /* the writer keeps room for its NUL */
        FUZZ_CHECK(sn_zipkin_span_json(&b->spans[i], &buf, len, &cap) == 0);
    }
    char *list = malloc(*len + 3);
    FUZZ_CHECK(list);
    list[0] = '[';
    if (*len)
        memcpy(list + 1, buf, *len);
    list[*len + 1] = ']';
    list[*len + 2] = '\0';
    *len += 2;
    free(buf);
    return list;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sn_span_batch b = {0}, c = {0}, p = {0};
    char why[256];
    int rc = sn_zipkin_decode_proto(data, size, &b, why, sizeof(why));

    if (rc < 0) {
        FUZZ_CHECK(rc == -EINVAL || rc == -E2BIG || rc == -ENOMEM);
        FUZZ_CHECK(b.n == 0 && why[0] != '\0');
        sn_span_batch_fini(&b);
        return 0;
    }
    size_t len, len2;
    char *text = list_json(&b, &len);
    json_t *v = json_loadb(text, len, JSON_ALLOW_NUL, NULL);
    FUZZ_CHECK(v && json_is_array(v) && json_array_size(v) == b.n);
    json_decref(v);

    rc = sn_zipkin_decode_json(text, len, &c, why, sizeof(why));
    if (rc != 0)
        fprintf(stderr, "%s\n%.*s\n", why, (int)len, text);
    FUZZ_CHECK(rc == 0 && c.n == b.n);
    for (size_t i = 0; i < b.n; i++)
        FUZZ_CHECK(sn_span_equal(&b.spans[i], &c.spans[i]));
    char *text2 = list_json(&c, &len2);
    FUZZ_CHECK(len2 == len && memcmp(text, text2, len) == 0);

    unsigned char *pb;
    size_t pblen;
    FUZZ_CHECK(sn_zipkin_encode_proto(b.spans, b.n, &pb, &pblen) == 0);
    FUZZ_CHECK(sn_zipkin_decode_proto(pb, pblen, &p, why, sizeof(why)) == 0 && p.n == b.n);
    for (size_t i = 0; i < b.n; i++)
        FUZZ_CHECK(sn_span_equal(&b.spans[i], &p.spans[i]));

    free(pb);
    free(text);
    free(text2);
    sn_span_batch_fini(&b);
    sn_span_batch_fini(&c);
    sn_span_batch_fini(&p);
    return 0;
}
