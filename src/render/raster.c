/*
 * Heatmap rendering; see heatmap.h. Follows CA's node-heatmap step by step (bucketize,
 * auto-scale, layer, normalize, colour, rasterize) so that images match it pixel for pixel.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "render/raster.h"

double sn_hm_default_hue(size_t i)
{
    return fmod(21.0 + 91.0 * (double)i, 360.0);
}

double sn_hm_layer_hue(const struct sn_hm_params *p, size_t i)
{
    return p->hues && i < p->nhues ? p->hues[i] : sn_hm_default_hue(i);
}

size_t sn_hm_drawn_layers(const struct sn_hm_params *p, size_t nsel, size_t *first)
{
    switch (p->mode) {
    case SN_HM_ISOLATE: /* the selected keys only */
        *first = 1;
        return nsel;
    case SN_HM_EXCLUDE: /* the rest only */
        *first = 0;
        return 1;
    default:
        *first = 0;
        return nsel + 1;
    }
}

double sn_hm_autoscale(const struct sn_hm_column *total, size_t ncols)
{
    double m = 0;

    for (size_t c = 0; c < ncols; c++)
        for (size_t i = 0; i < total[c].n; i++) {
            /* CA's quirk: a range [.., 0] never raises the maximum above 0 */
            double top = total[c].r[i].hi == 0 ? 0 : (double)total[c].r[i].hi + 1;
            if (total[c].r[i].count > 0 && top > m)
                m = top;
        }
    if (m <= 0)
        return 0;
    int digits = (int)floor(log10(m)) + 1;
    double unit = pow(10, digits);
    for (int i = 0; i < 2 * digits; i++) {
        double cand = (floor(m / unit) + 1) * unit;
        if (cand < 1.25 * m)
            return cand;
        unit /= i % 2 == 0 ? 5 : 2;
    }
    return m;
}

void sn_hm_bucketize(const struct sn_hm_column *col, double ymin, double ymax, int nb, bool weights,
                     double *map)
{
    double size = (ymax - ymin) / nb;

    if (!(size > 0))
        return;
    for (size_t i = 0; i < col->n; i++) {
        const struct sn_hm_range *r = &col->r[i];
        double v = r->count, low, high;
        if (weights)
            v *= (double)r->lo + (double)(r->hi - r->lo) / 2;
        low = ((double)r->lo - ymin) / size;
        high = ((double)r->hi + 1 - ymin) / size;
        if (high <= 0 || low >= nb || !(v != 0))
            continue;
        if (floor(low) == floor(high)) {
            int j = (int)floor(high);
            if (j >= 0 && j < nb)
                map[j] += v;
            continue;
        }
        double ratio = v / (high - low);
        for (int j = (int)floor(low); j < (int)ceil(high) && j < nb; j++) {
            if (j < 0)
                continue;
            double over = fmin(high, j + 1.0) - fmax(low, (double)j);
            if (over > 0)
                map[j] += over * ratio;
        }
    }
}

double sn_hm_edge(double ymin, double ymax, int nb, int j, bool log)
{
    if (!log)
        return ymin + (ymax - ymin) * j / nb;
    double lo = ymin < 1 ? 1 : ymin;
    if (j == 0)
        return ymin < 1 ? ymin : lo;
    return lo * pow(ymax / lo, (double)j / nb);
}

void sn_hm_bucketize_log(const struct sn_hm_column *col, double ymin, double ymax, int nb,
                         bool weights, double *map)
{
    double lo = ymin < 1 ? 1 : ymin, span;

    if (!(ymax > lo))
        return;
    span = log(ymax / lo);
    for (size_t i = 0; i < col->n; i++) {
        const struct sn_hm_range *r = &col->r[i];
        double v = r->count, a = (double)r->lo, b = (double)r->hi + 1;
        if (weights)
            v *= (double)r->lo + (double)(r->hi - r->lo) / 2;
        if (b <= ymin || a >= ymax || !(v != 0))
            continue;
        /* the buckets the range touches, from its ends' positions on the log axis */
        int j0 = a <= lo ? 0 : (int)floor(nb * log(a / lo) / span);
        int j1 = (int)floor(nb * log(b / lo) / span);
        if (j0 < 0)
            j0 = 0;
        if (j1 >= nb)
            j1 = nb - 1;
        for (int j = j0; j <= j1; j++) {
            double e0 = sn_hm_edge(ymin, ymax, nb, j, true);
            double e1 = sn_hm_edge(ymin, ymax, nb, j + 1, true);
            double over = fmin(b, e1) - fmax(a, e0);
            if (over > 0)
                map[j] += v * over / (b - a);
        }
    }
}

/* A double's bits as an unsigned key that sorts as the doubles do (negatives flipped). */
static uint64_t sort_key(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u >> 63 ? ~u : u | (1ull << 63);
}

