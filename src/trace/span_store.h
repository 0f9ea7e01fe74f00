/*
 * The span store: spans in the data directory's LMDB environment (store/env.h), beside the
 * series, with their indexes, a retention and a size cap. docs/formats.md gives the keys.
 *
 *   tblocks  chunk id (u64, in the order written) -> u64 oldest span start, u64 newest span
 *            end (ns) | chunk (trace/span_index.h: one request's blocks, trace/span_block.h,
 *            its trace ids uncompressed, and a Bloom filter of each block's tags)
 *   ttrace   trace id (16 bytes) -> chunk ids holding its spans (dups, 8 bytes each)
 *   tspans   (service id u32, minute u32, chunk id u64) -> the index entries of that chunk's
 *            spans of that service starting in that minute, packed (trace/span_index.h):
 *            µs into the minute, duration in µs, kind, error, span name id, remote service id,
 *            the trace's position in the chunk (~8 bytes a span)
 *   tnames   (kind, id) -> a service or span name, "V" -> the format's version (u32: 2);
 *            tpairs: the (service, span name) and (service, remote service) pairs seen.
 *            Databases of an older format are emptied when opened (logged).
 *
 * Writing: sn_span_store_put() takes a decoded request on the caller's thread (an HTTP
 * worker): it sorts its spans by trace, cuts them into blocks, compresses them, makes their
 * tags' filters, the chunk and the index values there, so that the work scales with the
 * server's threads; then queues it. The writer thread commits everything queued in one
 * transaction (group commit: it waits up to 25 ms for 32 requests, unless sn_span_store_sync()
 * waits; a commit's sync and its rewritten pages of the trace index, whose keys are random,
 * are then paid once for more spans): a request is durable within some 25 ms, plus a write's
 * time, of being queued. The queue holds at most
 * `queue` requests; past that put() refuses (-EBUSY: the API answers 503 with Retry-After and the
 * client sends it again, so nothing is stored twice). A write that fails (a full disk) keeps the
 * queue and is tried again every second; the queue then fills and put() refuses.
 *
 * Maintenance after each write, in small transactions: chunks whose newest span ended before
 * the retention go with their trace index entries, index minutes before it too; over the size
 * cap the oldest chunks go first, about half the excess in bytes at a time, the size measured
 * again in between. Everything removed is counted.
 *
 * Reading never waits for the writer (LMDB's MVCC). Ids are raw bytes everywhere.
 */
#ifndef SN_TRACE_SPAN_STORE_H
#define SN_TRACE_SPAN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/env.h"
#include "trace/span.h"

#define SN_SPAN_STORE_RETENTION (7 * 86400) /* --trace-retention default (s) */
#define SN_SPAN_STORE_QUEUE     256         /* --trace-queue default (requests) */
#define SN_SPAN_STORE_LEVEL                                                                        \
    1 /* zstd's level for blocks (bench-trace: 3 costs                                             \
       * 40 % more CPU for 1 % less) */

struct sn_span_store; /* opaque */

struct sn_span_store_opts {
    int64_t retention_s; /* spans older than this go (0: the default) */
    uint64_t max_bytes;  /* --trace-max-bytes: the cap on the span databases; 0: none */
    uint32_t queue;      /* requests waiting for the writer at most (0: the default) */
    int level;           /* zstd level of blocks (0: SN_SPAN_STORE_LEVEL) */
};

struct sn_span_store_stats {
    uint64_t spans_written, blocks_written, bytes_written;
    uint64_t requests_refused; /* put() refused: queue full */
    uint64_t write_errors;     /* failed write transactions */
    int last_error;            /* -errno of the last failure; 0 once writing works */
    uint64_t blocks_expired, blocks_dropped, blocks_damaged;
    uint64_t queued, queued_spans; /* waiting now */
    uint64_t used_bytes;           /* the span databases' pages */
    uint64_t services, names;
};

/* Opens the span databases in env (creating them) and starts the writer. Returns 0 with *out,
 * or -errno with why. */
int sn_span_store_open(struct sn_env *env, const struct sn_span_store_opts *o,
                       struct sn_span_store **out, char *why, size_t len);
/* Writes what is queued (a last try), stops the writer and frees. NULL is fine. Returns 0 or
 * the -errno of the last write (what was queued is then lost, and logged). */
int sn_span_store_close(struct sn_span_store *ss);

/* Takes the spans of b (b itself stays the caller's, emptied or not: it frees it). Returns 0
 * (queued), -EBUSY (the queue is full: nothing taken), -ENOMEM. now_ns: when they arrived
 * (stands for a missing start). */
int sn_span_store_put(struct sn_span_store *ss, const struct sn_span_batch *b, uint64_t now_ns);
/* sn_span_store_put() whatever the queue holds: spans a client was answered for already (the
 * tail sampler's, trace/sampling.h). Returns 0 or -ENOMEM. */
