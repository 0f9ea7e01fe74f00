/*
 * Frame streams: binary frames (wire/frame.h) one after another, each behind its length, as
 * `sonde agent --format binary` writes them and `POST /ca/ingest` reads them
 * (application/octet-stream):
 *
 *   offset  size  field
 *   0       4     L: the frame's length in bytes, little-endian u32
 *   4       L     the frame (magic "SNFR" ... CRC-32C)
 *   4+L     4     the next frame's length, and so on to the end of the stream
 *
 * Example: a scalar frame of id "7", host "h" is 54 bytes, so the stream of that one frame is
 * 36 00 00 00 followed by the 54 bytes "SNFR" 01 00 00 00 ... (58 bytes in all). The stream has no
 * header or trailer of its own: each frame carries its version and checksum, and an empty
 * stream holds no frame.
 *
 * The writer encodes a frame and its length in one buffer and one write. The reader walks a
 * buffer holding a whole stream and yields frames one by one, checking each length before
 * reading (fewer than 4 bytes left, a length past the end or over the reader's maximum) and
 * decoding each frame with sn_wire_frame_decode(); every error names the frame (from 1) and
 * why. It is fuzzed (fuzz/fuzz_wire_stream.c). Not thread-safe: a reader belongs to one
 * thread; the functions writing frames share nothing.
 */
#ifndef SN_WIRE_STREAM_H
#define SN_WIRE_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "wire/frame.h"

/* Bytes sn_wire_stream_put() writes for f: 4 + sn_wire_frame_len(f). */
size_t sn_wire_stream_len(const struct sn_wire_frame *f);
/* Writes f (borrowed) behind its length into buf. Returns the bytes written
 * (sn_wire_stream_len(f)), -ENOSPC if len is too small, -EINVAL when f breaks the frame
 * format's rules (sn_wire_frame_encode()), or -E2BIG when the frame is longer than a u32
 * says. Nothing is written on failure. */
ssize_t sn_wire_stream_put(const struct sn_wire_frame *f, void *buf, size_t len);
/* Writes f (borrowed) behind its length to fp with one fwrite(). Returns 0, -EINVAL or -E2BIG
 * (as sn_wire_stream_put()), -ENOMEM, or -EIO when the write fails (part of the frame may
 * have been written then: the stream is broken). fp is not flushed. */
int sn_wire_stream_write(FILE *fp, const struct sn_wire_frame *f);

/* A reader over a stream held whole in memory. Fields are the reader's; read only nth and at. */
struct sn_wire_stream {
    const unsigned char *buf; /* borrowed: must outlive the reader */
    size_t len;
    size_t at;         /* bytes consumed: the next frame's length starts here */
    size_t nth;        /* frames yielded so far */
    uint32_t max_len;  /* the longest frame accepted */
    size_t max_frames; /* the most frames yielded */
};

/* Starts reading buf[0..len) (borrowed). max_len bounds each frame's length (0: no bound but
 * the u32), max_frames the number of frames (0: no bound). Cannot fail. */
void sn_wire_stream_init(struct sn_wire_stream *r, const void *buf, size_t len, uint32_t max_len,
                         size_t max_frames);
/*
 * Decodes the next frame into *out (owned: release with sn_wire_frame_fini()). Returns 1 with a
 * frame, 0 at the end of the stream (every byte consumed; *out empty), or an error, with *out
 * empty, why set and the reader left on the bad frame (calling again returns the same error):
 *   SN_E_TRUNCATED  fewer than 4 bytes left for a length: `frame N: truncated length`
 *   SN_E_TRUNCATED  the length runs past the end: `frame N: length L runs past the body`
 *   -EMSGSIZE       the length is over max_len: `frame N: length L is over the maximum M`
 *   -E2BIG          a frame past max_frames: `more than M frames`
 *   what sn_wire_frame_decode() returns for a bad frame (SN_E_CORRUPT, SN_E_TRUNCATED,
 *                   SN_E_TRAILING) or -ENOMEM: `frame N: ` and sn_strerror() of it
 * The checks go in that order (a truncated frame past max_frames is reported as truncated).
 * why may be NULL or whylen 0.
 */
int sn_wire_stream_next(struct sn_wire_stream *r, struct sn_wire_frame *out, char *why,
                        size_t whylen);

#endif
