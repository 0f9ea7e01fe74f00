/*
 * Fuzz target: binary frames (src/wire/frame.h). Properties: no crash or out-of-bounds read;
 * a failed decode leaves the frame empty; a decoded frame encodes back to exactly the input
 * bytes (the format has one encoding per frame); its JSON form (wire/frame_json.h) is built
 * without a crash or leak (it may be refused: names that are not UTF-8). Each input is tried as it
 * is and with its last four bytes replaced by the right checksum, so mutations reach the parser
 * behind it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "fuzz_check.h"
#include "wire/frame.h"
#include "wire/frame_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int one(const uint8_t *data, size_t size)
{
    struct sn_wire_frame f;
    int rc = sn_wire_frame_decode(data, size, &f);

    if (rc < 0) {
        FUZZ_CHECK(f.id == NULL && f.entries == NULL && f.n == 0);
        return 0;
    }
    unsigned char *out = malloc(size);
    FUZZ_CHECK(out);
    FUZZ_CHECK(sn_wire_frame_len(&f) == size);
    FUZZ_CHECK(sn_wire_frame_encode(&f, out, size) == (ssize_t)size);
    FUZZ_CHECK(memcmp(out, data, size) == 0);
    free(out);
    json_decref(sn_wire_frame_to_json(&f));
    sn_wire_frame_fini(&f);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size);
    if (size >= 8) {
        uint8_t *fixed = malloc(size);
        FUZZ_CHECK(fixed);
        memcpy(fixed, data, size);
        uint32_t crc = sn_crc32c(0, fixed, size - 4); /* little-endian host */
        memcpy(fixed + size - 4, &crc, 4);
        one(fixed, size);
        free(fixed);
    }
    return 0;
}
