/*
 * The heatmap renderer against Cloud Analytics' own figures (../shared/ref/joyent-ca.md
 * §4.2-4.4): the worked example pixel for pixel, the auto-scale table, the default hues, and
 * the average and percentiles of CA's and node-heatmap's tests.
 */
#include <math.h>
#include <string.h>

#include "render/raster.h"
#include "t.h"

static void test_worked_example(void)
{
    static const struct sn_hm_range r[] = {{10, 20, 5}, {30, 40, 3}};
    static const uint8_t rows[10][3] = {
        {255, 255, 255}, {242, 219, 206}, {242, 148, 97}, {242, 148, 97},  {255, 255, 255},
        {242, 195, 170}, {242, 101, 24},  {242, 101, 24}, {255, 255, 255}, {255, 255, 255},
    };
    struct sn_hm_column col = {r, 2};
    struct sn_hm_params p = {.width = 10, .height = 10, .nbuckets = 10, .ymin = 0, .ymax = 50};
    uint8_t rgb[10 * 10 * 3];
    double map[10] = {0};

    sn_hm_bucketize(&col, 0, 50, 10, false, map);
    T_NEAR(map[2], 2.2727, 1e-4);
    T_NEAR(map[3], 2.2727, 1e-4);
    T_NEAR(map[4], 0.4545, 1e-4);
    T_NEAR(map[6], 1.3636, 1e-4);
    T_NEAR(map[8], 0.2727, 1e-4);
    T_DEQ(map[0] + map[1] + map[5] + map[9], 0.0);
    struct sn_hm_drawn d;
    T_EQ(sn_hm_render(&p, &col, NULL, 0, 1, rgb, &d), 0);
    T_DEQ(d.ymax, 50.0);
    /* the drawn cells' figures, before they became saturation: 5 non-zero cells */
    T_NEAR(d.cell_max, 2.2727, 1e-4);
    T_NEAR(d.cell_median, 1.3636, 1e-4);
    T_NEAR(d.cell_min, 0.2727, 1e-4);
    for (int y = 0; y < 10; y++)
        for (int x = 0; x < 10; x++) {
            t_note("row %d, x %d", y, x);
            T_MEM(&rgb[(y * 10 + x) * 3], rows[y], 3);
        }
    p.ymax = 0; /* auto-scaled: the same image */
    uint8_t again[sizeof(rgb)];
    T_EQ(sn_hm_render(&p, &col, NULL, 0, 1, again, &d), 0);
    T_DEQ(d.ymax, 50.0);
    T_MEM(again, rgb, sizeof(rgb));
}

static void test_autoscale_table(void)
{
    static const double m[] = {2,   5,   9,    10,   11,   41,    99,     100,    101,
                               120, 999, 1000, 1001, 1500, 12345, 250000, 400000, 1e6};
    static const double want[] = {2,   6,    10,   12,   12,   50,    100,    120,    120,
                                  140, 1000, 1200, 1200, 1600, 14000, 300000, 420000, 1.2e6};
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
        struct sn_hm_range r = {0, (int64_t)m[i] - 1, 1}; /* hi + 1 = M */
        struct sn_hm_column c = {&r, 1};
        t_note("M = %g", m[i]);
        T_DEQ(sn_hm_autoscale(&c, 1), want[i]);
    }
    struct sn_hm_range zero = {0, 0, 7}; /* CA's quirk: [0, 0] leaves the maximum at 0 */
    struct sn_hm_column c = {&zero, 1};
    T_DEQ(sn_hm_autoscale(&c, 1), 0.0);
}

static void test_default_hues(void)
{
    static const double want[] = {21, 112, 203, 294, 25, 116, 207, 298, 29};
    for (size_t i = 0; i < 9; i++)
        T_DEQ(sn_hm_default_hue(i), want[i]);
}

