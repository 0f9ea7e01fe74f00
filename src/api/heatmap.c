/*
 * Heatmap resources (§1.5, §4.2-4.4): image, details, average and percentile, with every
 * parameter of CA's and Sonde's extensions (yscale=log, parameters from a JSON body, JSON
 * booleans, several percentiles at once, a raw image/png form, the layers drawn and their
 * hues). The drawing itself is render/raster.c; the columns it draws come from the
 * aggregator's query API (agg/agg.h), copied out of one view per request, so that gathering
 * and drawing run without any lock.
 *
 * Details of a system call latency heatmap also list the flight recorder's raw events of the
 * cell (rec/cell_events.h), as those of trace.spans list exemplars.
 *
 * The image and details share one pixel-to-column mapping: column i covers x from
 * floor(i*w/ncols) up to floor((i+1)*w/ncols), so a click always lands in the column drawn
 * under it (CA's details used another mapping; see the reference's note in §4.3).
 */
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/internal.h"
#include "agent/names.h"
#include "api/value.h"
#include "bpf/slots.h"
#include "core/b64.h"
#include "core/hist.h"
#include "rec/cell_events.h"
#include "render/annotate.h"
#include "render/raster.h"
#include "render/png.h"

#define MAX_SELECTED   (SN_HM_MAX_LAYERS - 1)
#define SN_HM_MAX_WORK (1 << 27) /* pixels and cells of one image request, all points */

struct hm_req {
    const char *what; /* image, details, average or percentile */
    struct sn_hm_params p;
    bool ymax_given, decompose_all, png;
    bool exact; /* average and percentile: method=exact (the merged histograms) */
    const char *sel[MAX_SELECTED + 1];
    size_t nsel;
    double hues[SN_HM_MAX_LAYERS + 1];
    size_t nhues;
    char selbuf[4096], huebuf[1024];
    int64_t x, y;  /* details */
    bool events;   /* details: the recorder's raw events of the cell (param "events") */
    bool annotate; /* image: axes, legend and title in margins (render/annotate.h) */
    struct sn_annot ann;
    char ann_title[512];
    double pct[16]; /* percentile(s) */
    size_t npct;
};

