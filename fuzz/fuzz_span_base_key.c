/*
 * Fuzz target: the keys of the base of trace.spans (serve/span_metrics.h), read back from the
 * store's records to re-key them for an instrumentation. Properties:
 *   - sn_span_metrics_base_fields() on any text: no crash or read past it; a parse that
 *     succeeds gives five texts of at most SN_SPAN_BASE_TEXT bytes without a separator;
 *   - the input cut at its first five newlines into five texts, encoded by
 *     sn_span_metrics_base_key(): within SN_SPAN_BASE_KEY_MAX and the wire's key limit, read
 *     back by sn_span_metrics_base_fields() as each text's first SN_SPAN_BASE_TEXT bytes
 *     (separator bytes read '?') with each text's own hash, so predicates stay exact.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/catalog.h"
#include "fuzz_check.h"
#include "serve/span_metrics.h"
#include "wire/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *in = malloc(size + 1);
    memcpy(in, data, size);
    in[size] = '\0';
    char text[5][SN_SPAN_BASE_TEXT + 1];
    uint64_t hash[5];
    if (sn_span_metrics_base_fields(in, text, hash) == 0)
        for (int i = 0; i < 5; i++) {
            FUZZ_CHECK(strlen(text[i]) <= SN_SPAN_BASE_TEXT);
            FUZZ_CHECK(!strchr(text[i], SN_SPAN_BASE_SEP) && !strchr(text[i], SN_SPAN_BASE_HASH));
        }

    /* round trip: five texts, cut at newlines (the rest of the input is the fifth) */
    const char *f[5] = {"", "", "", "", ""};
    uint64_t h[5];
    char *p = in;
    for (int i = 0; i < 5 && p; i++) {
        f[i] = p;
        char *nl = i < 4 ? strchr(p, '\n') : NULL;
        if (nl)
            *nl = '\0';
        p = nl ? nl + 1 : NULL;
    }
    for (int i = 0; i < 5; i++)
        h[i] = sn_text_hash(f[i]);
    char key[SN_SPAN_BASE_KEY_MAX];
    sn_span_metrics_base_key(f, h, key);
    FUZZ_CHECK(strlen(key) < SN_SPAN_BASE_KEY_MAX && strlen(key) <= SN_WIRE_MAX_KEY);
    FUZZ_CHECK(strcmp(key, "other") != 0);
    FUZZ_CHECK(sn_span_metrics_base_fields(key, text, hash) == 0);
    for (int i = 0; i < 5; i++) {
        size_t n = strlen(f[i]) < SN_SPAN_BASE_TEXT ? strlen(f[i]) : SN_SPAN_BASE_TEXT;
        FUZZ_CHECK(strlen(text[i]) == n);
        for (size_t j = 0; j < n; j++) {
            char c = f[i][j] == SN_SPAN_BASE_SEP || f[i][j] == SN_SPAN_BASE_HASH ? '?' : f[i][j];
            FUZZ_CHECK(text[i][j] == c);
        }
        FUZZ_CHECK(hash[i] == h[i]);
    }
    free(in);
    return 0;
}
