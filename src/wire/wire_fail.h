/*
 * The one way wire/'s readers (frame_json.c, stream.c) report a refusal: a message into the
 * caller's why buffer and an error code back. Internal to src/wire.
 */
#ifndef SN_WIRE_WIRE_FAIL_H
#define SN_WIRE_WIRE_FAIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

static inline int sn_wire_fail(char *why, size_t whylen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes the message into why (when there is room for one) and returns rc. */
static inline int sn_wire_fail(char *why, size_t whylen, int rc, const char *fmt, ...)
{
    va_list ap;

    if (why && whylen) {
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

#endif
