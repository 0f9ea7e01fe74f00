/*
 * Wire frames into JSON and back; see frame_json.h. Encoding builds jansson objects in the
 * documented member order. Decoding checks every member before it is used, every message
 * names the member, and a failure frees what was built so far through sn_wire_frame_fini()
 * (entries count in f->n as soon as they own something).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hist.h"
#include "wire/frame_json.h"
#include "wire/wire_fail.h"

#define KEY_SHOWN 40 /* bytes of a key quoted in a message */

/* ------------------------------------------------------------------------------------------
 * Encoding
 */

static const char *const arity_names[] = {"scalar", "discrete-decomposition",
                                          "numeric-decomposition", "numeric-decomposition"};

/* A count as a JSON integer: past INT64_MAX it would read back negative, so it saturates. */
static json_t *count_json(uint64_t c)
{
    return json_integer(c > INT64_MAX ? INT64_MAX : (json_int_t)c);
}

/* Appends [[lo,hi],count] to a. Returns 0 or -ENOMEM (a unchanged). Built without json_pack():
 * parsing a format per range is most of the cost of a frame with many buckets. */
static int append_range(json_t *a, int64_t lo, int64_t hi, uint64_t c)
{
    json_t *r = json_array(), *lh = json_array();

    /* json_array_append_new() takes its value even when it fails */
    if (!r || !lh || json_array_append_new(lh, json_integer((json_int_t)lo)) ||
        json_array_append_new(lh, json_integer((json_int_t)hi))) {
        json_decref(lh);
        json_decref(r);
        return -ENOMEM;
    }
    if (json_array_append_new(r, lh) || json_array_append_new(r, count_json(c))) {
        json_decref(r);
        return -ENOMEM;
    }
    return json_array_append_new(a, r) ? -ENOMEM : 0;
}

#define RANGES_STACK 64 /* ranges converted without an allocation */

/* h as CA's raw form of a distribution, [[lo,hi],count],... ascending, by core/hist.h's one
 * rule (sn_hist_ranges()). NULL when out of memory. */
static json_t *ranges_json(const struct sn_hist *h)
{
    struct sn_hist_range stack[RANGES_STACK], *r = stack;
    size_t nb = h ? sn_hist_nbuckets(h) : 0, n;
    json_t *a = json_array();

    if (a && nb > RANGES_STACK && !(r = malloc(nb * sizeof(*r)))) {
        json_decref(a);
        return NULL;
    }
    n = a ? sn_hist_ranges(h, r) : 0;
    for (size_t i = 0; i < n; i++)
        if (append_range(a, r[i].lo, r[i].hi, r[i].count) < 0) {
            json_decref(a);
            a = NULL;
            break;
        }
    if (r != stack)
        free(r);
    return a;
}

/* "value" of a discrete or numeric-by-key frame: {key: count or ranges} in entry order. */
static json_t *keyed_json(const struct sn_wire_frame *f)
{
    json_t *o = json_object();

    for (size_t i = 0; o && i < f->n; i++) {
        const struct sn_wire_entry *e = &f->entries[i];
        json_t *v = f->arity == SN_WIRE_DISCRETE ? count_json(e->count) : ranges_json(e->hist);
        if (!v) {
            json_decref(o);
            return NULL;
        }
        /* fails (and frees v) only for a key that is not UTF-8: left out, as documented */
        json_object_set_new(o, e->key, v);
    }
    return o;
}

json_t *sn_wire_frame_to_json(const struct sn_wire_frame *f)
{
    json_t *value;

    if (f->arity > SN_WIRE_NUMERIC_BY_KEY || !f->id || !f->host)
        return NULL;
    switch (f->arity) {
    case SN_WIRE_SCALAR:
        value = count_json(f->total);
        break;
    case SN_WIRE_NUMERIC:
        value = f->n ? ranges_json(f->entries[0].hist) : json_array();
        break;
    default:
        value = keyed_json(f);
        break;
    }
    /* "o" takes value, even when the pack fails */
    return json_pack("{s:i,s:s,s:s,s:I,s:s,s:o,s:{s:o,s:o}}", "v", SN_WIRE_VERSION, "id", f->id,
                     "host", f->host, "t", (json_int_t)f->t, "arity", arity_names[f->arity],
                     "value", value, "drops", "over_cap", count_json(f->over_cap), "map_full",
                     count_json(f->map_full));
}

