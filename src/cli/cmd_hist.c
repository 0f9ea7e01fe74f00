/*
 * `sonde hist`: build a log-linear histogram from numbers (or decode serialized ones) and
 * print a summary, or with --json everything needed to compare Sonde with libcircllhist:
 * buckets, count, mean, sum, stddev, Type-1 and Type-7 quantiles, the binary form in hex and
 * the base64 form. This is how users inspect histograms and how the format is checked
 * against other tools.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/hist_input.h"
#include "core/err.h"
#include "core/fmt.h"
#include "core/hist.h"

static const char usage[] =
    "usage: sonde hist [options] [FILE]\n"
    "       sonde hist [options] --decode B64\n"
    "       sonde hist [options] --merge B64 [B64...]\n"
    "\n"
    "Builds a log-linear (circllhist) histogram and prints a summary: count, mean, stddev,\n"
    "min, max, p50/p90/p99/p99.9 and a bar chart of the non-empty buckets.\n"
    "\n"
    "Input is one sample per line, \"VALUE\" or \"VALUE COUNT\", from FILE or stdin; blank\n"
    "lines and lines starting with '#' are skipped. Values are bucketed exactly as\n"
    "libcircllhist's hist_insert() does, but for those no bucket holds (nan, inf, and\n"
    "|v| >= 1e128): they are skipped and counted (\"skipped N values...\" on stderr).\n"
    "The summary's percentiles stay within the min and max of the values read.\n"
    "\n"
    "options:\n"
    "  --json            print JSON: buckets, count, mean, sum, stddev, Type-1 and Type-7\n"
    "                    quantiles at 0,.25,.5,.9,.99,.999,1, the binary form (hex) and\n"
    "                    the base64 form\n"
    "  --decode B64      summarise one serialized histogram (base64) instead of numbers\n"
    "  --merge B64...    summarise the merge of several serialized histograms\n"
    "  --int-scale S     read integers and bucket VALUE x 10^S exactly (libcircllhist's\n"
    "                    hist_insert_intscale; no 1e-13 fuzz)\n"
    "  --type 1|7        quantile type of the summary (default 1)\n"
    "  --strict          reject serialized input that libcircllhist's own encoder could not\n"
    "                    have written (default: as lenient as libcircllhist)\n"
    "  --exact-widths    write each count in its exact width (default: libcircllhist's\n"
    "                    bytes, which truncate counts in [2^32,2^36) and [2^48,2^52))\n"
    "  --fix-nan-holes   bucket values in libcircllhist's NaN holes where they belong\n"
    "  -h, --help        this help\n"
    "\n"
    "exit codes: 0 ok, 1 runtime error or no values (\"sonde hist: no values\" on stderr;\n"
    "            --json still prints its document), 2 usage error or malformed input\n";

struct opts {
    bool json, strict, exact_widths, fix_nan_holes, int_scale_set;
    int int_scale;
    enum sn_quantile_type type;
    unsigned codec_flags;
};

static const double json_q[] = {0, 0.25, 0.5, 0.9, 0.99, 0.999, 1};
#define NJSON_Q (sizeof(json_q) / sizeof(json_q[0]))

/* What read_numbers() saw besides the histogram: the range of the values kept, and the
 * samples skipped (not finite, or too large for any bucket). */
struct seen {
    bool any; /* min and max are set */
    double min, max;
    uint64_t skipped_lines, skipped; /* lines, and samples (their counts added) */
};

static int read_numbers(FILE *in, const char *name, const struct opts *o, struct sn_hist *h,
                        struct seen *seen)
{
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    int rc = SN_EXIT_OK;

