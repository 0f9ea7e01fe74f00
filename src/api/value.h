/*
 * What the value resources share (value.c): a request's interval and points, the long poll,
 * the common fields of each reply point, and raw values as CA's JSON. The instrumentation is
 * the handler's copy (sn_api_instn()); its data comes from the aggregator through one view
 * per request (agg/agg.h), read without any lock.
 */
#ifndef SN_API_VALUE_H
#define SN_API_VALUE_H

#include "agg/agg.h"
#include "agg/interval.h"
#include "api/internal.h"
#include "store/history.h"

#define SN_MAX_DATAPOINTS 3600 /* CA has no maximum; a bound keeps one request bounded */
#define SN_REPORT_GRACE   2    /* seconds after a slot's end that its reports still arrive */
#define SN_MAX_XFORMS     4    /* transformations one request may ask for */
/* The largest start_time and end_time (seconds): anything later is refused as too far in the
 * future anyway; the bound keeps every sum and product of times within int64_t. */
#define SN_MAX_TIME       (INT64_MAX / 4)

struct sn_value_req {
    struct sn_interval iv; /* the first point's */
    size_t n;              /* ndatapoints */
    bool array;            /* ndatapoints was given: the reply is an array */
    int64_t timeout_ms;
    const char *xf[SN_MAX_XFORMS]; /* transformations asked for (into xfbuf) */
    size_t nxf;
    char xfbuf[256];
    struct sn_history_pick pick; /* memory, or the store's tier and the slots' width */
    struct sn_agg_view *view;    /* the slots of every point (sn_value_open()) */
    uint32_t nsources;           /* sources within the retention, when the view was opened */
};

/* Reads the interval parameters with the resource's default duration, and the transformations
 * asked for, for instrumentation in, and picks where the answer comes from (memory, or the
 * store's finest tier that keeps the start: store/history.h); maxcols: the columns an answer
 * shows at most (a heatmap's width), 0 for one value per point. The interval is aligned to
 * the granularity of what answers (v->pick.gran). A duration may reach the longest a tier
 * keeps (sn_value_max_duration()). False after answering 409. */
bool sn_value_parse(struct sn_call *c, int64_t dflt_duration, const struct sn_instn *in,
                    uint32_t maxcols, struct sn_value_req *v);
/* The longest duration a request may ask for: what the store's longest tier keeps, at least
 * SN_MAX_DURATION. */
int64_t sn_value_max_duration(struct sn_call *c);
/* Sets point's "transformations" for the keys of its member from (an object's keys, or an
 * array of strings). Call without the lock: reverse DNS may wait a moment. */
void sn_value_transform(struct sn_call *c, const struct sn_value_req *v, json_t *point,
                        const char *from);
/* True when the answer can be given now; false after parking the request (the handler is
 * called again when data arrives or the timeout passes). */
bool sn_value_wait(struct sn_call *c, const struct sn_instn *in, const struct sn_value_req *v);
/* Opens v->view over every point's interval and reads v->nsources. Returns 0, or -ENOENT (the
 * instrumentation was deleted meanwhile) or -ENOMEM, after answering 404 or 500. */
int sn_value_open(struct sn_call *c, const struct sn_instn *in, struct sn_value_req *v);
/* Closes v->view (the slots it referenced are let go); fine when not open. */
void sn_value_close(struct sn_value_req *v);
/* Sets the common fields of point k into o (v open). */
void sn_value_point(struct sn_call *c, const struct sn_instn *in, const struct sn_value_req *v,
                    size_t k, json_t *o);
/* Builds point k of a reply into o from v->view. Returns 0 or -ENOMEM. */
typedef int (*sn_point_fn)(struct sn_call *c, const struct sn_instn *in,
                           const struct sn_value_req *v, size_t k, json_t *o, void *arg);
/* Answers a value request: opens v, builds each point by fn with the common fields, one
 * object or an array, closes v, then adds the transformations of the keys of member from of
 * each point. */
void sn_value_answer(struct sn_call *c, const struct sn_instn *in, struct sn_value_req *v,
                     sn_point_fn fn, void *arg, const char *from);
/* A histogram as CA's ranges [[[lo,hi],count],...] (core/hist.h's rule). */
json_t *sn_value_ranges(const struct sn_hist *h);
/* A slot's value in the shape of the instrumentation's arity (§1.5 raw). */
json_t *sn_value_raw_json(const struct sn_instn *in, const struct sn_ds_slot *s);

#endif
