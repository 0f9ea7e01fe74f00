/*
 * Fuzz target: Zipkin's annotationQuery as /api/v2/traces reads it (sn_trace_query_terms(),
 * src/trace/query.h). Properties: no crash or read past the text; a parse that succeeds gives at
 * most SN_QUERY_MAX_TERMS terms, each a non-empty key inside the text, with no " and " in it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "trace/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    struct sn_trace_query q = {0};
    if (sn_trace_query_terms(&q, text) == 0) {
        FUZZ_CHECK(q.nterms <= SN_QUERY_MAX_TERMS);
        for (unsigned i = 0; i < q.nterms; i++) {
            FUZZ_CHECK(q.key[i] >= text && q.key[i] < text + size + 1);
            FUZZ_CHECK(q.key[i][0] != '\0');
            FUZZ_CHECK(!strstr(q.key[i], " and "));
        }
    }
    free(text);
    return 0;
}