static bool parse_hm(struct sn_call *c, const char *what, struct hm_req *h)
{
    int64_t w, ht, nb, ymin, ymax;
    bool isolate, exclude, ymin_given;
    char buf[64];
    const char *s, *hue[SN_HM_MAX_LAYERS + 1];

    memset(h, 0, sizeof(*h));
    h->what = what;
    if (!sn_param_int(c, "height", 10, 1000, 300, &ht, NULL) ||
        !sn_param_int(c, "width", 10, 1000, 600, &w, NULL) ||
        !sn_param_int(c, "ymin", 0, 1000000000000LL, 0, &ymin, &ymin_given) ||
        !sn_param_int(c, "ymax", 0, 1000000000000LL, 0, &ymax, &h->ymax_given) ||
        !sn_param_int(c, "nbuckets", 1, 100, 100, &nb, NULL) ||
        !sn_param_bool(c, "isolate", false, &isolate) ||
        !sn_param_bool(c, "exclude", false, &exclude) ||
        !sn_param_bool(c, "decompose_all", false, &h->decompose_all) ||
        !sn_param_bool(c, "annotate", false, &h->annotate))
        return false;
    h->p.width = (int)w;
    h->p.height = (int)ht;
    h->p.nbuckets = (int)nb;
    h->p.ymin = (double)ymin;
    h->p.ymax = (double)ymax;
    if (h->ymax_given && ymax <= ymin) {
        CA_INVAL(c, "\"ymax\" must be greater than \"ymin\"");
        return false;
    }
    if (isolate + exclude + h->decompose_all > 1) {
        CA_INVAL(c, "only one of \"isolate\", \"exclude\", and \"decompose_all\" may be specified");
        return false;
    }
    h->p.mode = isolate ? SN_HM_ISOLATE : exclude ? SN_HM_EXCLUDE : SN_HM_DEFAULT;
    if ((s = sn_param_raw(c, "weights", buf, sizeof(buf)))) {
        if (strcmp(s, "count") && strcmp(s, "weight")) {
            CA_INVAL(c, "value \"%.100s\" for param \"weights\" not valid: unsupported value", s);
            return false;
        }
        h->p.weights = s[0] == 'w';
    }
    if ((s = sn_param_raw(c, "coloring", buf, sizeof(buf)))) {
        if (strcmp(s, "rank") && strcmp(s, "linear")) {
            CA_INVAL(c, "value \"%.100s\" for param \"coloring\" not valid: unsupported value", s);
            return false;
        }
        h->p.coloring = s[0] == 'l' ? SN_HM_LINEAR : SN_HM_RANK;
    }
    if ((s = sn_param_raw(c, "yscale", buf, sizeof(buf)))) {
        if (strcmp(s, "linear") && strcmp(s, "log")) {
            CA_INVAL(c, "value \"%.100s\" for param \"yscale\" not valid: unsupported value", s);
            return false;
        }
        h->p.log = strcmp(s, "log") == 0;
    }
    if ((s = sn_param_raw(c, "format", buf, sizeof(buf)))) {
        if (strcmp(s, "json") && strcmp(s, "png")) {
            CA_INVAL(c, "value \"%.100s\" for param \"format\" not valid: unsupported value", s);
            return false;
        }
        h->png = strcmp(s, "png") == 0;
    }
    if (c->req->accept && strcmp(c->req->accept, "image/png") == 0)
        h->png = true;
    /* lists are read whole: too many items, or more text than the buffer, is a 409 */
    if (!sn_param_list(c, "selected", h->sel, MAX_SELECTED, h->selbuf, sizeof(h->selbuf), &h->nsel))
        return false;
    size_t nh;
    if (!sn_param_list(c, "hues", hue, SN_HM_MAX_LAYERS + 1, h->huebuf, sizeof(h->huebuf), &nh))
        return false;
    if (nh > 0) { /* CA checks the count, then each hue */
        size_t need = h->nsel + (h->p.mode == SN_HM_ISOLATE ? 0 : 1);
        if (nh < need) {
            CA_INVAL(c, "need %zu hues", need);
            return false;
        }
    }
    for (size_t i = 0; i < nh; i++) {
        char *end;
        double d = strtod(hue[i], &end);
        if (end == hue[i] || *end || !(d >= 0 && d <= 359) || d != floor(d)) {
            CA_INVAL(c, "invalid hue");
            return false;
        }
        h->hues[i] = d;
    }
    h->nhues = nh;
    if (strcmp(what, "details") == 0) {
        bool gx, gy;
        if (!h->ymax_given) {
            CA_INVAL(c, "\"ymax\" must be specified");
            return false;
        }
        if (!sn_param_int(c, "x", 0, INT32_MAX, 0, &h->x, &gx) ||
            !sn_param_int(c, "y", 0, INT32_MAX, 0, &h->y, &gy))
            return false;
        if (!sn_param_bool(c, "events", true, &h->events))
            return false;
        if (!gx || !gy) {
            CA_INVAL(c, "param \"%s\" must be specified", !gx ? "x" : "y");
            return false;
        }
        if (h->x >= w) {
            CA_INVAL(c, "\"x\" must be less than \"width\"");
            return false;
        }
        if (h->y >= ht) {
            CA_INVAL(c, "\"y\" must be less than \"height\"");
            return false;
        }
    }
    if (strcmp(what, "average") == 0 || strcmp(what, "percentile") == 0) {
        if ((s = sn_param_raw(c, "method", buf, sizeof(buf)))) {
            if (strcmp(s, "rows") && strcmp(s, "exact")) {
                CA_INVAL(c,
                         "value \"%.100s\" for param \"method\" not valid: unsupported value "
                         "(\"rows\" or \"exact\")",
                         s);
                return false;
            }
            h->exact = strcmp(s, "exact") == 0;
        }
        if (h->exact && h->p.weights) { /* the histograms count events, not their values */
            CA_INVAL(c, "value \"weight\" for param \"weights\" not valid: not supported with "
                        "method \"exact\"");
            return false;
        }
    }
    if (strcmp(what, "percentile") == 0) {
        const char *pv[16];
        char pbuf[512];
        size_t np;
        if (!sn_param_list(c, "percentile", pv, 16, pbuf, sizeof(pbuf), &np))
            return false;
        if (np == 0) {
            CA_INVAL(c, "param \"percentile\" must be specified");
            return false;
        }
        for (size_t i = 0; i < np; i++) {
            char *end;
            double d = strtod(pv[i], &end);
            if (end == pv[i] || *end || !isfinite(d)) {
                CA_INVAL(c, "value \"%.64s\" for param \"percentile\" not valid: not a number",
                         pv[i]);
                return false;
            }
            if (d < 0 || d > 1) {
                CA_INVAL(c,
                         "value \"%.64s\" for param \"percentile\" not valid: value too %s "
                         "(%s: %d)",
                         pv[i], d < 0 ? "small" : "large", d < 0 ? "min" : "max", d < 0 ? 0 : 1);
                return false;
            }
            h->pct[i] = d;
        }
        h->npct = np;
    }
    return true;
}

/* ------------------------------------------------------------------------------------------
 * Columns from slots
 */

_Static_assert(sizeof(struct sn_hm_range) == sizeof(struct sn_hist_range) &&
                   offsetof(struct sn_hm_range, lo) == offsetof(struct sn_hist_range, lo) &&
                   offsetof(struct sn_hm_range, hi) == offsetof(struct sn_hist_range, hi) &&
                   offsetof(struct sn_hm_range, count) == offsetof(struct sn_hist_range, count),
               "a column's ranges are converted in place");

