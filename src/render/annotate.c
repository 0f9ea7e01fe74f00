/*
 * Annotated heatmaps; see annotate.h. The layout, from the top:
 *
 *   title (bold) and subtitle (interval in UTC, the y field and its scale)
 *   y tick labels | frame around the plot (the plot itself untouched) | right margin
 *                   x ticks and their UTC times, "time (UTC)"
 *   legend: a swatch and a name per layer drawn, wrapped to the image's width
 *   colour scale: a ramp of saturation with the counts at its ends
 *
 * Every margin is computed from what it holds (the widest y label, the number of legend rows),
 * so that the plot keeps its size and pixels and the text never overlaps it.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "render/annotate.h"
#include "render/glyphs.h"

#define PAD      12 /* outer margin */
#define TICK     4  /* tick length */
#define LINE_H   12 /* one line of text */
#define SWATCH   10 /* legend swatch side */
#define RAMP_W   120
#define MAX_TICK 256
#define KEY_MAX  40 /* characters of a key in the legend */

static const uint8_t C_TEXT[3] = {34, 34, 34};
static const uint8_t C_SOFT[3] = {96, 96, 96};
static const uint8_t C_FRAME[3] = {150, 150, 150};

/* ---- text -------------------------------------------------------------------------------- */

/* The next code point of UTF-8 *s (advanced); invalid bytes are taken one by one. */
static uint32_t next_cp(const char **s)
{
    const unsigned char *p = (const unsigned char *)*s;
    uint32_t cp = p[0];
    int n = 0;

    if (cp >= 0xc0 && cp < 0xe0)
        n = 1, cp &= 0x1f;
    else if (cp >= 0xe0 && cp < 0xf0)
        n = 2, cp &= 0x0f;
    else if (cp >= 0xf0 && cp < 0xf8)
        n = 3, cp &= 0x07;
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xc0) != 0x80) { /* truncated: the lead byte alone */
            *s += 1;
            return 0xfffd;
        }
        cp = cp << 6 | (p[i] & 0x3f);
    }
    *s += 1 + n;
    return cp;
}

int sn_annot_text_width(const char *s)
{
    int n = 0;
    while (*s) {
        next_cp(&s);
        n++;
    }
    return n ? n * SN_GLYPH_ADVANCE - 1 : 0;
}

static void pixel(uint8_t *rgb, int w, int h, int x, int y, const uint8_t col[3])
{
    if (x >= 0 && y >= 0 && x < w && y < h)
        memcpy(&rgb[((size_t)y * (size_t)w + (size_t)x) * 3], col, 3);
}

static void fill(uint8_t *rgb, int w, int h, int x0, int y0, int x1, int y1, const uint8_t col[3])
{
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            pixel(rgb, w, h, x, y, col);
}

void sn_annot_text(uint8_t *rgb, int w, int h, int x, int y, const char *s, const uint8_t col[3],
                   bool bold)
{
    while (*s) {
        const char *const *g = sn_glyph(next_cp(&s));
        for (int r = 0; r < SN_GLYPH_H; r++)
            for (int c = 0; c < SN_GLYPH_W; c++)
                if (g[r][c] == '#') {
                    pixel(rgb, w, h, x + c, y + r, col);
                    if (bold)
                        pixel(rgb, w, h, x + c + 1, y + r, col);
                }
        x += SN_GLYPH_ADVANCE + (bold ? 1 : 0);
    }
}

static int text_w(const char *s, bool bold)
{
    int n = sn_annot_text_width(s);
    return bold && n ? n + sn_annot_text_width(s) / SN_GLYPH_ADVANCE + 1 : n;
}

/* ---- numbers ----------------------------------------------------------------------------- */

/* v with at most 3 significant digits, without trailing zeros ("1.5", "250", "10"). */
static void sig3(double v, char *out, size_t cap)
{
    snprintf(out, cap, "%.3g", v);
}

