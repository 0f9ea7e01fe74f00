/*
 * The time interval of a value request, resolved as CA's aggregator does (caAggrInterval,
 * ../shared/ref/joyent-ca.md §1.5): from any of start_time, duration and end_time, with the
 * resource's default duration, then aligned to the granularity (start down, duration up).
 * Kept apart from HTTP so that its table of cases can be tested directly.
 */
#ifndef SN_AGG_INTERVAL_H
#define SN_AGG_INTERVAL_H

#include <stdbool.h>
#include <stdint.h>

#define SN_MAX_DURATION 3600

struct sn_interval_req {
    bool has_start, has_duration, has_end;
    int64_t start, duration, end; /* seconds */
};

struct sn_interval {
    int64_t start, duration;         /* aligned to the granularity */
    int64_t req_start, req_duration; /* as resolved before alignment */
};

/*
 * Resolves r with default duration dflt, the current time now (seconds) and granularity g.
 * Returns 0, or -EINVAL with *why one of CA's messages:
 *   "duration" cannot exceed "end_time"
 *   "end_time" must be later than "start_time"
 *   "start_time" + "duration" must equal "end_time"
 *   "duration" must be positive
 */
int sn_interval_resolve(const struct sn_interval_req *r, int64_t dflt, int64_t now, int64_t g,
                        struct sn_interval *out, const char **why);

#endif
