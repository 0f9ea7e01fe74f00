/*
 * Annotated heatmaps (render/annotate.h), as pure functions on pixel buffers: the plot is
 * copied into the annotated image unchanged, pixel for pixel, wherever the margins put it;
 * the margins hold the title, ticks, legend swatches in the layers' colours and the colour
 * ramp; the y labels are in the value's unit; the cell statistics follow the renderer's layers.
 * Writes annotated-*.png under t_outdir() to be looked at.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render/annotate.h"
#include "render/glyphs.h"
#include "render/png.h"
#include "t.h"

#define NCOLS 60

/* A latency-like heatmap: 60 columns, two keys around 30 µs and 2 ms, the rest around 400 µs. */
static struct sn_hm_range ranges[NCOLS * 3][3];
static struct sn_hm_column total[NCOLS], key1[NCOLS], key2[NCOLS];
static struct sn_hm_range tot_r[NCOLS][9];

static void build(void)
{
    for (int c = 0; c < NCOLS; c++) {
        int n = 0;
        for (int k = 0; k < 3; k++) {
            int64_t base = k == 0 ? 30000 : k == 1 ? 2000000 : 400000;
            base += (int64_t)(base * 0.3 * sin(c / 6.0 + k));
            for (int j = 0; j < 3; j++) {
                int64_t lo = base + j * base / 4;
                ranges[c * 3 + k][j] =
                    (struct sn_hm_range){lo, lo + base / 4 - 1, 5 + (c + j * 7 + k * 3) % 17};
                tot_r[c][n++] = ranges[c * 3 + k][j];
            }
        }
        key1[c] = (struct sn_hm_column){ranges[c * 3 + 0], 3};
        key2[c] = (struct sn_hm_column){ranges[c * 3 + 1], 3};
        total[c] = (struct sn_hm_column){tot_r[c], 9};
    }
}

static void save(const char *name, const uint8_t *rgb, int w, int h)
{
    unsigned char *png = NULL;
    size_t len = 0;
    char path[512];
    FILE *f;

    T_EQ(sn_png_encode_rgb(rgb, w, h, &png, &len), 0);
    snprintf(path, sizeof(path), "%s/%s", t_outdir(), name);
    if ((f = fopen(path, "wb"))) {
        fwrite(png, 1, len, f);
        fclose(f);
    }
    free(png);
}

static bool differs_from_white(const uint8_t *img, int w, int x0, int y0, int x1, int y1)
{
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            for (int c = 0; c < 3; c++)
                if (img[((size_t)y * (size_t)w + (size_t)x) * 3 + c] != 255)
                    return true;
    return false;
}

static bool has_colour(const uint8_t *img, int w, int h, const uint8_t col[3])
{
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++)
        if (memcmp(&img[i * 3], col, 3) == 0)
            return true;
    return false;
}

/* Draws plot with a, checks the plot's pixels and the margins; returns the image (free it). */
static uint8_t *check_render(const struct sn_annot *a, const uint8_t *plot, int pw, int ph,
                             const char *name, int *ow, int *oh, int *px, int *py)
{
    uint8_t *img = NULL;
    T_EQ(sn_annot_render(a, plot, pw, ph, &img, ow, oh, px, py), 0);
    if (!img) {
        T_OK(img != NULL);
        return NULL;
    }
    T_OK(*ow > pw && *oh > ph && *px > 0 && *py > 0);
    T_OK(*px + pw < *ow && *py + ph < *oh);
    for (int y = 0; y < ph; y++) {
        if (memcmp(&img[((size_t)(*py + y) * (size_t)*ow + (size_t)*px) * 3],
                   &plot[(size_t)y * (size_t)pw * 3], (size_t)pw * 3) != 0) {
            t_note("plot row %d differs", y);
            T_OK(false);
            break;
        }
    }
    /* text in each margin: title above, y labels left, x labels below */
    T_OK(differs_from_white(img, *ow, 0, 0, *ow, *py - 2));
    T_OK(a->ymax <= a->ymin || differs_from_white(img, *ow, 0, *py, *px - 2, *py + ph));
    T_OK(differs_from_white(img, *ow, 0, *py + ph + 2, *ow, *oh));
    save(name, img, *ow, *oh);
    return img;
}