static void test_average_percentiles(void)
{
    struct sn_hm_range u = {1, 100, 100000};
    struct sn_hm_column c = {&u, 1};
    double map[100] = {0}, ymax = sn_hm_autoscale(&c, 1);

    T_DEQ(ymax, 120.0);
    sn_hm_bucketize(&c, 0, ymax, 100, false, map);
    T_NEAR(sn_hm_average(map, 100, 0, ymax, false), 51.0, 1e-9);
    T_NEAR(sn_hm_percentile(map, 100, 0, ymax, false, 0), 0, 1e-9);
    T_NEAR(sn_hm_percentile(map, 100, 0, ymax, false, 0.5), 51, 1e-9);
    T_NEAR(sn_hm_percentile(map, 100, 0, ymax, false, 0.9), 91, 1e-9);
    T_NEAR(sn_hm_percentile(map, 100, 0, ymax, false, 0.95), 96, 1e-9);
    T_NEAR(sn_hm_percentile(map, 100, 0, ymax, false, 0.99), 100, 1e-9);
    T_NEAR(sn_hm_percentile(map, 100, 0, ymax, false, 1), 102, 1e-9);

    /* node-heatmap's test: 10 buckets over [1, 101) */
    struct sn_hm_range ten[10], three[] = {{1, 10, 5}, {11, 20, 10}, {21, 30, 30}};
    for (int i = 0; i < 10; i++)
        ten[i] = (struct sn_hm_range){1 + 10 * i, 10 + 10 * i, 10};
    struct sn_hm_column c100 = {ten, 10}, c101 = {three, 3};
    double m100[10] = {0}, m101[10] = {0};
    sn_hm_bucketize(&c100, 1, 101, 10, false, m100);
    sn_hm_bucketize(&c101, 1, 101, 10, false, m101);
    static const double ps[] = {0, 0.5, 0.95, 1}, w100[] = {1, 51, 96, 101},
                        w101[] = {1, 23.5, 30.25, 31};
    for (int i = 0; i < 4; i++) {
        t_note("p%g", ps[i]);
        T_NEAR(sn_hm_percentile(m100, 10, 1, 101, false, ps[i]), w100[i], 1e-9);
        T_NEAR(sn_hm_percentile(m101, 10, 1, 101, false, ps[i]), w101[i], 1e-9);
    }
    double empty[10] = {0};
    T_DEQ(sn_hm_percentile(empty, 10, 5, 50, false, 0.5), 5.0);
}

/* yscale=log: the same average and percentiles over log-spaced edges, figures by hand. Over
 * [1, 10000) in 4 buckets the edges are 1, 10, 100, 1000, 10000; a bucket's count is spread
 * evenly between its edges, so the average weighs midpoints 55 and 550, and a percentile
 * interpolates linearly within its bucket. */