    while ((n = getline(&line, &cap, in)) >= 0) {
        struct sn_hist_sample s;
        const char *why = NULL;
        int r;

        lineno++;
        r = sn_hist_parse_line(line, (size_t)n, &s, &why);
        if (r == 0)
            continue;
        if (r < 0 || (o->int_scale_set && !s.is_int)) {
            fprintf(stderr, "sonde hist: %s:%zu: %s\n", name, lineno,
                    r < 0 ? why : "--int-scale needs a plain integer");
            rc = SN_EXIT_USAGE;
            break;
        }
        if (o->int_scale_set ? sn_bucket_of_int_scale(s.ivalue, o->int_scale).val == -1
                             : !sn_hist_sample_in_range(&s)) {
            seen->skipped_lines++;
            seen->skipped += s.count;
            continue;
        }
        if (o->int_scale_set) {
            r = sn_hist_insert_int_scale(h, s.ivalue, o->int_scale, s.count);
        } else if (o->fix_nan_holes) {
            r = sn_hist_insert_raw(h, sn_bucket_from_double_fixed(s.value), s.count);
        } else {
            r = sn_hist_insert(h, s.value, s.count);
        }
        if (r < 0) {
            fprintf(stderr, "sonde hist: %s\n", sn_strerror(r));
            rc = SN_EXIT_FAILURE;
            break;
        }
        if (s.count == 0)
            continue;
        if (o->int_scale_set)
            s.value = (double)s.ivalue * pow(10, o->int_scale);
        if (!seen->any || s.value < seen->min)
            seen->min = s.value;
        if (!seen->any || s.value > seen->max)
            seen->max = s.value;
        seen->any = true;
    }
    if (rc == SN_EXIT_OK && ferror(in)) {
        fprintf(stderr, "sonde hist: %s: %s\n", name, strerror(errno));
        rc = SN_EXIT_FAILURE;
    }
    free(line);
    return rc;
}

static int decode_one(const char *b64, const struct opts *o, struct sn_hist *tmp)
{
    ssize_t rc = sn_hist_decode_b64(tmp, b64, strlen(b64), o->strict ? SN_HIST_STRICT : 0);

    if (rc < 0) {
        fprintf(stderr, "sonde hist: cannot decode histogram \"%.40s%s\": %s\n", b64,
                strlen(b64) > 40 ? "..." : "", sn_strerror((int)rc));
        return SN_EXIT_USAGE;
    }
    return SN_EXIT_OK;
}

static void print_double(const char *key, double d, bool comma)
{
    char buf[SN_FMT_DOUBLE_LEN];
    sn_fmt_json_double(buf, d);
    printf("\"%s\":%s%s", key, buf, comma ? "," : "");
}

static void print_double_array(const double *v, size_t n)
{
    char buf[SN_FMT_DOUBLE_LEN];

    putchar('[');
    for (size_t i = 0; i < n; i++) {
        sn_fmt_json_double(buf, v[i]);
        printf("%s%s", i ? "," : "", buf);
    }
    putchar(']');
}

/* Edges of b: lo toward -inf, hi toward +inf. */
static void edges(struct sn_bucket b, double *lo, double *hi)
{
    *lo = sn_bucket_left(b);
    *hi = b.val == 0 ? 0 : *lo + sn_bucket_width(b);
    if (b.val < 0)
        *hi = sn_bucket_to_double(b);
}

static int print_json(const struct sn_hist *h, const struct opts *o, const struct seen *seen,
                      bool numbers)
{
    double q1[NJSON_Q], q7[NJSON_Q];
    size_t blen = sn_hist_encoded_len(h, o->codec_flags);
    size_t b64len = sn_hist_b64_len(h, o->codec_flags);
    unsigned char *bin = malloc(blen);
    char *b64 = malloc(b64len + 1), name[SN_BUCKET_STRLEN];
    struct sn_bucket b;
    uint64_t c;

    if (!bin || !b64) {
        free(bin);
        free(b64);
        fprintf(stderr, "sonde hist: %s\n", sn_strerror(-ENOMEM));
        return SN_EXIT_FAILURE;
    }
    sn_hist_quantiles(h, json_q, NJSON_Q, q1, SN_QUANTILE_TYPE1);
    sn_hist_quantiles(h, json_q, NJSON_Q, q7, SN_QUANTILE_TYPE7);
    sn_hist_encode(h, bin, blen, o->codec_flags);
    sn_hist_encode_b64(h, b64, b64len + 1, o->codec_flags);

    printf("{\"count\":%llu,\"nbuckets\":%zu,", (unsigned long long)sn_hist_count(h),
           sn_hist_nbuckets(h));
    print_double("mean", sn_hist_mean(h), true);
    print_double("sum", sn_hist_sum(h), true);
    print_double("stddev", sn_hist_stddev(h), true);
    if (seen->any) {
        print_double("min", seen->min, true);
        print_double("max", seen->max, true);
    }
    if (numbers)
        printf("\"skipped\":%llu,", (unsigned long long)seen->skipped);
    printf("\"quantiles\":{\"q\":");
    print_double_array(json_q, NJSON_Q);
    printf(",\"type1\":");
    print_double_array(q1, NJSON_Q);
    printf(",\"type7\":");
    print_double_array(q7, NJSON_Q);
    printf("},\"buckets\":[");
    for (size_t i = 0; sn_hist_bucket_at(h, i, &b, &c); i++) {
        double lo, hi;
        edges(b, &lo, &hi);
        sn_bucket_to_string(b, name);
        printf("%s{\"bucket\":\"%s\",\"val\":%d,\"exp\":%d,", i ? "," : "", name, b.val, b.exp);
        print_double("lo", lo, true);
        print_double("hi", hi, true);
        printf("\"count\":%llu}", (unsigned long long)c);
    }
    printf("],\"binary\":\"");
    for (size_t i = 0; i < blen; i++)
        printf("%02x", bin[i]);
    printf("\",\"base64\":\"%s\"}\n", b64);
    free(bin);
    free(b64);
    return SN_EXIT_OK;
}

