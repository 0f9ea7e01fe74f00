/*
 * Frames as the agent builds them: what it reports for one instrumentation and one second,
 * from the cells its sources drained, keys rendered as text. The value has the
 * instrumentation's arity: a count (scalar), {key: count} (discrete decomposition), a
 * histogram (numeric), or {key: histogram} (both); drops say what the kernel could not count
 * exactly (key cap, full map), so that nothing is lost silently.
 *
 * A frame leaves the agent as its wire view (struct sn_wire_frame, sn_frame_wire_view()),
 * the one frame type agents and aggregators share; wire/ owns every encoding of it: JSON
 * (wire/frame_json.h, one line per frame from `sonde agent --stdout`), binary
 * (wire/frame.h) and the binary stream (wire/stream.h).
 */
#ifndef SN_AGENT_FRAME_BUILD_H
#define SN_AGENT_FRAME_BUILD_H

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
    const struct sn_probe *probe; /* what the frame answers (borrowed) */
    int64_t t;                    /* the second (Unix time) the counts belong to */
    uint64_t count;               /* every event counted, whatever the arity */
    struct sn_hist *hist;         /* numeric decomposition without a key */
    struct sn_frame_entry *entries;
    size_t n, cap;
    struct sn_slot_drops drops;
    const struct sn_engine *engine; /* optional: renders psargs keys as text */
};

/* Starts an empty frame. Returns 0 or -ENOMEM. */
int sn_frame_init(struct sn_frame *f, const struct sn_probe *probe, int64_t t);
/* Adds one drained cell of the instrumentation's slot; host names the host for hostname keys.
 * Returns 0 or -ENOMEM. */
int sn_frame_add(struct sn_frame *f, const struct sn_cell *c, const char *host);
/* Adds count events under key (its text; ignored without a discrete decomposition) in bucket
 * b of the numeric decomposition (ignored without one): what sn_frame_add() does once a cell
 * is rendered, for sources that are not the kernel's (serve/span_metrics.h). Returns 0 or
 * -ENOMEM. */
int sn_frame_add_key(struct sn_frame *f, const char *key, struct sn_bucket b, uint64_t count);
/* Whether f holds key already (a source's key cap counts the keys it holds). */
bool sn_frame_has_key(const struct sn_frame *f, const char *key);
void sn_frame_fini(struct sn_frame *f);
/* The frame as a wire frame (wire/frame.h) that borrows f's keys and histograms; free only
 * w->entries. Returns 0 or -ENOMEM. */
int sn_frame_wire_view(const struct sn_frame *f, const char *host, struct sn_wire_frame *w);

#endif