static void test_plot_unchanged(void)
{
    struct sn_hm_params p = {.width = 600, .height = 300, .nbuckets = 100, .log = true};
    const struct sn_hm_column *sel[2] = {key1, key2};
    struct sn_annot_layer layers[3] = {{NULL, 21}, {"nginx", 112}, {"postgres", 203}};
    double hues[3] = {21, 112, 203};
    struct sn_hm_drawn d;
    uint8_t *plot = malloc(600 * 300 * 3), *img;
    int ow, oh, px, py;

    build();
    p.hues = hues;
    p.nhues = 3;
    T_EQ(sn_hm_render(&p, total, sel, 2, NCOLS, plot, &d), 0);
    struct sn_annot a = {.title = "syscall.syscalls by execname, latency",
                         .yname = "latency",
                         .unit = SN_ANNOT_NS,
                         .start = 1796551200, /* 2026-12-06 10:40:00 UTC */
                         .duration = 60,
                         .ymin = 0,
                         .ymax = d.ymax,
                         .log = true,
                         .any_key = true,
                         .layers = layers,
                         .nlayers = 3,
                         .cell = {d.cell_min, d.cell_median, d.cell_max}};
    T_OK(a.cell[0] > 0 && a.cell[0] <= a.cell[1] && a.cell[1] <= a.cell[2]);
    T_REQUIRE((img = check_render(&a, plot, 600, 300, "annotated-log.png", &ow, &oh, &px, &py)));
    /* the legend's swatches: HSV(hue, 0.9, 0.95) as api.md gives them */
    T_OK(has_colour(img, ow, oh, (const uint8_t[3]){242, 101, 24}));
    T_OK(has_colour(img, ow, oh, (const uint8_t[3]){53, 242, 24}));
    T_OK(has_colour(img, ow, oh, (const uint8_t[3]){24, 159, 242}));
    free(img);

    /* linear, one layer, a small plot: still the plot as it was, and a wider image than it */
    p = (struct sn_hm_params){.width = 50, .height = 40, .nbuckets = 20, .coloring = SN_HM_LINEAR};
    T_EQ(sn_hm_render(&p, total, NULL, 0, NCOLS, plot, &d), 0);
    a.log = false;
    a.linear = true;
    a.any_key = false;
    a.ymax = d.ymax;
    a.nlayers = 1;
    a.cell[0] = d.cell_min;
    a.cell[1] = d.cell_median;
    a.cell[2] = d.cell_max;
    img = check_render(&a, plot, 50, 40, "annotated-small.png", &ow, &oh, &px, &py);
    T_OK(ow > 200); /* the title needs the room */
    free(img);

    /* no data, no layers (isolate without keys) */
    memset(plot, 255, 600 * 300 * 3);
    a.nlayers = 0;
    a.cell[0] = a.cell[1] = a.cell[2] = 0;
    a.ymax = 0;
    img = check_render(&a, plot, 100, 100, "annotated-empty.png", &ow, &oh, &px, &py);
    free(img);

    T_EQ(sn_annot_render(&a, plot, 0, 10, &img, &ow, &oh, &px, &py), -EINVAL);
    T_OK(img == NULL);
    free(plot);
}

static void test_units(void)
{
    char s[32];
    sn_annot_value(SN_ANNOT_NS, 1000, s, sizeof(s));
    T_STR(s, "1 \xc2\xb5s");
    sn_annot_value(SN_ANNOT_NS, 1e7, s, sizeof(s));
    T_STR(s, "10 ms");
    sn_annot_value(SN_ANNOT_NS, 250, s, sizeof(s));
    T_STR(s, "250 ns");
    sn_annot_value(SN_ANNOT_NS, 1.5e9, s, sizeof(s));
    T_STR(s, "1.5 s");
    sn_annot_value(SN_ANNOT_MS, 20, s, sizeof(s));
    T_STR(s, "20 ms");
    sn_annot_value(SN_ANNOT_BYTES, 4096, s, sizeof(s));
    T_STR(s, "4.1 kB");
    sn_annot_value(SN_ANNOT_NUMBER, 0, s, sizeof(s));
    T_STR(s, "0");
    sn_annot_value(SN_ANNOT_PERCENT, 50, s, sizeof(s));
    T_STR(s, "50%");
}

static void test_font(void)
{
    /* every printable ASCII glyph is its own (no box), 9 rows of 5 */
    const char *const *boxg = sn_glyph(0x4e00);
    for (uint32_t c = 32; c < 127; c++) {
        const char *const *g = sn_glyph(c);
        t_note("glyph %u", c);
        T_OK(g != boxg);
        for (int r = 0; r < SN_GLYPH_H; r++)
            T_EQ(strlen(g[r]), SN_GLYPH_W);
    }
    T_OK(sn_glyph(0xb5) != boxg); /* µ */
    T_EQ(sn_annot_text_width("ab"), 11);
    T_EQ(sn_annot_text_width("\xc2\xb5s"), 11); /* one glyph per code point */
    T_EQ(sn_annot_text_width(""), 0);

    /* drawn and clipped: "1" at the image's edge writes only inside */
    uint8_t img[8 * 9 * 3];
    memset(img, 255, sizeof(img));
    sn_annot_text(img, 8, 9, 5, 0, "1", (const uint8_t[3]){0, 0, 0}, false);
    T_EQ(img[(0 * 8 + 7) * 3], 0); /* row 0 of '1': "..#.." at x 5+2 */
    T_EQ(img[(0 * 8 + 6) * 3], 255);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("plot_unchanged", test_plot_unchanged);
    t_run("units", test_units);
    t_run("font", test_font);
    return t_done();
}
