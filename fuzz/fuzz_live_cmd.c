/*
 * Fuzz target: live/live_proto.h's request parser, fed a viewer's byte stream (the input, in a
 * buffer of exactly its size so ASan catches a read past it), cut into requests as the relay
 * does. Properties:
 *
 *   - no crash; each step returns a request's size, 0 (need more) or -EPROTO;
 *   - a parsed request is exactly 16 bytes + its command's payload size, and encoding it back
 *     gives the same bytes (the codec loses nothing and invents nothing);
 *   - parsing stops at the first bad request, as the relay closes that viewer.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "live/live_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    size_t off = 0;
    for (;;) {
        struct sn_live_cmd c;
        int n = sn_live_cmd_parse(buf + off, size - off, &c);
        FUZZ_CHECK(n >= 0 || n == -EPROTO);
        if (n <= 0)
            break;
        int want = sn_live_cmd_payload(c.cmd);
        FUZZ_CHECK(want >= 0 && n == SN_LIVE_CMD_HDR + want);
        FUZZ_CHECK((size_t)n <= size - off);
        uint8_t again[SN_LIVE_CMD_HDR + SN_LIVE_CMD_MAX];
        FUZZ_CHECK(sn_live_cmd_encode(&c, again) == n);
        FUZZ_CHECK(memcmp(again, buf + off, (size_t)n) == 0);
        off += (size_t)n;
    }
    free(buf);
    return 0;
}