static void test_log_average_percentiles(void)
{
    static const struct sn_hm_range two[] = {{10, 99, 2}, {100, 999, 2}};
    static const struct sn_hm_range straddle[] = {{50, 149, 10}};
    struct sn_hm_column c = {two, 2}, s = {straddle, 1};
    double map[4] = {0}, lin[4] = {0};

    for (int j = 0; j <= 4; j++) {
        static const double edge[] = {1, 10, 100, 1000, 10000};
        t_note("edge %d", j);
        T_NEAR(sn_hm_edge(1, 10000, 4, j, true), edge[j], 1e-9);
    }
    sn_hm_bucketize_log(&c, 1, 10000, 4, false, map);
    T_NEAR(map[0], 0, 1e-9);
    T_NEAR(map[1], 2, 1e-9);
    T_NEAR(map[2], 2, 1e-9);
    T_NEAR(map[3], 0, 1e-9);
    /* (2 * 55 + 2 * 550) / 4 */
    T_NEAR(sn_hm_average(map, 4, 1, 10000, true), 302.5, 1e-9);
    static const double ps[] = {0, 0.125, 0.25, 0.5, 0.75, 0.875, 1};
    static const double want[] = {10, 32.5, 55, 100, 550, 775, 1000};
    for (int i = 0; i < 7; i++) {
        t_note("p%g", ps[i]);
        T_NEAR(sn_hm_percentile(map, 4, 1, 10000, true, ps[i]), want[i], 1e-9);
    }
    /* the same map read as linear buckets of 2499.75: the edges alone differ */
    T_NEAR(sn_hm_average(map, 4, 1, 10000, false), 5000.5, 1e-9);
    T_NEAR(sn_hm_percentile(map, 4, 1, 10000, false, 0.5), 5000.5, 1e-9);
    T_NEAR(sn_hm_percentile(map, 4, 1, 10000, false, 0.25), 3750.625, 1e-9);
    /* and the data bucketized linearly: everything in bucket 0, [1, 2500.75) */
    sn_hm_bucketize(&c, 1, 10000, 4, false, lin);
    T_NEAR(lin[0], 4, 1e-9);
    T_NEAR(sn_hm_percentile(lin, 4, 1, 10000, false, 0.5), 1250.875, 1e-9);

    /* a range across an edge: [50, 150) gives half of its 10 to each of [10, 100) and
     * [100, 1000) */
    double m2[4] = {0};
    sn_hm_bucketize_log(&s, 1, 10000, 4, false, m2);
    T_NEAR(m2[1], 5, 1e-9);
    T_NEAR(m2[2], 5, 1e-9);
    T_NEAR(sn_hm_average(m2, 4, 1, 10000, true), 302.5, 1e-9);
    T_NEAR(sn_hm_percentile(m2, 4, 1, 10000, true, 0.25), 55, 1e-9);
    T_NEAR(sn_hm_percentile(m2, 4, 1, 10000, true, 0.6), 100 + 0.2 * 900, 1e-9);

    /* ymin 0: bucket 0 runs from 0 to the first log edge. Over [0, 100) in 2: 0, 10, 100 */
    static const struct sn_hm_range z[] = {{0, 0, 1}, {50, 59, 1}};
    struct sn_hm_column cz = {z, 2};
    double m3[2] = {0};
    T_NEAR(sn_hm_edge(0, 100, 2, 0, true), 0, 0);
    T_NEAR(sn_hm_edge(0, 100, 2, 1, true), 10, 1e-9);
    sn_hm_bucketize_log(&cz, 0, 100, 2, false, m3);
    T_NEAR(m3[0], 1, 1e-9);
    T_NEAR(m3[1], 1, 1e-9);
    T_NEAR(sn_hm_average(m3, 2, 0, 100, true), 30, 1e-9); /* (5 + 55) / 2 */
    T_NEAR(sn_hm_percentile(m3, 2, 0, 100, true, 0), 0, 1e-9);
    T_NEAR(sn_hm_percentile(m3, 2, 0, 100, true, 0.25), 5, 1e-9);
    T_NEAR(sn_hm_percentile(m3, 2, 0, 100, true, 0.5), 10, 1e-9);
    T_NEAR(sn_hm_percentile(m3, 2, 0, 100, true, 0.75), 55, 1e-9);
    T_NEAR(sn_hm_percentile(m3, 2, 0, 100, true, 1), 100, 1e-9);

    /* empty: ymin, as linear */
    double empty[4] = {0};
    T_DEQ(sn_hm_percentile(empty, 4, 5, 50, true, 0.5), 5.0);
    T_DEQ(sn_hm_average(empty, 4, 5, 50, true), 5.0);
}

