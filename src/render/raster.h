/*
 * Latency heatmaps, as Cloud Analytics drew them (../shared/ref/joyent-ca.md §4.2-4.4): a pure
 * function from per-second histograms to RGB pixels, so that the API, its tests and the
 * benchmarks share it and a PNG encoder is the only step left.
 *
 * Input: columns (one per time step), each a list of ranges [lo, hi] (inclusive integers,
 * CA's raw histogram values) with counts. Bucketizing spreads each range's count uniformly
 * over the linear y buckets it overlaps; layers (the total, less what the selected keys
 * take, and each selected key) are normalized together (rank or linear) and coloured in HSV
 * with a hue per layer, mixed by intensity.
 */
#ifndef SN_RENDER_RASTER_H
#define SN_RENDER_RASTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sn_hm_range {
    int64_t lo, hi; /* inclusive */
    double count;
};

/* One column of one series: its ranges. */
struct sn_hm_column {
    const struct sn_hm_range *r;
    size_t n;
};

enum sn_hm_coloring { SN_HM_RANK = 0, SN_HM_LINEAR };
enum sn_hm_mode { SN_HM_DEFAULT = 0, SN_HM_ISOLATE, SN_HM_EXCLUDE };

#define SN_HM_MAX_LAYERS 64

struct sn_hm_params {
    int width, height, nbuckets;
    double ymin, ymax; /* ymax <= ymin: auto-scale from the total (sn_hm_autoscale) */
    enum sn_hm_coloring coloring;
    enum sn_hm_mode mode;
    bool weights;       /* weight counts by their range's midpoint */
    bool log;           /* Sonde's extension: rows spaced logarithmically between ymin (at
                           least 1) and ymax, rather than CA's linear rows */
    const double *hues; /* degrees, one per layer; NULL or short: the default sequence */
    size_t nhues;
};

/* The auto-scaled ymax for a total series (CA's rounding; 0 when there is no data). */
double sn_hm_autoscale(const struct sn_hm_column *total, size_t ncols);

/* Default hue of layer i: 21 degrees, then +91 each, mod 360. */
double sn_hm_default_hue(size_t i);
/* The hue sn_hm_render gives layer i (0: the rest, k: the k-th selected key): p->hues[i] when
 * p gives one, else sn_hm_default_hue(i). */
double sn_hm_layer_hue(const struct sn_hm_params *p, size_t i);
/* The layers sn_hm_render draws with nsel selected keys, in drawing order: *first and the
 * count returned. Every layer by default; the keys alone (layers 1..nsel, none without keys)
 * in isolate mode; the rest alone (layer 0) in exclude mode. */
size_t sn_hm_drawn_layers(const struct sn_hm_params *p, size_t nsel, size_t *first);

/* Spreads col's ranges over nb buckets of [ymin, ymax) into map[nb] (added to it). */
void sn_hm_bucketize(const struct sn_hm_column *col, double ymin, double ymax, int nb, bool weights,
                     double *map);
/* The same over logarithmically spaced buckets (edges sn_hm_edge(..., true)): each range's
 * count still spreads uniformly over its values, so a bucket gets the share it overlaps. */
void sn_hm_bucketize_log(const struct sn_hm_column *col, double ymin, double ymax, int nb,
                         bool weights, double *map);
/* The lower edge of bucket j of nb over [ymin, ymax) (j = nb gives ymax); log spacing starts
 * at max(ymin, 1). */
double sn_hm_edge(double ymin, double ymax, int nb, int j, bool log);

/* What sn_hm_render drew: the ymax used (auto-scaled when p->ymax <= p->ymin), and the
 * counts (or weights) of the non-zero cells of the drawn layers before they were turned into
 * saturation: the smallest, the median and the largest (all 0 when every cell is empty). With
 * linear colouring a cell's saturation is its count over cell_max; the colour scales of the
 * UI and of annotated images are labelled from these. */
struct sn_hm_drawn {
    double ymax;
    double cell_min, cell_median, cell_max;
};

/*
 * Renders width x height RGB (rgb: width * height * 3 bytes, row 0 at the top) of ncols
 * columns: total[ncols], and sel[k][ncols] for each of nsel selected keys. *drawn (may be
 * NULL) receives what was drawn. Returns 0, or -EINVAL for bad parameters, -ENOMEM.
 */
int sn_hm_render(const struct sn_hm_params *p, const struct sn_hm_column *total,
                 const struct sn_hm_column *const *sel, size_t nsel, size_t ncols, uint8_t *rgb,
                 struct sn_hm_drawn *drawn);

/* The average and the p-th percentile (0..1) of a bucketized column map[nb] over
 * [ymin, ymax) (§4.4); ymin when the map is empty. The buckets are linear (sn_hm_bucketize)
 * or, with log, log-spaced (sn_hm_bucketize_log; edges sn_hm_edge(..., true)). A bucket's
 * count is taken as spread evenly between its edges: the average weighs each bucket's
 * midpoint, and a percentile interpolates linearly between the edges of its bucket. */
double sn_hm_average(const double *map, int nb, double ymin, double ymax, bool log);
double sn_hm_percentile(const double *map, int nb, double ymin, double ymax, bool log, double p);

#endif
