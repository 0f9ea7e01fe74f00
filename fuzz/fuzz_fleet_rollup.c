/*
 * Fuzz target: rollup records on the bus (src/fleet/rollup_msg.h), which any node decodes from
 * a stream anyone with credentials can publish to. Properties: no crash, out-of-bounds read or
 * undefined behaviour; a refusal leaves the message empty; a decoded message encodes again and
 * that encoding decodes to the same message, byte for byte when encoded once more (the names
 * a message carries are rewritten in the order the slot uses them, so the second encoding is
 * the canonical one); its sources are named, non-empty, and its tier is a rollup's.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/rollup_msg.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sn_rollup_msg m, m2;
    struct sn_rec_buf b1 = {0}, b2 = {0};

    int rc = sn_rollup_msg_decode(data, size, &m);
    if (rc < 0) {
        FUZZ_CHECK(m.slot.n == 0 && m.slot.nsrc == 0 && m.src == NULL);
        return 0;
    }
    FUZZ_CHECK(m.tier >= 1 && m.tier <= 3);
    FUZZ_CHECK(m.slot.t == m.t);
    for (uint32_t j = 0; j < m.slot.nsrc; j++)
        FUZZ_CHECK(m.src[j] && m.src[j][0] && m.slot.src[j] == j);
    ssize_t n1 = sn_rollup_msg_encode(&m.slot, m.arity, m.values, m.tier, m.t,
                                      (const char *const *)m.src, &b1);
    FUZZ_CHECK(n1 > 0);
    FUZZ_CHECK(sn_rollup_msg_decode(b1.p, b1.len, &m2) == 0);
    FUZZ_CHECK(m2.tier == m.tier && m2.t == m.t && m2.arity == m.arity && m2.values == m.values);
    FUZZ_CHECK(m2.slot.n == m.slot.n && m2.slot.nsrc == m.slot.nsrc);
    for (size_t i = 0; i < m.slot.n; i++)
        FUZZ_CHECK(strcmp(m.slot.e[i].key, m2.slot.e[i].key) == 0);
    for (uint32_t j = 0; j < m.slot.nsrc; j++)
        FUZZ_CHECK(strcmp(m.src[j], m2.src[j]) == 0);
    ssize_t n2 = sn_rollup_msg_encode(&m2.slot, m2.arity, m2.values, m2.tier, m2.t,
                                      (const char *const *)m2.src, &b2);
    FUZZ_CHECK(n2 == n1 && memcmp(b1.p, b2.p, (size_t)n1) == 0);
    sn_rollup_msg_fini(&m);
    sn_rollup_msg_fini(&m2);
    sn_rec_buf_fini(&b1);
    sn_rec_buf_fini(&b2);
    return 0;
}
