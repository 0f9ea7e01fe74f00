/*
 * The heatmap resources of `sonde serve --no-agent` (../shared/ref/joyent-ca.md §1.5,
 * §4.2-4.4) over HTTP, with data ingested at chosen seconds: value/heatmap/image (reply
 * fields, the PNG decoded back with libspng and checked pixel for pixel: the reference's
 * worked example, default duration, auto-scale, limits and messages, isolate/exclude/
 * decompose_all, selected, hues, coloring, weights, Sonde's yscale=log, JSON bodies and the raw
 * image/png form), details (required parameters, exact cells, small shares, one pixel-to-column
 * mapping with the image), average and percentile (§4.4's figures and methodology).
 *
 * Expected pixels are computed here: colours with an HSV conversion of the test's own, and
 * where the reference gives no figure (yscale=log) with render/raster.h as the oracle, which
 * tests/unit/test_heatmap.c holds to the reference. Data sit 5-8 minutes in the past, inside
 * the 600 s retention and older than the 15 s window of "recent" sources, so no request waits
 * (test_sources alone reports from 9 s ago, and asks only for seconds every source filled).
 * Where Sonde and CA's code differ in a way the reference leaves open, CA's code decides (the
 * reference treats the code as the truth): the mixing of layers, the order of hue checks.
 */
#include <jansson.h>
#include <math.h>
#include <spng.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/b64.h"
#include "core/hist.h"
#include "http.h"
#include "render/raster.h"
#include "t.h"

static const char *sonde;
static struct th_serve srv;
static int port;
static long long B; /* a base second for data: a multiple of 60, 6-8 minutes ago */

static const uint8_t WHITE[3] = {255, 255, 255};

#define NUM "numeric-decomposition"

/* ------------------------------------------------------------------------------------------
 * HTTP and JSON helpers
 */

__attribute__((format(printf, 5, 0))) static int vreq(struct th_resp *r, const char *method,
                                                      const char *const *hdrs, const char *body,
                                                      const char *fmt, va_list ap)
{
    char path[8192];
    vsnprintf(path, sizeof(path), fmt, ap);
    int rc = th_request(port, method, path, hdrs, body, body ? strlen(body) : 0, 10000, r);
    if (rc != 0)
        t_note("%s %s: th_request %d", method, path, rc);
    return rc;
}

