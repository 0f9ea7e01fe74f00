/*
 * Frame streams: each binary frame behind its length; see stream.h. The reader never reads a
 * byte before checking that it is there, and leaves its position on a frame it refuses.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "wire/stream.h"
#include "wire/wire_fail.h"

size_t sn_wire_stream_len(const struct sn_wire_frame *f)
{
    return 4 + sn_wire_frame_len(f);
}

ssize_t sn_wire_stream_put(const struct sn_wire_frame *f, void *buf, size_t len)
{
    size_t flen = sn_wire_frame_len(f);
    uint32_t le;
    ssize_t rc;

    if (flen > UINT32_MAX)
        return -E2BIG;
    if (len < 4 + flen)
        return -ENOSPC;
    rc = sn_wire_frame_encode(f, (unsigned char *)buf + 4, len - 4);
    if (rc < 0)
        return rc;
    le = htole32((uint32_t)flen);
    memcpy(buf, &le, 4);
    return (ssize_t)(4 + flen);
}

int sn_wire_stream_write(FILE *fp, const struct sn_wire_frame *f)
{
    size_t len = sn_wire_stream_len(f);
    unsigned char *buf;
    ssize_t rc;

    if (len - 4 > UINT32_MAX)
        return -E2BIG;
    buf = malloc(len);
    if (!buf)
        return -ENOMEM;
    rc = sn_wire_stream_put(f, buf, len);
    if (rc >= 0)
        rc = fwrite(buf, 1, len, fp) == len ? 0 : -EIO;
    free(buf);
    return (int)rc;
}

void sn_wire_stream_init(struct sn_wire_stream *r, const void *buf, size_t len, uint32_t max_len,
                         size_t max_frames)
{
    *r = (struct sn_wire_stream){.buf = buf,
                                 .len = len,
                                 .max_len = max_len ? max_len : UINT32_MAX,
                                 .max_frames = max_frames ? max_frames : SIZE_MAX};
}

int sn_wire_stream_next(struct sn_wire_stream *r, struct sn_wire_frame *out, char *why,
                        size_t whylen)
{
    size_t nth = r->nth + 1, left = r->len - r->at;
    uint32_t flen;
    int rc;

    memset(out, 0, sizeof(*out));
    if (why && whylen)
        why[0] = '\0';
    if (left == 0)
        return 0;
    if (left < 4)
        return sn_wire_fail(why, whylen, SN_E_TRUNCATED, "frame %zu: truncated length", nth);
    memcpy(&flen, r->buf + r->at, 4);
    flen = le32toh(flen);
    if (flen > left - 4)
        return sn_wire_fail(why, whylen, SN_E_TRUNCATED, "frame %zu: length %u runs past the body",
                            nth, flen);
    if (flen > r->max_len)
        return sn_wire_fail(why, whylen, -EMSGSIZE, "frame %zu: length %u is over the maximum %u",
                            nth, flen, r->max_len);
    if (r->nth == r->max_frames)
        return sn_wire_fail(why, whylen, -E2BIG, "more than %zu frames", r->max_frames);
    rc = sn_wire_frame_decode(r->buf + r->at + 4, flen, out);
    if (rc < 0)
        return sn_wire_fail(why, whylen, rc, "frame %zu: %s", nth, sn_strerror(rc));
    r->at += 4 + (size_t)flen;
    r->nth = nth;
    return 1;
}