int sn_span_store_put_accepted(struct sn_span_store *ss, const struct sn_span_batch *b,
                               uint64_t now_ns);
/* Whether the queue is full (sn_span_store_put() would refuse): a request is refused before
 * it is taken. */
bool sn_span_store_full(struct sn_span_store *ss);
/* Waits until everything queued before the call is written (or a write failed). Returns 0 or
 * the -errno of the failure. */
int sn_span_store_sync(struct sn_span_store *ss);

/* The spans of trace id, appended to out (in no order). Returns 0, -ENOENT (none), -ENOMEM
 * or -EIO. Damaged blocks are skipped and counted. */
int sn_span_store_trace(struct sn_span_store *ss, const uint8_t id[16], struct sn_span_batch *out);

/* Whether trace id may have every tag of terms (annotationQuery's: key[t] alone, a bare word,
 * when value[t] is NULL; key[t]=value[t] else): 1 when each is in the Bloom filter of one of
 * its blocks (or nterms is 0, or over SN_SPAN_STORE_MAX_TAGS), 0 when one is in none of them
 * (then the trace cannot match: it need not be read), or -errno. */
#define SN_SPAN_STORE_MAX_TAGS 16
int sn_span_store_trace_tags(struct sn_span_store *ss, const uint8_t id[16], const char *const *key,
                             const char *const *value, unsigned nterms);

/* The blocks a search decoded last, so that traces sharing a block (a request's) decode it
 * once: give one to sn_span_store_trace_cached() for the length of a search, then fini it. */
#define SN_BLOCK_CACHE 4
struct sn_block_cache {
    uint64_t id[SN_BLOCK_CACHE];
    struct sn_span_batch b[SN_BLOCK_CACHE];
    unsigned next;
};
void sn_block_cache_fini(struct sn_block_cache *c);
/* sn_span_store_trace() through cache c (the spans are copied into out). */
int sn_span_store_trace_cached(struct sn_span_store *ss, const uint8_t id[16],
                               struct sn_span_batch *out, struct sn_block_cache *c);

/* Block `block` of the chunk of key `chunk` (as sn_span_ref names them), decoded through cache c
 * (valid until c's next use): NULL when it is gone or damaged (*rc 0) or on an error (*rc
 * -errno). */
const struct sn_span_batch *sn_span_store_block_cached(struct sn_span_store *ss,
                                                       const uint8_t chunk[8], uint32_t block,
                                                       struct sn_block_cache *c, int *rc);

/* One span as the index has it (what a search needs before reading traces). */
struct sn_span_ref {
    uint8_t trace_id[16];
    uint8_t chunk[8]; /* where its trace's spans of this request are: the chunk's key, and */
    uint32_t block;   /* the block (sn_span_store_scan_tag() only; else UINT32_MAX) */
    uint64_t start_us, duration_us; /* the duration saturates at 2^32-1 µs */
    uint8_t kind;
    bool error;
    const char *service, *name, *remote; /* "" when none; valid during the callback */
};
/* Calls fn for each span of service (NULL: of every service) starting in [from_us, to_us),
 * newest first, until fn returns false. Returns 0 or -errno. */
typedef bool (*sn_span_ref_fn)(void *arg, const struct sn_span_ref *r);
int sn_span_store_scan(struct sn_span_store *ss, const char *service, uint64_t from_us,
                       uint64_t to_us, sn_span_ref_fn fn, void *arg);
/* The same, of the spans whose block's tag filter has both tags of hashes tag[0] and tag[1]
 * (sn_tag_hash(); tag[1] 0: tag[0] only; tag NULL: every span): a span of a block without
 * them is not given. A trace whose spans of service carry a tag has such a span in a block
 * that has it (and the tag's key, for a key=value pair), so a search for traces with the tag
 * reaches each of them, and skips the blocks that cannot match without reading them. Each
 * span given names its chunk and block (sn_span_ref). */
int sn_span_store_scan_tag(struct sn_span_store *ss, const char *service, const uint64_t tag[2],
                           uint64_t from_us, uint64_t to_us, sn_span_ref_fn fn, void *arg);

/* The service names (sorted; a new array of new strings, free each and the array). */
int sn_span_store_services(struct sn_span_store *ss, char ***out, size_t *n);
/* The span names (remote: the remote services) seen with service, sorted. -ENOENT: unknown
 * service. Matching is case-insensitive. */
int sn_span_store_names(struct sn_span_store *ss, const char *service, bool remote, char ***out,
                        size_t *n);
void sn_span_store_strings_free(char **a, size_t n);

void sn_span_store_stats(struct sn_span_store *ss, struct sn_span_store_stats *out);

#endif