/* GET (printf-style path); status 0 when the request failed at the socket level */
static void get(struct th_resp *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void get(struct th_resp *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (vreq(r, "GET", NULL, NULL, fmt, ap) != 0)
        memset(r, 0, sizeof(*r));
    va_end(ap);
}

static bool is_json_reply(const struct th_resp *r)
{
    char ct[128];
    return th_header(r, "Content-Type", ct, sizeof(ct)) && strncmp(ct, "application/json", 16) == 0;
}

/* A 200 JSON reply's body, parsed (NULL, reported, otherwise). */
static json_t *ok_json(struct th_resp *r, const char *what)
{
    json_t *j = NULL;
    t_note("%s: status %d, body %.400s", what, r->status, r->body ? r->body : "(none)");
    if (T_EQ(r->status, 200) && T_OK(is_json_reply(r))) {
        j = json_loadb(r->body, r->len, 0, NULL);
        T_OK(j != NULL);
    }
    th_resp_free(r);
    return j;
}

static json_t *get_json(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *get_json(const char *fmt, ...)
{
    struct th_resp r;
    char path[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    get(&r, "%s", path);
    return ok_json(&r, path);
}

/* GET with a JSON body (parameters from the body; POST is not a route of value resources) */
static void get_body(struct th_resp *r, const char *body, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void get_body(struct th_resp *r, const char *body, const char *fmt, ...)
{
    static const char *const hdrs[] = {"Content-Type: application/json", NULL};
    va_list ap;
    va_start(ap, fmt);
    if (vreq(r, "GET", hdrs, body, fmt, ap) != 0)
        memset(r, 0, sizeof(*r));
    va_end(ap);
}

/* Checks a 409 ECA_INVAL reply with exactly msg. */
static void check_inval(struct th_resp *r, const char *msg, const char *what)
{
    char ct[128];
    t_note("%s: status %d, body %.300s", what, r->status, r->body ? r->body : "(none)");
    if (T_EQ(r->status, 409) && T_OK(th_header(r, "Content-Type", ct, sizeof(ct)))) {
        T_OK(strncmp(ct, "application/json", 16) == 0);
        json_t *j = json_loadb(r->body, r->len, 0, NULL);
        json_t *e = json_object_get(j, "error");
        t_note("%s: body %.300s", what, r->body);
        T_STR(json_string_value(json_object_get(e, "code")), "ECA_INVAL");
        t_note("%s: body %.300s", what, r->body);
        T_STR(json_string_value(json_object_get(e, "message")), msg);
        json_decref(j);
    }
    th_resp_free(r);
}

static void inval(const char *msg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void inval(const char *msg, const char *fmt, ...)
{
    struct th_resp r;
    char path[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    get(&r, "%s", path);
    check_inval(&r, msg, path);
}

static void expect_404_empty(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void expect_404_empty(const char *fmt, ...)
{
    struct th_resp r;
    char path[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    get(&r, "%s", path);
    t_note("%s: status %d, body %.200s", path, r.status, r.body ? r.body : "");
    T_EQ(r.status, 404);
    t_note("%s: body %.200s", path, r.body ? r.body : "");
    T_EQU(r.len, 0);
    th_resp_free(&r);
}

static long long jint(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    t_note("\"%s\" is %s", k,
           v ? (json_is_integer(v) ? "an integer" : "not an integer") : "absent");
    T_OK(json_is_integer(v));
    return json_is_integer(v) ? (long long)json_integer_value(v) : -12345678;
}

static double jnum(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    t_note("\"%s\" is %s", k, v ? (json_is_number(v) ? "a number" : "not a number") : "absent");
    T_OK(json_is_number(v));
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Creates an instrumentation from a form body; returns its id (-1 on failure). */
static int create(const char *form)
{
    struct th_resp r;
    int id = -1;
    if (th_send(port, "POST", "/ca/instrumentations", "application/x-www-form-urlencoded", form,
                &r) != 0)
        return -1;
    t_note("create %s: %d %.300s", form, r.status, r.body ? r.body : "");
    if (T_EQ(r.status, 201)) {
        json_t *j = json_loadb(r.body, r.len, 0, NULL);
        const char *s = json_string_value(json_object_get(j, "id"));
        id = s ? atoi(s) : -1;
        json_decref(j);
    }
    th_resp_free(&r);
    return id;
}

static int create_latency(void)
{
    return create("module=syscall&stat=syscalls&decomposition=latency");
}

static int create_by_execname(void)
{
    return create("module=syscall&stat=syscalls&decomposition=execname,latency");
}

/* Ingests one frame of instrumentation id from host at second t; value is JSON text. */
static void ingest(int id, const char *host, long long t, const char *arity, const char *value)
{
    struct th_resp r;
    char body[16384];
    snprintf(body, sizeof(body),
             "{\"v\":1,\"id\":\"%d\",\"host\":\"%s\",\"t\":%lld,\"arity\":\"%s\","
             "\"value\":%s}",
             id, host, t, arity, value);
    T_EQ(th_send(port, "POST", "/ca/ingest", "application/json", body, &r), 0);
    t_note("ingest %.300s: %d %.300s", body, r.status, r.body ? r.body : "");
    if (T_EQ(r.status, 200)) {
        json_t *j = json_loadb(r.body, r.len, 0, NULL);
        t_note("ingest %.300s: %.300s", body, r.body);
        T_EQ(json_integer_value(json_object_get(j, "accepted")), 1);
        json_decref(j);
    }
    th_resp_free(&r);
}

/* ------------------------------------------------------------------------------------------
 * Images
 */

struct img {
    int w, h;
    uint8_t *px; /* w * h * 3, row 0 at the top */
};

static void img_free(struct img *im)
{
    free(im->px);
    memset(im, 0, sizeof(*im));
}

/* Decodes a PNG, which must be exactly 8-bit RGB (no alpha, no palette). */
static bool png_decode(const void *png, size_t len, struct img *im)
{
    spng_ctx *d = spng_ctx_new(0);
    struct spng_ihdr ihdr;
    size_t n = 0;
    bool ok = false;

    memset(im, 0, sizeof(*im));
    if (!T_OK(d != NULL))
        return false;
    T_OK(len >= 8 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0);
    if (T_EQ(spng_set_png_buffer(d, png, len), 0) && T_EQ(spng_get_ihdr(d, &ihdr), 0) &&
        T_EQ(ihdr.bit_depth, 8) && T_EQ(ihdr.color_type, SPNG_COLOR_TYPE_TRUECOLOR) &&
        T_EQ(spng_decoded_image_size(d, SPNG_FMT_RGB8, &n), 0) &&
        T_EQU(n, (size_t)ihdr.width * ihdr.height * 3) && (im->px = malloc(n)) != NULL &&
        T_EQ(spng_decode_image(d, im->px, n, SPNG_FMT_RGB8, 0), 0)) {
        im->w = (int)ihdr.width;
        im->h = (int)ihdr.height;
        ok = true;
    }
    if (!ok)
        img_free(im);
    spng_ctx_free(d);
    return ok;
}

/* Decodes a reply's base64 "image" and checks it is width x height of the reply. */
static bool reply_image(const json_t *o, struct img *im)
{
    const char *b = json_string_value(json_object_get(o, "image"));
    memset(im, 0, sizeof(*im));
    if (!T_OK(b != NULL))
        return false;
    size_t len = strlen(b);
    unsigned char *png = malloc(sn_b64_decoded_max(len));
    ssize_t n = png ? sn_b64_decode_strict(b, len, png) : -1;
    bool ok = T_OK(n > 0) && png_decode(png, (size_t)n, im);
    free(png);
    if (ok) {
        T_EQ(im->w, jint(o, "width"));
        T_EQ(im->h, jint(o, "height"));
    }
    return ok;
}

/* GET an image reply: its JSON (caller releases) and its decoded pixels (im->px NULL on
 * failure). */
static json_t *get_image(struct img *im, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static json_t *get_image(struct img *im, const char *fmt, ...)
{
    struct th_resp r;
    char path[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    memset(im, 0, sizeof(*im));
    get(&r, "%s", path);
    json_t *o = ok_json(&r, path);
    if (o)
        reply_image(o, im);
    return o;
}

/* The pixels only. */
static bool image_of(struct img *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool image_of(struct img *im, const char *fmt, ...)
{
    char path[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    json_t *o = get_image(im, "%s", path);
    json_decref(o);
    return im->px != NULL;
}

static const uint8_t *PX(const struct img *im, int x, int y)
{
    return &im->px[((size_t)y * (size_t)im->w + (size_t)x) * 3];
}

static bool is_white(const struct img *im, int x, int y)
{
    return memcmp(PX(im, x, y), WHITE, 3) == 0;
}

static bool same_pixels(const struct img *a, const struct img *b)
{
    return a->px && b->px && a->w == b->w && a->h == b->h &&
           memcmp(a->px, b->px, (size_t)a->w * (size_t)a->h * 3) == 0;
}

/* The colour CA draws for a normalized value v in a layer of hue h: HSV with saturation 0.9v
 * and value 0.95 (§4.2 step 6), each channel rounded; white for 0. The test's own conversion
 * (the classic sector formula). */
static void colour(double hue, double v, uint8_t out[3])
{
    if (v == 0) {
        memcpy(out, WHITE, 3);
        return;
    }
    double s = 0.9 * v, val = 0.95, hh = fmod(hue, 360.0) / 60.0;
    int i = (int)floor(hh);
    double f = hh - i, p = val * (1 - s), q = val * (1 - s * f), t = val * (1 - s * (1 - f));
    double r, g, b;
    switch (i) {
    case 0:
        r = val, g = t, b = p;
        break;
    case 1:
        r = q, g = val, b = p;
        break;
    case 2:
        r = p, g = val, b = t;
        break;
    case 3:
        r = p, g = q, b = val;
        break;
    case 4:
        r = t, g = p, b = val;
        break;
    default:
        r = val, g = p, b = q;
        break;
    }
    out[0] = (uint8_t)lround(r * 255);
    out[1] = (uint8_t)lround(g * 255);
    out[2] = (uint8_t)lround(b * 255);
}

/* The hue (degrees) of an RGB pixel. */
static double hue_of(const uint8_t *p)
{
    double r = p[0], g = p[1], b = p[2];
    double mx = fmax(r, fmax(g, b)), mn = fmin(r, fmin(g, b)), d = mx - mn, h;
    if (d == 0)
        return -1;
    if (mx == r)
        h = 60 * fmod((g - b) / d, 6);
    else if (mx == g)
        h = 60 * ((b - r) / d + 2);
    else
        h = 60 * ((r - g) / d + 4);
    return h < 0 ? h + 360 : h;
}

/* Every pixel of row y is rgb. */
static void check_row(const struct img *im, int y, const uint8_t rgb[3], const char *what)
{
    for (int x = 0; x < im->w; x++) {
        t_note("%s: row %d, x %d: got %u,%u,%u, want %u,%u,%u", what, y, x, PX(im, x, y)[0],
               PX(im, x, y)[1], PX(im, x, y)[2], rgb[0], rgb[1], rgb[2]);
        if (!T_MEM(PX(im, x, y), rgb, 3))
            return;
    }
}

/* A 10-row image: want[y] is the colour of row y (hue, v), v = 0 for white. */
static void check_rows(const struct img *im, const double hue[10], const double v[10],
                       const char *what)
{
    T_REQUIRE(im->px && im->h == 10);
    for (int y = 0; y < 10; y++) {
        uint8_t c[3];
        colour(hue[y], v[y], c);
        check_row(im, y, c, what);
    }
}

/* ------------------------------------------------------------------------------------------
 * value/heatmap/image
 */

#define HM "/ca/instrumentations/%d/value/heatmap"

/* §4.2's example's bucket values (2.27, 2.27, 0.45, 1.36, 1.36, 0.27 in buckets 2, 3, 4, 6,
 * 7, 8 of 10 over [0, 50)) have these ranks; real log-linear buckets ([10,10] is a bucket, and
 * lies in [10, 15)) with counts in the same order draw the same pixels. */
static const char *const WORKED =
    "[[[10,10],5],[[15,15],5],[[20,20],2],[[30,30],3],[[35,35],3],[[40,40],1]]";
static const struct sn_hm_range WORKED_R[] = {{10, 10, 5}, {15, 15, 5}, {20, 20, 2},
                                              {30, 30, 3}, {35, 35, 3}, {40, 40, 1}};
/* The reference's pixel rows, top to bottom (§4.2) */
static const uint8_t WORKED_ROWS[10][3] = {
    {255, 255, 255}, {242, 219, 206}, {242, 148, 97}, {242, 148, 97},  {255, 255, 255},
    {242, 195, 170}, {242, 101, 24},  {242, 101, 24}, {255, 255, 255}, {255, 255, 255},
};
#define Q10 "width=10&height=10&nbuckets=10&ymin=0"

static void test_worked_example(void)
{
    int id = create_latency();
    long long S = B + 1;
    struct img im, again;
    T_REQUIRE(id > 0);
    ingest(id, "h1", S, NUM, WORKED);

    json_t *o = get_image(&im, HM "/image?start_time=%lld&duration=1&" Q10 "&ymax=50", id, S);
    T_REQUIRE(o && im.px);
    /* the reply's fields (§1.5) */
    T_EQ(jint(o, "start_time"), S);
    T_EQ(jint(o, "duration"), 1);
    T_EQ(jint(o, "end_time"), S + 1);
    T_EQ(jint(o, "requested_start_time"), S);
    T_EQ(jint(o, "requested_duration"), 1);
    T_EQ(jint(o, "requested_end_time"), S + 1);
    T_EQ(jint(o, "minreporting"), 1);
    T_OK(jint(o, "nsources") >= 0);
    T_OK(json_is_object(json_object_get(o, "transformations")) &&
         json_object_size(json_object_get(o, "transformations")) == 0);
    T_EQ(jint(o, "nbuckets"), 10);
    T_EQ(jint(o, "width"), 10);
    T_EQ(jint(o, "height"), 10);
    T_DEQ(jnum(o, "ymin"), 0.0);
    T_DEQ(jnum(o, "ymax"), 50.0);
    T_OK(json_is_array(json_object_get(o, "present")) &&
         json_array_size(json_object_get(o, "present")) == 0);
    T_OK(json_is_string(json_object_get(o, "image")));
    T_OK(json_object_get(o, "delay") == NULL); /* nothing to wait for */
    T_EQ(im.w, 10);
    T_EQ(im.h, 10);

    /* pixel rows exact, as the reference's table */
    for (int y = 0; y < 10; y++)
        check_row(&im, y, WORKED_ROWS[y], "worked example");

    /* the renderer as an oracle on the same ranges */
    uint8_t rgb[10 * 10 * 3];
    struct sn_hm_column col = {WORKED_R, 6};
    struct sn_hm_params p = {.width = 10, .height = 10, .nbuckets = 10, .ymin = 0, .ymax = 50};
    struct sn_hm_drawn d;
    T_EQ(sn_hm_render(&p, &col, NULL, 0, 1, rgb, &d), 0);
    T_MEM(im.px, rgb, sizeof(rgb));
    /* max_count: the largest drawn cell's count, what full colour means with linear shading */
    T_OK(d.cell_max > 0);
    T_DEQ(jnum(o, "max_count"), d.cell_max);

    /* without ymax, the same data auto-scale to 50 (M = 41) and draw the same image */
    json_decref(o);
    o = get_image(&again, HM "/image?start_time=%lld&duration=1&" Q10, id, S);
    T_REQUIRE(o);
    T_DEQ(jnum(o, "ymax"), 50.0);
    T_OK(same_pixels(&im, &again));
    json_decref(o);
    img_free(&again);

    /* defaults: 600 x 300, 100 buckets */
    o = get_image(&again, HM "/image?start_time=%lld&duration=1", id, S);
    T_REQUIRE(o);
    T_EQ(jint(o, "width"), 600);
    T_EQ(jint(o, "height"), 300);
    T_EQ(jint(o, "nbuckets"), 100);
    T_DEQ(jnum(o, "ymin"), 0.0);
    T_DEQ(jnum(o, "ymax"), 50.0);
    T_EQ(again.w, 600);
    T_EQ(again.h, 300);
    json_decref(o);
    img_free(&again);
    img_free(&im);
}

/* nsources counts the sources reporting (two hosts here), minreporting the fewest that
 * reported in any second of the interval. */
static void test_sources(void)
{
    int id = create_latency();
    long long R = (long long)time(NULL) - 9; /* recent: these hosts are expected */
    struct img im;
    T_REQUIRE(id > 0);
    ingest(id, "h1", R, NUM, "[[[10,10],1]]");
    ingest(id, "h2", R, NUM, "[[[10,10],1]]");
    ingest(id, "h1", R - 1, NUM, "[[[10,10],1]]");

    json_t *o = get_image(&im, HM "/image?start_time=%lld&duration=1&" Q10 "&ymax=50", id, R);
    T_REQUIRE(o);
    T_EQ(jint(o, "nsources"), 2);
    T_EQ(jint(o, "minreporting"), 2);
    json_decref(o);
    img_free(&im);
    o = get_image(&im, HM "/image?start_time=%lld&duration=2&" Q10 "&ymax=50", id, R - 1);
    T_REQUIRE(o);
    T_EQ(jint(o, "nsources"), 2);
    T_EQ(jint(o, "minreporting"), 1);
    T_EQ(im.w, 10);
    json_decref(o);
    img_free(&im);
    o = get_image(&im, HM "/image?start_time=%lld&duration=3&" Q10 "&ymax=50", id, R - 2);
    T_REQUIRE(o);
    T_EQ(jint(o, "minreporting"), 0);
    json_decref(o);
    img_free(&im);
}

/* The column of pixel x when ncols columns share w pixels (§4.2 step 7). */
static int column_at(int x, int w, int ncols)
{
    for (int i = 0; i < ncols; i++)
        if ((long long)i * w / ncols <= x && x < (long long)(i + 1) * w / ncols)
            return i;
    return -1;
}

static bool column_has_ink(const struct img *im, int x)
{
    for (int y = 0; y < im->h; y++)
        if (!is_white(im, x, y))
            return true;
    return false;
}

/* The image's default duration is 60: 60 columns, each one second. */
static void test_default_duration(void)
{
    int id = create_latency();
    long long S = B + 10;
    struct img im;
    T_REQUIRE(id > 0);
    ingest(id, "h1", S, NUM, "[[[10,10],1]]");
    ingest(id, "h1", S + 30, NUM, "[[[10,10],1]]");
    ingest(id, "h1", S + 59, NUM, "[[[10,10],1]]");
    ingest(id, "h1", S + 60, NUM, "[[[10,10],1]]"); /* past the interval */

    for (int w = 600; w >= 599; w--) {
        json_t *o = get_image(&im, HM "/image?start_time=%lld&width=%d", id, S, w);
        T_REQUIRE(o && im.px);
        T_EQ(jint(o, "duration"), 60);
        T_EQ(jint(o, "end_time"), S + 60);
        T_EQ(jint(o, "requested_duration"), 60);
        T_EQ(jint(o, "minreporting"), 0);
        T_EQ(jint(o, "width"), w);
        T_DEQ(jnum(o, "ymax"), 12.0); /* M = 11 */
        for (int x = 0; x < w; x++) {
            int c = column_at(x, w, 60);
            t_note("width %d, x %d (column %d)", w, x, c);
            T_EQ(column_has_ink(&im, x), c == 0 || c == 30 || c == 59);
        }
        json_decref(o);
        img_free(&im);
    }
}

/* Without ymax, ymax is auto-scaled from the window's data (§4.2 step 2) and returned. */
static void test_autoscale(void)
{
    int id = create_latency();
    long long S = B + 20;
    struct img a, b;
    T_REQUIRE(id > 0);
    ingest(id, "h1", S, NUM, "[[[100,109],1],[[1000,1099],3]]");
    ingest(id, "h1", S + 1, NUM, "[[[10,10],1]]");
    ingest(id, "h1", S + 5, NUM, "[[[2000000,2099999],1]]"); /* outside [S, S+2) */

    struct sn_hm_range r = {1000, 1099, 3};
    struct sn_hm_column c = {&r, 1};
    T_DEQ(sn_hm_autoscale(&c, 1), 1200.0);
    json_t *o = get_image(&a, HM "/image?start_time=%lld&duration=2&" Q10, id, S);
    T_REQUIRE(o);
    T_DEQ(jnum(o, "ymax"), 1200.0); /* M = 1100 */
    json_decref(o);
    T_REQUIRE(image_of(&b, HM "/image?start_time=%lld&duration=2&" Q10 "&ymax=1200", id, S));
    T_OK(same_pixels(&a, &b));
    img_free(&a);
    img_free(&b);

    struct sn_hm_range big = {2000000, 2099999, 1};
    c.r = &big;
    double want = sn_hm_autoscale(&c, 1);
    T_DEQ(want, 2200000.0);
    o = get_image(&a, HM "/image?start_time=%lld&duration=6&" Q10, id, S);
    T_REQUIRE(o);
    T_DEQ(jnum(o, "ymax"), want);
    json_decref(o);
    img_free(&a);

    /* no data at all: the image is blank */
    o = get_image(&a, HM "/image?start_time=%lld&duration=2&" Q10, id, S + 100);
    T_REQUIRE(o && a.px);
    T_DEQ(jnum(o, "ymax"), 0.0); /* M = 0 */
    for (int i = 0; i < a.w * a.h; i++)
        if (!T_MEM(&a.px[i * 3], WHITE, 3))
            break;
    json_decref(o);
    img_free(&a);

    /* CA's quirk: a range [0,0] never raises M above 0, so zeros alone leave it blank */
    ingest(id, "h1", S + 50, NUM, "[[[0,0],5]]");
    o = get_image(&a, HM "/image?start_time=%lld&duration=1&" Q10, id, S + 50);
    T_REQUIRE(o && a.px);
    T_DEQ(jnum(o, "ymax"), 0.0);
    for (int i = 0; i < a.w * a.h; i++)
        if (!T_MEM(&a.px[i * 3], WHITE, 3))
            break;
    json_decref(o);
    img_free(&a);
    /* with a ymax, the zeros are drawn in the bottom row */
    T_REQUIRE(image_of(&a, HM "/image?start_time=%lld&duration=1&" Q10 "&ymax=50", id, S + 50));
    double hue[10] = {21, 21, 21, 21, 21, 21, 21, 21, 21, 21}, v[10] = {0};
    v[9] = 1;
    check_rows(&a, hue, v, "[0,0] with ymax 50");
    img_free(&a);
}

/* Limits and messages of the image's parameters (§1.2, §1.5). */
static void test_limits(void)
{
    int id = create_latency();
    long long S = B + 1;
    struct img im;
    T_REQUIRE(id > 0);
    ingest(id, "h1", S, NUM, WORKED);
#define IMG HM "/image?start_time=%lld&duration=1&"
    inval("value \"9\" for param \"width\" not valid: value too small (min: 10)", IMG "width=9", id,
          S);
    inval("value \"1001\" for param \"width\" not valid: value too large (max: 1000)",
          IMG "width=1001", id, S);
    /* one request may not draw for seconds: 3600 images of an hour (found by fuzz_api) */
    inval("too much to draw: 3600 images of 3600 s (1944000000 pixels and cells; at most "
          "134217728): ask for fewer data points, a shorter duration or smaller images",
          HM "/image?start_time=1000&duration=3600&ndatapoints=3600", id);
    inval("value \"abc\" for param \"width\" not valid: not a number", IMG "width=abc", id, S);
    inval("value \"9\" for param \"height\" not valid: value too small (min: 10)", IMG "height=9",
          id, S);
    inval("value \"1001\" for param \"height\" not valid: value too large (max: 1000)",
          IMG "height=1001", id, S);
    inval("value \"0\" for param \"nbuckets\" not valid: value too small (min: 1)",
          IMG "nbuckets=0", id, S);
    inval("value \"101\" for param \"nbuckets\" not valid: value too large (max: 100)",
          IMG "nbuckets=101", id, S);
    inval("value \"-1\" for param \"ymin\" not valid: value too small (min: 0)", IMG "ymin=-1", id,
          S);
    inval("value \"1000000000001\" for param \"ymin\" not valid: value too large (max: "
          "1000000000000)",
          IMG "ymin=1000000000001", id, S);
    inval("value \"-1\" for param \"ymax\" not valid: value too small (min: 0)", IMG "ymax=-1", id,
          S);
    inval("value \"1000000000001\" for param \"ymax\" not valid: value too large (max: "
          "1000000000000)",
          IMG "ymax=1000000000001", id, S);
    inval("value \"yes\" for param \"isolate\" not valid: not a boolean", IMG "isolate=yes", id, S);
    inval("value \"1\" for param \"exclude\" not valid: not a boolean", IMG "exclude=1", id, S);
    inval("value \"TRUE\" for param \"decompose_all\" not valid: not a boolean",
          IMG "decompose_all=TRUE", id, S);
    inval("value \"mass\" for param \"weights\" not valid: unsupported value", IMG "weights=mass",
          id, S);
    inval("value \"log\" for param \"coloring\" not valid: unsupported value", IMG "coloring=log",
          id, S);
    inval("value \"exp\" for param \"yscale\" not valid: unsupported value", IMG "yscale=exp", id,
          S);

    /* the limits themselves are accepted */
    static const char *const ok[] = {
        "width=10&height=1000", "width=1000&height=10", "width=1000&height=1000", "nbuckets=1",
        "nbuckets=100",         "ymax=1000000000000",   "ymin=49&ymax=50"};
    static const int ow[] = {10, 1000, 1000, 600, 600, 600, 600},
                     oh[] = {1000, 10, 1000, 300, 300, 300, 300};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        json_t *o = get_image(&im, IMG "%s", id, S, ok[i]);
        t_note("%s", ok[i]);
        T_OK(o && im.px);
        if (o && im.px) {
            T_EQ(im.w, ow[i]);
            T_EQ(im.h, oh[i]);
        }
        json_decref(o);
        img_free(&im);
    }
    /* the same conf parameters are checked on details, average and percentile */
    inval("value \"9\" for param \"width\" not valid: value too small (min: 10)",
          HM "/details?start_time=%lld&duration=1&width=9&ymax=50&x=0&y=0", id, S);
    inval("value \"101\" for param \"nbuckets\" not valid: value too large (max: 100)",
          HM "/average?start_time=%lld&nbuckets=101", id, S);
    inval("value \"0\" for param \"nbuckets\" not valid: value too small (min: 1)",
          HM "/percentile?start_time=%lld&nbuckets=0&percentile=0.5", id, S);
#undef IMG
}

static void test_ymax_above_ymin(void)
{
    int id = create_latency();
    long long S = B + 1;
    struct img im;
    T_REQUIRE(id > 0);
    ingest(id, "h1", S, NUM, WORKED);
    const char *msg = "\"ymax\" must be greater than \"ymin\"";
    inval(msg, HM "/image?start_time=%lld&duration=1&ymin=50&ymax=50", id, S);
    inval(msg, HM "/image?start_time=%lld&duration=1&ymin=60&ymax=50", id, S);
    inval(msg, HM "/image?start_time=%lld&duration=1&ymax=0", id, S);
    inval(msg, HM "/details?start_time=%lld&duration=1&ymin=50&ymax=50&x=0&y=0", id, S);
    inval(msg, HM "/average?start_time=%lld&ymin=50&ymax=50", id, S);
    inval(msg, HM "/percentile?start_time=%lld&ymin=50&ymax=40&percentile=0.5", id, S);

    /* ymin 10, ymax 50: 10 buckets of 4 */
    json_t *o = get_image(&im,
                          HM "/image?start_time=%lld&duration=1&width=10&height=10&"
                             "nbuckets=10&ymin=10&ymax=50",
                          id, S);
    T_REQUIRE(o && im.px);
    T_DEQ(jnum(o, "ymin"), 10.0);
    T_DEQ(jnum(o, "ymax"), 50.0);
    /* bucket 0: 10 (5); bucket 1: 15 (5); bucket 2: 20 (2); bucket 5: 30 (3); bucket 6: 35
     * (3); bucket 7: 40 (1): the worked example's ranks, shifted */
    static const double hue[10] = {21, 21, 21, 21, 21, 21, 21, 21, 21, 21};
    static const double v[10] = {0, 0, 1.0 / 6, 2.0 / 3, 2.0 / 3, 0, 0, 1.0 / 3, 1, 1};
    check_rows(&im, hue, v, "ymin 10");
    json_decref(o);
    img_free(&im);
}

/* present: the keys with data in the interval, sorted (Sonde sorts; CA left it unsorted) */
static void test_present_sorted(void)
{
    int id = create_by_execname();
    long long S = B + 30;
    T_REQUIRE(id > 0);
    ingest(id, "h1", S, NUM, "{\"zeta\":[[[10,10],1]]}");
    ingest(id, "h1", S + 1, NUM, "{\"mid\":[[[20,20],1]],\"alpha\":[[[10,10],1]]}");
    ingest(id, "h1", S + 2, NUM, "{\"beta\":[[[10,10],1]],\"zeta\":[[[10,10],1]]}");

    json_t *o = get_json(HM "/image?start_time=%lld&duration=2&" Q10 "&ymax=50", id, S);
    T_REQUIRE(o);
    char *p = json_dumps(json_object_get(o, "present"), JSON_COMPACT);
    T_STR(p, "[\"alpha\",\"mid\",\"zeta\"]");
    free(p);
    json_decref(o);
    o = get_json(HM "/image?start_time=%lld&duration=3&" Q10 "&ymax=50", id, S);
    T_REQUIRE(o);
    p = json_dumps(json_object_get(o, "present"), JSON_COMPACT);
    T_STR(p, "[\"alpha\",\"beta\",\"mid\",\"zeta\"]");
    free(p);
    json_decref(o);
    o = get_json(HM "/image?start_time=%lld&duration=1&" Q10 "&ymax=50", id, S + 5);
    T_REQUIRE(o);
    p = json_dumps(json_object_get(o, "present"), JSON_COMPACT);
    T_STR(p, "[]");
    free(p);
    json_decref(o);
}

/* Two keys of five each: "a" at 10 (bucket 2, row 7), "b" at 40 (bucket 8, row 1). */
static int two_keys(long long S)
{
    int id = create_by_execname();
    if (id > 0)
        ingest(id, "h1", S, NUM, "{\"a\":[[[10,10],5]],\"b\":[[[40,40],5]]}");
    return id;
}

/* Rows 7 and 1 of a two_keys() image (hue -1: white). */
static void check_two(const struct img *im, double hue7, double hue1, const char *what)
{
    double hue[10] = {0}, v[10] = {0};
    hue[7] = hue7, v[7] = hue7 < 0 ? 0 : 1;
    hue[1] = hue1, v[1] = hue1 < 0 ? 0 : 1;
    check_rows(im, hue, v, what);
}

/* §4.2 step 3: highlight (default), isolate, exclude, decompose_all; only one of them. */
static void test_modes(void)
{
    long long S = B + 40;
    int id = two_keys(S);
    struct img im;
    T_REQUIRE(id > 0);
#define IMG2 HM "/image?start_time=%lld&duration=1&" Q10 "&ymax=50&"
    T_REQUIRE(image_of(&im, IMG2 "_=1", id, S));
    check_two(&im, 21, 21, "no selection");
    img_free(&im);
    T_REQUIRE(image_of(&im, IMG2 "selected=b", id, S));
    check_two(&im, 21, 112, "selected=b");
    img_free(&im);
    T_REQUIRE(image_of(&im, IMG2 "selected=b&isolate=true", id, S));
    check_two(&im, -1, 112, "isolate");
    img_free(&im);
    T_REQUIRE(image_of(&im, IMG2 "selected=b&exclude=true", id, S));
    check_two(&im, 21, -1, "exclude");
    img_free(&im);
    T_REQUIRE(image_of(&im, IMG2 "decompose_all=true", id, S));
    check_two(&im, 112, 203, "decompose_all"); /* a, b sorted: hues 112 and 203 */
    img_free(&im);
    T_REQUIRE(image_of(&im, IMG2 "isolate=true", id, S)); /* nothing selected: blank */
    check_two(&im, -1, -1, "isolate without selection");
    img_free(&im);
    T_REQUIRE(
        image_of(&im, IMG2 "selected=b&isolate=false&exclude=true&decompose_all=false", id, S));
    check_two(&im, 21, -1, "exclude, the others false");
    img_free(&im);

    /* decompose_all ranks equal counts by name, not in the order they arrived: "b" came first */
    int id2 = create_by_execname();
    T_REQUIRE(id2 > 0);
    ingest(id2, "h1", S, NUM, "{\"b\":[[[40,40],5]]}");
    ingest(id2, "h1", S + 1, NUM, "{\"a\":[[[10,10],5]]}");
    T_REQUIRE(image_of(
        &im, HM "/image?start_time=%lld&duration=2&" Q10 "&ymax=50&decompose_all=true", id2, S));
    uint8_t c[3];
    colour(112, 1, c); /* a: the first key */
    T_MEM(PX(&im, 5, 7), c, 3);
    colour(203, 1, c); /* b: the second */
    T_MEM(PX(&im, 0, 1), c, 3);
    T_MEM(PX(&im, 0, 7), WHITE, 3);
    T_MEM(PX(&im, 5, 1), WHITE, 3);
    img_free(&im);
    /* ... and the bigger key first, wherever it sorts: one more "b" makes it layer 1 */
    ingest(id2, "h1", S + 2, NUM, "{\"b\":[[[40,40],1]]}");
    T_REQUIRE(image_of(
        &im, HM "/image?start_time=%lld&duration=3&" Q10 "&ymax=50&decompose_all=true", id2, S));
    colour(203, 1, c);          /* a: now the second */
    T_MEM(PX(&im, 4, 7), c, 3); /* the middle column of 3 over 10 pixels */
    colour(112, 1, c);          /* b: the first */
    T_MEM(PX(&im, 0, 1), c, 3);
    img_free(&im);
    json_t *lj =
        get_json(HM "/image?start_time=%lld&duration=3&" Q10 "&ymax=50&decompose_all=true", id2, S);
    if (lj) {
        const json_t *l = json_object_get(lj, "layers");
        T_STR(json_string_value(json_object_get(json_array_get(l, 1), "key")), "b");
        T_EQ(jint(json_array_get(l, 1), "hue"), 112);
        T_STR(json_string_value(json_object_get(json_array_get(l, 2), "key")), "a");
        T_EQ(jint(json_array_get(l, 2), "hue"), 203);
        json_decref(lj);
    }

    const char *msg =
        "only one of \"isolate\", \"exclude\", and \"decompose_all\" may be specified";
    inval(msg, IMG2 "selected=b&isolate=true&exclude=true", id, S);
    inval(msg, IMG2 "isolate=true&decompose_all=true", id, S);
    inval(msg, IMG2 "exclude=true&decompose_all=true", id, S);
    inval(msg, IMG2 "isolate=true&exclude=true&decompose_all=true", id, S);
}

/* selected, comma-separated or repeated; the order of the keys gives their hues. */
static void test_selected_forms(void)
{
    long long S = B + 41;
    int id = create_by_execname();
    struct img comma, repeated, reversed;
    T_REQUIRE(id > 0);
    /* a: 4 at 10 (row 7), b: 2 at 30 (row 3), c: 1 at 40 (row 1): ranks 1, 2/3, 1/3 */
    ingest(id, "h1", S, NUM, "{\"a\":[[[10,10],4]],\"b\":[[[30,30],2]],\"c\":[[[40,40],1]]}");
    T_REQUIRE(image_of(&comma, IMG2 "selected=a,c", id, S));
    T_REQUIRE(image_of(&repeated, IMG2 "selected=a&selected=c", id, S));
    T_OK(same_pixels(&comma, &repeated));
    double hue[10] = {0, 203, 0, 21, 0, 0, 0, 112, 0, 0};
    double v[10] = {0, 1.0 / 3, 0, 2.0 / 3, 0, 0, 0, 1, 0, 0};
    check_rows(&comma, hue, v, "selected=a,c");
    check_rows(&repeated, hue, v, "selected=a&selected=c");
    T_REQUIRE(image_of(&reversed, IMG2 "selected=c,a", id, S));
    hue[1] = 112, hue[7] = 203;
    check_rows(&reversed, hue, v, "selected=c,a");
    img_free(&comma);
    img_free(&repeated);
    img_free(&reversed);
}

/* §4.2 step 4: default hues 21 (the rest) and 112 (the first key); the caller's hues; their
 * count and range. */
static void test_hues(void)
{
    long long S = B + 42;
    int id = two_keys(S);
    struct img im, more, rep;
    T_REQUIRE(id > 0);
    T_REQUIRE(image_of(&im, IMG2 "selected=b", id, S));
    t_note("rest %u,%u,%u", PX(&im, 0, 7)[0], PX(&im, 0, 7)[1], PX(&im, 0, 7)[2]);
    T_NEAR(hue_of(PX(&im, 0, 7)), 21, 1);
    t_note("b %u,%u,%u", PX(&im, 0, 1)[0], PX(&im, 0, 1)[1], PX(&im, 0, 1)[2]);
    T_NEAR(hue_of(PX(&im, 0, 1)), 112, 1);
    img_free(&im);

    T_REQUIRE(image_of(&im, IMG2 "selected=b&hues=0,240", id, S));
    check_two(&im, 0, 240, "hues=0,240");
    T_NEAR(hue_of(PX(&im, 0, 1)), 240, 1);
    T_REQUIRE(image_of(&rep, IMG2 "selected=b&hues=0&hues=240", id, S));
    T_OK(same_pixels(&im, &rep));
    T_REQUIRE(image_of(&more, IMG2 "selected=b&hues=0,240,120", id, S)); /* extra: ignored */
    T_OK(same_pixels(&im, &more));
    img_free(&im);
    img_free(&more);
    img_free(&rep);
    T_REQUIRE(image_of(&im, IMG2 "selected=b&isolate=true&hues=300", id, S));
    check_two(&im, -1, 300, "isolate, hues=300");
    img_free(&im);
    T_REQUIRE(image_of(&im, IMG2 "hues=200", id, S));
    check_two(&im, 200, 200, "hues=200, nothing selected");
    img_free(&im);
    T_REQUIRE(image_of(&im, IMG2 "hues=359", id, S));
    check_two(&im, 359, 359, "hues=359");
    img_free(&im);
    T_REQUIRE(image_of(&im, IMG2 "selected=b&exclude=true&hues=0,240", id, S));
    check_two(&im, 0, -1, "exclude, hues=0,240");
    img_free(&im);
    T_REQUIRE(image_of(&im, IMG2 "decompose_all=true&hues=10,20,30", id, S));
    check_two(&im, 20, 30, "decompose_all, hues=10,20,30");
    img_free(&im);

    inval("need 2 hues", IMG2 "selected=b&hues=10", id, S);
    inval("need 3 hues", IMG2 "selected=a,b&hues=10,20", id, S);
    inval("need 2 hues", IMG2 "selected=a,b&isolate=true&hues=10", id, S);
    inval("invalid hue", IMG2 "hues=400", id, S);
    inval("invalid hue", IMG2 "hues=360", id, S);
    inval("invalid hue", IMG2 "hues=-1", id, S);
    inval("invalid hue", IMG2 "hues=abc", id, S);
    inval("invalid hue", IMG2 "selected=b&hues=10,400", id, S);
    /* CA counts the hues before it reads them */
    inval("need 3 hues", IMG2 "selected=a,b&hues=400", id, S);
}

/* "layers" (Sonde's extension): the layers drawn, in drawing order, each with the hue drawn:
 * {"hue"} for the rest, {"key", "hue"} for a key's. Rows 7 ("a") and 1 ("b") of the image
 * must be drawn in the hues the reply names. */
static void test_layers(void)
{
    long long S = B + 190;
    int id = two_keys(S);
    struct img im;
    T_REQUIRE(id > 0);
    static const struct {
        const char *q, *layers;
        double h7, h1; /* the hues of rows 7 and 1 (-1: white) */
    } cases[] = {
        {"_=1", "[{\"hue\":21}]", 21, 21},
        {"selected=b", "[{\"hue\":21},{\"key\":\"b\",\"hue\":112}]", 21, 112},
        {"selected=a,b", "[{\"hue\":21},{\"key\":\"a\",\"hue\":112},{\"key\":\"b\",\"hue\":203}]",
         112, 203},
        {"selected=b,a", "[{\"hue\":21},{\"key\":\"b\",\"hue\":112},{\"key\":\"a\",\"hue\":203}]",
         203, 112},
        {"selected=b&isolate=true", "[{\"key\":\"b\",\"hue\":112}]", -1, 112},
        {"isolate=true", "[]", -1, -1},
        {"selected=b&exclude=true", "[{\"hue\":21}]", 21, -1},
        {"decompose_all=true",
         "[{\"hue\":21},{\"key\":\"a\",\"hue\":112},{\"key\":\"b\",\"hue\":203}]", 112, 203},
        {"selected=b&hues=0,240", "[{\"hue\":0},{\"key\":\"b\",\"hue\":240}]", 0, 240},
        {"selected=b&hues=0,240,120", "[{\"hue\":0},{\"key\":\"b\",\"hue\":240}]", 0, 240},
        {"selected=b&isolate=true&hues=300", "[{\"key\":\"b\",\"hue\":300}]", -1, 300},
        {"selected=a,b&isolate=true&hues=300,359",
         "[{\"key\":\"a\",\"hue\":300},{\"key\":\"b\",\"hue\":359}]", 300, 359},
        {"selected=b&exclude=true&hues=0,240", "[{\"hue\":0}]", 0, -1},
        {"hues=200", "[{\"hue\":200}]", 200, 200},
        {"decompose_all=true&hues=10,20,30",
         "[{\"hue\":10},{\"key\":\"a\",\"hue\":20},{\"key\":\"b\",\"hue\":30}]", 20, 30},
        /* fewer hues than layers: the default beyond */
        {"decompose_all=true&hues=10",
         "[{\"hue\":10},{\"key\":\"a\",\"hue\":112},{\"key\":\"b\",\"hue\":203}]", 112, 203},
        /* a selected key without data is still a layer (an empty one) */
        {"selected=zz,b", "[{\"hue\":21},{\"key\":\"zz\",\"hue\":112},{\"key\":\"b\",\"hue\":203}]",
         21, 203},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *o = get_image(&im, IMG2 "%s", id, S, cases[i].q);
        if (!o || !im.px) {
            json_decref(o);
            img_free(&im);
            continue;
        }
        const json_t *l = json_object_get(o, "layers");
        char *txt = json_dumps(l, JSON_COMPACT | JSON_ENCODE_ANY);
        t_note("%s", cases[i].q);
        T_STR(txt, cases[i].layers);
        free(txt);
        check_two(&im, cases[i].h7, cases[i].h1, cases[i].q);
        /* each key's layer is drawn in the hue the reply gives it (full intensity here) */
        for (size_t k = 0; k < json_array_size(l); k++) {
            const json_t *e = json_array_get(l, k);
            const char *key = json_string_value(json_object_get(e, "key"));
            uint8_t c[3];
            if (!key || (strcmp(key, "a") && strcmp(key, "b")))
                continue;
            colour(json_number_value(json_object_get(e, "hue")), 1, c);
            t_note("%s: layer %s", cases[i].q, key);
            T_MEM(PX(&im, 0, strcmp(key, "a") == 0 ? 7 : 1), c, 3);
        }
        json_decref(o);
        img_free(&im);
    }

    /* from a JSON body too, and on every point of ndatapoints */
    struct th_resp r;
    char body[512];
    snprintf(body, sizeof(body),
             "{\"start_time\":%lld,\"duration\":1,\"ndatapoints\":2,\"width\":10,\"height\":10,"
             "\"selected\":[\"a\"],\"hues\":[5,6]}",
             S);
    get_body(&r, body, HM "/image", id);
    json_t *a = ok_json(&r, body);
    if (T_OK(json_is_array(a) && json_array_size(a) == 2))
        for (size_t k = 0; k < 2; k++) {
            char *txt = json_dumps(json_object_get(json_array_get(a, k), "layers"), JSON_COMPACT);
            t_note("point %zu", k);
            T_STR(txt, "[{\"hue\":5},{\"key\":\"a\",\"hue\":6}]");
            free(txt);
        }
    json_decref(a);
}

/* decompose_all gives 63 keys a layer each (equal counts: the first 63 by name); the rest holds
 * the others. */
static void test_layers_limit(void)
{
    long long S = B + 191;
    int id = create_by_execname();
    char v[8192];
    size_t at = 0;
    T_REQUIRE(id > 0);
    at += (size_t)snprintf(v + at, sizeof(v) - at, "{");
    for (int i = 0; i < 65; i++)
        at +=
            (size_t)snprintf(v + at, sizeof(v) - at, "%s\"k%02d\":[[[10,10],1]]", i ? "," : "", i);
    snprintf(v + at, sizeof(v) - at, "}");
    ingest(id, "h1", S, NUM, v);
    json_t *o = get_json(IMG2 "decompose_all=true", id, S);
    T_REQUIRE(o);
    const json_t *l = json_object_get(o, "layers");
    T_REQUIRE(json_is_array(l) && T_EQU(json_array_size(l), 64));
    T_OK(json_object_get(json_array_get(l, 0), "key") == NULL);
    T_EQ(jint(json_array_get(l, 0), "hue"), 21);
    for (size_t k = 1; k < 64; k++) {
        char want[8];
        snprintf(want, sizeof(want), "k%02zu", k - 1);
        t_note("layer %zu", k);
        T_STR(json_string_value(json_object_get(json_array_get(l, k), "key")), want);
        t_note("layer %zu", k);
        T_DEQ(jnum(json_array_get(l, k), "hue"), sn_hm_default_hue(k));
    }
    T_EQU(json_array_size(json_object_get(o, "present")), 65);
    json_decref(o);
}

/* decompose_all with 73 keys: the 63 with the largest counts over the image's interval get
 * the layers, largest first, equal counts by name; the small keys that sort first stay in the
 * rest. "a00".."a09" have 1 each (and "a05" 1000 in a second outside the interval), "m00".."m59"
 * 10 each, "z0" 50, "z1" 20 + 20 over two seconds, "z2" 50. Each key its own row, so the image
 * shows which layer drew it. */
static void test_decompose_biggest(void)
{
    long long S = B + 280;
    int id = create_by_execname();
    char v[8192];
    size_t at;
    T_REQUIRE(id > 0);
    for (int sec = 0; sec < 2; sec++) {
        at = (size_t)snprintf(v, sizeof(v), "{\"z1\":[[[10,10],20]]");
        for (int i = 0; sec == 0 && i < 10; i++)
            at += (size_t)snprintf(v + at, sizeof(v) - at, ",\"a%02d\":[[[20,20],1]]", i);
        for (int i = 0; sec == 0 && i < 60; i++)
            at += (size_t)snprintf(v + at, sizeof(v) - at, ",\"m%02d\":[[[30,30],10]]", i);
        if (sec == 0)
            at += (size_t)snprintf(v + at, sizeof(v) - at,
                                   ",\"z0\":[[[40,40],50]],\"z2\":[[[40,40],50]]");
        snprintf(v + at, sizeof(v) - at, "}");
        ingest(id, "h1", S + sec, NUM, v);
    }
    ingest(id, "h1", S + 2, NUM, "{\"a05\":[[[20,20],1000]]}");
#define IMGB HM "/image?start_time=%lld&duration=2&" Q10 "&ymax=50&decompose_all=true"
    json_t *o = get_json(IMGB, id, S);
    T_REQUIRE(o);
    const json_t *l = json_object_get(o, "layers");
    T_REQUIRE(json_is_array(l) && T_EQU(json_array_size(l), 64));
    T_OK(json_object_get(json_array_get(l, 0), "key") == NULL);
    for (size_t k = 1; k < 64; k++) {
        char want[8];
        if (k <= 3)
            snprintf(want, sizeof(want), "%s", k == 1 ? "z0" : k == 2 ? "z2" : "z1");
        else
            snprintf(want, sizeof(want), "m%02zu", k - 4);
        t_note("layer %zu", k);
        T_STR(json_string_value(json_object_get(json_array_get(l, k), "key")), want);
        t_note("layer %zu", k);
        T_DEQ(jnum(json_array_get(l, k), "hue"), sn_hm_default_hue(k));
    }
    T_EQU(json_array_size(json_object_get(o, "present")), 73);
    T_STR(json_string_value(json_array_get(json_object_get(o, "present"), 0)), "a00");
    json_decref(o);

    /* what is drawn is what layers says: row 7 (10) is z1's hue alone in both columns; row 5
     * (20) the rest's (21), the a keys; row 1 (40) mixes z0's and z2's hues (layers 1 and 2) */
    struct img im;
    T_REQUIRE(image_of(&im, IMGB, id, S));
    for (int x = 0; x < 10; x += 9) {
        t_note("x %d", x);
        T_NEAR(hue_of(PX(&im, x, 7)), sn_hm_default_hue(3), 3);
    }
    T_NEAR(hue_of(PX(&im, 0, 5)), 21, 3);
    T_OK(!is_white(&im, 0, 3)); /* m00 .. m59, mixed */
    T_MEM(PX(&im, 9, 5), WHITE, 3);
    T_MEM(PX(&im, 9, 1), WHITE, 3);
    T_OK(!is_white(&im, 0, 1));
    img_free(&im);
    /* the same over the one second S + 1: z1 alone, layer 1 */
    o = get_json(HM "/image?start_time=%lld&duration=1&" Q10 "&ymax=50&decompose_all=true", id,
                 S + 1);
    if (o) {
        l = json_object_get(o, "layers");
        T_EQU(json_array_size(l), 2);
        T_STR(json_string_value(json_object_get(json_array_get(l, 1), "key")), "z1");
        json_decref(o);
    }
#undef IMGB
}

/* coloring=linear: value / max(1, largest) rather than ranks (§4.2 step 5). */
static void test_coloring(void)
{
    int id = create_latency();
    long long S = B + 43;
    struct img rank, dflt, lin;
    T_REQUIRE(id > 0);
    ingest(id, "h1", S, NUM, WORKED);
    T_REQUIRE(image_of(&rank, IMG2 "coloring=rank", id, S));
    T_REQUIRE(image_of(&dflt, IMG2 "_=1", id, S));
    T_OK(same_pixels(&rank, &dflt));
    for (int y = 0; y < 10; y++)
        check_row(&rank, y, WORKED_ROWS[y], "coloring=rank");
    T_REQUIRE(image_of(&lin, IMG2 "coloring=linear", id, S));
    /* bucket values 5, 5, 2, 3, 3, 1 in buckets 2, 3, 4, 6, 7, 8 (rows 7, 6, 5, 3, 2, 1) */
    static const double hue[10] = {21, 21, 21, 21, 21, 21, 21, 21, 21, 21};
    static const double v[10] = {0, 0.2, 0.6, 0.6, 0, 0.4, 1, 1, 0, 0};
    check_rows(&lin, hue, v, "coloring=linear");
    T_OK(!same_pixels(&lin, &rank));
    img_free(&rank);
    img_free(&dflt);
    img_free(&lin);

    /* linear divides by max(1, largest): shares below 1 stay pale. [1000,1099] spreads 0.12
     * over each bucket of 12 (bucket 84, row 15 of 100), 0.08 over bucket 83 (row 16). */
    ingest(id, "h1", S + 1, NUM, "[[[1000,1099],1]]");
    T_REQUIRE(image_of(&lin,
                       HM "/image?start_time=%lld&duration=1&width=10&height=100&"
                          "nbuckets=100&ymin=0&ymax=1200&coloring=linear",
                       id, S + 1));
    /* buckets 84..90 (rows 15..9) hold 0.12 each, 83 and 91 (rows 16 and 8) 0.08 */
    uint8_t c[3];
    colour(21, 0.12, c);
    for (int y = 9; y <= 15; y++)
        check_row(&lin, y, c, "linear, 0.12");
    colour(21, 0.08, c);
    check_row(&lin, 16, c, "linear, 0.08");
    check_row(&lin, 8, c, "linear, 0.08");
    check_row(&lin, 7, WHITE, "linear, above the range");
    check_row(&lin, 17, WHITE, "linear, below the range");
    img_free(&lin);
}

/* A pixel shared by two layers mixes their colours by intensity (§4.2 step 6): CA mixes the
 * layers' rounded colours, colour(hue, v) * v / sum, into a byte array, which truncates. Here
 * "a" (the rest, hue 21) and "b" (hue 112) have 5 each in one bucket: both rank 1, half each:
 * (242,101,24) and (53,242,24) give (147.5, 171.5, 24), stored as 147,171,24. */
static void test_mixed_layers(void)
{
    int id = create_by_execname();
    long long S = B + 43;
    struct img im;
    uint8_t rest[3], key[3];
    T_REQUIRE(id > 0);
    ingest(id, "h1", S, NUM, "{\"a\":[[[10,10],5]],\"b\":[[[12,12],5]]}");
    colour(21, 1, rest);
    colour(112, 1, key);
    T_MEM(rest, "\xf2\x65\x18", 3); /* 242,101,24 */
    T_MEM(key, "\x35\xf2\x18", 3);  /* 53,242,24 */
    T_REQUIRE(image_of(&im, IMG2 "selected=b", id, S));
    uint8_t want[3];
    for (int k = 0; k < 3; k++)
        want[k] = (uint8_t)floor(rest[k] * 0.5 + key[k] * 0.5);
    T_MEM(want, "\x93\xab\x18", 3); /* 147,171,24 */
    check_row(&im, 7, want, "a and b in one bucket");
    check_row(&im, 1, WHITE, "nothing at 40");
    img_free(&im);

    /* unequal shares: the rest 5 (rank 1) and "b" 1 (rank 1/3, with b's 3 at 40 ranked 2/3)
     * in bucket 2: weights 3/4 and 1/4 of (242,101,24) and colour(112, 1/3) = (179,242,170):
     * (226.25, 136.25, 60.5), stored 226,136,60. Mixing unrounded colours gives red 226.5. */
    int id2 = create_by_execname();
    T_REQUIRE(id2 > 0);
    ingest(id2, "h1", S, NUM, "{\"a\":[[[10,10],5]],\"b\":[[[12,12],1],[[40,40],3]]}");
    colour(112, 1.0 / 3, key);
    T_MEM(key, "\xb3\xf2\xaa", 3); /* 179,242,170 */
    for (int k = 0; k < 3; k++)
        want[k] = (uint8_t)floor(rest[k] * 0.75 + key[k] * 0.25);
    T_MEM(want, "\xe2\x88\x3c", 3); /* 226,136,60 */
    T_REQUIRE(image_of(&im, IMG2 "selected=b", id2, S));
    check_row(&im, 7, want, "rest 1 and b 1/3 in one bucket");
    colour(112, 2.0 / 3, key);
    check_row(&im, 1, key, "b alone at 40");
    img_free(&im);
}

/* weights=weight multiplies each count by its range's midpoint (§4.2 step 1). */
static void test_weights(void)
{
    int id = create_latency();
    long long S = B + 44;
    struct img cnt, dflt, wt;
    T_REQUIRE(id > 0);
    ingest(id, "h1", S, NUM, "[[[10,10],3],[[40,40],1]]"); /* by weight: 30 < 40 */
    T_REQUIRE(image_of(&cnt, IMG2 "weights=count", id, S));
    T_REQUIRE(image_of(&dflt, IMG2 "_=1", id, S));
    T_OK(same_pixels(&cnt, &dflt));
    double hue[10] = {21, 21, 21, 21, 21, 21, 21, 21, 21, 21}, v[10] = {0};
    v[7] = 1, v[1] = 0.5;
    check_rows(&cnt, hue, v, "weights=count");
    T_REQUIRE(image_of(&wt, IMG2 "weights=weight", id, S));
    v[7] = 0.5, v[1] = 1;
    check_rows(&wt, hue, v, "weights=weight");
    img_free(&cnt);
    img_free(&dflt);
    img_free(&wt);
}

/* yscale=log (Sonde's extension): log-spaced rows; the reply says so. */
static void test_yscale_log(void)
{
    int id = create_latency();
    long long S = B + 45;
    struct img lin, lin2, lg;
    T_REQUIRE(id > 0);
    ingest(id, "h1", S, NUM, "[[[1,1],10],[[10,10],10],[[100,109],10]]");
#define IMG3 HM "/image?start_time=%lld&duration=1&" Q10 "&ymax=1000&"
    json_t *o = get_image(&lin, IMG3 "_=1", id, S);
    T_REQUIRE(o && lin.px);
    const json_t *ys = json_object_get(o, "yscale");
    T_OK(ys == NULL || (json_is_string(ys) && strcmp(json_string_value(ys), "linear") == 0));
    json_decref(o);
    /* linear: 1 and 10 in bucket 0 (20), 100-109 in bucket 1 (10): only the two bottom rows */
    double hue[10] = {21, 21, 21, 21, 21, 21, 21, 21, 21, 21}, v[10] = {0};
    v[9] = 1, v[8] = 0.5;
    check_rows(&lin, hue, v, "linear");
    T_REQUIRE(image_of(&lin2, IMG3 "yscale=linear", id, S));
    T_OK(same_pixels(&lin, &lin2));

    o = get_image(&lg, IMG3 "yscale=log", id, S);
    T_REQUIRE(o && lg.px);
    T_STR(json_string_value(json_object_get(o, "yscale")), "log");
    T_DEQ(jnum(o, "ymax"), 1000.0);
    json_decref(o);
    T_OK(!same_pixels(&lin, &lg));
    int rows = 0;
    for (int y = 0; y < 10; y++)
        rows += !is_white(&lg, 0, y);
    t_note("%d rows drawn", rows);
    T_OK(rows >= 3); /* 1, 10 and 100 each get their own rows */
    T_OK(!is_white(&lg, 0, 9));
    /* the renderer as the oracle */
    static const struct sn_hm_range r[] = {{1, 1, 10}, {10, 10, 10}, {100, 109, 10}};
    struct sn_hm_column col = {r, 3};
    struct sn_hm_params p = {
        .width = 10, .height = 10, .nbuckets = 10, .ymin = 0, .ymax = 1000, .log = true};
    uint8_t rgb[300];
    T_EQ(sn_hm_render(&p, &col, NULL, 0, 1, rgb, NULL), 0);
    T_MEM(lg.px, rgb, sizeof(rgb));
    img_free(&lin);
    img_free(&lin2);
    img_free(&lg);
}

/* Heatmap parameters from a JSON body (Sonde's extension), JSON booleans and arrays. */
static void test_json_body(void)
{
    long long S = B + 46;
    int id = create_latency(), kid = two_keys(S);
    struct th_resp r;
    struct img im, q;
    char body[1024];
    T_REQUIRE(id > 0 && kid > 0);
    ingest(id, "h1", S, NUM, WORKED);

    snprintf(body, sizeof(body),
             "{\"start_time\":%lld,\"duration\":1,\"width\":10,\"height\":10,\"nbuckets\":10,"
             "\"ymin\":0,\"ymax\":50}",
             S);
    get_body(&r, body, HM "/image", id);
    json_t *o = ok_json(&r, body);
    T_REQUIRE(o && reply_image(o, &im));
    T_EQ(jint(o, "start_time"), S);
    T_EQ(jint(o, "duration"), 1);
    T_EQ(jint(o, "width"), 10);
    T_DEQ(jnum(o, "ymax"), 50.0);
    json_decref(o);
    for (int y = 0; y < 10; y++)
        check_row(&im, y, WORKED_ROWS[y], "JSON body");
    T_REQUIRE(image_of(&q, HM "/image?start_time=%lld&duration=1&" Q10 "&ymax=50", id, S));
    T_OK(same_pixels(&im, &q));
    img_free(&im);
    img_free(&q);

    /* booleans, arrays and strings */
    static const char *const bodies[] = {
        "\"selected\":[\"b\"],\"isolate\":true",
        "\"selected\":\"b\",\"isolate\":\"true\"",
        "\"selected\":[\"b\"],\"isolate\":false,\"exclude\":true",
        "\"selected\":[\"b\"],\"hues\":[0,240]",
        "\"decompose_all\":true",
    };
    static const double h7[] = {-1, -1, 21, 0, 112}, h1[] = {112, 112, -1, 240, 203};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"start_time\":%lld,\"duration\":1,\"width\":10,\"height\":10,"
                 "\"nbuckets\":10,\"ymin\":0,\"ymax\":50,%s}",
                 S, bodies[i]);
        get_body(&r, body, HM "/image", kid);
        o = ok_json(&r, body);
        if (o && reply_image(o, &im))
            check_two(&im, h7[i], h1[i], bodies[i]);
        json_decref(o);
        img_free(&im);
    }
    snprintf(body, sizeof(body),
             "{\"start_time\":%lld,\"duration\":1,\"isolate\":true,\"exclude\":true}", S);
    get_body(&r, body, HM "/image", kid);
    check_inval(&r, "only one of \"isolate\", \"exclude\", and \"decompose_all\" may be specified",
                body);
    snprintf(body, sizeof(body), "{\"start_time\":%lld,\"duration\":1,\"width\":9}", S);
    get_body(&r, body, HM "/image", kid);
    check_inval(&r, "value \"9\" for param \"width\" not valid: value too small (min: 10)", body);
    snprintf(body, sizeof(body), "{\"start_time\":%lld,\"duration\":1,\"isolate\":\"yes\"}", S);
    get_body(&r, body, HM "/image", kid);
    check_inval(&r, "value \"yes\" for param \"isolate\" not valid: not a boolean", body);
    snprintf(body, sizeof(body),
             "{\"start_time\":%lld,\"duration\":1,\"selected\":[\"b\"],\"hues\":[400,1]}", S);
    get_body(&r, body, HM "/image", kid);
    check_inval(&r, "invalid hue", body);
}

/* The raw PNG: format=png, or Accept: image/png (Sonde's extension). */
static void test_raw_png(void)
{
    int id = create_latency();
    long long S = B + 47;
    struct th_resp r;
    struct img js, im;
    char path[512], ct[128];
    T_REQUIRE(id > 0);
    ingest(id, "h1", S, NUM, WORKED);
    T_REQUIRE(image_of(&js, HM "/image?start_time=%lld&duration=1&" Q10 "&ymax=50", id, S));

    snprintf(path, sizeof(path), HM "/image?start_time=%lld&duration=1&" Q10 "&ymax=50&format=png",
             id, S);
    get(&r, "%s", path);
    T_EQ(r.status, 200);
    T_OK(th_header(&r, "Content-Type", ct, sizeof(ct)));
    T_STR(ct, "image/png");
    if (r.status == 200 && png_decode(r.body, r.len, &im)) {
        T_EQ(im.w, 10);
        T_EQ(im.h, 10);
        T_OK(same_pixels(&im, &js));
        img_free(&im);
    }
    th_resp_free(&r);

    static const char *const accept[] = {"Accept: image/png", NULL};
    snprintf(path, sizeof(path), HM "/image?start_time=%lld&duration=1&" Q10 "&ymax=50", id, S);
    T_EQ(th_request(port, "GET", path, accept, NULL, 0, 10000, &r), 0);
    T_EQ(r.status, 200);
    T_OK(th_header(&r, "Content-Type", ct, sizeof(ct)));
    T_STR(ct, "image/png");
    if (r.status == 200 && png_decode(r.body, r.len, &im)) {
        T_OK(same_pixels(&im, &js));
        img_free(&im);
    }
    th_resp_free(&r);

    /* defaults: 600 x 300 */
    get(&r, HM "/image?start_time=%lld&format=png", id, S);
    T_EQ(r.status, 200);
    if (r.status == 200 && png_decode(r.body, r.len, &im)) {
        T_EQ(im.w, 600);
        T_EQ(im.h, 300);
        img_free(&im);
    }
    th_resp_free(&r);

    /* format=json is the JSON reply; anything else is refused; errors stay JSON */
    json_t *o = get_json(HM "/image?start_time=%lld&duration=1&format=json", id, S);
    T_OK(o && json_is_string(json_object_get(o, "image")));
    json_decref(o);
    inval("value \"gif\" for param \"format\" not valid: unsupported value",
          HM "/image?start_time=%lld&duration=1&format=gif", id, S);
    inval("value \"9\" for param \"width\" not valid: value too small (min: 10)",
          HM "/image?start_time=%lld&duration=1&format=png&width=9", id, S);
    img_free(&js);
}

/* ndatapoints: an array of points, each one its own image (§1.5) */
static void test_ndatapoints(void)
{
    int id = create_latency();
    long long S = B + 49;
    struct img im;
    T_REQUIRE(id > 0);
    ingest(id, "h1", S, NUM, WORKED);
    ingest(id, "h1", S + 1, NUM, "[[[40,40],1]]");
    json_t *a =
        get_json(HM "/image?start_time=%lld&duration=1&ndatapoints=2&" Q10 "&ymax=50", id, S);
    T_REQUIRE(a);
    T_REQUIRE(json_is_array(a) && json_array_size(a) == 2);
    for (size_t k = 0; k < 2; k++) {
        const json_t *o = json_array_get(a, k);
        t_note("point %zu", k);
        T_EQ(jint(o, "start_time"), S + (long long)k);
        T_EQ(jint(o, "end_time"), S + (long long)k + 1);
        T_EQ(jint(o, "requested_start_time"), S + (long long)k);
        T_EQ(jint(o, "requested_end_time"), S + (long long)k + 1);
        T_DEQ(jnum(o, "ymax"), 50.0);
        if (!reply_image(o, &im))
            continue;
        if (k == 0) {
            for (int y = 0; y < 10; y++)
                check_row(&im, y, WORKED_ROWS[y], "point 0");
        } else {
            double hue[10] = {21, 21, 21, 21, 21, 21, 21, 21, 21, 21}, v[10] = {0};
            v[1] = 1;
            check_rows(&im, hue, v, "point 1");
        }
        img_free(&im);
    }
    json_decref(a);
    /* one image of both seconds: ranks over every column (N = 7: 5 5 3 3 2 1 1) */
    T_REQUIRE(image_of(&im, HM "/image?start_time=%lld&duration=2&" Q10 "&ymax=50", id, S));
    struct {
        int x, y;
        double v;
    } cell[] = {{0, 7, 1},       {4, 6, 1},       {0, 3, 5.0 / 7}, {0, 5, 3.0 / 7}, {0, 1, 2.0 / 7},
                {5, 1, 2.0 / 7}, {9, 1, 2.0 / 7}, {5, 7, 0},       {9, 3, 0}};
    for (size_t i = 0; i < sizeof(cell) / sizeof(cell[0]); i++) {
        uint8_t c[3];
        colour(21, cell[i].v, c);
        t_note("two columns: x %d, y %d", cell[i].x, cell[i].y);
        T_MEM(PX(&im, cell[i].x, cell[i].y), c, 3);
    }
    img_free(&im);
    a = get_json(HM "/image?start_time=%lld&duration=1&ndatapoints=1&" Q10 "&ymax=50", id, S);
    T_OK(a && json_is_array(a) && json_array_size(a) == 1);
    json_decref(a);
    a = get_json(HM "/details?start_time=%lld&duration=1&ndatapoints=2&" Q10 "&ymax=50&x=0&y=1", id,
                 S);
    if (T_OK(a && json_is_array(a) && json_array_size(a) == 2)) {
        T_EQ(jint(json_array_get(a, 0), "bucket_time"), S);
        T_EQ(jint(json_array_get(a, 1), "bucket_time"), S + 1);
        T_EQ(jint(json_array_get(a, 1), "total"), 1);
    }
    json_decref(a);
    a = get_json(HM "/average?start_time=%lld&ndatapoints=2&" Q10 "&ymax=50", id, S + 1);
    if (T_OK(a && json_is_array(a) && json_array_size(a) == 2)) {
        T_NEAR(jnum(json_array_get(a, 0), "average"), 42.5, 1e-9); /* bucket 8's midpoint */
        T_OK(json_is_null(json_object_get(json_array_get(a, 1), "average")));
    }
    json_decref(a);
}

/* Where parameters come from (§1.1): the query, a url-encoded form body (which wins on a
 * conflict) or, Sonde's extension, a JSON body (which wins too). */
static void test_param_sources(void)
{
    int id = create_latency();
    long long S = B + 49;
    struct th_resp r;
    struct img im;
    char path[512];
    static const char *const form[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    static const char *body = "width=20&height=20&nbuckets=10&ymin=0&ymax=50";
    T_REQUIRE(id > 0);
    ingest(id, "h1", S, NUM, WORKED);
    snprintf(path, sizeof(path), HM "/image?start_time=%lld&duration=1&width=10", id, S);
    T_EQ(th_request(port, "GET", path, form, body, strlen(body), 10000, &r), 0);
    json_t *o = ok_json(&r, "form body");
    if (o && reply_image(o, &im)) {
        T_EQ(jint(o, "width"), 20);
        T_EQ(jint(o, "height"), 20);
        T_EQ(jint(o, "nbuckets"), 10);
        T_EQ(im.w, 20);
        img_free(&im);
    }
    json_decref(o);
    get_body(&r, "{\"width\":20,\"height\":30}", HM "/image?start_time=%lld&duration=1&width=10",
             id, S);
    o = ok_json(&r, "JSON body");
    if (o) {
        T_EQ(jint(o, "width"), 20);
        T_EQ(jint(o, "height"), 30);
    }
    json_decref(o);
}

/* Without start_time, the interval ends a second before now: start = now - duration - 1 */
static void test_default_start(void)
{
    int id = create_latency();
    T_REQUIRE(id > 0);
    static const char *const what[] = {"image?duration=5", "image?x=1", "details?ymax=50&x=0&y=0",
                                       "average?x=1", "percentile?percentile=0.5"};
    static const long long dur[] = {5, 60, 60, 1, 1};
    for (int i = 0; i < 5; i++) {
        /* the server's clock (CLOCK_REALTIME), not time()'s: that one can lag it by a tick at
         * a second's turn */
        struct timespec a, b;
        clock_gettime(CLOCK_REALTIME, &a);
        json_t *o = get_json(HM "/%s", id, what[i]);
        clock_gettime(CLOCK_REALTIME, &b);
        long long t0 = (long long)a.tv_sec, t1 = (long long)b.tv_sec;
        if (!o)
            continue;
        long long st = jint(o, "start_time");
        t_note("%s: start_time %lld, now %lld..%lld", what[i], st, t0, t1);
        T_OK(st >= t0 - dur[i] - 1 && st <= t1 - dur[i] - 1);
        T_EQ(jint(o, "duration"), dur[i]);
        json_decref(o);
    }
}

/* Heatmap resources of scalar and discrete instrumentations, and of unknown ones: 404 with an
 * empty body (§1.2). */
static void test_not_numeric(void)
{
    int sc = create("module=syscall&stat=syscalls");
    int di = create("module=syscall&stat=syscalls&decomposition=execname");
    long long S = B + 48;
    T_REQUIRE(sc > 0 && di > 0);
    ingest(sc, "h1", S, "scalar", "7");
    ingest(di, "h1", S, "discrete-decomposition", "{\"a\":7}");
    int ids[] = {sc, di, 999999};
    for (int i = 0; i < 3; i++) {
        expect_404_empty(HM, ids[i]);
        expect_404_empty(HM "/image?start_time=%lld&duration=1", ids[i], S);
        expect_404_empty(HM "/image?start_time=%lld&duration=1&format=png", ids[i], S);
        expect_404_empty(HM "/details?start_time=%lld&duration=1&ymax=10&x=0&y=0", ids[i], S);
        expect_404_empty(HM "/average?start_time=%lld", ids[i], S);
        expect_404_empty(HM "/percentile?start_time=%lld&percentile=0.5", ids[i], S);
    }
}

/* Granularity 5: the interval is normalized (start down, duration up) while requested_* keep
 * what was asked; the image has duration / G columns. */
static void test_granularity(void)
{
    int id = create("module=syscall&stat=syscalls&decomposition=latency&granularity=5");
    long long S = B + 50; /* a multiple of 5 */
    struct img im;
    T_REQUIRE(id > 0);
    ingest(id, "h1", S + 1, NUM, "[[[10,10],1]]"); /* slot S */
    ingest(id, "h1", S + 7, NUM, "[[[40,40],1]]"); /* slot S + 5 */
    json_t *o = get_image(&im, HM "/image?start_time=%lld&duration=7&" Q10 "&ymax=50", id, S + 2);
    T_REQUIRE(o && im.px);
    T_EQ(jint(o, "start_time"), S);
    T_EQ(jint(o, "duration"), 10);
    T_EQ(jint(o, "end_time"), S + 10);
    T_EQ(jint(o, "requested_start_time"), S + 2);
    T_EQ(jint(o, "requested_duration"), 7);
    T_EQ(jint(o, "requested_end_time"), S + 9);
    T_EQ(jint(o, "minreporting"), 1);
    /* two columns of 5 pixels: slot S draws 10 (row 7), slot S+5 draws 40 (row 1) */
    for (int x = 0; x < 10; x++) {
        t_note("x %d", x);
        T_EQ(is_white(&im, x, 7), x >= 5);
        T_EQ(is_white(&im, x, 1), x < 5);
    }
    json_decref(o);
    img_free(&im);
    /* details: the column's slot, rounded down to the granularity */
    o = get_json(HM "/details?start_time=%lld&duration=7&" Q10 "&ymax=50&x=7&y=1", id, S + 2);
    T_REQUIRE(o);
    T_EQ(jint(o, "bucket_time"), S + 5);
    T_EQ(jint(o, "total"), 1);
    T_EQ(jint(o, "duration"), 10);
    json_decref(o);
    o = get_json(HM "/details?start_time=%lld&duration=7&" Q10 "&ymax=50&x=2&y=7", id, S + 2);
    T_REQUIRE(o);
    T_EQ(jint(o, "bucket_time"), S);
    T_EQ(jint(o, "total"), 1);
    json_decref(o);
}

/* ------------------------------------------------------------------------------------------
 * value/heatmap/details
 */

static void test_details_params(void)
{
    int id = create_latency();
    long long S = B + 1;
    T_REQUIRE(id > 0);
    ingest(id, "h1", S, NUM, WORKED);
#define DET HM "/details?start_time=%lld&duration=1&"
    inval("\"ymax\" must be specified", DET "x=1&y=1", id, S);
    inval("param \"x\" must be specified", DET "ymax=50&y=1", id, S);
    inval("param \"y\" must be specified", DET "ymax=50&x=1", id, S);
    inval("value \"-1\" for param \"x\" not valid: value too small (min: 0)",
          DET "ymax=50&x=-1&y=1", id, S);
    inval("value \"-1\" for param \"y\" not valid: value too small (min: 0)",
          DET "ymax=50&x=1&y=-1", id, S);
    inval("value \"abc\" for param \"x\" not valid: not a number", DET "ymax=50&x=abc&y=1", id, S);
    inval("\"x\" must be less than \"width\"", DET "ymax=50&x=600&y=1", id, S);
    inval("\"x\" must be less than \"width\"", DET "ymax=50&width=10&x=10&y=1", id, S);
    inval("\"y\" must be less than \"height\"", DET "ymax=50&x=1&y=300", id, S);
    inval("\"y\" must be less than \"height\"", DET "ymax=50&height=10&x=1&y=10", id, S);
    json_t *o = get_json(DET "ymax=50&x=599&y=299", id, S);
    T_OK(o != NULL);
    json_decref(o);

    /* the default duration is 60, as the image's */
    o = get_json(HM "/details?start_time=%lld&ymax=50&x=0&y=0", id, S);
    T_REQUIRE(o);
    T_EQ(jint(o, "duration"), 60);
    T_EQ(jint(o, "end_time"), S + 60);
    T_EQ(jint(o, "bucket_time"), S);
    json_decref(o);
}

static void check_details(int id, long long S, const char *extra, int x, int y, long long want_t,
                          long long lo, long long hi, const char *present, long long total)
{
    json_t *o = get_json(HM "/details?start_time=%lld&duration=1&%s&x=%d&y=%d", id, S, extra, x, y);
    if (!o)
        return;
    t_note("details x=%d y=%d %s", x, y, extra);
    T_EQ(jint(o, "bucket_time"), want_t);
    t_note("details x=%d y=%d %s", x, y, extra);
    T_EQ(jint(o, "bucket_ymin"), lo);
    t_note("details x=%d y=%d %s", x, y, extra);
    T_EQ(jint(o, "bucket_ymax"), hi);
    char *p = json_dumps(json_object_get(o, "present"), JSON_COMPACT | JSON_SORT_KEYS);
    t_note("details x=%d y=%d %s", x, y, extra);
    T_STR(p, present);
    free(p);
    t_note("details x=%d y=%d %s", x, y, extra);
    T_EQ(jint(o, "total"), total);
    json_decref(o);
}

/* A click on known cells of a decomposed heatmap: bucket_time, the bucket's [ymin, ymax),
 * each key's count there and the total (§4.3). */
static void test_details_cell(void)
{
    int id = create_by_execname();
    long long S = B + 60;
    T_REQUIRE(id > 0);
    ingest(id, "h1", S, NUM, "{\"a\":[[[10,10],5]],\"b\":[[[12,12],2],[[40,40],3]]}");
    json_t *o = get_json(DET Q10 "&ymax=50&x=5&y=7", id, S);
    T_REQUIRE(o);
    T_EQ(jint(o, "bucket_time"), S);
    T_EQ(jint(o, "bucket_ymin"), 10);
    T_EQ(jint(o, "bucket_ymax"), 15);
    char *p = json_dumps(json_object_get(o, "present"), JSON_COMPACT | JSON_SORT_KEYS);
    T_STR(p, "{\"a\":5,\"b\":2}");
    free(p);
    T_EQ(jint(o, "total"), 7);
    T_EQ(jint(o, "nbuckets"), 10);
    T_EQ(jint(o, "width"), 10);
    T_EQ(jint(o, "height"), 10);
    T_DEQ(jnum(o, "ymin"), 0.0);
    T_DEQ(jnum(o, "ymax"), 50.0);
    T_EQ(jint(o, "start_time"), S);
    T_EQ(jint(o, "duration"), 1);
    T_EQ(jint(o, "end_time"), S + 1);
    T_EQ(jint(o, "requested_start_time"), S);
    T_EQ(jint(o, "requested_duration"), 1);
    T_EQ(jint(o, "requested_end_time"), S + 1);
    T_EQ(jint(o, "minreporting"), 1);
    T_OK(jint(o, "nsources") >= 0);
    T_OK(json_is_object(json_object_get(o, "transformations")));
    json_decref(o);
    check_details(id, S, Q10 "&ymax=50", 0, 1, S, 40, 45, "{\"b\":3}", 3);
    check_details(id, S, Q10 "&ymax=50", 9, 0, S, 45, 50, "{}", 0);
    check_details(id, S, Q10 "&ymax=50", 3, 9, S, 0, 5, "{}", 0);
    /* ymin 10: buckets of 4 */
    check_details(id, S, "width=10&height=10&nbuckets=10&ymin=10&ymax=50", 0, 9, S, 10, 14,
                  "{\"a\":5,\"b\":2}", 7);
    check_details(id, S, "width=10&height=10&nbuckets=10&ymin=10&ymax=50", 0, 2, S, 38, 42,
                  "{\"b\":3}", 3);
    /* buckets of 10/3: their edges rounded to integers */
    check_details(id, S, "width=10&height=30&nbuckets=3&ymin=0&ymax=10", 0, 5, S, 7, 10, "{}", 0);
    check_details(id, S, "width=10&height=30&nbuckets=3&ymin=0&ymax=10", 0, 15, S, 3, 7, "{}", 0);
    check_details(id, S, "width=10&height=30&nbuckets=3&ymin=0&ymax=10", 0, 25, S, 0, 3, "{}", 0);
}

/* Shares of a bucket are reported as max(1, round(v)) (§4.3): [1000,1099] spreads 1/100 of its
 * count over each unit; buckets of 12 take 12/100 of it. */
static void test_details_small_shares(void)
{
    int id = create_by_execname(), lid = create_latency();
    long long S = B + 61;
    T_REQUIRE(id > 0 && lid > 0);
    ingest(id, "h1", S, NUM, "{\"a\":[[[1000,1099],1]],\"b\":[[[1000,1099],30]]}");
    const char *q = "width=10&height=100&nbuckets=100&ymin=0&ymax=1200";
    /* y 15: bucket 84, [1008, 1020): a 0.12 -> 1, b 3.6 -> 4 */
    check_details(id, S, q, 0, 15, S, 1008, 1020, "{\"a\":1,\"b\":4}", 5);
    /* y 16: bucket 83, [996, 1008), 8 of it in the range: a 0.08 -> 1, b 2.4 -> 2 */
    check_details(id, S, q, 0, 16, S, 996, 1008, "{\"a\":1,\"b\":2}", 3);
    /* y 0: bucket 99, [1188, 1200): nothing */
    check_details(id, S, q, 0, 0, S, 1188, 1200, "{}", 0);

    /* without a discrete decomposition: present {}, total from the totals */
    ingest(lid, "h1", S, NUM, "[[[1000,1099],1]]");
    ingest(lid, "h1", S + 1, NUM, "[[[1000,1099],250]]");
    check_details(lid, S, q, 0, 15, S, 1008, 1020, "{}", 1);
    check_details(lid, S + 1, q, 0, 15, S + 1, 1008, 1020, "{}", 30);
    check_details(lid, S + 1, q, 0, 16, S + 1, 996, 1008, "{}", 20);
    check_details(lid, S, q, 0, 0, S, 1188, 1200, "{}", 0);
}

/* One pixel-to-column mapping for the image and details: a click on either edge pixel of a
 * column names that column's second, at 600 pixels for 60 columns and at 599; and one
 * pixel-to-bucket mapping, at 15 rows for 10 buckets. */
static void test_details_mapping(void)
{
    int id = create_latency();
    long long S = B + 100;
    struct img im;
    T_REQUIRE(id > 0);
    for (int i = 1; i < 60; i += 2) /* odd seconds only */
        ingest(id, "h1", S + i, NUM, "[[[10,10],1]]");
    for (int w = 600; w >= 599; w--) {
        T_REQUIRE(image_of(&im,
                           HM "/image?start_time=%lld&width=%d&"
                              "height=10&nbuckets=10&"
                              "ymin=0&ymax=50",
                           id, S, w));
        T_EQ(im.w, w);
        for (int i = 0; i < 60; i++) {
            int edge[2] = {(int)((long long)i * w / 60), (int)((long long)(i + 1) * w / 60) - 1};
            for (int e = 0; e < 2; e++) {
                int x = edge[e];
                json_t *o = get_json(HM "/details?start_time=%lld&width=%d&height=10&"
                                        "nbuckets=10&ymin=0&ymax=50&x=%d&y=7",
                                     id, S, w, x);
                if (!o)
                    continue;
                t_note("width %d, column %d, x %d", w, i, x);
                T_EQ(jint(o, "bucket_time"), S + i);
                t_note("width %d, column %d, x %d", w, i, x);
                T_EQ(jint(o, "total"), i % 2);
                t_note("width %d, column %d, x %d", w, i, x);
                T_EQ(jint(o, "bucket_ymin"), 10);
                t_note("width %d, column %d, x %d: the image agrees", w, i, x);
                T_EQ(is_white(&im, x, 7), i % 2 == 0);
                json_decref(o);
            }
        }
        img_free(&im);
    }

    /* rows: 15 pixels for 10 buckets; bucket j fills rows floor((9-j)*1.5) to
     * floor((10-j)*1.5) */
    T_REQUIRE(image_of(&im,
                       HM "/image?start_time=%lld&duration=2&width=10&height=15&"
                          "nbuckets=10&ymin=0&ymax=50",
                       id, S));
    for (int y = 0; y < 15; y++) {
        int j = -1;
        for (int b = 0; b < 10; b++)
            if ((9 - b) * 15 / 10 <= y && y < (10 - b) * 15 / 10)
                j = b;
        json_t *o = get_json(HM "/details?start_time=%lld&duration=2&width=10&height=15&"
                                "nbuckets=10&ymin=0&ymax=50&x=7&y=%d",
                             id, S, y);
        if (!o)
            continue;
        t_note("height 15, y %d (bucket %d)", y, j);
        T_EQ(jint(o, "bucket_ymin"), 5 * j);
        t_note("height 15, y %d (bucket %d)", y, j);
        T_EQ(jint(o, "bucket_ymax"), 5 * j + 5);
        t_note("height 15, y %d (bucket %d)", y, j);
        T_EQ(jint(o, "bucket_time"), S + 1);
        t_note("height 15, y %d (bucket %d)", y, j);
        T_EQ(jint(o, "total"), j == 2);
        t_note("height 15, y %d (bucket %d): the image agrees", y, j);
        T_EQ(is_white(&im, 7, y), j != 2);
        json_decref(o);
    }
    img_free(&im);
}

/* ------------------------------------------------------------------------------------------
 * value/heatmap/average and percentile (§4.4)
 */

struct rng {
    double lo, hi, n;
};

/* The test's own bucketizer: each [lo, hi] is [lo, hi+1) with its count spread uniformly. */
static void my_bucketize(const struct rng *r, size_t n, double ymin, double ymax, int nb,
                         double *map)
{
    double size = (ymax - ymin) / nb;
    for (int j = 0; j < nb; j++)
        map[j] = 0;
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < nb; j++) {
            double e0 = ymin + j * size, e1 = ymin + (j + 1) * size;
            double over = fmin(r[i].hi + 1, e1) - fmax(r[i].lo, e0);
            if (over > 0)
                map[j] += r[i].n * over / (r[i].hi + 1 - r[i].lo);
        }
}

static double my_average(const double *map, int nb, double ymin, double ymax)
{
    double size = (ymax - ymin) / nb, num = 0, den = 0;
    for (int j = 0; j < nb; j++) {
        num += map[j] * (ymin + (j + 0.5) * size);
        den += map[j];
    }
    return num / den;
}

static double my_percentile(const double *map, int nb, double ymin, double ymax, double p)
{
    double size = (ymax - ymin) / nb, total = 0, cum = 0;
    for (int j = 0; j < nb; j++)
        total += map[j];
    if (total == 0)
        return ymin;
    for (int j = 0; j < nb; j++) {
        cum += map[j];
        if (cum / total >= p) {
            double frac = (p * total - (cum - map[j])) / map[j];
            return ymin + (j + fmin(1, fmax(0, frac))) * size;
        }
    }
    return ymax;
}

/* node-heatmap's column 101 ({[1,10]: 5, [11,20]: 10, [21,30]: 30} over 10 buckets of [1,101))
 * as real buckets: each integer its own bucket, twice the counts; buckets of 10 hold the same
 * proportions, so the reference's figures hold exactly. */
static void ingest_col101(int id, long long t)
{
    char v[4096];
    size_t at = 0;
    at += (size_t)snprintf(v + at, sizeof(v) - at, "[");
    for (int i = 1; i <= 30; i++)
        at += (size_t)snprintf(v + at, sizeof(v) - at, "%s[[%d,%d],%d]", i > 1 ? "," : "", i, i,
                               i <= 10   ? 1
                               : i <= 20 ? 2
                                         : 6);
    snprintf(v + at, sizeof(v) - at, "]");
    ingest(id, "h1", t, NUM, v);
}

/* A uniform distribution: every integer 1..99 (each its own bucket) 1000 times. */
static void ingest_uniform(int id, long long t, struct rng *r)
{
    char v[8192];
    size_t at = 0;
    at += (size_t)snprintf(v + at, sizeof(v) - at, "[");
    for (int i = 1; i <= 99; i++) {
        at += (size_t)snprintf(v + at, sizeof(v) - at, "%s[[%d,%d],1000]", i > 1 ? "," : "", i, i);
        r[i - 1] = (struct rng){i, i, 1000};
    }
    snprintf(v + at, sizeof(v) - at, "]");
    ingest(id, "h1", t, NUM, v);
}

static void test_average(void)
{
    int id = create_latency();
    long long S = B + 170;
    struct rng u[99];
    T_REQUIRE(id > 0);
    ingest_col101(id, S);
    ingest(id, "h1", S + 1, NUM, "[[[90,90],100]]");
    ingest_uniform(id, S + 3, u);

    /* default duration 1: only S */
    json_t *o = get_json(HM "/average?start_time=%lld&ymin=1&ymax=101&nbuckets=10", id, S);
    T_REQUIRE(o);
    T_EQ(jint(o, "duration"), 1);
    T_EQ(jint(o, "start_time"), S);
    T_EQ(jint(o, "end_time"), S + 1);
    T_EQ(jint(o, "requested_duration"), 1);
    T_EQ(jint(o, "nbuckets"), 10);
    T_DEQ(jnum(o, "ymin"), 1.0);
    T_DEQ(jnum(o, "ymax"), 101.0);
    T_EQ(jint(o, "minreporting"), 1);
    T_OK(json_is_object(json_object_get(o, "transformations")));
    T_EQ(jint(o, "width"), 600); /* §1.5: average also returns width and height */
    T_EQ(jint(o, "height"), 300);
    /* midpoints 6, 16, 26 with 10, 20, 60 */
    T_NEAR(jnum(o, "average"), 1940.0 / 90, 1e-9);
    json_decref(o);
    /* two seconds: the 100 at 90 (bucket 8, midpoint 86) join in */
    o = get_json(HM "/average?start_time=%lld&duration=2&ymin=1&ymax=101&nbuckets=10", id, S);
    T_REQUIRE(o);
    T_NEAR(jnum(o, "average"), (1940.0 + 100 * 86) / 190, 1e-9);
    json_decref(o);

    /* the uniform data: ymax auto-scales to 120 (M = 100), 100 buckets of 1.2 */
    double map[100];
    my_bucketize(u, 99, 0, 120, 100, map);
    double want = my_average(map, 100, 0, 120);
    o = get_json(HM "/average?start_time=%lld", id, S + 3);
    T_REQUIRE(o);
    T_DEQ(jnum(o, "ymax"), 120.0);
    T_EQ(jint(o, "nbuckets"), 100);
    t_note("want %.17g", want);
    T_NEAR(jnum(o, "average"), want, 1e-9);
    T_NEAR(jnum(o, "average"), 50.5, 0.05); /* the uniform [1, 100)'s mean */
    json_decref(o);
    my_bucketize(u, 99, 0, 200, 10, map);
    want = my_average(map, 10, 0, 200);
    o = get_json(HM "/average?start_time=%lld&ymax=200&nbuckets=10", id, S + 3);
    T_REQUIRE(o);
    T_NEAR(jnum(o, "average"), want, 1e-9);
    json_decref(o);

    /* no data: null */
    o = get_json(HM "/average?start_time=%lld", id, S + 2);
    T_REQUIRE(o);
    T_OK(json_is_null(json_object_get(o, "average")));
    json_decref(o);
    o = get_json(HM "/average?start_time=%lld&ymax=100", id, S + 2);
    T_REQUIRE(o);
    T_OK(json_is_null(json_object_get(o, "average")));
    json_decref(o);
}

/* A reply's "percentile" is an array of exactly these values. */
static void check_pct_array(const json_t *o, const double *want, size_t n)
{
    const json_t *a = json_object_get(o, "percentile");
    char *txt = json_dumps(a, JSON_ENCODE_ANY | JSON_COMPACT);
    t_note("percentile: %s", txt ? txt : "(absent)");
    free(txt);
    if (!T_OK(json_is_array(a)) || !T_EQU(json_array_size(a), n))
        return;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(a, i);
        T_OK(json_is_number(e));
        T_NEAR(json_number_value(e), want[i], 1e-9);
    }
}

static void test_percentile(void)
{
    int id = create_latency();
    long long S = B + 180;
    struct rng u[99];
    struct th_resp r;
    char body[256];
    T_REQUIRE(id > 0);
    ingest_col101(id, S);
    ingest_uniform(id, S + 3, u);
#define PCT HM "/percentile?start_time=%lld&"
    inval("param \"percentile\" must be specified", PCT "ymax=101", id, S);
    inval("value \"1.5\" for param \"percentile\" not valid: value too large (max: 1)",
          PCT "percentile=1.5", id, S);
    inval("value \"-0.1\" for param \"percentile\" not valid: value too small (min: 0)",
          PCT "percentile=-0.1", id, S);
    inval("value \"abc\" for param \"percentile\" not valid: not a number", PCT "percentile=abc",
          id, S);

    /* node-heatmap's column 101: p0 1, p0.5 23.5, p0.95 30.25, p1 31 */
    static const double ps[] = {0, 0.5, 0.95, 1}, want101[] = {1, 23.5, 30.25, 31};
    for (int i = 0; i < 4; i++) {
        json_t *o = get_json(PCT "ymin=1&ymax=101&nbuckets=10&percentile=%g", id, S, ps[i]);
        if (!o)
            continue;
        t_note("p%g", ps[i]);
        T_OK(json_is_number(json_object_get(o, "percentile"))); /* one: a number */
        T_NEAR(jnum(o, "percentile"), want101[i], 1e-9);
        if (i == 0) {
            T_EQ(jint(o, "duration"), 1); /* the default */
            T_DEQ(jnum(o, "ymin"), 1.0);
            T_DEQ(jnum(o, "ymax"), 101.0);
            T_EQ(jint(o, "nbuckets"), 10);
        }
        json_decref(o);
    }
    /* several: an array, in the order asked */
    json_t *o = get_json(PCT "ymin=1&ymax=101&nbuckets=10&percentile=0.95,0.5,1", id, S);
    if (o) {
        static const double w[] = {30.25, 23.5, 31};
        check_pct_array(o, w, 3);
        json_decref(o);
    }
    o = get_json(PCT "ymin=1&ymax=101&nbuckets=10&percentile=0.5&percentile=0.95", id, S);
    if (o) {
        static const double w[] = {23.5, 30.25};
        check_pct_array(o, w, 2);
        json_decref(o);
    }
    snprintf(body, sizeof(body),
             "{\"start_time\":%lld,\"ymin\":1,\"ymax\":101,\"nbuckets\":10,"
             "\"percentile\":[1,0]}",
             S);
    get_body(&r, body, HM "/percentile", id);
    o = ok_json(&r, body);
    if (o) {
        static const double w[] = {31, 1};
        check_pct_array(o, w, 2);
        json_decref(o);
    }
    inval("value \"2\" for param \"percentile\" not valid: value too large (max: 1)",
          PCT "percentile=0.5,2", id, S);

    /* the uniform data, auto-scaled to 120: the methodology computed here */
    double map[100];
    my_bucketize(u, 99, 0, 120, 100, map);
    static const double up[] = {0, 0.5, 0.9, 0.95, 0.99, 1};
    static const double approx[] = {0,     50.5,  90.1,
                                    95.05, 99.01, 100.8}; /* p1: the top of the last bucket */
    for (int i = 0; i < 6; i++) {
        double want = my_percentile(map, 100, 0, 120, up[i]);
        o = get_json(PCT "percentile=%g", id, S + 3, up[i]);
        if (!o)
            continue;
        t_note("uniform p%g: want %.17g", up[i], want);
        T_NEAR(jnum(o, "percentile"), want, 1e-9);
        t_note("uniform p%g", up[i]);
        T_NEAR(jnum(o, "percentile"), approx[i], 0.7);
        T_DEQ(jnum(o, "ymax"), 120.0);
        json_decref(o);
    }

    /* no data: ymin */
    o = get_json(PCT "percentile=0.5", id, S + 2);
    if (o) {
        T_NEAR(jnum(o, "percentile"), 0, 0);
        json_decref(o);
    }
    o = get_json(PCT "percentile=0.5&ymin=7&ymax=100", id, S + 2);
    if (o) {
        T_NEAR(jnum(o, "percentile"), 7, 0);
        json_decref(o);
    }
    o = get_json(PCT "percentile=0.5,0.9&ymin=7&ymax=100", id, S + 2);
    if (o) {
        static const double w[] = {7, 7};
        check_pct_array(o, w, 2);
        json_decref(o);
    }
}

/* yscale=log on average and percentile (Sonde's extension): the interval's column in log-spaced
 * buckets, a bucket's count spread evenly between its edges. All samples in [1000, 1100): over
 * [0, 10^6) in 100 log buckets they fall in bucket 50, [1000, 10^3.06 = 1148.15), where linear
 * buckets of 10000 put them in bucket 0, [0, 10000). */
static void test_log_stats(void)
{
    int id = create_latency();
    long long S = B + 195;
    T_REQUIRE(id > 0);
    ingest(id, "h1", S, NUM, "[[[1000,1099],10]]");
    double e50 = 1000, e51 = pow(10, 3.06);
#define LOG6 "ymax=1000000&nbuckets=100"
    json_t *o =
        get_json(HM "/percentile?start_time=%lld&" LOG6 "&yscale=log&percentile=0.5", id, S);
    if (o) {
        T_STR(json_string_value(json_object_get(o, "yscale")), "log");
        T_DEQ(jnum(o, "ymax"), 1000000.0);
        T_EQ(jint(o, "nbuckets"), 100);
        double p50 = jnum(o, "percentile");
        T_OK(p50 >= e50 && p50 <= e51);
        T_NEAR(p50, (e50 + e51) / 2, 1e-9);
        T_NEAR(p50, 1074.0768, 1e-4);
        json_decref(o);
    }
    o = get_json(HM "/percentile?start_time=%lld&" LOG6 "&percentile=0.5", id, S);
    if (o) {
        T_OK(json_object_get(o, "yscale") == NULL);
        T_NEAR(jnum(o, "percentile"), 5000, 1e-9); /* half of [0, 10000) */
        json_decref(o);
    }
    o = get_json(HM "/percentile?start_time=%lld&" LOG6 "&yscale=linear&percentile=0.5", id, S);
    if (o) {
        T_NEAR(jnum(o, "percentile"), 5000, 1e-9);
        json_decref(o);
    }
    o = get_json(HM "/percentile?start_time=%lld&" LOG6 "&yscale=log&percentile=0,0.9,0.99,1", id,
                 S);
    if (o) {
        double w[] = {e50, e50 + 0.9 * (e51 - e50), e50 + 0.99 * (e51 - e50), e51};
        check_pct_array(o, w, 4);
        json_decref(o);
    }
    o = get_json(HM "/average?start_time=%lld&" LOG6 "&yscale=log", id, S);
    if (o) {
        T_STR(json_string_value(json_object_get(o, "yscale")), "log");
        T_NEAR(jnum(o, "average"), (e50 + e51) / 2, 1e-9);
        json_decref(o);
    }
    o = get_json(HM "/average?start_time=%lld&" LOG6, id, S);
    if (o) {
        T_NEAR(jnum(o, "average"), 5000, 1e-9);
        json_decref(o);
    }

    /* [1000, 2000) in 10 log buckets: edges 1000 * 2^(j/10). Bucket 0, [1000, 1071.77), is
     * all data, so p50 is exactly 1050 as linear's; p90 lands in bucket 1, [1071.77,
     * 1148.70), which the data fill only to 1100: interpolated between its edges. */
    double e1 = 1000 * pow(2, 0.1), e2 = 1000 * pow(2, 0.2), s0 = (e1 - 1000) / 100;
#define LOG2 "ymin=1000&ymax=2000&nbuckets=10"
    o = get_json(HM "/percentile?start_time=%lld&" LOG2 "&yscale=log&percentile=0.5,0.9", id, S);
    if (o) {
        double w[] = {1050, e1 + (0.9 - s0) / (1 - s0) * (e2 - e1)};
        check_pct_array(o, w, 2);
        T_NEAR(w[1], 1121.4457, 1e-4);
        json_decref(o);
    }
    o = get_json(HM "/percentile?start_time=%lld&" LOG2 "&percentile=0.5,0.9", id, S);
    if (o) {
        static const double w[] = {1050, 1090}; /* bucket 0, [1000, 1100), holds it all */
        check_pct_array(o, w, 2);
        json_decref(o);
    }
    o = get_json(HM "/average?start_time=%lld&" LOG2 "&yscale=log", id, S);
    if (o) { /* midpoints of buckets 0 and 1, weighed by their shares */
        T_NEAR(jnum(o, "average"), s0 * (1000 + e1) / 2 + (1 - s0) * (e1 + e2) / 2, 1e-9);
        json_decref(o);
    }

    /* ymax auto-scaled (M = 1100: 1200), the renderer as the oracle */
    struct sn_hm_range rg = {1000, 1099, 10};
    struct sn_hm_column col = {&rg, 1};
    double map[100] = {0};
    sn_hm_bucketize_log(&col, 0, 1200, 100, false, map);
    o = get_json(HM "/percentile?start_time=%lld&yscale=log&percentile=0.5", id, S);
    if (o) {
        T_DEQ(jnum(o, "ymax"), 1200.0);
        T_NEAR(jnum(o, "percentile"), sn_hm_percentile(map, 100, 0, 1200, true, 0.5), 1e-9);
        T_NEAR(jnum(o, "percentile"), 1050, 5);
        json_decref(o);
    }
    o = get_json(HM "/average?start_time=%lld&yscale=log", id, S);
    if (o) {
        T_NEAR(jnum(o, "average"), sn_hm_average(map, 100, 0, 1200, true), 1e-9);
        json_decref(o);
    }

    /* no data: null and ymin, as linear */
    o = get_json(HM "/average?start_time=%lld&" LOG6 "&yscale=log", id, S + 1);
    if (o) {
        T_OK(json_is_null(json_object_get(o, "average")));
        json_decref(o);
    }
    o = get_json(HM "/percentile?start_time=%lld&" LOG2 "&yscale=log&percentile=0.5", id, S + 1);
    if (o) {
        T_NEAR(jnum(o, "percentile"), 1000, 0);
        json_decref(o);
    }
    inval("value \"exp\" for param \"yscale\" not valid: unsupported value",
          HM "/percentile?start_time=%lld&yscale=exp&percentile=0.5", id, S);
    inval("value \"exp\" for param \"yscale\" not valid: unsupported value",
          HM "/average?start_time=%lld&yscale=exp", id, S);
#undef LOG2
}

/* The web UI's percentile lines: p50, p90 and p99 of each second of a minute in one call,
 * over the image's log axis. Second k holds 100 - k samples in [1000, 1100) and k + 1 in
 * [100000, 110000). */
static void test_percentile_ndatapoints(void)
{
    int id = create_latency();
    long long S = B + 200;
    T_REQUIRE(id > 0);
    for (int k = 0; k < 60; k++) {
        char v[128];
        snprintf(v, sizeof(v), "[[[1000,1099],%d],[[100000,109999],%d]]", 100 - k, k + 1);
        ingest(id, "h1", S + k, NUM, v);
    }
    for (int lg = 0; lg < 2; lg++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        json_t *a = get_json(HM "/percentile?percentile=0.5,0.9,0.99&duration=1&ndatapoints=60&"
                                "start_time=%lld&" LOG6 "%s",
                             id, S, lg ? "&yscale=log" : "");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        t_note("%s: %.3f ms", lg ? "log" : "linear",
               (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
        if (!T_OK(json_is_array(a)) || !T_EQU(json_array_size(a), 60)) {
            json_decref(a);
            continue;
        }
        for (int k = 0; k < 60; k++) {
            const json_t *o = json_array_get(a, (size_t)k);
            struct sn_hm_range r[] = {{1000, 1099, 100 - k}, {100000, 109999, k + 1}};
            struct sn_hm_column col = {r, 2};
            double map[100] = {0}, w[3];
            static const double ps[] = {0.5, 0.9, 0.99};
            (lg ? sn_hm_bucketize_log : sn_hm_bucketize)(&col, 0, 1e6, 100, false, map);
            for (int i = 0; i < 3; i++)
                w[i] = sn_hm_percentile(map, 100, 0, 1e6, lg, ps[i]);
            t_note("%s, point %d", lg ? "log" : "linear", k);
            T_EQ(jint(o, "start_time"), S + k);
            t_note("%s, point %d", lg ? "log" : "linear", k);
            T_EQ(jint(o, "duration"), 1);
            t_note("%s, point %d", lg ? "log" : "linear", k);
            T_OK(lg ? json_is_string(json_object_get(o, "yscale"))
                    : json_object_get(o, "yscale") == NULL);
            check_pct_array(o, w, 3);
        }
        /* point 0 by hand: p50 at 0.505 of bucket 50 (log, [1000, 1148.15)) or of bucket 0
         * (linear, [0, 10000)) */
        const json_t *p0 = json_array_get(json_object_get(json_array_get(a, 0), "percentile"), 0);
        T_NEAR(json_number_value(p0), lg ? 1000 + 0.505 * (pow(10, 3.06) - 1000) : 5050, 1e-9);
        json_decref(a);
    }
}
#undef LOG6

/* ------------------------------------------------------------------------------------------
 * method=exact (Sonde's extension): the interval's log-linear histograms merged, the histogram
 * library's mean and quantiles over them; ymin, ymax, nbuckets and yscale play no part.
 */

/* The library's figures for ranges r[0..n-1] (each exactly one log-linear bucket). */
static void oracle(const struct sn_hm_range *r, size_t n, const double *q, size_t nq, double *out,
                   double *mean)
{
    struct sn_hist *h = sn_hist_create();
    T_REQUIRE(h);
    for (size_t i = 0; i < n; i++)
        T_EQ(sn_hist_insert(h, (double)r[i].lo, (uint64_t)r[i].count), 0);
    if (nq)
        T_EQ(sn_hist_quantiles(h, q, nq, out, SN_QUANTILE_TYPE1), 0);
    if (mean)
        *mean = sn_hist_mean(h);
    sn_hist_destroy(h);
}

/* A syscall-like distribution: 1000 samples spread evenly over [340, 370) ns (true p10 343,
 * p50 355, p90 367, mean 355), split between two keys, and one 30 ms outlier that stretches
 * the rows' auto-scaled ymax to 36 ms. The rows' p50 lands in the first of 100 rows of 360 us;
 * the exact p50 is 355 ns give or take the 10 ns bucket. */
static void test_exact(void)
{
    int id = create_by_execname();
    long long S = B + 265;
    T_REQUIRE(id > 0);
    ingest(id, "h1", S, NUM,
           "{\"cat\":[[[340,349],333],[[360,369],333]],\"ls\":[[[350,359],333]],"
           "\"sleep\":[[[30000000,30999999],1]]}");
    static const struct sn_hm_range all[] = {
        {340, 349, 333}, {350, 359, 333}, {360, 369, 333}, {30000000, 30999999, 1}};
    static const double q[] = {0.1, 0.5, 0.9}, truth[] = {343, 355, 367};
    double want[3], mean;
    oracle(all, 4, q, 3, want, &mean);

    /* the default is the rows: p50 some 180 us, in the first row of 360 us */
    json_t *o = get_json(HM "/percentile?start_time=%lld&percentile=0.5", id, S);
    if (o) {
        T_STR(json_string_value(json_object_get(o, "method")), "rows");
        T_OK(jnum(o, "percentile") > 100000);
        json_decref(o);
    }
    o = get_json(HM "/percentile?start_time=%lld&percentile=0.5&method=rows", id, S);
    if (o) {
        T_STR(json_string_value(json_object_get(o, "method")), "rows");
        T_OK(jnum(o, "percentile") > 100000);
        json_decref(o);
    }
    /* exact: one percentile, a number */
    o = get_json(HM "/percentile?start_time=%lld&percentile=0.5&method=exact", id, S);
    if (o) {
        T_STR(json_string_value(json_object_get(o, "method")), "exact");
        T_OK(json_is_number(json_object_get(o, "percentile")));
        T_NEAR(jnum(o, "percentile"), want[1], 1e-9);
        T_NEAR(jnum(o, "percentile"), 355, 10);
        T_EQ(jint(o, "start_time"), S);
        T_EQ(jint(o, "duration"), 1);
        /* the rows' parameters are not used, and not returned */
        T_OK(json_object_get(o, "ymax") == NULL);
        T_OK(json_object_get(o, "nbuckets") == NULL);
        json_decref(o);
    }
    /* several, in the order asked; rows' parameters ignored */
    o = get_json(HM "/percentile?start_time=%lld&percentile=0.9,0.1,0.5&method=exact&ymin=1000&"
                    "ymax=2000&nbuckets=3&yscale=log",
                 id, S);
    if (o) {
        double w[] = {want[2], want[0], want[1]};
        check_pct_array(o, w, 3);
        const json_t *a = json_object_get(o, "percentile");
        for (int i = 0; i < 3; i++) {
            t_note("p%g", q[(i + 2) % 3]);
            T_NEAR(json_number_value(json_array_get(a, (size_t)i)), truth[(i + 2) % 3], 10);
        }
        T_OK(json_object_get(o, "yscale") == NULL);
        json_decref(o);
    }
    /* p0 and p1: the bottom of the lowest bucket and the top of the highest */
    o = get_json(HM "/percentile?start_time=%lld&percentile=0,1&method=exact", id, S);
    if (o) {
        double w[2], q01[] = {0, 1};
        oracle(all, 4, q01, 2, w, NULL);
        check_pct_array(o, w, 2);
        T_NEAR(w[0], 340, 1);
        T_OK(w[1] > 30000000 && w[1] < 31000000); /* inside the outlier's bucket */
        json_decref(o);
    }
    /* average: the midpoints' mean, the outlier's 30.5 ms included */
    o = get_json(HM "/average?start_time=%lld&method=exact", id, S);
    if (o) {
        T_STR(json_string_value(json_object_get(o, "method")), "exact");
        T_NEAR(jnum(o, "average"), mean, 1e-6);
        T_NEAR(jnum(o, "average"), 30850, 10);
        json_decref(o);
    }
    /* from a JSON body */
    struct th_resp r;
    char body[256];
    snprintf(body, sizeof(body), "{\"start_time\":%lld,\"method\":\"exact\",\"percentile\":[0.5]}",
             S);
    get_body(&r, body, HM "/percentile", id);
    o = ok_json(&r, body);
    if (o) { /* one: a number */
        T_NEAR(jnum(o, "percentile"), want[1], 1e-9);
        json_decref(o);
    }
    /* no data: average null, percentiles 0 (what the rows give with their default ymin) */
    o = get_json(HM "/average?start_time=%lld&method=exact", id, S + 1);
    if (o) {
        T_OK(json_is_null(json_object_get(o, "average")));
        json_decref(o);
    }
    o = get_json(HM "/percentile?start_time=%lld&percentile=0.5&method=exact&ymin=7", id, S + 1);
    if (o) {
        T_DEQ(jnum(o, "percentile"), 0.0);
        json_decref(o);
    }
    o = get_json(HM "/percentile?start_time=%lld&percentile=0.5,0.99&method=exact", id, S + 1);
    if (o) {
        static const double w[] = {0, 0};
        check_pct_array(o, w, 2);
        json_decref(o);
    }
    /* two seconds, the empty one with them: the same figures */
    o = get_json(HM "/percentile?start_time=%lld&duration=2&percentile=0.5&method=exact", id, S);
    if (o) {
        T_NEAR(jnum(o, "percentile"), want[1], 1e-9);
        json_decref(o);
    }
    /* bad methods */
    static const char *const bad[] = {"Exact", "mean", "", "exact,rows"};
    for (int i = 0; i < 4; i++) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "value \"%s\" for param \"method\" not valid: unsupported value (\"rows\" or "
                 "\"exact\")",
                 bad[i]);
        inval(msg, HM "/percentile?start_time=%lld&percentile=0.5&method=%s", id, S, bad[i]);
        inval(msg, HM "/average?start_time=%lld&method=%s", id, S, bad[i]);
    }
    inval("value \"weight\" for param \"weights\" not valid: not supported with method "
          "\"exact\"",
          HM "/percentile?start_time=%lld&percentile=0.5&method=exact&weights=weight", id, S);
    inval("value \"weight\" for param \"weights\" not valid: not supported with method "
          "\"exact\"",
          HM "/average?start_time=%lld&method=exact&weights=weight", id, S);
    o = get_json(HM "/average?start_time=%lld&method=exact&weights=count", id, S);
    if (o) {
        T_NEAR(jnum(o, "average"), mean, 1e-6);
        json_decref(o);
    }
    /* the other params are still checked */
    inval("value \"2\" for param \"percentile\" not valid: value too large (max: 1)",
          HM "/percentile?start_time=%lld&percentile=2&method=exact", id, S);
}

/* method=exact with ndatapoints=10&duration=1: each point its own second's figures. Second k
 * holds 100 - k samples in [1000, 1100) and 10 k + 1 in [100000, 110000). */
static void test_exact_ndatapoints(void)
{
    int id = create_latency();
    long long S = B + 270;
    T_REQUIRE(id > 0);
    for (int k = 0; k < 10; k++) {
        char v[128];
        snprintf(v, sizeof(v), "[[[1000,1099],%d],[[100000,109999],%d]]", 100 - k, 10 * k + 1);
        ingest(id, "h1", S + k, NUM, v);
    }
    json_t *a = get_json(HM "/percentile?percentile=0.5,0.9,0.99&duration=1&ndatapoints=10&"
                            "start_time=%lld&method=exact",
                         id, S);
    json_t *m =
        get_json(HM "/average?duration=1&ndatapoints=10&start_time=%lld&method=exact", id, S);
    if (T_OK(json_is_array(a)) && T_EQU(json_array_size(a), 10) && T_OK(json_is_array(m)) &&
        T_EQU(json_array_size(m), 10)) {
        for (int k = 0; k < 10; k++) {
            const json_t *o = json_array_get(a, (size_t)k);
            struct sn_hm_range r[] = {{1000, 1099, 100 - k}, {100000, 109999, 10 * k + 1}};
            static const double q[] = {0.5, 0.9, 0.99};
            double w[3], mean;
            oracle(r, 2, q, 3, w, &mean);
            t_note("point %d", k);
            T_EQ(jint(o, "start_time"), S + k);
            T_STR(json_string_value(json_object_get(o, "method")), "exact");
            check_pct_array(o, w, 3);
            /* p50 always among the 1000s; p99 among the 100000s once they are 2 % */
            T_OK(w[0] >= 1000 && w[0] < 1100);
            T_OK(k == 0 || (w[2] >= 100000 && w[2] < 110000));
            T_NEAR(jnum(json_array_get(m, (size_t)k), "average"), mean, 1e-6);
        }
    }
    json_decref(a);
    json_decref(m);
}

static int stop_rc;

static void test_stopped(void)
{
    T_EQ(stop_rc, 0);
}

static void test_no_server(void)
{
    T_OK(!"sonde serve --no-agent did not start");
}

int main(int argc, char **argv)
{
    static const char *const extra[] = {"--no-agent", NULL};
    /* argv[1] is the sonde binary; a case-name filter may follow */
    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    if (th_serve_start(sonde, extra, NULL, &srv) != 0) {
        t_run("sonde serve --no-agent starts", test_no_server);
        return t_done();
    }
    port = srv.port;
    B = ((long long)time(NULL) - 400) / 60 * 60;

    t_run("image: the reference's worked example, pixel for pixel, and the reply's fields",
          test_worked_example);
    t_run("image: nsources and minreporting", test_sources);
    t_run("image: default duration 60, one column a second (600 and 599 wide)",
          test_default_duration);
    t_run("image: ymax auto-scaled over the window and returned", test_autoscale);
    t_run("image: limits of width, height, nbuckets, ymin, ymax and enums", test_limits);
    t_run("image: \"ymax\" must be greater than \"ymin\"", test_ymax_above_ymin);
    t_run("image: present is sorted, keys of the interval only", test_present_sorted);
    t_run("image: highlight, isolate, exclude, decompose_all (only one)", test_modes);
    t_run("image: selected, comma-separated or repeated", test_selected_forms);
    t_run("image: hues, default 21 and 112, need N hues, invalid hue", test_hues);
    t_run("image: layers and their hues in every mode", test_layers);
    t_run("image: decompose_all's layers stop at 63 keys", test_layers_limit);
    t_run("image: decompose_all colours the 63 biggest keys of the interval",
          test_decompose_biggest);
    t_run("image: coloring rank and linear", test_coloring);
    t_run("image: two layers in one pixel mix as CA mixes them", test_mixed_layers);
    t_run("image: weights=weight", test_weights);
    t_run("image: yscale=log", test_yscale_log);
    t_run("image: parameters from a JSON body", test_json_body);
    t_run("image: raw PNG by format=png and Accept: image/png", test_raw_png);
    t_run("image, details, average: ndatapoints", test_ndatapoints);
    t_run("parameters from the query, a form body or a JSON body", test_param_sources);
    t_run("without start_time: now - duration - 1", test_default_start);
    t_run("heatmap resources of scalar, discrete and unknown instrumentations: 404",
          test_not_numeric);
    t_run("image: granularity 5, normalized interval, duration/G columns", test_granularity);
    t_run("details: ymax, x and y required, bounds", test_details_params);
    t_run("details: a known cell", test_details_cell);
    t_run("details: small shares are max(1, round(v))", test_details_small_shares);
    t_run("details: the image's pixel mapping (columns at 600 and 599, rows at 15)",
          test_details_mapping);
    t_run("average: default duration 1, §4.4 figures, no data", test_average);
    t_run("percentile: required, bounds, §4.4 figures, several, no data", test_percentile);
    t_run("average and percentile: yscale=log", test_log_stats);
    t_run("percentile: p50, p90, p99 of 60 points, linear and log", test_percentile_ndatapoints);
    t_run("average and percentile: method=exact, bad methods, no data", test_exact);
    t_run("average and percentile: method=exact over ndatapoints=10&duration=1",
          test_exact_ndatapoints);

    stop_rc = th_serve_stop(&srv);
    t_run("sonde serve stops cleanly", test_stopped);
    return t_done();
}