/* The layers sn_hm_render draws and their hues, as the API reports them. */
static void test_drawn_layers(void)
{
    static const double hues[] = {10, 20, 30};
    struct sn_hm_params p = {.width = 1, .height = 10, .nbuckets = 10, .ymax = 100};
    size_t first = 99;

    T_EQU(sn_hm_drawn_layers(&p, 2, &first), 3);
    T_EQU(first, 0);
    T_DEQ(sn_hm_layer_hue(&p, 0), 21.0);
    T_DEQ(sn_hm_layer_hue(&p, 2), 203.0);
    p.hues = hues, p.nhues = 2; /* short: the default beyond */
    T_DEQ(sn_hm_layer_hue(&p, 0), 10.0);
    T_DEQ(sn_hm_layer_hue(&p, 1), 20.0);
    T_DEQ(sn_hm_layer_hue(&p, 2), 203.0);
    p.mode = SN_HM_ISOLATE;
    T_EQU(sn_hm_drawn_layers(&p, 2, &first), 2);
    T_EQU(first, 1);
    T_EQU(sn_hm_drawn_layers(&p, 0, &first), 0);
    p.mode = SN_HM_EXCLUDE;
    T_EQU(sn_hm_drawn_layers(&p, 2, &first), 1);
    T_EQU(first, 0);

    /* isolating without keys draws nothing: all white */
    static const struct sn_hm_range r[] = {{10, 19, 5}};
    struct sn_hm_column col = {r, 1};
    uint8_t rgb[10 * 3], white[10 * 3];
    memset(white, 255, sizeof(white));
    p.mode = SN_HM_ISOLATE;
    T_EQ(sn_hm_render(&p, &col, NULL, 0, 1, rgb, NULL), 0);
    T_MEM(rgb, white, sizeof(rgb));
}

/* A selected key takes its share from the total and gets its own hue; isolate draws only it,
 * exclude only the rest. */
static void test_layers(void)
{
    static const struct sn_hm_range all[] = {{0, 9, 10}, {50, 59, 10}};
    static const struct sn_hm_range key[] = {{50, 59, 10}};
    struct sn_hm_column tot = {all, 2}, k = {key, 1};
    const struct sn_hm_column *sel[] = {&k};
    struct sn_hm_params p = {.width = 1, .height = 10, .nbuckets = 10, .ymin = 0, .ymax = 100};
    uint8_t rgb[10 * 3];
    double rest[3], mine[3];

    T_EQ(sn_hm_render(&p, &tot, sel, 1, 1, rgb, NULL), 0);
    /* bucket 0 (bottom row) is the rest, hue 21; bucket 5 (row 4) the key, hue 112 */
    rest[0] = rgb[9 * 3], rest[1] = rgb[9 * 3 + 1], rest[2] = rgb[9 * 3 + 2];
    mine[0] = rgb[4 * 3], mine[1] = rgb[4 * 3 + 1], mine[2] = rgb[4 * 3 + 2];
    T_OK(rest[0] > rest[1] && rest[1] > rest[2]); /* orange */
    T_OK(mine[1] > mine[0] && mine[1] > mine[2]); /* green */
    p.mode = SN_HM_ISOLATE;
    T_EQ(sn_hm_render(&p, &tot, sel, 1, 1, rgb, NULL), 0);
    T_OK(rgb[9 * 3] == 255 && rgb[9 * 3 + 1] == 255); /* the rest is gone */
    T_OK(rgb[4 * 3 + 1] > rgb[4 * 3]);
    p.mode = SN_HM_EXCLUDE;
    T_EQ(sn_hm_render(&p, &tot, sel, 1, 1, rgb, NULL), 0);
    T_OK(rgb[4 * 3] == 255 && rgb[4 * 3 + 1] == 255); /* the key is gone */
    T_OK(rgb[9 * 3] > rgb[9 * 3 + 2]);
    p.nbuckets = 0;
    T_EQ(sn_hm_render(&p, &tot, sel, 1, 1, rgb, NULL), -22);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("the worked example of the reference, pixel for pixel", test_worked_example);
    t_run("auto-scaled ymax: the reference's table", test_autoscale_table);
    t_run("default hues: 21, then +91", test_default_hues);
    t_run("average and percentiles: CA's and node-heatmap's figures", test_average_percentiles);
    t_run("layers: selected keys, isolate, exclude", test_layers);
    t_run("yscale=log: average and percentiles over log-spaced edges",
          test_log_average_percentiles);
    t_run("layers drawn and their hues", test_drawn_layers);
    return t_done();
}
