/*
 * Base64 (RFC 4648, standard alphabet, '=' padding): the encoding of histograms in JSON, on
 * the CA API and in IRONdb/Circonus payloads.
 *
 * Two decoders: a strict one (RFC 4648 exactly: length a multiple of 4, padding only at the
 * end, zero pad bits, nothing else) and libmtev's lenient one, which libcircllhist uses and
 * whose quirks decide what upstream accepts (see sn_b64_decode_lenient()).
 */
#ifndef SN_CORE_B64_H
#define SN_CORE_B64_H

#include <stddef.h>
#include <sys/types.h>

/* Length of the encoding of n bytes: 4 * ceil(n / 3). */
static inline size_t sn_b64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

/* Writes the encoding of src[0..n) to dst (sn_b64_encoded_len(n) chars, no NUL).
 * Returns the number of chars written. */
size_t sn_b64_encode(const void *src, size_t n, char *dst);

/* Largest number of bytes any decoder below can write for len input chars. */
static inline size_t sn_b64_decoded_max(size_t len)
{
    return len / 4 * 3 + 3;
}

/* Strict RFC 4648 decode of s[0..len) into dst (room for sn_b64_decoded_max(len) bytes).
 * Returns the number of bytes, or SN_E_CORRUPT. */
ssize_t sn_b64_decode_strict(const char *s, size_t len, void *dst);

/*
 * libmtev's decoder, as libcircllhist calls it: whitespace is skipped; decoding stops at the
 * first character that is neither in the alphabet nor '='; a '=' with no pending characters
 * stops it too, otherwise it completes the quad with zeros and emits 1 byte (1-2 pending) or
 * 2 (3 pending), and every later quad emits that many bytes as well; an incomplete final quad
 * is dropped. dst has room for sn_b64_decoded_max(len) bytes. Returns the bytes written.
 */
size_t sn_b64_decode_lenient(const char *s, size_t len, void *dst);

#endif
