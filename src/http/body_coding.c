/*
 * Content-Encoding of request bodies (http/body_coding.h), through zlib.
 */
#include "http/body_coding.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "core/grow.h"

/* The coding's name without spaces around it. */
static bool is(const char *cenc, const char *name)
{
    size_t n = strlen(name);
    while (*cenc == ' ' || *cenc == '\t')
        cenc++;
    if (strncasecmp(cenc, name, n) != 0)
        return false;
    for (cenc += n; *cenc; cenc++)
        if (*cenc != ' ' && *cenc != '\t')
            return false;
    return true;
}

/* Inflates with windowBits wb (31: gzip, 15: zlib, -15: raw). */
static int inflate_all(int wb, const unsigned char *in, size_t len, size_t max, unsigned char **out,
                       size_t *outlen)
{
    z_stream z = {0};
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    int zr = Z_OK;

    if (inflateInit2(&z, wb) != Z_OK)
        return -ENOMEM;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)(len > UINT32_MAX ? UINT32_MAX : len);
    size_t left = len - z.avail_in;
    for (;;) {
        if (n == cap) {
            size_t want = cap ? cap * 2 : (len * 4 > 4096 ? len * 4 : 4096);
            if (want > max + 1)
                want = max + 1;
            if (want <= cap) { /* at max + 1 and full: too large */
                free(buf);
                inflateEnd(&z);
                return -E2BIG;
            }
            unsigned char *nb = realloc(buf, want);
            if (!nb) {
                free(buf);
                inflateEnd(&z);
                return -ENOMEM;
            }
            buf = nb;
            cap = want;
        }
        z.next_out = buf + n;
        z.avail_out = (uInt)(cap - n);
        zr = inflate(&z, Z_NO_FLUSH);
        n = cap - z.avail_out;
        if (z.avail_in == 0 && left) {
            z.avail_in = (uInt)(left > UINT32_MAX ? UINT32_MAX : left);
            left -= z.avail_in;
        }
        if (zr == Z_STREAM_END) {
            /* gzip allows members one after the other */
            if (wb == 31 && (z.avail_in || left)) {
                if (inflateReset(&z) != Z_OK)
                    break;
                continue;
            }
            break;
        }
        if (zr == Z_BUF_ERROR && z.avail_in == 0 && !left)
            break; /* truncated */
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            break;
    }
    inflateEnd(&z);
    if (zr != Z_STREAM_END) {
        free(buf);
        return -EINVAL;
    }
    if (n > max) {
        free(buf);
        return -E2BIG;
    }
    *out = buf;
    *outlen = n;
    return 0;
}

int sn_body_decode(const char *cenc, const void *in, size_t len, size_t max,
                   const unsigned char **out, size_t *outlen, unsigned char **owned)
{
    unsigned char *buf = NULL;
    int rc;

    *owned = NULL;
    if (!cenc || !*cenc || is(cenc, "identity")) {
        if (len > max)
            return -E2BIG;
        *out = in;
        *outlen = len;
        return 0;
    }
    if (is(cenc, "gzip") || is(cenc, "x-gzip"))
        rc = inflate_all(31, in, len, max, &buf, outlen);
    else if (is(cenc, "deflate")) {
        rc = inflate_all(15, in, len, max, &buf, outlen);
        if (rc == -EINVAL)
            rc = inflate_all(-15, in, len, max, &buf, outlen);
    } else
        return -ENOTSUP;
    if (rc < 0)
        return rc;
    *out = *owned = buf;
    return 0;
}
