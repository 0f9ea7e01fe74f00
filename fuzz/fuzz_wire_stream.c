/*
 * Fuzz target: frame streams (src/wire/stream.h). Properties: no crash, leak or out-of-bounds
 * read on any bytes; the reader ends with 0 only having consumed every byte, or with one of
 * its documented errors and a message naming the frame, staying where it was (a second call
 * says the same); every frame it yields written back with sn_wire_stream_put() is exactly the
 * bytes it was read from. Read again with bounds (128-byte frames, 2 frames), the reader
 * yields a prefix of the same frames. Each input is also tried with the checksum of every frame
 * it announces set right, so mutations reach the frame decoder behind the framing.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "core/err.h"
#include "fuzz_check.h"
#include "wire/frame.h"
#include "wire/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads the whole stream; returns the number of frames yielded. */
static size_t read_all(const uint8_t *data, size_t size, uint32_t max_len, size_t max_frames)
{
    struct sn_wire_stream r;
    struct sn_wire_frame f;
    char why[128];
    int rc;

    sn_wire_stream_init(&r, data, size, max_len, max_frames);
    while ((rc = sn_wire_stream_next(&r, &f, why, sizeof(why))) == 1) {
        size_t len = sn_wire_stream_len(&f);
        unsigned char *out = malloc(len);
        FUZZ_CHECK(out);
        FUZZ_CHECK(why[0] == '\0');
        FUZZ_CHECK(sn_wire_stream_put(&f, out, len) == (ssize_t)len);
        FUZZ_CHECK(r.at >= len && memcmp(out, data + r.at - len, len) == 0);
        FUZZ_CHECK(len - 4 <= (max_len ? max_len : UINT32_MAX));
        free(out);
        sn_wire_frame_fini(&f);
    }
    FUZZ_CHECK(f.id == NULL && f.host == NULL && f.entries == NULL && f.n == 0);
    if (rc == 0) {
        FUZZ_CHECK(r.at == size && why[0] == '\0');
    } else {
        size_t at = r.at, nth = r.nth;
        FUZZ_CHECK(rc == SN_E_TRUNCATED || rc == SN_E_CORRUPT || rc == SN_E_TRAILING ||
                   rc == -EMSGSIZE || rc == -E2BIG || rc == -ENOMEM);
        FUZZ_CHECK(memchr(why, '\0', sizeof(why)) != NULL);
        FUZZ_CHECK(strncmp(why, "frame ", 6) == 0 || strncmp(why, "more than ", 10) == 0);
        FUZZ_CHECK(rc != -E2BIG || r.nth == max_frames);
        FUZZ_CHECK(sn_wire_stream_next(&r, &f, NULL, 0) == rc);
        FUZZ_CHECK(r.at == at && r.nth == nth && f.id == NULL);
    }
    return r.nth;
}

static void both(const uint8_t *data, size_t size)
{
    size_t all = read_all(data, size, 0, 0);
    size_t bounded = read_all(data, size, 128, 2);

    FUZZ_CHECK(bounded <= all && bounded <= 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *fixed;

    both(data, size);
    fixed = malloc(size ? size : 1);
    FUZZ_CHECK(fixed);
    memcpy(fixed, data, size);
    for (size_t at = 0; size - at >= 4;) { /* each announced frame's last 4 bytes: its CRC */
        uint32_t len;
        memcpy(&len, fixed + at, 4); /* little-endian host */
        at += 4;
        if (len > size - at)
            break;
        if (len >= 4) {
            uint32_t crc = sn_crc32c(0, fixed + at, len - 4);
            memcpy(fixed + at + len - 4, &crc, 4);
        }
        at += len;
    }
    both(fixed, size);
    free(fixed);
    return 0;
}
