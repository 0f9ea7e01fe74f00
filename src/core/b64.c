/*
 * Base64 codecs; see b64.h. The decoders take four characters at a time through a 256-entry
 * table while they are all in the alphabet, and drop to a per-character loop for padding,
 * whitespace and everything else, so a clean 8 KB string decodes at about a byte per ns.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "core/b64.h"
#include "core/err.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* character -> 6-bit value, -1 outside the alphabet */
static const int8_t dec[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1, -1, 0,  1,  2,  3,  4,  5,  6,
    7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
    49, 50, 51, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

/* Two output characters for every 12-bit value, built once: encoding 3 bytes is then two
 * lookups and two 2-byte stores instead of four of each. */
static uint16_t pairs[4096];
static pthread_once_t pairs_once = PTHREAD_ONCE_INIT;

static void pairs_fill(void)
{
    for (unsigned i = 0; i < 4096; i++) {
        char two[2] = {alphabet[i >> 6], alphabet[i & 63]};
        memcpy(&pairs[i], two, 2);
    }
}

size_t sn_b64_encode(const void *src, size_t n, char *dst)
{
    const uint8_t *p = src;
    char *o = dst;
    size_t i = 0;

    pthread_once(&pairs_once, pairs_fill);
    for (; i + 3 <= n; i += 3) {
        uint32_t x = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        memcpy(o, &pairs[x >> 12], 2);
        memcpy(o + 2, &pairs[x & 4095], 2);
        o += 4;
    }
    if (n - i == 1) {
        o[0] = alphabet[p[i] >> 2];
        o[1] = alphabet[(p[i] & 3) << 4];
        o[2] = o[3] = '=';
        o += 4;
    } else if (n - i == 2) {
        o[0] = alphabet[p[i] >> 2];
        o[1] = alphabet[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
        o[2] = alphabet[(p[i + 1] & 15) << 2];
        o[3] = '=';
        o += 4;
    }
    return (size_t)(o - dst);
}

/* The 6-bit value of a character pre-shifted to its place in a quad's 24 bits, or bit 24 set
 * for a character outside the alphabet: decoding a quad is four loads and three ORs. Filled
 * once from dec[]. */
static uint32_t quad[4][256];
static pthread_once_t quad_once = PTHREAD_ONCE_INIT;

static void quad_fill(void)
{
    for (int k = 0; k < 4; k++)
        for (int c = 0; c < 256; c++)
            quad[k][c] = dec[c] < 0 ? 1u << 24 : (uint32_t)dec[c] << (18 - 6 * k);
}

/* Decodes whole quads of alphabet characters from s[*i..len) to *o; stops at anything else.
 * Stores 4 bytes per quad and advances 3, so it may write one byte past what it returns:
 * callers give dst sn_b64_decoded_max() bytes. */
static inline void decode_quads(const unsigned char *s, size_t len, size_t *i, uint8_t **o)
{
    size_t k = *i;
    uint8_t *out = *o;

    pthread_once(&quad_once, quad_fill);
    while (k + 4 <= len) {
        uint32_t x = quad[0][s[k]] | quad[1][s[k + 1]] | quad[2][s[k + 2]] | quad[3][s[k + 3]];
        if (x >> 24)
            break;
        x = __builtin_bswap32(x << 8);
        memcpy(out, &x, 4);
        out += 3;
        k += 4;
    }
    *i = k;
    *o = out;
}

ssize_t sn_b64_decode_strict(const char *str, size_t len, void *dst)
{
    const unsigned char *s = (const unsigned char *)str;
    uint8_t *o = dst;
    size_t i = 0;
    int32_t a, b, c;

    if (len % 4)
        return SN_E_CORRUPT;
    decode_quads(s, len, &i, &o);
    if (i == len)
        return o - (uint8_t *)dst;
    if (i + 4 != len) /* only the last quad may hold padding */
        return SN_E_CORRUPT;
    a = dec[s[i]];
    b = dec[s[i + 1]];
    if ((a | b) < 0)
        return SN_E_CORRUPT;
    if (s[i + 2] == '=' && s[i + 3] == '=') {
        if (b & 15) /* pad bits must be zero */
            return SN_E_CORRUPT;
        *o++ = (uint8_t)(a << 2 | b >> 4);
    } else if (s[i + 3] == '=') {
        c = dec[s[i + 2]];
        if (c < 0 || (c & 3))
            return SN_E_CORRUPT;
        *o++ = (uint8_t)(a << 2 | b >> 4);
        *o++ = (uint8_t)((b & 15) << 4 | c >> 2);
    } else {
        return SN_E_CORRUPT;
    }
    return o - (uint8_t *)dst;
}

size_t sn_b64_decode_lenient(const char *str, size_t len, void *dst)
{
    const unsigned char *s = (const unsigned char *)str;
    uint8_t *o = dst, in[4];
    size_t i = 0;
    int ib = 0, ob = 3;

    for (;;) {
        if (ib == 0 && ob == 3)
            decode_quads(s, len, &i, &o);
        if (i >= len)
            break;
        unsigned char ch = s[i];
        int v = dec[ch];
        if (v < 0) {
            if (ch == '=') {
                v = 0xff;
            } else if (isspace(ch)) {
                i++;
                continue;
            } else {
                break;
            }
        }
        i++;
        if (v == 0xff) {
            if (ib == 0)
                break;
            ob = ib == 3 ? 2 : 1;
            while (ib < 3)
                in[ib++] = 0;
        }
        in[ib & 3] = (uint8_t)v; /* ib < 4 here; the mask tells the compiler */
        ib++;
        if (ib == 4) {
            uint8_t out[3];
            out[0] = (uint8_t)(in[0] << 2 | (in[1] & 0x30) >> 4);
            out[1] = (uint8_t)((in[1] & 0x0f) << 4 | (in[2] & 0x3c) >> 2);
            out[2] = (uint8_t)((in[2] & 0x03) << 6 | (in[3] & 0x3f));
            for (ib = 0; ib < ob; ib++)
                *o++ = out[ib];
            ib = 0;
        }
    }
    return (size_t)(o - (uint8_t *)dst);
}