/* ------------------------------------------------------------------------------------------
 * Decoding
 */

static bool get_count(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* `"key"` for messages, shortened to KEY_SHOWN bytes. */
static void quote_key(char *out, size_t len, const char *key, size_t keylen)
{
    if (keylen > KEY_SHOWN)
        snprintf(out, len, "\"%.*s...\"", KEY_SHOWN, key);
    else
        snprintf(out, len, "\"%.*s\"", (int)keylen, key);
}

static char *dup_bytes(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* "id" or "host": a string of 1..SN_WIRE_MAX_NAME bytes without NUL, copied into *out. */
static int get_name(const json_t *j, const char *member, char **out, char *why, size_t whylen)
{
    const json_t *s = json_object_get(j, member);
    size_t len;

    if (!s)
        return sn_wire_fail(why, whylen, -EINVAL, "\"%s\" is missing", member);
    if (!json_is_string(s))
        return sn_wire_fail(why, whylen, -EINVAL, "\"%s\" must be a string", member);
    len = json_string_length(s);
    if (len == 0 || len > SN_WIRE_MAX_NAME)
        return sn_wire_fail(why, whylen, -EINVAL, "\"%s\" must be 1 to %d bytes long (is %zu)",
                            member, SN_WIRE_MAX_NAME, len);
    if (strlen(json_string_value(s)) != len)
        return sn_wire_fail(why, whylen, -EINVAL, "\"%s\" must not contain a NUL byte", member);
    *out = dup_bytes(json_string_value(s), len);
    return *out ? 0 : -ENOMEM;
}

/*
 * The bucket whose integer range is exactly [lo, hi]. The bucket of lo is the candidate for
 * positive ranges; for negative ones lo (a bucket's far edge, minus one) may round to the next
 * bucket as a double, and hi (its near edge) is exact, so both are tried. Distinct buckets hold
 * disjoint integers, so a match is the only one.
 */
static bool bucket_of_range(int64_t lo, int64_t hi, struct sn_bucket *out)
{
    const int64_t cand[2] = {lo, hi};

    if (lo > hi)
        return false;
    for (int k = 0; k < 2; k++) {
        struct sn_bucket b = sn_bucket_from_double((double)cand[k]);
        int64_t l, h;
        if (sn_bucket_int_range(b, &l, &h) == 0 && l == lo && h == hi) {
            *out = b;
            return true;
        }
    }
    return false;
}

/*
 * A histogram in CA's raw form, [[lo,hi],count]..., into a new *out with its count in *count.
 * where prefixes messages ("value" or `value: "key"`).
 */
static int get_hist(const json_t *a, const char *where, struct sn_hist **out, uint64_t *count,
                    char *why, size_t whylen)
{
    struct sn_hist *h;
    uint64_t sum = 0;
    int rc = 0;

    if (!json_is_array(a))
        return sn_wire_fail(why, whylen, -EINVAL, "%s must be an array of [[lo,hi],count]", where);
    h = sn_hist_create();
    if (!h)
        return -ENOMEM;
    for (size_t i = 0; i < json_array_size(a); i++) {
        const json_t *el = json_array_get(a, i), *r, *lo, *hi;
        struct sn_bucket b;
        uint64_t c;

        if (!json_is_array(el) || json_array_size(el) != 2) {
            rc = sn_wire_fail(why, whylen, -EINVAL, "%s: item %zu must be [[lo,hi],count]", where,
                              i + 1);
            break;
        }
        r = json_array_get(el, 0);
        lo = json_array_get(r, 0);
        hi = json_array_get(r, 1);
        if (!json_is_array(r) || json_array_size(r) != 2 || !json_is_integer(lo) ||
            !json_is_integer(hi)) {
            rc =
                sn_wire_fail(why, whylen, -EINVAL,
                             "%s: item %zu: the range must be [lo,hi], two integers", where, i + 1);
            break;
        }
        if (!get_count(json_array_get(el, 1), &c)) {
            rc = sn_wire_fail(why, whylen, -EINVAL,
                              "%s: item %zu: the count must be a non-negative integer", where,
                              i + 1);
            break;
        }
        if (!bucket_of_range(json_integer_value(lo), json_integer_value(hi), &b)) {
            rc = sn_wire_fail(why, whylen, -EINVAL,
                              "%s: range [%" JSON_INTEGER_FORMAT ",%" JSON_INTEGER_FORMAT
                              "] is not a histogram bucket",
                              where, json_integer_value(lo), json_integer_value(hi));
            break;
        }
        if (c == 0) /* the binary form carries no empty bucket */
            continue;
        if (__builtin_add_overflow(sum, c, &sum)) {
            rc = sn_wire_fail(why, whylen, -EINVAL, "%s: the counts add up to more than 2^64-1",
                              where);
            break;
        }
        rc = sn_hist_insert_raw_end(h, b, c);
        if (rc < 0)
            break;
    }
    if (rc < 0) {
        sn_hist_destroy(h);
        return rc;
    }
    *out = h;
    *count = sn_hist_count(h);
    return 0;
}

static int get_entries(const json_t *v, struct sn_wire_frame *f, char *why, size_t whylen)
{
    size_t n = f->arity == SN_WIRE_NUMERIC ? 1 : json_object_size(v);
    const char *key;
    json_t *val;
    int rc;

    f->entries = calloc(n ? n : 1, sizeof(*f->entries));
    if (!f->entries)
        return -ENOMEM;
    if (f->arity == SN_WIRE_NUMERIC) {
        struct sn_wire_entry *e = &f->entries[0];
        if (!(e->key = dup_bytes("", 0)))
            return -ENOMEM;
        f->n = 1;
        rc = get_hist(v, "value", &e->hist, &e->count, why, whylen);
        f->total = e->count;
        return rc;
    }
    /* json_object_foreach wants a mutable object; nothing here modifies it */
    json_object_foreach((json_t *)v, key, val)
    {
        size_t keylen = json_object_iter_key_len(json_object_key_to_iter(key));
        struct sn_wire_entry *e = &f->entries[f->n];
        char q[KEY_SHOWN + 8], where[KEY_SHOWN + 16];

        quote_key(q, sizeof(q), key, keylen);
        if (keylen > SN_WIRE_MAX_KEY)
            return sn_wire_fail(why, whylen, -EINVAL, "value: key %s is longer than %d bytes", q,
                                SN_WIRE_MAX_KEY);
        if (strlen(key) != keylen)
            return sn_wire_fail(why, whylen, -EINVAL, "value: key %s contains a NUL byte", q);
        if (f->n == n) /* cannot happen: the object did not grow */
            return sn_wire_fail(why, whylen, -EINVAL, "value: changed while decoded");
        if (!(e->key = dup_bytes(key, keylen)))
            return -ENOMEM;
        f->n++;
        if (f->arity == SN_WIRE_DISCRETE) {
            if (!get_count(val, &e->count))
                return sn_wire_fail(why, whylen, -EINVAL,
                                    "value: %s must be a non-negative integer", q);
        } else {
            snprintf(where, sizeof(where), "value: %s", q);
            rc = get_hist(val, where, &e->hist, &e->count, why, whylen);
            if (rc < 0)
                return rc;
        }
        if (__builtin_add_overflow(f->total, e->count, &f->total))
            return sn_wire_fail(why, whylen, -EINVAL,
                                "value: the counts add up to more than 2^64-1");
    }
    return 0;
}

static int get_drops(const json_t *j, struct sn_wire_frame *f, char *why, size_t whylen)
{
    const json_t *d = json_object_get(j, "drops"), *m;

    if (!d)
        return 0;
    if (!json_is_object(d))
        return sn_wire_fail(why, whylen, -EINVAL, "\"drops\" must be an object");
    if ((m = json_object_get(d, "over_cap")) && !get_count(m, &f->over_cap))
        return sn_wire_fail(why, whylen, -EINVAL,
                            "drops: \"over_cap\" must be a non-negative integer");
    if ((m = json_object_get(d, "map_full")) && !get_count(m, &f->map_full))
        return sn_wire_fail(why, whylen, -EINVAL,
                            "drops: \"map_full\" must be a non-negative integer");
    return 0;
}

static int decode(const json_t *j, struct sn_wire_frame *f, char *why, size_t whylen)
{
    const json_t *v, *t, *arity, *value;
    const char *a;
    int rc;

    if (!json_is_object(j))
        return sn_wire_fail(why, whylen, -EINVAL, "a frame must be a JSON object");
    v = json_object_get(j, "v");
    if (v && !(json_is_integer(v) && json_integer_value(v) == SN_WIRE_VERSION))
        return sn_wire_fail(why, whylen, -EINVAL, "\"v\" must be %d (the only version known)",
                            SN_WIRE_VERSION);
    if ((rc = get_name(j, "id", &f->id, why, whylen)) < 0 ||
        (rc = get_name(j, "host", &f->host, why, whylen)) < 0)
        return rc;

    t = json_object_get(j, "t");
    if (!t)
        return sn_wire_fail(why, whylen, -EINVAL, "\"t\" is missing");
    if (!json_is_integer(t))
        return sn_wire_fail(why, whylen, -EINVAL, "\"t\" must be an integer");
    if (json_integer_value(t) < 0)
        return sn_wire_fail(why, whylen, -EINVAL, "\"t\" must not be negative");
    f->t = json_integer_value(t);

    arity = json_object_get(j, "arity");
    if (!arity)
        return sn_wire_fail(why, whylen, -EINVAL, "\"arity\" is missing");
    a = json_string_value(arity); /* NULL unless a string */
    value = json_object_get(j, "value");
    if (a && strcmp(a, "scalar") == 0) {
        f->arity = SN_WIRE_SCALAR;
        if (value && !get_count(value, &f->total))
            return sn_wire_fail(why, whylen, -EINVAL,
                                "\"value\" must be a non-negative integer for a scalar frame");
    } else if (a && strcmp(a, "discrete-decomposition") == 0) {
        f->arity = SN_WIRE_DISCRETE;
        if (value && !json_is_object(value))
            return sn_wire_fail(
                why, whylen, -EINVAL,
                "\"value\" must be an object {key: count} for a discrete-decomposition "
                "frame");
    } else if (a && strcmp(a, "numeric-decomposition") == 0) {
        f->arity = json_is_object(value) ? SN_WIRE_NUMERIC_BY_KEY : SN_WIRE_NUMERIC;
        if (value && !json_is_object(value) && !json_is_array(value))
            return sn_wire_fail(why, whylen, -EINVAL,
                                "\"value\" must be an array of [[lo,hi],count] or an object {key: "
                                "[[[lo,hi],count],...]} for a numeric-decomposition frame");
    } else {
        return sn_wire_fail(why, whylen, -EINVAL,
                            "\"arity\" must be \"scalar\", \"discrete-decomposition\" or "
                            "\"numeric-decomposition\"");
    }
    if (!value)
        return sn_wire_fail(why, whylen, -EINVAL, "\"value\" is missing");
    if (f->arity != SN_WIRE_SCALAR && (rc = get_entries(value, f, why, whylen)) < 0)
        return rc;
    return get_drops(j, f, why, whylen);
}

int sn_wire_frame_from_json(const json_t *j, struct sn_wire_frame *out, char *why, size_t whylen)
{
    int rc;

    memset(out, 0, sizeof(*out));
    if (why && whylen)
        why[0] = '\0';
    rc = decode(j, out, why, whylen);
    if (rc < 0) {
        if (rc == -ENOMEM)
            sn_wire_fail(why, whylen, rc, "out of memory");
        sn_wire_frame_fini(out);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Bodies of frames
 */

struct reader {
    const char *text;
    size_t len, pos;
    size_t line; /* the line pos is on, from 1 */
    size_t max, n;
    sn_wire_frame_fn fn;
    void *arg;
    char *why;
    size_t whylen;
};

/* Skips blanks; returns the number of newlines skipped. */
static size_t skip_blank(struct reader *r)
{
    size_t nl = 0;

    for (; r->pos < r->len; r->pos++) {
        char c = r->text[r->pos];
        if (c == '\n')
            nl++;
        else if (c != ' ' && c != '\t' && c != '\r')
            break;
    }
    r->line += nl;
    return nl;
}

/* Decodes the next frame object o and hands it to fn. */
static int deliver(struct reader *r, const json_t *o)
{
    struct sn_wire_frame f;
    char sub[512];
    int rc;

    rc = sn_wire_frame_from_json(o, &f, sub, sizeof(sub));
    if (rc < 0)
        return sn_wire_fail(r->why, r->whylen, rc, "frame %zu: %s", r->n, sub);
    rc = r->fn ? r->fn(&f, r->arg) : 0;
    sn_wire_frame_fini(&f);
    return rc;
}

/* Counts frame n+1; -E2BIG past max. */
static int next_frame(struct reader *r)
{
    if (r->n == r->max)
        return sn_wire_fail(r->why, r->whylen, -E2BIG, "more than %zu frames", r->max);
    r->n++;
    return 0;
}

static int from_array(struct reader *r)
{
    json_error_t err;
    json_t *a = json_loadb(r->text, r->len, JSON_REJECT_DUPLICATES, &err);
    int rc = 0;

    if (!a)
        return sn_wire_fail(r->why, r->whylen, -EINVAL, "line %d: invalid JSON: %s", err.line,
                            err.text);
    for (size_t i = 0; i < json_array_size(a) && rc == 0; i++) {
        const json_t *o = json_array_get(a, i);
        if ((rc = next_frame(r)) != 0)
            break;
        if (!json_is_object(o))
            rc = sn_wire_fail(r->why, r->whylen, -EINVAL, "frame %zu: not a JSON object", r->n);
        else
            rc = deliver(r, o);
    }
    json_decref(a);
    return rc;
}

static int from_lines(struct reader *r)
{
    int rc;

    skip_blank(r);
    while (r->pos < r->len) {
        json_error_t err;
        json_t *o;
        size_t start = r->pos;

        if ((rc = next_frame(r)) != 0)
            return rc;
        if (r->text[r->pos] != '{')
            return sn_wire_fail(r->why, r->whylen, -EINVAL,
                                "frame %zu: line %zu: not a JSON object", r->n, r->line);
        o = json_loadb(r->text + r->pos, r->len - r->pos,
                       JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &err);
        if (!o)
            return sn_wire_fail(r->why, r->whylen, -EINVAL, "frame %zu: line %zu: invalid JSON: %s",
                                r->n, r->line + (size_t)(err.line > 0 ? err.line - 1 : 0),
                                err.text);
        /* on success err.position is what the decoder read: up to the closing brace */
        r->pos += (size_t)err.position;
        for (size_t i = start; i < r->pos; i++)
            r->line += r->text[i] == '\n';
        rc = deliver(r, o);
        json_decref(o);
        if (rc)
            return rc;
        if (skip_blank(r) == 0 && r->pos < r->len) {
            if ((rc = next_frame(r)) != 0)
                return rc;
            return sn_wire_fail(r->why, r->whylen, -EINVAL,
                                "frame %zu: line %zu: a frame must start on a new line", r->n,
                                r->line);
        }
    }
    return 0;
}

int sn_wire_frames_from_text(const char *text, size_t len, size_t max, sn_wire_frame_fn fn,
                             void *arg, char *why, size_t whylen)
{
    struct reader r = {.text = text,
                       .len = len,
                       .line = 1,
                       .max = max < INT_MAX ? max : INT_MAX,
                       .fn = fn,
                       .arg = arg,
                       .why = why,
                       .whylen = whylen};
    int rc;

    if (why && whylen)
        why[0] = '\0';
    skip_blank(&r);
    if (r.pos < len && text[r.pos] == '[') {
        r.pos = 0;
        r.line = 1;
        rc = from_array(&r);
    } else {
        rc = from_lines(&r);
    }
    return rc ? rc : (int)r.n;
}