static int print_summary(const struct sn_hist *h, const struct opts *o, const struct seen *seen)
{
    static const double q[] = {0.5, 0.9, 0.99, 0.999};
    static const char *const qname[] = {"p50", "p90", "p99", "p99.9"};
    double qv[4];
    char a[64], bstr[64];
    uint64_t c, cmax = 0, nan_count = 0;
    struct sn_bucket b;

    sn_hist_quantiles(h, q, 4, qv, o->type);
    /* A quantile (and the mean) takes each bucket's samples as spread over the bucket, so it
     * can pass the largest (or smallest) value read: where the values themselves were read,
     * keep it within them (100 alone is in [100, 110), p50 105 and mean 104.76, but the
     * data's p50 and mean are 100). */
    for (int i = 0; seen->any && i < 4; i++)
        qv[i] = fmin(fmax(qv[i], seen->min), seen->max);
    printf("count   %llu\n", (unsigned long long)sn_hist_count(h));
    sn_fmt_human(a, sizeof(a),
                 seen->any ? fmin(fmax(sn_hist_mean(h), seen->min), seen->max) : sn_hist_mean(h),
                 6);
    printf("mean    %s\n", a);
    sn_fmt_human(a, sizeof(a), sn_hist_stddev(h), 6);
    printf("stddev  %s\n", a);
    if (seen->any) {
        sn_fmt_human(a, sizeof(a), seen->min, 6);
        printf("min     %s\n", a);
        sn_fmt_human(a, sizeof(a), seen->max, 6);
        printf("max     %s\n", a);
    }
    for (int i = 0; i < 4; i++) {
        sn_fmt_human(a, sizeof(a), qv[i], 6);
        printf("%-7s %s\n", qname[i], a);
    }
    for (size_t i = 0; sn_hist_bucket_at(h, i, &b, &c); i++)
        if (c > cmax)
            cmax = c;
    if (cmax == 0)
        return SN_EXIT_OK;
    printf("\n%-27s %12s\n", "bucket", "count");
    for (size_t i = 0; sn_hist_bucket_at(h, i, &b, &c); i++) {
        double lo, hi;
        int bar;
        char l[32], r[32];

        if (c == 0)
            continue;
        if (b.val == -1) {
            nan_count = c;
            continue;
        }
        edges(b, &lo, &hi);
        if (b.val == 0) {
            snprintf(bstr, sizeof(bstr), "0");
        } else {
            sn_fmt_human(l, sizeof(l), lo, 3);
            sn_fmt_human(r, sizeof(r), hi, 3);
            snprintf(bstr, sizeof(bstr), b.val > 0 ? "[%s, %s)" : "(%s, %s]", l, r);
        }
        bar = (int)((double)c / (double)cmax * 40 + 0.5);
        if (bar == 0)
            bar = 1;
        printf("%-27s %12llu  %.*s\n", bstr, (unsigned long long)c, bar,
               "########################################");
    }
    if (nan_count)
        printf("%-27s %12llu\n", "NaN", (unsigned long long)nan_count);
    return SN_EXIT_OK;
}

