/*
 * The growable array; see grow.h.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/grow.h"

void *sn_grow(void *items, size_t *cap, size_t need, size_t size)
{
    size_t c = *cap ? *cap : 16;
    void *p;

    if (need <= *cap && items)
        return items;
    while (c < need) {
        if (c > SIZE_MAX / 2)
            return NULL;
        c *= 2;
    }
    if (size && c > SIZE_MAX / size)
        return NULL;
    p = realloc(items, c * size);
    if (!p)
        return NULL;
    *cap = c;
    return p;
}
