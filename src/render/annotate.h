/*
 * Annotated heatmaps: a plain heatmap (render/raster.h) framed by margins that say what it
 * shows, so that the image can be shared on its own: a title (the instrumentation's
 * module.stat and decomposition) and the interval, the y axis with ticks in the value's unit
 * (linear or log as drawn), the x axis in UTC wall-clock time, a legend of the layers drawn (a
 * swatch of each hue and its key, the rest too) and the colour scale (what a colour's
 * saturation means in events per cell).
 *
 * A pure function on pixel buffers: the plot is copied into the middle of a larger image
 * unchanged, pixel for pixel, and only the margins are drawn. Text uses Sonde's own bitmap font
 * (render/glyphs.h).
 */
#ifndef SN_RENDER_ANNOTATE_H
#define SN_RENDER_ANNOTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "render/raster.h"

/* The unit of the values on the y axis (CA's numeric types). */
enum sn_annot_unit {
    SN_ANNOT_NUMBER = 0, /* plain numbers */
    SN_ANNOT_NS,         /* "time": nanoseconds, shown as ns, µs, ms, s */
    SN_ANNOT_MS,         /* "subsecond": milliseconds */
    SN_ANNOT_BYTES,      /* "size": bytes, shown as B, kB, MB, GB (powers of 1000) */
    SN_ANNOT_PERCENT,    /* "percent" */
};

/* A layer drawn, in drawing order (the reply's "layers"). */
struct sn_annot_layer {
    const char *key; /* NULL for the rest (the total less the selected keys) */
    double hue;      /* degrees */
};

struct sn_annot {
    const char *title;       /* e.g. "syscall.syscalls by execname, latency" */
    const char *yname;       /* the numeric field's name, e.g. "latency" (may be NULL) */
    enum sn_annot_unit unit; /* of the y values */
    int64_t start;           /* Unix seconds of the first column */
    int64_t duration;        /* seconds the columns span */
    double ymin, ymax;       /* the range drawn (ymax as used, after auto-scaling) */
    bool log;                /* rows spaced logarithmically (sn_hm_edge) */
    bool linear;             /* coloring=linear (else rank) */
    bool weights;            /* weights=weight: cells hold counts times values */
    bool any_key;            /* keys were selected: layer 0 is "the rest", not everything */
    const struct sn_annot_layer *layers;
    size_t nlayers;
    double cell[3]; /* the non-zero drawn cells' smallest, median and largest count (0: none):
                       struct sn_hm_drawn's */
};

/* Draws the annotated image of plot (pw x ph RGB, rows top to bottom) into a new buffer *out
 * (free() it) of *ow x *oh pixels; the plot sits unchanged at (*px, *py). Returns 0, -EINVAL
 * (bad sizes) or -ENOMEM; on error *out is NULL. */
int sn_annot_render(const struct sn_annot *a, const uint8_t *plot, int pw, int ph, uint8_t **out,
                    int *ow, int *oh, int *px, int *py);

/* Text in Sonde's font: the width in pixels of UTF-8 s, and s drawn with its top-left corner
 * at (x, y) in rgb (w x h), clipped to it; bold draws each stroke twice, one pixel apart. */
int sn_annot_text_width(const char *s);
void sn_annot_text(uint8_t *rgb, int w, int h, int x, int y, const char *s, const uint8_t col[3],
                   bool bold);

/* The label of value v in unit u, as the y axis writes it ("10 ms", "1.5 µs", "2 kB"). */
void sn_annot_value(enum sn_annot_unit u, double v, char *out, size_t cap);

#endif