int sn_cmd_hist(int argc, char **argv)
{
    enum { O_JSON = 256, O_DECODE, O_MERGE, O_INT_SCALE, O_TYPE, O_STRICT, O_EXACT, O_FIX };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, O_JSON},
        {"decode", required_argument, NULL, O_DECODE},
        {"merge", no_argument, NULL, O_MERGE},
        {"int-scale", required_argument, NULL, O_INT_SCALE},
        {"type", required_argument, NULL, O_TYPE},
        {"strict", no_argument, NULL, O_STRICT},
        {"exact-widths", no_argument, NULL, O_EXACT},
        {"fix-nan-holes", no_argument, NULL, O_FIX},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct opts o = {.type = SN_QUANTILE_TYPE1};
    const char *decode = NULL;
    bool merge = false;
    struct seen seen = {0};
    struct sn_hist *h = NULL, *tmp = NULL;
    int c, rc = SN_EXIT_OK;
    char *end;

    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (c) {
        case O_JSON:
            o.json = true;
            break;
        case O_DECODE:
            decode = optarg;
            break;
        case O_MERGE:
            merge = true;
            break;
        case O_INT_SCALE: {
            long s;
            errno = 0;
            s = strtol(optarg, &end, 10);
            if (end == optarg || *end || errno || s < -1000 || s > 1000) {
                fprintf(stderr, "sonde hist: --int-scale wants an integer in -1000..1000\n");
                return SN_EXIT_USAGE;
            }
            o.int_scale = (int)s;
            o.int_scale_set = true;
            break;
        }
        case O_TYPE:
            if (strcmp(optarg, "1") != 0 && strcmp(optarg, "7") != 0) {
                fprintf(stderr, "sonde hist: --type must be 1 or 7\n");
                return SN_EXIT_USAGE;
            }
            o.type = optarg[0] == '7' ? SN_QUANTILE_TYPE7 : SN_QUANTILE_TYPE1;
            break;
        case O_STRICT:
            o.strict = true;
            break;
        case O_EXACT:
            o.codec_flags |= SN_HIST_EXACT_WIDTHS;
            break;
        case O_FIX:
            o.fix_nan_holes = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return SN_EXIT_OK;
        default:
            fputs("run 'sonde hist --help' for usage\n", stderr);
            return SN_EXIT_USAGE;
        }
    }
    if ((decode != NULL) + merge > 1) {
        fprintf(stderr, "sonde hist: --decode and --merge exclude each other\n");
        return SN_EXIT_USAGE;
    }
    if (decode && optind < argc) {
        fprintf(stderr, "sonde hist: unexpected argument '%s'\n", argv[optind]);
        return SN_EXIT_USAGE;
    }
    if (merge && optind >= argc) {
        fprintf(stderr, "sonde hist: --merge needs at least one base64 histogram\n");
        return SN_EXIT_USAGE;
    }
    if (!decode && !merge && argc - optind > 1) {
        fprintf(stderr, "sonde hist: one input file at most\n");
        return SN_EXIT_USAGE;
    }

    h = sn_hist_create();
    tmp = sn_hist_create();
    if (!h || !tmp) {
        fprintf(stderr, "sonde hist: %s\n", sn_strerror(-ENOMEM));
        rc = SN_EXIT_FAILURE;
        goto out;
    }
    if (decode) {
        rc = decode_one(decode, &o, tmp);
        if (rc == SN_EXIT_OK)
            rc = sn_hist_merge(h, tmp) < 0 ? SN_EXIT_FAILURE : SN_EXIT_OK;
    } else if (merge) {
        for (int i = optind; i < argc && rc == SN_EXIT_OK; i++) {
            rc = decode_one(argv[i], &o, tmp);
            if (rc == SN_EXIT_OK && sn_hist_merge(h, tmp) < 0)
                rc = SN_EXIT_FAILURE;
        }
    } else if (optind < argc && strcmp(argv[optind], "-") != 0) {
        FILE *in = fopen(argv[optind], "r");
        if (!in) {
            fprintf(stderr, "sonde hist: %s: %s\n", argv[optind], strerror(errno));
            rc = SN_EXIT_USAGE;
            goto out;
        }
        rc = read_numbers(in, argv[optind], &o, h, &seen);
        fclose(in);
    } else {
        rc = read_numbers(stdin, "<stdin>", &o, h, &seen);
    }
    if (rc != SN_EXIT_OK)
        goto out;
    if (seen.skipped)
        fprintf(stderr,
                "sonde hist: skipped %llu value%s that %s not finite or out of range "
                "(|v| >= 1e128)\n",
                (unsigned long long)seen.skipped, seen.skipped == 1 ? "" : "s",
                seen.skipped == 1 ? "is" : "are");
    if (o.json)
        rc = print_json(h, &o, &seen, !decode && !merge);
    else if (sn_hist_count(h) > 0)
        rc = print_summary(h, &o, &seen);
    if (rc == SN_EXIT_OK && sn_hist_count(h) == 0) {
        fprintf(stderr, "sonde hist: no values\n");
        rc = SN_EXIT_FAILURE;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "sonde hist: writing output: %s\n", strerror(errno));
        rc = SN_EXIT_FAILURE;
    }
out:
    sn_hist_destroy(h);
    sn_hist_destroy(tmp);
    return rc;
}
