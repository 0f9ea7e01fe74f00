/*
 * Frames: what an agent reports for one instrumentation and one second. The value has the
 * instrumentation's arity: a count (scalar), {key: count} (discrete decomposition), a
 * histogram (numeric), or {key: histogram} (both); drops say what the kernel could not count
 * exactly (key cap, full map), so that nothing is lost silently.
 *
 * JSON form (one line per frame from `sonde agent --stdout`), version 1:
 *   {"v":1,"id":"1","host":"web1","t":1763812345,"arity":"numeric-decomposition",
 *    "value":{"nginx":[[[2000000,2099999],18],[[2100000,2199999],2]]},
 *    "drops":{"over_cap":0,"map_full":0}}
 * Histograms appear as CA's raw values: [[lo,hi],count] with inclusive integer ranges,
 * ascending. The binary form, with checksum, is wire/frame.h (sn_frame_to_wire()).
 */
#ifndef SN_AGENT_FRAME_H
#define SN_AGENT_FRAME_H

#include <jansson.h>

#include "agent/probe.h"
#include "core/hist.h"
#include "wire/frame.h"

struct sn_frame_entry {
    char key[128];
    uint64_t count;
    struct sn_hist *hist; /* numeric decompositions only */
};

struct sn_frame {
    const struct sn_probe *inst;
    int64_t t;            /* the second (Unix time) the counts belong to */
    uint64_t count;       /* every event counted, whatever the arity */
    struct sn_hist *hist; /* numeric decomposition without a key */
    struct sn_frame_entry *entries;
    size_t n, cap;
    struct sn_slot_drops drops;
    const struct sn_engine *engine; /* optional: renders psargs keys as text */
};

/* Starts an empty frame. Returns 0 or -ENOMEM. */
int sn_frame_init(struct sn_frame *f, const struct sn_probe *inst, int64_t t);
/* Adds one drained cell of the instrumentation's slot; host names the host for hostname keys.
 * Returns 0 or -ENOMEM. */
int sn_frame_add(struct sn_frame *f, const struct sn_cell *c, const char *host);
void sn_frame_fini(struct sn_frame *f);
/* The JSON form (owned: json_decref it), or NULL when out of memory. */
json_t *sn_frame_to_json(const struct sn_frame *f, const char *host);
/* The JSON form of a wire frame (owned), the same as sn_frame_to_json() of the frame it views;
 * NULL when out of memory or w's arity is unknown. (Until wire/ has its own encoder.) */
json_t *sn_frame_wire_to_json(const struct sn_wire_frame *w);
/* The frame as a wire frame (wire/frame.h) that borrows f's keys and histograms; free only
 * w->entries. Returns 0 or -ENOMEM. */
int sn_frame_wire_view(const struct sn_frame *f, const char *host, struct sn_wire_frame *w);
/* The binary form (wire/frame.h) into a new buffer (owned: free it); *len its size. Returns
 * NULL when out of memory. */
unsigned char *sn_frame_to_wire(const struct sn_frame *f, const char *host, size_t *len);

#endif
