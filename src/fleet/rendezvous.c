/*
 * Rendezvous hashing; see rendezvous.h.
 *
 * The weight of node id for key, which every version of Sonde must compute alike (it decides
 * who owns what in a fleet of mixed versions; docs/fleet.md repeats it):
 *
 *   h = FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3) over the bytes of
 *       key, one NUL byte, then the bytes of id;
 *   weight = sn_mix64(h), MurmurHash3's 64-bit finalizer:
 *       h ^= h >> 33; h *= 0xff51afd7ed558ccd; h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53;
 *       h ^= h >> 33.
 *
 * FNV-1a alone mixes its last bytes poorly into the high bits (ids that differ in their last
 * character would rank alike for many keys); the finalizer spreads every input bit over the
 * whole word. The NUL keeps ("ab", "c") and ("a", "bc") apart. Ties (equal weights, which
 * takes a 64-bit collision) go to the smaller id in byte order, so the ranking is total.
 *
 * Owners are chosen by want passes over the nodes, each taking the heaviest not yet taken,
 * among the nodes of zones not yet used while there are any: O(n * want^2), with no memory
 * of its own (n is a fleet's nodes, want is 2).
 */
#include <stdbool.h>
#include <string.h>

#include "fleet/rendezvous.h"
#include "core/mix.h"

#define FNV_BASIS 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * FNV_PRIME;
    return h;
}

uint64_t sn_hrw_weight(const char *key, const char *id)
{
    uint64_t h = fnv1a(FNV_BASIS, key ? key : "");
    h = (h ^ 0) * FNV_PRIME; /* the NUL between them */
    return sn_mix64(fnv1a(h, id ? id : ""));
}

static const char *zone_of(const struct sn_hrw_node *n)
{
    return n->zone ? n->zone : "";
}

static const char *id_of(const struct sn_hrw_node *n)
{
    return n->id ? n->id : "";
}

/* True when node i is among the k taken so far. */
static bool taken(const size_t *out, size_t k, size_t i)
{
    for (size_t j = 0; j < k; j++)
        if (out[j] == i)
            return true;
    return false;
}

/* True when a node of zone z is among the k taken so far. */
static bool zone_used(const struct sn_hrw_node *nodes, const size_t *out, size_t k, const char *z)
{
    for (size_t j = 0; j < k; j++)
        if (strcmp(zone_of(&nodes[out[j]]), z) == 0)
            return true;
    return false;
}

/* True when (wa, a) ranks before (wb, b): heavier, or as heavy with the smaller id. */
static bool before(uint64_t wa, const char *a, uint64_t wb, const char *b)
{
    return wa != wb ? wa > wb : strcmp(a, b) < 0;
}

size_t sn_hrw_owners(const char *key, const struct sn_hrw_node *nodes, size_t n, size_t want,
                     size_t *out)
{
    size_t k = 0;
    if (!nodes || !out)
        return 0;
    while (k < want && k < n) {
        size_t best = n, any = n;
        uint64_t wbest = 0, wany = 0;
        for (size_t i = 0; i < n; i++) {
            if (taken(out, k, i))
                continue;
            uint64_t w = sn_hrw_weight(key, id_of(&nodes[i]));
            if (any == n || before(w, id_of(&nodes[i]), wany, id_of(&nodes[any]))) {
                any = i;
                wany = w;
            }
            if (!zone_used(nodes, out, k, zone_of(&nodes[i])) &&
                (best == n || before(w, id_of(&nodes[i]), wbest, id_of(&nodes[best])))) {
                best = i;
                wbest = w;
            }
        }
        out[k++] = best < n ? best : any; /* a node of a new zone, else the heaviest left */
    }
    return k;
}
