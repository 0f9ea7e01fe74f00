/*
 * Which nodes own an instrumentation: rendezvous (highest random weight) hashing over the live
 * nodes. Every node computes the same answer from the same membership with no coordination,
 * and when a node comes or goes only the instrumentations it owned, or will own, move (about
 * 1/n of them). With zones (`--zone`, Snowth's two sides), owners are spread so that the
 * first owners are in distinct zones while there are zones left: a whole zone can go and each
 * instrumentation keeps an owner.
 */
#ifndef SN_FLEET_RENDEZVOUS_H
#define SN_FLEET_RENDEZVOUS_H

#include <stddef.h>
#include <stdint.h>

struct sn_hrw_node {
    const char *id;   /* unique among the nodes */
    const char *zone; /* "" or NULL: no zone */
};

/* The weight of node id for key: a 64-bit hash of both (stable across versions and hosts:
 * it decides ownership in a fleet of mixed versions; docs/fleet.md gives the function). */
uint64_t sn_hrw_weight(const char *key, const char *id);

/*
 * The owners of key among nodes[0..n): up to want of them, as indexes into nodes, best first,
 * into out[0..want). The heaviest node first; then, while want is not met, the heaviest node
 * of a zone not yet used, and once every zone is used, the heaviest of the rest. Returns how
 * many (min(want, n)). The answer depends only on the set of (id, zone), not on its order.
 */
size_t sn_hrw_owners(const char *key, const struct sn_hrw_node *nodes, size_t n, size_t want,
                     size_t *out);

#endif
