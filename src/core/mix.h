/*
 * One 64-bit mixing function for every hash that must spread its bits: MurmurHash3's
 * finalizer (fmix64), a bijection on 64 bits where each input bit flips about half of the
 * output bits. Rendezvous hashing (fleet/rendezvous.c) and the span store's Bloom filters
 * (trace/span_index.c) use it; their results are part of the fleet's agreement and of the
 * stored format, so it never changes.
 */
#ifndef SN_CORE_MIX_H
#define SN_CORE_MIX_H

#include <stdint.h>

static inline uint64_t sn_mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

#endif
