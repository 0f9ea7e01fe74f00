/*
 * Content-Encoding of request bodies: what OTLP and Zipkin exporters send (gzip above all;
 * deflate too), decoded with a bound on the decoded size, because a small gzip body can
 * inflate to gigabytes (OTLP's specification: the limit applies after decompression).
 */
#ifndef SN_HTTP_BODY_CODING_H
#define SN_HTTP_BODY_CODING_H

#include <stddef.h>

/*
 * Decodes in[0..len) per cenc: NULL, "" or "identity" give the body itself (*out = in, *owned
 * NULL); "gzip" / "x-gzip" (concatenated members too) and "deflate" (zlib, or raw deflate as
 * some clients send) give a new buffer (*owned = *out, the caller frees it). Returns 0, -E2BIG
 * when the decoded body passes max bytes, -EINVAL for a corrupt or truncated stream, -ENOTSUP
 * for another coding (or a list of codings), -ENOMEM.
 */
int sn_body_decode(const char *cenc, const void *in, size_t len, size_t max,
                   const unsigned char **out, size_t *outlen, unsigned char **owned);

#endif
