/*
 * Ingest (Sonde's extension, docs/api.md): `POST /ca/ingest` takes frames from agents without
 * a bus and from other producers, in the agent's documented forms: JSON (one frame object, an
 * array of them, or JSON lines, as `sonde agent --stdout` prints) or binary (each frame of
 * wire/frame.h behind its length as a little-endian u32, as `sonde agent --format binary`
 * prints), told apart by Content-Type (application/octet-stream is binary).
 *
 * A body is taken whole or not at all: it is decoded and checked first (every frame well
 * formed, of its instrumentation's arity), then added. A bad frame is a 400 naming it and
 * counted; frames for unknown instrumentations (one just deleted), late ones (past the
 * retention) and ones stamped too far ahead are dropped and counted, as the reply says.
 * In a tenant's scope, frame ids are its instrumentations' ids; in the operator's, "N" is a
 * global instrumentation and "tenant/N" a tenant's.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/internal.h"
#include "core/err.h"
#include "http/server.h"
#include "wire/frame_json.h"

#define MAX_FRAMES 100000

struct ingest {
    struct sn_call *c;
    bool apply;
    size_t nframes;
    uint64_t accepted, unknown, late, future, duplicate;
    char why[512];
};

static const char *arity_name(uint8_t a)
{
    static const char *const n[] = {"scalar", "discrete-decomposition", "numeric-decomposition",
                                    "numeric-decomposition (by key)"};
    return a < 4 ? n[a] : "?";
}

/* Checks (first pass) or adds (second pass) one frame. Lock held. */
static int one(const struct sn_wire_frame *f, void *arg)
{
    struct ingest *g = arg;
    struct sn_call *c = g->c;
    struct sn_wire_frame scoped = *f;
    char key[SN_SCOPE_MAX + 300];

    g->nframes++;
    if (c->scope[0]) { /* a tenant names its own instrumentations only */
        if (strchr(f->id, '/')) {
            snprintf(g->why, sizeof(g->why), "frame %zu: id \"%.64s\" is not an instrumentation id",
                     g->nframes, f->id);
            return -EINVAL;
        }
        snprintf(key, sizeof(key), "%s/%s", c->scope, f->id);
        scoped.id = key;
    }
    struct sn_instn *in = sn_server_find_key(c->s, scoped.id);
    if (!g->apply) {
        if (in && sn_ds_opts(in->ds)->arity != f->arity) {
            snprintf(g->why, sizeof(g->why),
                     "frame %zu: a %s frame for instrumentation %s, which is %s", g->nframes,
                     arity_name(f->arity), f->id, arity_name(sn_ds_opts(in->ds)->arity));
            return -EINVAL;
        }
        return 0;
    }
    switch (sn_server_ingest_locked(c->s, &scoped, sn_now())) {
    case SN_DS_ADDED:
        g->accepted++;
        break;
    case -ENOENT:
        g->unknown++;
        break;
    case SN_DS_LATE:
        g->late++;
        break;
    case SN_DS_FUTURE:
        g->future++;
        break;
    case SN_DS_DUPLICATE:
        g->duplicate++;
        break;
    case -ENOMEM:
        return -ENOMEM;
    }
    return 0;
}

/* Length-prefixed binary frames. Returns the number of frames or a negative error (why set). */
static int binary(const unsigned char *p, size_t len, struct ingest *g)
{
    size_t at = 0;
    int n = 0;

    while (at < len) {
        uint32_t flen;
        struct sn_wire_frame f;
        int rc;
        if (len - at < 4) {
            snprintf(g->why, sizeof(g->why), "frame %d: truncated length", n + 1);
            return -EINVAL;
        }
        memcpy(&flen, p + at, 4);
        flen = le32toh(flen);
        at += 4;
        if (flen > len - at) {
            snprintf(g->why, sizeof(g->why), "frame %d: length %u runs past the body", n + 1, flen);
            return -EINVAL;
        }
        if (n == MAX_FRAMES) {
            snprintf(g->why, sizeof(g->why), "more than %d frames", MAX_FRAMES);
            return -E2BIG;
        }
        if ((rc = sn_wire_frame_decode(p + at, flen, &f)) < 0) {
            snprintf(g->why, sizeof(g->why), "frame %d: %s", n + 1, sn_strerror(rc));
            return -EINVAL;
        }
        rc = one(&f, g);
        sn_wire_frame_fini(&f);
        if (rc < 0)
            return rc;
        at += flen;
        n++;
    }
    return n;
}

static int pass(struct sn_call *c, bool bin, struct ingest *g)
{
    g->nframes = 0;
    if (bin)
        return binary(c->req->body, c->req->body_len, g);
    return sn_wire_frames_from_text((const char *)c->req->body, c->req->body_len, MAX_FRAMES, one,
                                    g, g->why, sizeof(g->why));
}

void sn_api_ingest(struct sn_call *c)
{
    struct ingest g = {.c = c};
    const char *ct = c->req->ctype ? c->req->ctype : "";
    bool bin = strncasecmp(ct, "application/octet-stream", 24) == 0 ||
               strncasecmp(ct, "application/x-sonde-frames", 26) == 0;
    int rc;

    pthread_rwlock_rdlock(&c->s->lock);
    rc = pass(c, bin, &g);
    pthread_rwlock_unlock(&c->s->lock);
    if (rc < 0) {
        atomic_fetch_add(&c->s->c.frames_invalid, 1);
        sn_resp_error(c->resp, rc == -E2BIG ? 413 : 400, "ECA_INVAL", "%s",
                      g.why[0] ? g.why : "invalid frames");
        return;
    }
    g.apply = true;
    g.why[0] = '\0';
    pthread_rwlock_wrlock(&c->s->lock);
    rc = pass(c, bin, &g);
    pthread_rwlock_unlock(&c->s->lock);
    if (c->s->http)
        sn_http_wake(c->s->http);
    if (rc < 0) {
        sn_resp_error(c->resp, 500, "ECA_NORESOURCE", "out of memory adding frames");
        return;
    }
    sn_resp_json(c->resp, 200,
                 json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "frames", (json_int_t)g.nframes, "accepted",
                           (json_int_t)g.accepted, "unknown", (json_int_t)g.unknown, "late",
                           (json_int_t)g.late, "future", (json_int_t)g.future, "duplicate",
                           (json_int_t)g.duplicate));
}