void sn_annot_value(enum sn_annot_unit u, double v, char *out, size_t cap)
{
    static const char *const time_u[] = {"ns", "\xc2\xb5s", "ms", "s"};
    static const char *const byte_u[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    static const char *const num_u[] = {"", "k", "M", "G", "T", "P"};
    char n[32];
    int i = 0;

    if (v == 0) {
        snprintf(out, cap, "0");
        return;
    }
    switch (u) {
    case SN_ANNOT_MS:
        v *= 1e6;
        /* fall through */
    case SN_ANNOT_NS:
        while (i < 3 && fabs(v) >= 999.5)
            v /= 1000, i++;
        sig3(v, n, sizeof(n));
        snprintf(out, cap, "%s %s", n, time_u[i]);
        return;
    case SN_ANNOT_BYTES:
        while (i < 5 && fabs(v) >= 999.5)
            v /= 1000, i++;
        sig3(v, n, sizeof(n));
        snprintf(out, cap, "%s %s", n, byte_u[i]);
        return;
    case SN_ANNOT_PERCENT:
        sig3(v, n, sizeof(n));
        snprintf(out, cap, "%s%%", n);
        return;
    default:
        while (i < 5 && fabs(v) >= 999.5)
            v /= 1000, i++;
        sig3(v, n, sizeof(n));
        snprintf(out, cap, "%s%s", n, num_u[i]);
        return;
    }
}

static void fmt_count(double v, char *out, size_t cap)
{
    if (v > 0 && v < 10)
        snprintf(out, cap, "%.2g", v);
    else
        sn_annot_value(SN_ANNOT_NUMBER, round(v), out, cap);
}

/* 1, 2 or 5 times a power of ten, the smallest at least x. */
static double nice_step(double x)
{
    double p = pow(10, floor(log10(x))), m = x / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/* ---- the y axis -------------------------------------------------------------------------- */

struct tick {
    double v;
    int pos;    /* pixel row (y axis) or column (x axis) in the output image */
    bool major; /* labelled */
    char label[32];
};

/* The fraction of the plot's height at which value v sits (0 at the bottom). */
static double y_frac(const struct sn_annot *a, double v)
{
    if (!a->log)
        return (v - a->ymin) / (a->ymax - a->ymin);
    double lo = a->ymin < 1 ? 1 : a->ymin;
    if (v <= lo)
        return 0;
    return log(v / lo) / log(a->ymax / lo);
}

static size_t y_ticks(const struct sn_annot *a, int top, int ph, struct tick *t)
{
    size_t n = 0;

    if (!(a->ymax > a->ymin))
        return 0;
    if (!a->log) {
        double step = nice_step((a->ymax - a->ymin) / fmax(2, ph / 45.0));
        for (double v = ceil(a->ymin / step) * step; v <= a->ymax * (1 + 1e-9) && n < MAX_TICK;
             v += step)
            t[n++] = (struct tick){.v = v, .major = true};
    } else {
        double lo = a->ymin < 1 ? 1 : a->ymin;
        int d0 = (int)floor(log10(lo)), d1 = (int)ceil(log10(a->ymax));
        double span = log10(a->ymax / lo);
        /* decades labelled; with less than ~2 decades in view, 2 and 5 of each too */
        for (int d = d0; d <= d1 && n < MAX_TICK; d++)
            for (int m = 1; m <= 9 && n < MAX_TICK; m++) {
                double v = m * pow(10, d);
                if (v < lo * (1 - 1e-9) || v > a->ymax * (1 + 1e-9))
                    continue;
                bool major = m == 1 || (span < 2.2 && (m == 2 || m == 5));
                t[n++] = (struct tick){.v = v, .major = major};
            }
        if (a->ymin < 1 && n < MAX_TICK) /* bucket 0 starts at ymin */
            t[n++] = (struct tick){.v = a->ymin, .major = false};
    }
    for (size_t i = 0; i < n; i++) {
        double f = y_frac(a, t[i].v);
        int pos = top + (int)lround((1 - f) * ph);
        t[i].pos = pos < top ? top : pos > top + ph ? top + ph : pos;
        if (t[i].major)
            sn_annot_value(a->unit, t[i].v, t[i].label, sizeof(t[i].label));
    }
    /* labels closer than a line apart: keep every k-th (from the bottom) */
    for (int k = 1; k < 64; k *= 2) {
        int last = INT32_MAX, idx = 0;
        bool clash = false;
        for (size_t i = 0; i < n; i++) {
            if (!t[i].major)
                continue;
            if (idx++ % k)
                continue;
            if (last != INT32_MAX && abs(last - t[i].pos) < LINE_H)
                clash = true;
            last = t[i].pos;
        }
        if (!clash) {
            idx = 0;
            for (size_t i = 0; i < n; i++)
                if (t[i].major && idx++ % k)
                    t[i].label[0] = '\0';
            break;
        }
    }
    return n;
}

/* ---- the x axis -------------------------------------------------------------------------- */

static size_t x_ticks(const struct sn_annot *a, int left, int pw, struct tick *t)
{
    static const int steps[] = {1,   2,   5,    10,   15,   30,    60,    120,   300,
                                600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400};
    double pps = (double)pw / (double)a->duration; /* pixels per second */
    int step = steps[sizeof(steps) / sizeof(steps[0]) - 1];
    size_t n = 0;

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        int labw = steps[i] < 60 ? 8 * SN_GLYPH_ADVANCE : 5 * SN_GLYPH_ADVANCE;
        if (steps[i] * pps >= labw + 18) {
            step = steps[i];
            break;
        }
    }
    int64_t first = (a->start + step - 1) / step * step;
    for (int64_t s = first; s <= a->start + a->duration && n < MAX_TICK; s += step) {
        time_t tt = (time_t)s;
        struct tm tm;
        struct tick *k = &t[n++];
        k->v = (double)s;
        k->pos = left + (int)((s - a->start) * pw / a->duration);
        k->major = true;
        gmtime_r(&tt, &tm);
        strftime(k->label, sizeof(k->label),
                 step < 60      ? "%H:%M:%S"
                 : step < 86400 ? "%H:%M"
                                : "%m-%d",
                 &tm);
    }
    return n;
}

/* ---- colours ----------------------------------------------------------------------------- */

/* HSV (degrees, [0,1], [0,1]) to bytes, each channel rounded: the renderer's rule (api.md). */
static void hsv(double h, double s, double v, uint8_t out[3])
{
    double c = v * s, hp = fmod(h, 360.0) / 60.0, x = c * (1 - fabs(fmod(hp, 2.0) - 1)), m = v - c;
    double r[3] = {0, 0, 0};
    switch ((int)hp) {
    case 0:
        r[0] = c, r[1] = x;
        break;
    case 1:
        r[0] = x, r[1] = c;
        break;
    case 2:
        r[1] = c, r[2] = x;
        break;
    case 3:
        r[1] = x, r[2] = c;
        break;
    case 4:
        r[0] = x, r[2] = c;
        break;
    default:
        r[0] = c, r[2] = x;
        break;
    }
    for (int i = 0; i < 3; i++)
        out[i] = (uint8_t)lround(fmin(1, fmax(0, r[i] + m)) * 255);
}

/* ---- the image --------------------------------------------------------------------------- */

/* The legend's entries laid out from (x0, y) within x < xmax: their count of rows. With rgb,
 * draws them. */
static int legend(const struct sn_annot *a, uint8_t *rgb, int w, int h, int x0, int xmax, int y)
{
    int x = x0, rows = a->nlayers ? 1 : 0;

    for (size_t i = 0; i < a->nlayers; i++) {
        char name[KEY_MAX * 4 + 8];
        const char *k = a->layers[i].key;
        if (!k)
            snprintf(name, sizeof(name), "%s", a->any_key ? "rest (other keys)" : "all");
        else if (sn_annot_text_width(k) > KEY_MAX * SN_GLYPH_ADVANCE) {
            const char *p = k;
            for (int c = 0; c < KEY_MAX - 1 && *p; c++)
                next_cp(&p);
            snprintf(name, sizeof(name), "%.*s\xe2\x80\xa6", (int)(p - k), k);
        } else
            snprintf(name, sizeof(name), "%s", k[0] ? k : "\"\"");
        int ew = SWATCH + 5 + sn_annot_text_width(name);
        if (x > x0 && x + ew > xmax) {
            x = x0;
            y += LINE_H + 4;
            rows++;
        }
        if (rgb) {
            uint8_t sw[3], edge[3];
            hsv(a->layers[i].hue, 0.9, 0.95, sw);
            for (int c = 0; c < 3; c++)
                edge[c] = (uint8_t)(sw[c] * 0.7);
            fill(rgb, w, h, x, y, x + SWATCH, y + SWATCH, edge);
            fill(rgb, w, h, x + 1, y + 1, x + SWATCH - 1, y + SWATCH - 1, sw);
            sn_annot_text(rgb, w, h, x + SWATCH + 5, y + 1, name, C_TEXT, false);
        }
        x += ew + 16;
    }
    return rows;
}

/* The colour scale's text: caption, left and right labels, and the note after the ramp. */
static void scale_text(const struct sn_annot *a, char *cap, char *lo, char *hi, char *note,
                       size_t n)
{
    snprintf(cap, n, "%s per cell:", a->weights ? "weight" : "events");
    if (a->cell[2] <= 0) {
        snprintf(lo, n, "0");
        snprintf(hi, n, "0");
        snprintf(note, n, "(no events)");
        return;
    }
    if (a->linear) {
        snprintf(lo, n, "0");
        fmt_count(a->cell[2], hi, n);
        snprintf(note, n, "linear");
    } else {
        char med[32];
        fmt_count(a->cell[0], lo, n);
        fmt_count(a->cell[2], hi, n);
        fmt_count(a->cell[1], med, sizeof(med));
        snprintf(note, n, "by rank, median %s", med);
    }
}

int sn_annot_render(const struct sn_annot *a, const uint8_t *plot, int pw, int ph, uint8_t **out,
                    int *ow, int *oh, int *px, int *py)
{
    struct tick yt[MAX_TICK], xt[MAX_TICK];
    size_t nyt, nxt;
    int labw = 0, left, top, right, w, h, y, rows;
    char sub[256], from[32], to[32], date[32], cap[64], lo[32], hi[32], note[96];
    time_t t0 = (time_t)a->start, t1 = (time_t)(a->start + a->duration);
    struct tm tm0, tm1;
    uint8_t *img;

    *out = NULL;
    if (!plot || pw <= 0 || ph <= 0 || a->duration <= 0 || pw > 100000 || ph > 100000)
        return -EINVAL;
    top = PAD + LINE_H + 4 + LINE_H + 10;
    nyt = y_ticks(a, top, ph, yt);
    for (size_t i = 0; i < nyt; i++)
        if (yt[i].label[0] && sn_annot_text_width(yt[i].label) > labw)
            labw = sn_annot_text_width(yt[i].label);
    left = PAD + labw + 4 + TICK + 1;
    right = PAD + 4 * SN_GLYPH_ADVANCE + 1; /* half an x label past the last column */

    gmtime_r(&t0, &tm0);
    gmtime_r(&t1, &tm1);
    strftime(date, sizeof(date), "%Y-%m-%d", &tm0);
    strftime(from, sizeof(from), "%H:%M:%S", &tm0);
    strftime(to, sizeof(to), tm1.tm_yday != tm0.tm_yday ? "%Y-%m-%d %H:%M:%S" : "%H:%M:%S", &tm1);
    snprintf(sub, sizeof(sub), "%s %s \xe2\x80\x93 %s UTC (%lld s) \xc2\xb7 y: %s, %s scale%s",
             date, from, to, (long long)a->duration, a->yname ? a->yname : "value",
             a->log ? "log" : "linear", a->weights ? " \xc2\xb7 weighted by value" : "");
    scale_text(a, cap, lo, hi, note, sizeof(cap));

    w = left + pw + right;
    int need = PAD + text_w(a->title ? a->title : "", true) + PAD;
    need = fmax(need, PAD + sn_annot_text_width(sub) + PAD);
    need = fmax(need, PAD + sn_annot_text_width(cap) + 8 + sn_annot_text_width(lo) + 6 + RAMP_W +
                          6 + sn_annot_text_width(hi) + 12 + sn_annot_text_width(note) + PAD);
    if (need > w)
        w = need;
    nxt = x_ticks(a, left, pw, xt);
    rows = legend(a, NULL, 0, 0, PAD, w - PAD, 0);
    /* plot, ticks and labels, axis caption, legend, colour scale */
    h = top + ph + 1 + TICK + 3 + LINE_H + LINE_H + 10 + rows * (LINE_H + 4) + 4 + LINE_H + PAD;
    if (!(img = malloc((size_t)w * (size_t)h * 3)))
        return -ENOMEM;
    memset(img, 255, (size_t)w * (size_t)h * 3);

    /* title and subtitle */
    sn_annot_text(img, w, h, PAD, PAD, a->title ? a->title : "", C_TEXT, true);
    sn_annot_text(img, w, h, PAD, PAD + LINE_H + 4, sub, C_SOFT, false);

    /* the plot in its frame */
    for (int r = 0; r < ph; r++)
        memcpy(&img[((size_t)(top + r) * (size_t)w + (size_t)left) * 3],
               &plot[(size_t)r * (size_t)pw * 3], (size_t)pw * 3);
    fill(img, w, h, left - 1, top - 1, left + pw + 1, top, C_FRAME);
    fill(img, w, h, left - 1, top + ph, left + pw + 1, top + ph + 1, C_FRAME);
    fill(img, w, h, left - 1, top, left, top + ph, C_FRAME);
    fill(img, w, h, left + pw, top, left + pw + 1, top + ph, C_FRAME);

    /* y ticks: majors long and labelled, minors short */
    for (size_t i = 0; i < nyt; i++) {
        int len = yt[i].major ? TICK : TICK / 2, yy = yt[i].pos;
        if (yy >= top + ph)
            yy = top + ph; /* on the frame's bottom row */
        fill(img, w, h, left - 1 - len, yy, left - 1, yy + 1, C_FRAME);
        if (yt[i].label[0]) {
            int tw = sn_annot_text_width(yt[i].label), ty = yy - 3;
            if (ty + SN_GLYPH_ASCENT > top + ph + 1)
                ty = top + ph + 1 - SN_GLYPH_ASCENT;
            sn_annot_text(img, w, h, left - 1 - TICK - 3 - tw, ty, yt[i].label, C_TEXT, false);
        }
    }
    /* x ticks and their times, kept inside the image */
    y = top + ph + 1;
    for (size_t i = 0; i < nxt; i++) {
        int tw = sn_annot_text_width(xt[i].label), tx = xt[i].pos - tw / 2;
        fill(img, w, h, xt[i].pos, y, xt[i].pos + 1, y + TICK, C_FRAME);
        if (tx + tw > w - 2)
            tx = w - 2 - tw;
        if (tx < 1)
            tx = 1;
        sn_annot_text(img, w, h, tx, y + TICK + 3, xt[i].label, C_TEXT, false);
    }
    y += TICK + 3 + LINE_H;
    {
        const char *xc = "time (UTC)";
        sn_annot_text(img, w, h, left + pw / 2 - sn_annot_text_width(xc) / 2, y, xc, C_SOFT, false);
    }
    y += LINE_H + 10;

    /* legend */
    legend(a, img, w, h, PAD, w - PAD, y);
    y += rows * (LINE_H + 4) + 4;

    /* colour scale: the ramp in the first drawn layer's hue */
    {
        int x = PAD;
        double hue = a->nlayers ? a->layers[0].hue : sn_hm_default_hue(0);
        sn_annot_text(img, w, h, x, y + 1, cap, C_TEXT, false);
        x += sn_annot_text_width(cap) + 8;
        sn_annot_text(img, w, h, x, y + 1, lo, C_TEXT, false);
        x += sn_annot_text_width(lo) + 6;
        fill(img, w, h, x - 1, y - 1, x + RAMP_W + 1, y + SWATCH + 1, C_FRAME);
        for (int i = 0; i < RAMP_W; i++) {
            uint8_t c[3];
            hsv(hue, 0.9 * (double)i / (RAMP_W - 1), 0.95, c);
            fill(img, w, h, x + i, y, x + i + 1, y + SWATCH, c);
        }
        x += RAMP_W + 6;
        sn_annot_text(img, w, h, x, y + 1, hi, C_TEXT, false);
        x += sn_annot_text_width(hi) + 12;
        sn_annot_text(img, w, h, x, y + 1, note, C_SOFT, false);
    }

    *out = img;
    *ow = w;
    *oh = h;
    *px = left;
    *py = top;
    return 0;
}
