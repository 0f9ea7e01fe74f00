/*
 * CA's value intervals; see interval.h.
 */
#include <errno.h>

#include "agg/interval.h"

int sn_interval_resolve(const struct sn_interval_req *r, int64_t dflt, int64_t now, int64_t g,
                        struct sn_interval *out, const char **why)
{
    int64_t start, duration = r->has_duration ? r->duration : dflt;

    if (!r->has_duration && r->has_start && r->has_end)
        duration = r->end - r->start;
    if (r->has_end) {
        if (r->has_start && r->has_duration) {
            if (r->start + r->duration != r->end) {
                *why = "\"start_time\" + \"duration\" must equal \"end_time\"";
                return -EINVAL;
            }
            start = r->start;
        } else if (r->has_start) {
            if (r->end <= r->start) {
                *why = "\"end_time\" must be later than \"start_time\"";
                return -EINVAL;
            }
            start = r->start;
        } else {
            if (duration > r->end) {
                *why = "\"duration\" cannot exceed \"end_time\"";
                return -EINVAL;
            }
            start = r->end - duration;
        }
    } else if (r->has_start) {
        start = r->start;
    } else {
        start = now - duration - g;
    }
    if (duration < 1) {
        *why = "\"duration\" must be positive";
        return -EINVAL;
    }
    out->req_start = start;
    out->req_duration = duration;
    out->start = start - ((start % g) + g) % g;
    out->duration = (duration + g - 1) / g * g;
    return 0;
}
