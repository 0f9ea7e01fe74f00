/*
 * Transformations of decomposition keys (../shared/ref/joyent-ca.md §1.5), applied to the IP
 * addresses of the "raddr" field:
 *
 *   reversedns  each address to an array of host names (the resolver's answer for it; [] when
 *               it has none). Lookups run on a thread of their own and are cached, so a first
 *               request may answer {} for addresses still being looked up, as CA did.
 *   geolocate   each address to an object with the country's "country_code", "country_code3",
 *               "country" and "continent_code", from Debian's GeoIP country database (legacy
 *               GeoIP.dat and GeoIPv6.dat). Those databases hold countries only, so the
 *               "latitude" and "longitude" CA gave from a city database are absent.
 *               Addresses the database does not place (private, loopback) map to {}.
 *
 * Thread-safe.
 */
#ifndef SN_SERVE_TRANSFORM_H
#define SN_SERVE_TRANSFORM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct sn_xforms; /* opaque */

/* Starts the lookup thread and opens the databases (geolocate is unavailable without them).
 * Returns NULL when out of memory. */
struct sn_xforms *sn_xforms_start(void);
void sn_xforms_stop(struct sn_xforms *x); /* NULL is fine */

/* {name: {label, fields}} of the transformations there are. */
json_t *sn_xforms_describe(const struct sn_xforms *x);
/* Whether name exists, and whether it applies to a decomposition by field (raddr). */
bool sn_xform_exists(const struct sn_xforms *x, const char *name);
bool sn_xform_applies(const struct sn_xforms *x, const char *name, const char *field);

/* {key: result} for keys[0..n): what is known now (reversedns queues the rest). Never NULL
 * unless out of memory. */
json_t *sn_xform_apply(struct sn_xforms *x, const char *name, const char *const *keys, size_t n);

#endif