static double key_double(uint64_t k)
{
    uint64_t u = k >> 63 ? k & ~(1ull << 63) : ~k;
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

/* The non-zero values of v[n], largest first, in a new array (free() it) of *nz; NULL with
 * *nz 0 when there are none, NULL with *nz > 0 when out of memory. A radix sort on the values'
 * bits (4 passes of 16 bits): a week's image has 100,000s of cells to rank. */
static double *nonzero_desc(const double *v, size_t n, size_t *nz)
{
    uint64_t *a, *b;

    *nz = 0;
    for (size_t i = 0; i < n; i++)
        *nz += v[i] != 0;
    if (*nz == 0)
        return NULL;
    a = malloc(*nz * sizeof(*a));
    b = malloc(*nz * sizeof(*b));
    size_t *count = malloc(65536 * sizeof(*count));
    if (!a || !b || !count) {
        free(a);
        free(b);
        free(count);
        return NULL;
    }
    for (size_t i = 0, k = 0; i < n; i++)
        if (v[i] != 0)
            a[k++] = sort_key(v[i]);
    for (int shift = 0; shift < 64; shift += 16) {
        memset(count, 0, 65536 * sizeof(*count));
        for (size_t i = 0; i < *nz; i++)
            count[(a[i] >> shift) & 0xffff]++;
        size_t sum = 0;
        for (size_t d = 0; d < 65536; d++) {
            size_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < *nz; i++)
            b[count[(a[i] >> shift) & 0xffff]++] = a[i];
        uint64_t *t = a;
        a = b;
        b = t;
    }
    free(b);
    free(count);
    double *out = malloc(*nz * sizeof(*out)); /* descending */
    if (out)
        for (size_t i = 0; i < *nz; i++)
            out[*nz - 1 - i] = key_double(a[i]);
    free(a);
    return out;
}

/* Rank normalization: a value whose first place among all non-zero values (descending) is i
 * becomes (N - i) / N. */
static int normalize_rank(double *v, size_t n)
{
    size_t nz;
    double *s = nonzero_desc(v, n, &nz);

    if (!s)
        return nz ? -ENOMEM : 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == 0)
            continue;
        size_t lo = 0, hi = nz; /* first index whose value is <= v[i] (descending order) */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (s[mid] > v[i])
                lo = mid + 1;
            else
                hi = mid;
        }
        v[i] = (double)(nz - lo) / (double)nz;
    }
    free(s);
    return 0;
}

static void normalize_linear(double *v, size_t n)
{
    double max = 1;
    for (size_t i = 0; i < n; i++)
        if (v[i] > max)
            max = v[i];
    for (size_t i = 0; i < n; i++)
        v[i] /= max;
}

/* HSV (h degrees; s, v in [0,1]) to RGB in [0,1], the standard sector formula. */
static void hsv_rgb(double h, double s, double v, double rgb[3])
{
    double c = v * s, hp = fmod(h, 360.0) / 60.0, x = c * (1 - fabs(fmod(hp, 2.0) - 1)), m = v - c;
    double r = 0, g = 0, b = 0;
    switch ((int)hp) {
    case 0:
        r = c, g = x;
        break;
    case 1:
        r = x, g = c;
        break;
    case 2:
        g = c, b = x;
        break;
    case 3:
        g = x, b = c;
        break;
    case 4:
        r = x, b = c;
        break;
    default:
        r = c, b = x;
        break;
    }
    rgb[0] = r + m;
    rgb[1] = g + m;
    rgb[2] = b + m;
}

/* The smallest, median and largest of the non-zero values of v[n] into d. */
static int cell_figures(const double *v, size_t n, struct sn_hm_drawn *d)
{
    size_t nz;
    double *s = nonzero_desc(v, n, &nz);

    if (!s)
        return nz ? -ENOMEM : 0;
    d->cell_max = s[0];
    d->cell_median = s[nz / 2];
    d->cell_min = s[nz - 1];
    free(s);
    return 0;
}

int sn_hm_render(const struct sn_hm_params *p, const struct sn_hm_column *total,
                 const struct sn_hm_column *const *sel, size_t nsel, size_t ncols, uint8_t *rgb,
                 struct sn_hm_drawn *drawn)
{
    int nb = p->nbuckets, w = p->width, h = p->height;
    double ymax = p->ymax > p->ymin ? p->ymax : sn_hm_autoscale(total, ncols);
    size_t cells = (size_t)nb * ncols, nlayers, first;
    double *maps, hue[SN_HM_MAX_LAYERS + 1];

