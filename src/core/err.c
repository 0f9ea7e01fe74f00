/*
 * sn_strerror(): names for Sonde's error codes, falling back to strerror() for errno values.
 */
#include <string.h>

#include "core/err.h"

static const char *const messages[] = {
    [SN_E_BASE - SN_E_CORRUPT] = "malformed input",
    [SN_E_BASE - SN_E_TRUNCATED] = "input truncated",
    [SN_E_BASE - SN_E_TRAILING] = "trailing bytes after the end of the data",
    [SN_E_BASE - SN_E_BUCKET] = "invalid histogram bucket",
    [SN_E_BASE - SN_E_ORDER] = "histogram buckets out of order or repeated",
    [SN_E_BASE - SN_E_ZERO] = "zero count in a histogram record",
};

const char *sn_strerror(int rc)
{
    if (rc == 0)
        return "success";
    if (rc <= SN_E_BASE && rc >= SN_E_LAST)
        return messages[SN_E_BASE - rc];
    if (rc < 0 && rc > -4096)
        return strerror(-rc);
    return "unknown error";
}