struct columns {
    struct sn_hm_column *total;       /* [ncols] */
    struct sn_hm_column *sel;         /* [nsel][ncols] */
    const struct sn_hm_column **selp; /* [nsel] */
    struct sn_hm_range *ranges;       /* the total's ranges first, column after column */
    size_t nranges;
};

static void columns_fini(struct columns *c)
{
    free(c->total);
    free(c->sel);
    free(c->selp);
    free(c->ranges);
    memset(c, 0, sizeof(*c));
}

/* The total's and each selected key's ranges per column [start + i*G], from v's view, as the
 * renderer takes them. Returns 0 or -ENOMEM (cols then empty but finishable). */
static int columns_of(const struct sn_value_req *v, int64_t start, size_t ncols,
                      const char *const *sel, size_t nsel, struct columns *cols)
{
    struct sn_agg_columns ac;

    memset(cols, 0, sizeof(*cols));
    if (sn_agg_view_columns(v->view, start, ncols, sel, nsel, &ac) < 0)
        return -ENOMEM;
    cols->total = calloc(ncols ? ncols : 1, sizeof(*cols->total));
    cols->sel = calloc(ncols * (nsel ? nsel : 1) + 1, sizeof(*cols->sel));
    cols->selp = calloc(nsel ? nsel : 1, sizeof(*cols->selp));
    if (!cols->total || !cols->sel || !cols->selp) {
        sn_agg_columns_fini(&ac);
        columns_fini(cols);
        return -ENOMEM;
    }
    /* the renderer's ranges in the aggregator's array, converted in place (same size and
     * layout but for the count's type: each element is read whole, then written whole as the
     * renderer's type, which allocated memory allows), so a big image copies no range */
    cols->ranges = (struct sn_hm_range *)(void *)ac.r;
    for (size_t i = 0; i < ac.nr; i++) {
        struct sn_hist_range r = ac.r[i];
        cols->ranges[i] = (struct sn_hm_range){r.lo, r.hi, (double)r.count};
    }
    ac.r = NULL; /* the columns' now */
    cols->nranges = ac.nr;
    for (size_t i = 0; i < ncols * (1 + nsel); i++) {
        struct sn_hm_column *col = i < ncols ? &cols->total[i] : &cols->sel[i - ncols];
        col->r = cols->ranges + ac.off[i];
        col->n = ac.off[i + 1] - ac.off[i];
    }
    for (size_t k = 0; k < nsel; k++)
        cols->selp[k] = &cols->sel[k * ncols];
    sn_agg_columns_fini(&ac);
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * The four resources
 */

static void set_conf(json_t *o, const struct hm_req *h, double ymax)
{
    json_object_set_new(o, "nbuckets", json_integer(h->p.nbuckets));
    json_object_set_new(o, "width", json_integer(h->p.width));
    json_object_set_new(o, "height", json_integer(h->p.height));
    json_object_set_new(o, "ymin", json_integer((json_int_t)h->p.ymin));
    /* buckets at the format's extremes (up to 99e127) auto-scale past int64: llround() would
     * overflow (ymax read -9223372036854775808); the largest double below 2^63 stands in */
    double y = isfinite(ymax) ? fmin(fmax(ymax, 0), 0x1p63 - 1024) : 0x1p63 - 1024;
    json_object_set_new(o, "ymax", json_integer((json_int_t)llround(y)));
    if (h->p.log)
        json_object_set_new(o, "yscale", json_string("log"));
}

/* What drawing one image needs, copied out of the request's view. */
struct img_job {
    char **present; /* keys with data in the interval, sorted (owned copies) */
    size_t npresent, nsel, ncols;
    char **drawn; /* decompose_all: the keys drawn, biggest first (into present) */
    struct columns cols;
    int64_t start, duration; /* the point's interval (annotate) */
};

static void job_fini(struct img_job *j)
{
    sn_agg_strings_free(j->present, j->npresent);
    free(j->drawn);
    columns_fini(&j->cols);
}

/* Copies point k's columns out of v's view. Returns 0 or -ENOMEM. */
static int gather(const struct sn_instn *in, const struct sn_value_req *v, size_t k,
                  const struct hm_req *h, struct img_job *j)
{
    int64_t start = v->iv.start + (int64_t)k * v->iv.duration;
    const char *const *sel = h->sel;

    memset(j, 0, sizeof(*j));
    j->ncols = (size_t)(v->iv.duration / v->pick.gran);
    if (sn_agg_view_keys(v->view, start, j->ncols, &j->present, &j->npresent) < 0)
        return -ENOMEM;
    j->nsel = h->nsel;
    if (h->decompose_all) { /* the biggest keys first */
        size_t *order;
        if (sn_agg_view_biggest(v->view, start, j->ncols, (const char *const *)j->present,
                                j->npresent, &order) < 0)
            return -ENOMEM;
        j->nsel = j->npresent < MAX_SELECTED ? j->npresent : MAX_SELECTED;
        j->drawn = calloc(j->nsel ? j->nsel : 1, sizeof(*j->drawn));
        if (!j->drawn) {
            free(order);
            return -ENOMEM;
        }
        for (size_t i = 0; i < j->nsel; i++)
            j->drawn[i] = j->present[order[i]];
        free(order);
        sel = (const char *const *)j->drawn;
    }
    return columns_of(v, start, j->ncols, sel, j->nsel, &j->cols);
}

/* The key of drawn layer l: NULL for the rest (layer 0), else the selected key, or
 * decompose_all's l-th biggest. The reply's "layers" and an annotated image's legend both name
 * their layers through this. */
static const char *layer_key(const struct img_job *j, const struct hm_req *h, size_t l)
{
    return l == 0 ? NULL : h->decompose_all ? j->drawn[l - 1] : h->sel[l - 1];
}

/* The layers drawn, in drawing order, as the reply's "layers": {"hue"} for the rest (layer
 * 0), {"key", "hue"} for a key's; each hue the renderer's own (p: the parameters drawn with). */
static json_t *layers_of(const struct img_job *j, const struct hm_req *h,
                         const struct sn_hm_params *p)
{
    json_t *arr = json_array();
    size_t first, n = sn_hm_drawn_layers(p, j->nsel, &first);

    for (size_t l = first; l < first + n; l++) {
        double hue = sn_hm_layer_hue(p, l);
        json_t *o = json_object();
        if (l > 0)
            json_object_set_new(o, "key", json_string(layer_key(j, h, l)));
        json_object_set_new(o, "hue",
                            hue == floor(hue) ? json_integer((json_int_t)hue) : json_real(hue));
        json_array_append_new(arr, o);
    }
    return arr;
}

/* annotate=true: what the margins say, from the instrumentation. */
static void annot_of(const struct sn_instn *in, struct hm_req *h)
{
    static const char *const types[] = {"number", "time", "subsecond", "size", "percent"};
    const char *type = in->numf ? in->numf->type : "";
    size_t off, i;
    json_t *f;

    off = (size_t)snprintf(h->ann_title, sizeof(h->ann_title), "%s.%s",
                           in->metric ? in->metric->module : "?",
                           in->metric ? in->metric->stat : "?");
    json_array_foreach(in->decomposition, i, f)
    {
        if (off < sizeof(h->ann_title))
            off += (size_t)snprintf(h->ann_title + off, sizeof(h->ann_title) - off, "%s%s",
                                    i ? ", " : " by ", json_string_value(f));
    }
    h->ann.title = h->ann_title;
    h->ann.yname = in->numf ? in->numf->def.name : NULL; /* the catalog's: static */
    for (size_t u = 0; u < sizeof(types) / sizeof(types[0]); u++)
        if (type && strcmp(type, types[u]) == 0)
            h->ann.unit = (enum sn_annot_unit)u;
}

/* The annotated image of plot rgb (p and d: as drawn) into *out (*w x *h2); the plot's place
 * in *x, *y. Returns 0 or -errno. */
static int annotate(const struct img_job *j, const struct hm_req *h, const struct sn_hm_params *p,
                    const struct sn_hm_drawn *d, const uint8_t *rgb, uint8_t **out, int *w, int *h2,
                    int *x, int *y)
{
    struct sn_annot a = h->ann;
    struct sn_annot_layer layers[SN_HM_MAX_LAYERS + 1];
    size_t first, n = sn_hm_drawn_layers(p, j->nsel, &first);

    for (size_t l = first; l < first + n; l++)
        layers[l - first] = (struct sn_annot_layer){layer_key(j, h, l), sn_hm_layer_hue(p, l)};
    a.layers = layers;
    a.nlayers = n;
    a.any_key = j->nsel > 0;
    a.start = j->start;
    a.duration = j->duration;
    a.ymin = p->ymin;
    a.ymax = d->ymax;
    a.log = p->log;
    a.linear = p->coloring == SN_HM_LINEAR;
    a.weights = p->weights;
    a.cell[0] = d->cell_min;
    a.cell[1] = d->cell_median;
    a.cell[2] = d->cell_max;
    return sn_annot_render(&a, rgb, p->width, p->height, out, w, h2, x, y);
}

/* Draws a gathered image into o (or, for the raw PNG form, into *png). Returns 0 or -errno. */
static int draw(const struct img_job *j, const struct hm_req *h, json_t *o, unsigned char **png,
                size_t *pnglen)
{
    struct sn_hm_params p = h->p;
    double hues[SN_HM_MAX_LAYERS + 1];
    struct sn_hm_drawn d = {0};
    uint8_t *rgb = malloc((size_t)p.width * (size_t)p.height * 3);
    unsigned char *img = NULL;
    size_t len = 0;
    int rc = rgb ? 0 : -ENOMEM;

    /* hues by layer (0: the rest); when isolating, the caller's hues are the keys' */
    for (size_t i = 0; i <= j->nsel; i++) {
        size_t ui = p.mode == SN_HM_ISOLATE ? i - 1 : i;
        hues[i] = h->nhues && (p.mode != SN_HM_ISOLATE || i > 0) && ui < h->nhues
                      ? h->hues[ui]
                      : sn_hm_default_hue(i);
    }
    p.hues = hues;
    p.nhues = j->nsel + 1;
    if (rc == 0)
        rc = sn_hm_render(&p, j->cols.total, j->cols.selp, j->nsel, j->ncols, rgb, &d);
    int aw = 0, ah = 0, ax = 0, ay = 0; /* annotate: the image's size, the plot's place */
    if (rc == 0 && h->annotate) {
        uint8_t *big = NULL;
        rc = annotate(j, h, &p, &d, rgb, &big, &aw, &ah, &ax, &ay);
        free(rgb);
        rgb = big;
    }
    if (rc == 0)
        rc = sn_png_encode_rgb(rgb, aw ? aw : p.width, aw ? ah : p.height, &img, &len);
    free(rgb);
    if (rc == 0 && png) {
        *png = img;
        *pnglen = len;
        return 0;
    }
    if (rc < 0)
        return rc;
    char *b64 = malloc(sn_b64_encoded_len(len) + 1);
    if (!b64) {
        free(img);
        return -ENOMEM;
    }
    b64[sn_b64_encode(img, len, b64)] = '\0';
    free(img);
    json_t *pj = json_array();
    set_conf(o, h, d.ymax);
    json_object_set_new(o, "max_count", json_real(d.cell_max));
    for (size_t i = 0; i < j->npresent; i++)
        json_array_append_new(pj, json_string(j->present[i]));
    json_object_set_new(o, "present", pj);
    json_object_set_new(o, "layers", layers_of(j, h, &p));
    if (h->annotate)
        json_object_set_new(
            o, "annotated",
            json_pack("{s:i,s:i,s:i,s:i}", "width", aw, "height", ah, "plot_x", ax, "plot_y", ay));
    json_object_set_new(o, "image", json_string(b64));
    free(b64);
    return 0;
}

/* image: gathers every point from one view, lets the view go, then draws them. */
static void images(struct sn_call *c, const struct sn_instn *in, struct sn_value_req *v,
                   struct hm_req *h)
{
    size_t n = h->png ? 1 : v->n;
    struct img_job *jobs;
    json_t **objs;
    json_t *out = NULL;
    int rc;

    if (sn_value_open(c, in, v) < 0)
        return;
    jobs = calloc(n, sizeof(*jobs));
    objs = calloc(n, sizeof(*objs));
    rc = jobs && objs ? 0 : -ENOMEM;

    for (size_t k = 0; rc == 0 && k < n; k++) {
        rc = gather(in, v, k, h, &jobs[k]);
        jobs[k].start = v->iv.start + (int64_t)k * v->iv.duration;
        jobs[k].duration = v->iv.duration;
        if (h->annotate && k == 0)
            annot_of(in, h);
        if (rc == 0 && !h->png) {
            objs[k] = json_object();
            sn_value_point(c, in, v, k, objs[k]);
        }
    }
    sn_value_close(v);
    if (rc == 0 && h->png) { /* the raw form: one image, for <img src=...> */
        unsigned char *png = NULL;
        size_t len = 0;
        if ((rc = draw(&jobs[0], h, NULL, &png, &len)) == 0)
            sn_resp_bytes(c->resp, 200, "image/png", png, len);
    } else if (rc == 0) {
        out = v->array ? json_array() : NULL;
        for (size_t k = 0; rc == 0 && k < n; k++) {
            rc = draw(&jobs[k], h, objs[k], NULL, NULL);
            if (rc == 0 && v->nxf) /* CA: computed over present */
                sn_value_transform(c, v, objs[k], "present");
            if (v->array)
                json_array_append(out, objs[k]);
            else
                out = json_incref(objs[k]);
        }
        if (rc == 0)
            sn_resp_json(c->resp, 200, out);
        else
            json_decref(out);
    }
    if (rc < 0)
        sn_resp_empty(c->resp, 500);
    for (size_t k = 0; jobs && k < n; k++) {
        job_fini(&jobs[k]);
        if (objs)
            json_decref(objs[k]);
    }
    free(jobs);
    free(objs);
}

#define CELL_EVENTS 20 /* raw events a cell's details list at most (the rest counted) */

/* Whether in's heatmap cells map to raw events of the recorder: system call latency. */
static bool has_raw_events(const struct sn_instn *in)
{
    return in->metric && in->metric->metric == SN_METRIC_SYSCALLS && in->numf &&
           strcmp(in->numf->def.name, "latency") == 0;
}

static json_t *cell_event_json(const struct sn_cell_result *r, const struct sn_cell_event *e,
                               bool keyed)
{
    const char *name = sn_syscall_name(e->nr);
    char nb[32];
    json_t *args = json_array();

    if (!name) {
        snprintf(nb, sizeof(nb), "syscall_%lld", (long long)e->nr);
        name = nb;
    }
    for (int k = 0; k < SN_REC_ARGS; k++)
        json_array_append_new(args, json_integer((json_int_t)e->args[k]));
    json_t *o = json_pack("{s:s,s:i,s:i,s:i,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:o}", "session",
                          r->session, "cpu", (int)e->cpu, "tid", (int)e->tid, "pid", (int)e->pid,
                          "comm", e->comm, "syscall", name, "nr", (json_int_t)e->nr, "entry_ns",
                          (json_int_t)e->entry_ns, "exit_ns", (json_int_t)e->exit_ns, "latency_ns",
                          (json_int_t)e->latency, "ret", (json_int_t)e->ret, "args", args);
    if (o && e->path[0])
        json_object_set_new(o, "path", json_string(e->path));
    if (o && keyed)
        json_object_set_new(o, "key", json_string(e->key));
    return o;
}

/* The recorder's raw events of the cell [t, t + gran) x [lo, hi) (rec/cell_events.h): o's
 * "events" and "events_total" when a running session's rings hold its time, and "recording"
 * saying what they hold. The caller's scope sees only its own sessions. Optional param "key":
 * only events of that key of the discrete decomposition. */
static int cell_events(struct sn_call *c, const struct sn_instn *in, int64_t t, int64_t gran,
                       double lo, double hi, json_t *o)
{
    char kb[256];
    const char *key = sn_param_raw(c, "key", kb, sizeof(kb));
    struct sn_cell_query q = {.t0 = t * 1000000000LL,
                              .t1 = (t + gran) * 1000000000LL,
                              .lo = lo > 0 ? (uint64_t)lo : 0,
                              .hi = (uint64_t)hi,
                              .keyfield = in->keyf ? in->keyf->def.name : NULL,
                              .key = in->keyf ? key : NULL,
                              .tenant = c->scope,
                              .max = CELL_EVENTS,
                              /* the local agent counts none of the server's own calls */
                              .self_pid = (int32_t)getpid()};
    struct sn_cell_result r;
    struct sn_slot_spec *spec = NULL;
    struct sn_def d;
    char why[256];

    if (!c->s->recorder || q.hi <= q.lo)
        return 0;
    if (c->s->fleet) { /* the answering node's rings are not the hosts' */
        json_object_set_new(o, "recording",
                            json_pack("{s:s,s:s}", "state", "unsupported", "reason",
                                      "raw events are not gathered across a fleet yet"));
        return 0;
    }
    /* the instrumentation's predicate, compiled for this host as the agent does */
    if (in->predicate && json_object_size(in->predicate)) {
        json_t *def =
            json_pack("{s:s,s:s,s:O,s:O}", "module", in->metric->module, "stat", in->metric->stat,
                      "predicate", in->predicate, "decomposition", in->decomposition);
        if (!def || !(spec = malloc(sizeof(*spec)))) {
            json_decref(def);
            return -ENOMEM;
        }
        int crc = sn_def_compile(def, c->s->host, &d, spec, why, sizeof(why));
        json_decref(def);
        if (crc != 0) { /* it compiled when created: a host that cannot resolve it now */
            free(spec);
            json_object_set_new(o, "recording",
                                json_pack("{s:s,s:s}", "state", "unsupported", "reason", why));
            return 0;
        }
        q.pred = &spec->pred;
        q.pred_json = in->predicate;
    }
    int rc = sn_cell_events(c->s->recorder, &q, &r);
    free(spec);
    if (rc != 0)
        return rc == -EINVAL ? 0 : rc;
    json_t *rec = json_pack("{s:s}", "state", sn_cell_state_name(r.state));
    if (r.session[0])
        json_object_set_new(rec, "session", json_string(r.session));
    if (r.state == SN_CELL_COVERED || r.state == SN_CELL_PARTIAL || r.state == SN_CELL_NOT_COVERING)
        json_object_set_new(rec, "from_ms", json_integer((json_int_t)(r.from / 1000000)));
    if (r.why[0])
        json_object_set_new(rec, "reason", json_string(r.why));
    if (r.state == SN_CELL_COVERED || r.state == SN_CELL_PARTIAL) {
        json_t *ev = json_array();
        for (size_t i = 0; i < r.n; i++)
            json_array_append_new(ev, cell_event_json(&r, &r.ev[i], q.keyfield && r.ev[i].key[0]));
        json_object_set_new(o, "events", ev);
        json_object_set_new(o, "events_total", json_integer((json_int_t)r.total));
    }
    json_object_set_new(o, "recording", rec);
    sn_cell_result_free(&r);
    return 0;
}

/* A share of a bucket as details report it: 0 stays 0, anything else at least 1. */
static json_int_t share(double v)
{
    if (v == 0)
        return 0;
    return v < 1 ? 1 : v >= 0x1p63 ? INT64_MAX : (json_int_t)llround(v); /* no overflow */
}

static int details(struct sn_call *c, const struct sn_instn *in, const struct sn_value_req *v,
                   size_t k, struct hm_req *h, json_t *o)
{
    int64_t start = v->iv.start + (int64_t)k * v->iv.duration;
    int64_t ncols = v->iv.duration / (int64_t)v->pick.gran;
    int64_t w = h->p.width, ht = h->p.height, nb = h->p.nbuckets;
    int64_t col = ((h->x + 1) * ncols + w - 1) / w - 1; /* the column drawn at x */
    int64_t row = ((h->y + 1) * nb + ht - 1) / ht - 1;  /* the bucket band at y */
    int j = (int)(nb - 1 - row);
    double lo = llround(sn_hm_edge(h->p.ymin, h->p.ymax, (int)nb, j, h->p.log));
    double hi = llround(sn_hm_edge(h->p.ymin, h->p.ymax, (int)nb, j + 1, h->p.log));
    int64_t t = start + col * (int64_t)v->pick.gran;
    json_t *present = json_object();
    json_int_t total = 0;
    struct columns cols;
    char **keys = NULL;
    size_t nkeys = 0;

    /* the slot's keys (each a layer of the one column), sorted */
    if ((in->keyf && sn_agg_view_keys(v->view, t, 1, &keys, &nkeys) < 0) ||
        columns_of(v, t, 1, (const char *const *)keys, nkeys, &cols) < 0) {
        sn_agg_strings_free(keys, nkeys);
        json_decref(present);
        return -ENOMEM;
    }
    if (in->keyf) {
        for (size_t i = 0; i < nkeys; i++) {
            double m = 0;
            sn_hm_bucketize(&cols.sel[i], lo, hi, 1, h->p.weights, &m);
            if (share(m)) {
                json_object_set_new(present, keys[i], json_integer(share(m)));
                total += share(m);
            }
        }
        sn_agg_strings_free(keys, nkeys);
    } else {
        double m = 0;
        sn_hm_bucketize(&cols.total[0], lo, hi, 1, h->p.weights, &m);
        total = share(m);
    }
    columns_fini(&cols);
    set_conf(o, h, h->p.ymax);
    json_object_set_new(o, "bucket_time", json_integer(t));
    json_object_set_new(o, "bucket_ymin", json_integer((json_int_t)lo));
    json_object_set_new(o, "bucket_ymax", json_integer((json_int_t)hi));
    json_object_set_new(o, "present", present);
    json_object_set_new(o, "total", json_integer(total));
    /* spans (trace.spans): a few of the traces in the cell */
    json_t *ex =
        total ? sn_api_span_exemplars(c, in, t, t + (int64_t)v->pick.gran, lo, hi, 5) : NULL;
    if (ex)
        json_object_set_new(o, "exemplars", ex);
    /* system call latency: the recorder's raw events of the cell (events=false: not read) */
    if (total && h->events && has_raw_events(in))
        return cell_events(c, in, t, (int64_t)v->pick.gran, lo, hi, o);
    return 0;
}

/* method=exact: the interval's histograms merged (every slot's total, so every key), and the
 * histogram library's mean and quantiles (Hyndman-Fan type 1, interpolated within the bucket,
 * hist_stats.c) over them. Without data: average null, each percentile 0 (what the rows method
 * gives with its default ymin). The rows' parameters (ymin, ymax, nbuckets, yscale) are not
 * used, and the reply leaves them out. */
static int exact_stat(const struct sn_instn *in, const struct sn_value_req *v, size_t k,
                      const struct hm_req *h, bool average, json_t *o)
{
    int64_t start = v->iv.start + (int64_t)k * v->iv.duration;
    size_t ncols = (size_t)(v->iv.duration / v->pick.gran);
    struct sn_hist *all;
    double q[16], r[16], out[16];
    size_t idx[16];

    if (sn_agg_view_total(v->view, start, ncols, &all) < 0)
        return -ENOMEM;
    json_object_set_new(o, "method", json_string("exact"));
    if (average) {
        double m = sn_hist_mean(all);
        json_object_set_new(o, "average", isfinite(m) ? json_real(m) : json_null());
        sn_hist_destroy(all);
        return 0;
    }
    /* the library wants the quantiles ascending: sort the asked ones (stable), then put each
     * answer back in the order asked */
    for (size_t i = 0; i < h->npct; i++) {
        size_t j = i;
        for (; j > 0 && h->pct[idx[j - 1]] > h->pct[i]; j--)
            idx[j] = idx[j - 1];
        idx[j] = i;
    }
    for (size_t i = 0; i < h->npct; i++)
        q[i] = h->pct[idx[i]];
    if (sn_hist_quantiles(all, q, h->npct, r, SN_QUANTILE_TYPE1) < 0) {
        sn_hist_destroy(all); /* cannot happen: parse_hm checked each is in [0, 1] */
        return -EINVAL;
    }
    for (size_t i = 0; i < h->npct; i++)
        out[idx[i]] = isfinite(r[i]) ? r[i] : 0;
    sn_hist_destroy(all);
    if (h->npct == 1) {
        json_object_set_new(o, "percentile", json_real(out[0]));
    } else {
        json_t *arr = json_array();
        for (size_t i = 0; i < h->npct; i++)
            json_array_append_new(arr, json_real(out[i]));
        json_object_set_new(o, "percentile", arr);
    }
    return 0;
}

/* average and percentile: one column over the whole interval, in linear or (yscale=log)
 * log-spaced buckets. */
static int column_stat(const struct sn_instn *in, const struct sn_value_req *v, size_t k,
                       struct hm_req *h, bool average, json_t *o)
{
    int64_t start = v->iv.start + (int64_t)k * v->iv.duration;
    size_t ncols = (size_t)(v->iv.duration / v->pick.gran);
    struct columns cols;
    struct sn_hm_column all;
    int nb = h->p.nbuckets;
    double *map = calloc((size_t)nb, sizeof(double)), ymax, sum = 0;
    int rc = -ENOMEM;

    if (!map)
        return -ENOMEM;
    if (columns_of(v, start, ncols, NULL, 0, &cols) < 0)
        goto out;
    /* the interval's ranges as one column: they sit back to back in the arena */
    all.r = cols.ranges;
    all.n = cols.nranges;
    ymax = h->ymax_given ? h->p.ymax : sn_hm_autoscale(&all, 1);
    if (ymax > h->p.ymin)
        (h->p.log ? sn_hm_bucketize_log : sn_hm_bucketize)(&all, h->p.ymin, ymax, nb, h->p.weights,
                                                           map);
    for (int j = 0; j < nb; j++)
        sum += map[j];
    set_conf(o, h, ymax);
    json_object_set_new(o, "method", json_string("rows"));
    if (average) {
        json_object_set_new(o, "average",
                            sum > 0 ? json_real(sn_hm_average(map, nb, h->p.ymin, ymax, h->p.log))
                                    : json_null());
    } else if (h->npct == 1) {
        json_object_set_new(
            o, "percentile",
            json_real(sn_hm_percentile(map, nb, h->p.ymin, ymax, h->p.log, h->pct[0])));
    } else {
        json_t *arr = json_array();
        for (size_t i = 0; i < h->npct; i++)
            json_array_append_new(
                arr, json_real(sn_hm_percentile(map, nb, h->p.ymin, ymax, h->p.log, h->pct[i])));
        json_object_set_new(o, "percentile", arr);
    }
    rc = 0;
out:
    columns_fini(&cols);
    free(map);
    return rc;
}

/* A point of details, average or percentile (h->what says which). */
static int point(struct sn_call *c, const struct sn_instn *in, const struct sn_value_req *v,
                 size_t k, json_t *o, void *arg)
{
    struct hm_req *h = arg;
    if (strcmp(h->what, "details") == 0)
        return details(c, in, v, k, h, o);
    if (h->exact)
        return exact_stat(in, v, k, h, strcmp(h->what, "average") == 0, o);
    return column_stat(in, v, k, h, strcmp(h->what, "average") == 0, o);
}

void sn_api_heatmap(struct sn_call *c, const char *what)
{
    struct sn_value_req v;
    struct hm_req *h = malloc(sizeof(*h));
    bool img = strcmp(what, "image") == 0;

    if (!h) {
        sn_resp_empty(c->resp, 500);
        return;
    }
    int64_t t0 = sn_mono_ns();
    struct sn_instn *in = sn_api_instn(c);
    if (!in)
        goto out;
    if (in->arity != SN_ARITY_NUMERIC) {
        sn_resp_empty(c->resp, 404);
        goto out;
    }
    bool long_dflt = img || strcmp(what, "details") == 0;
    if (!parse_hm(c, what, h) ||
        !sn_value_parse(c, long_dflt ? 60 : 1, in, (uint32_t)h->p.width, &v) ||
        !sn_value_wait(c, in, &v))
        goto out;
    if (img) {
        /* what the images would cost to draw, all points together: pixels, and the cells
         * bucketized (one column per slot); bounded so that one request cannot hold a worker
         * for seconds (600 x 300, 100 buckets: 60 one-minute images are 11 M of 128 M) */
        size_t n = h->png ? 1 : v.n;
        double cols = (double)v.iv.duration / (double)v.pick.gran;
        double work = (double)n * ((double)h->p.width * h->p.height + cols * h->p.nbuckets);
        if (work > (double)SN_HM_MAX_WORK) {
            CA_INVAL(c,
                     "too much to draw: %zu images of %lld s (%.0f pixels and cells; at most "
                     "%d): ask for fewer data points, a shorter duration or smaller images",
                     n, (long long)v.iv.duration, work, SN_HM_MAX_WORK);
            goto out;
        }
        images(c, in, &v, h);
        goto out;
    }
    sn_value_answer(c, in, &v, point, h, "present");
out:
    sn_instn_free(in);
    free(h);
    if (img && c->resp->status == 200) {
        atomic_fetch_add(&c->s->c.renders, 1);
        atomic_fetch_add(&c->s->c.render_ns, (uint64_t)(sn_mono_ns() - t0));
    }
}