    if (nb <= 0 || w <= 0 || h <= 0 || ncols == 0 || nsel > SN_HM_MAX_LAYERS)
        return -EINVAL;
    if (drawn)
        *drawn = (struct sn_hm_drawn){.ymax = ymax};
    /* layer 0: the total less the selected keys; then one per key */
    if (!(maps = calloc(cells * (nsel + 1), sizeof(*maps))))
        return -ENOMEM;
    if (ymax > p->ymin) {
        void (*bucketize)(const struct sn_hm_column *, double, double, int, bool, double *) =
            p->log ? sn_hm_bucketize_log : sn_hm_bucketize;
        for (size_t c = 0; c < ncols; c++) {
            bucketize(&total[c], p->ymin, ymax, nb, p->weights, &maps[c * nb]);
            for (size_t k = 0; k < nsel; k++)
                bucketize(&sel[k][c], p->ymin, ymax, nb, p->weights,
                          &maps[(k + 1) * cells + c * nb]);
        }
        for (size_t i = 0; i < cells; i++) {
            for (size_t k = 0; k < nsel; k++)
                maps[i] -= maps[(k + 1) * cells + i];
            if (maps[i] < 0.001)
                maps[i] = 0;
        }
    }
    for (size_t i = 0; i <= nsel; i++) /* hue of layer i (layer 0 is the rest) */
        hue[i] = sn_hm_layer_hue(p, i);
    /* isolating without keys draws no layer: every cell stays white */
    nlayers = sn_hm_drawn_layers(p, nsel, &first);
    double *v = &maps[first * cells];
    size_t nv = nlayers * cells;
    if (drawn && cell_figures(v, nv, drawn) < 0) {
        free(maps);
        return -ENOMEM;
    }
    if (p->coloring == SN_HM_LINEAR) {
        normalize_linear(v, nv);
    } else if (normalize_rank(v, nv) < 0) {
        free(maps);
        return -ENOMEM;
    }
    for (size_t c = 0; c < ncols; c++) {
        int x0 = (int)((long long)c * w / (long long)ncols);
        int x1 = (int)((long long)(c + 1) * w / (long long)ncols);
        for (int j = 0; j < nb; j++) {
            int y0 = (int)((long long)(nb - j - 1) * h / nb),
                y1 = (int)((long long)(nb - j) * h / nb);
            double sum = 0, mix[3] = {0, 0, 0};
            uint8_t px[3];
            for (size_t l = 0; l < nlayers; l++)
                sum += v[l * cells + c * nb + (size_t)j];
            /* as node-heatmap: each layer's colour rounded to bytes, mixed by intensity, and
             * the mix truncated (it lands in a byte buffer) */
            for (size_t l = 0; l < nlayers && sum > 0; l++) {
                double x = v[l * cells + c * nb + (size_t)j], col[3];
                if (x == 0)
                    continue;
                hsv_rgb(hue[first + l], x * 0.9, 0.95, col);
                for (int k = 0; k < 3; k++)
                    mix[k] += (double)lround(fmin(1, fmax(0, col[k])) * 255) * (x / sum);
            }
            for (int k = 0; k < 3; k++)
                px[k] = sum > 0 ? (uint8_t)fmin(255, floor(mix[k] + 1e-9)) : 255;
            for (int y = y0; y < y1; y++)
                for (int x = x0; x < x1; x++)
                    memcpy(&rgb[((size_t)y * (size_t)w + (size_t)x) * 3], px, 3);
        }
    }
    free(maps);
    return 0;
}

/* The value at fraction f (0..1) of bucket j, interpolated linearly between its edges. Linear
 * buckets keep CA's arithmetic, ymin + (j + f) * size, so its figures stay exact. */
static double in_bucket(double ymin, double ymax, int nb, bool log, int j, double f)
{
    if (!log)
        return ymin + (j + f) * ((ymax - ymin) / nb);
    double e0 = sn_hm_edge(ymin, ymax, nb, j, true), e1 = sn_hm_edge(ymin, ymax, nb, j + 1, true);
    return e0 + f * (e1 - e0);
}

double sn_hm_average(const double *map, int nb, double ymin, double ymax, bool log)
{
    double num = 0, den = 0;
    for (int j = 0; j < nb; j++) {
        if (map[j] != 0)
            num += map[j] * in_bucket(ymin, ymax, nb, log, j, 0.5);
        den += map[j];
    }
    return den > 0 ? num / den : ymin;
}

double sn_hm_percentile(const double *map, int nb, double ymin, double ymax, bool log, double p)
{
    double total = 0, cum = 0;
    for (int j = 0; j < nb; j++)
        total += map[j];
    if (!(total > 0))
        return ymin;
    for (int j = 0; j < nb; j++) {
        cum += map[j];
        if (map[j] > 0 && cum / total >= p) {
            double frac = (p * total - (cum - map[j])) / map[j];
            return in_bucket(ymin, ymax, nb, log, j, fmin(1, fmax(0, frac)));
        }
    }
    return ymax;
}
