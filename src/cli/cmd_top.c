/*
 * `sonde top ID`: a terminal view of an instrumentation, refreshed each second. Keys (the
 * discrete field of the decomposition) sorted by count, descending, with their count and, when
 * the instrumentation also has a numeric field, p50 and p99 interpolated within the key's
 * log-linear bucket ranges (in human units: ns/µs/ms/s for time, B/KiB/MiB/GiB for sizes, from
 * describe's `types`) and a small histogram, one cell per decade (or group of decades).
 *
 * Plain ANSI escapes only (cursor home, erase line/display, hide/show cursor), no curses: it
 * works over ssh in any terminal. The terminal's size comes from TIOCGWINSZ (80x24 when that
 * fails) and the rows are cut to fit. `q` quits (stdin in non-canonical mode, restored on exit
 * and after SIGINT/SIGTERM); so does --iterations N. When stdout is not a terminal each refresh
 * prints one plain snapshot (no escapes, every key) followed by a blank line.
 */
#include <errno.h>
#include <getopt.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/ca_conn.h"
#include "cli/cli.h"

#define TOP_MAX_CELLS 12

enum { O_WINDOW = 256, O_ITERATIONS, O_ASCII };

enum unit_kind { U_NONE, U_TIME, U_SIZE };

struct top {
    struct sn_ca ca;
    const char *id;
    long window, iterations;
    bool ascii, tty;
    bool numeric, discrete; /* what the value holds: histograms, keys */
    enum unit_kind unit;
    double scale; /* raw value * scale = ns (U_TIME) or bytes (U_SIZE) */
    char title[256];
};

struct row {
    const char *key;
    double count, p50, p99;
    json_t *dist; /* [[[lo,hi],n],...] or NULL */
};

static const char top_usage[] =
    "usage: sonde top [options] ID\n"
    "\n"
    "Shows instrumentation ID, refreshed each second: its keys (the discrete field of the\n"
    "decomposition) by count, descending, with p50, p99 and a histogram of the numeric field\n"
    "(one cell per decade) over the last complete second, or the last N seconds. q quits.\n"
    "When standard output is not a terminal, prints one plain snapshot per refresh.\n"
    "\n"
    "options:\n"
    "  --window N        seconds summed in each view (default 1)\n"
    "  --iterations N    quit after N refreshes\n"
    "  --ascii           draw histograms with '#' and write units in ASCII "
    "(\"us\")\n" SN_CA_COMMON_HELP;

/* ---- terminal ---------------------------------------------------------------------------- */

static volatile sig_atomic_t top_signal;
static struct termios saved_tio;
static bool tio_saved;

static void on_signal(int sig)
{
    top_signal = sig;
}

static void term_restore(const struct top *t)
{
    if (tio_saved) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
        tio_saved = false;
    }
    if (t->tty) {
        fputs("\033[?25h", stdout); /* show the cursor */
        fflush(stdout);
    }
}

static void term_setup(struct top *t)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
        struct termios raw = saved_tio;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
            tio_saved = true;
    }
    if (t->tty) {
        fputs("\033[?25l\033[H\033[2J", stdout); /* hide the cursor, clear */
        fflush(stdout);
    }
}

static void term_size(int *cols, int *rows)
{
    struct winsize ws;
    *cols = 80;
    *rows = 24;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
        *cols = ws.ws_col;
        *rows = ws.ws_row;
    }
}

/* Waits until ms have passed, a signal, or `q` on a terminal stdin; true to quit. */
static bool wait_or_quit(long ms)
{
    struct timespec start, now;

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int spins = 0; spins < 10000 && !top_signal; spins++) {
        long left;
        clock_gettime(CLOCK_MONOTONIC, &now);
        left = ms - ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
        if (left <= 0)
            return false;
        if (!tio_saved) {
            poll(NULL, 0, (int)left);
            continue;
        }
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        int n = poll(&p, 1, (int)left);
        if (n > 0) {
            char buf[64];
            ssize_t r = read(STDIN_FILENO, buf, sizeof(buf));
            if (r <= 0) /* the terminal went away */
                return true;
            for (ssize_t i = 0; i < r; i++)
                if (buf[i] == 'q' || buf[i] == 'Q')
                    return true;
        }
    }
    return top_signal != 0;
}

/* ---- units ------------------------------------------------------------------------------- */

static void fmt_sig(char *out, size_t cap, double v, const char *unit)
{
    if (v < 9.995)
        snprintf(out, cap, "%.2f %s", v, unit);
    else if (v < 99.95)
        snprintf(out, cap, "%.1f %s", v, unit);
    else
        snprintf(out, cap, "%.0f %s", v, unit);
}

static void fmt_value(const struct top *t, double v, char *out, size_t cap)
{
    if (isnan(v)) {
        snprintf(out, cap, "-");
        return;
    }
    if (t->unit == U_TIME) {
        double ns = v * t->scale;
        if (ns < 999.5)
            snprintf(out, cap, "%.0f ns", ns);
        else if (ns < 999500)
            fmt_sig(out, cap, ns / 1e3, t->ascii ? "us" : "\xc2\xb5s");
        else if (ns < 999500000)
            fmt_sig(out, cap, ns / 1e6, "ms");
        else
            fmt_sig(out, cap, ns / 1e9, "s");
    } else if (t->unit == U_SIZE) {
        static const char *const u[] = {"KiB", "MiB", "GiB", "TiB"};
        double b = v * t->scale;
        int i = -1;
        if (b < 1023.5) {
            snprintf(out, cap, "%.0f B", b);
            return;
        }
        while (i < 3 && b >= 1023.5) {
            b /= 1024;
            i++;
        }
        fmt_sig(out, cap, b, u[i]);
    } else {
        snprintf(out, cap, "%.4g", v);
    }
}

/* ---- data -------------------------------------------------------------------------------- */

static double dist_total(const json_t *d)
{
    double n = 0;
    size_t i;
    json_t *b;
    json_array_foreach(d, i, b) n += json_number_value(json_array_get(b, 1));
    return n;
}

/* The p quantile of d, interpolated linearly within the bucket it falls in. */
static double dist_quantile(const json_t *d, double total, double p)
{
    double target = p * total, cum = 0;
    size_t i;
    json_t *b;

    if (total <= 0)
        return NAN;
    json_array_foreach(d, i, b)
    {
        json_t *r = json_array_get(b, 0);
        double lo = json_number_value(json_array_get(r, 0));
        double hi = json_number_value(json_array_get(r, 1)) + 1; /* inclusive ranges */
        double n = json_number_value(json_array_get(b, 1));
        if (n > 0 && cum + n >= target)
            return lo + (hi - lo) * (target - cum) / n;
        cum += n;
    }
    return NAN;
}

static int decade_of(double lo)
{
    return lo >= 1 ? (int)floor(log10(lo)) : 0;
}

/* A printf width for s right-aligned in w cells (multi-byte UTF-8 takes one cell). */
static int wfix(const char *s, int w)
{
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) == 0x80;
    return w;
}

static int row_cmp(const void *pa, const void *pb)
{
    const struct row *a = pa, *b = pb;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return strcmp(a->key, b->key);
}

static const char *jstr(const json_t *j)
{
    const char *s = json_string_value(j);
    return s ? s : "?";
}

/* The instrumentation's title and value shape, and its numeric field's unit. */
static int top_describe(struct top *t)
{
    char rel[64];
    json_t *inst, *desc = NULL, *dec;
    const char *arity;
    size_t i, off;
    json_t *f;
    int rc;

    snprintf(rel, sizeof(rel), "/instrumentations/%s", t->id);
    if ((rc = sn_ca_call_json(&t->ca, "GET", rel, NULL, true, &inst)) != SN_EXIT_OK)
        return rc;
    arity = json_string_value(json_object_get(inst, "value-arity"));
    arity = arity ? arity : "";
    t->numeric = strstr(arity, "numeric") != NULL;
    t->discrete =
        strcmp(arity, "discrete-decomposition") == 0 || strcmp(arity, "numeric-decomposition") == 0;
    dec = json_object_get(inst, "decomposition");
    off = (size_t)snprintf(t->title, sizeof(t->title), "%s %s.%s", t->id,
                           jstr(json_object_get(inst, "module")),
                           jstr(json_object_get(inst, "stat")));
    json_array_foreach(dec, i, f)
    {
        if (off < sizeof(t->title))
            off += (size_t)snprintf(t->title + off, sizeof(t->title) - off, "%s%s",
                                    i ? ", " : " by ", jstr(f));
    }
    t->unit = U_NONE;
    t->scale = 1;
    if (t->numeric && sn_ca_call_json(&t->ca, "GET", "", NULL, false, &desc) == SN_EXIT_OK) {
        json_t *fields = json_object_get(desc, "fields"), *types = json_object_get(desc, "types");
        json_array_foreach(dec, i, f)
        {
            const char *type =
                json_string_value(json_object_get(json_object_get(fields, jstr(f)), "type"));
            json_t *ty = json_object_get(types, type ? type : "");
            const char *unit = json_string_value(json_object_get(ty, "unit"));
            const char *ar = json_string_value(json_object_get(ty, "arity"));
            if (!ar || strcmp(ar, "numeric") != 0)
                continue;
            if (unit && strcmp(unit, "seconds") == 0) {
                t->unit = U_TIME;
                t->scale = pow(10, (double)json_integer_value(json_object_get(ty, "power")) + 9);
            } else if (unit && strcmp(unit, "bytes") == 0) {
                t->unit = U_SIZE;
            }
        }
        json_decref(desc);
    }
    json_decref(inst);
    return SN_EXIT_OK;
}

/* ---- drawing ----------------------------------------------------------------------------- */

/* One line: on a terminal cut to the width and followed by erase-to-end-of-line. */
static void emit(FILE *o, const struct top *t, int cols, const char *s)
{
    if (t->tty) {
        /* cut by display cells (UTF-8 continuation bytes take none) */
        int cells = 0;
        const char *p = s;
        while (*p && !(cells >= cols && ((unsigned char)*p & 0xc0) != 0x80)) {
            if (((unsigned char)*p & 0xc0) != 0x80)
                cells++;
            p++;
        }
        fwrite(s, 1, (size_t)(p - s), o);
        fputs("\033[K\r\n", o);
    } else {
        fprintf(o, "%s\n", s);
    }
}

static void draw_hist(const struct top *t, const json_t *d, int dmin, int group, int ncells,
                      char *out, size_t cap)
{
    static const char *const blocks[] = {" ",
                                         "\xe2\x96\x81",
                                         "\xe2\x96\x82",
                                         "\xe2\x96\x83",
                                         "\xe2\x96\x84",
                                         "\xe2\x96\x85",
                                         "\xe2\x96\x86",
                                         "\xe2\x96\x87",
                                         "\xe2\x96\x88"};
    static const char ascii[] = " .:#";
    double cell[TOP_MAX_CELLS] = {0}, max = 0;
    size_t i, off = 0;
    json_t *b;

    json_array_foreach(d, i, b)
    {
        int c =
            (decade_of(json_number_value(json_array_get(json_array_get(b, 0), 0))) - dmin) / group;
        if (c >= 0 && c < ncells)
            cell[c] += json_number_value(json_array_get(b, 1));
    }
    for (int c = 0; c < ncells; c++)
        max = cell[c] > max ? cell[c] : max;
    out[0] = '\0';
    for (int c = 0; c < ncells && off + 4 < cap; c++) {
        double f = max > 0 ? cell[c] / max : 0;
        if (t->ascii) {
            int lv = cell[c] > 0 ? 1 + (int)(f * 2.999) : 0;
            out[off++] = ascii[lv];
            out[off] = '\0';
        } else {
            int lv = cell[c] > 0 ? 1 + (int)(f * 7.999) : 0;
            off += (size_t)snprintf(out + off, cap - off, "%s", blocks[lv]);
        }
    }
}

static int top_render(const struct top *t, const json_t *reply)
{
    const json_t *value = json_object_get(reply, "value");
    struct row *rows = NULL;
    size_t nrows = 0, i;
    double total = 0;
    int cols = 80, lines = 24, keyw = 8, dmin = INT_MAX, dmax = INT_MIN, group = 1, ncells = 0;
    char line[1024], stamp[64], buf[256];
    time_t st = (time_t)json_integer_value(json_object_get(reply, "start_time"));
    struct tm tm;
    char *mem = NULL;
    size_t memlen = 0;
    FILE *o = open_memstream(&mem, &memlen);

    if (!o)
        return SN_EXIT_FAILURE;
    if (t->tty)
        term_size(&cols, &lines);
    if (json_is_object(value)) {
        const char *k;
        json_t *v;
        rows = calloc(json_object_size(value) + 1, sizeof(*rows));
        if (!rows) {
            fclose(o);
            free(mem);
            return SN_EXIT_FAILURE;
        }
        json_object_foreach((json_t *)value, k, v)
        {
            struct row *r = &rows[nrows++];
            r->key = k;
            r->dist = json_is_array(v) ? v : NULL;
            r->count = r->dist ? dist_total(v) : json_number_value(v);
        }
    } else if (json_is_array(value)) {
        rows = calloc(1, sizeof(*rows));
        if (!rows) {
            fclose(o);
            free(mem);
            return SN_EXIT_FAILURE;
        }
        rows[0].key = "(all)";
        rows[0].dist = (json_t *)value;
        rows[0].count = dist_total(value);
        nrows = rows[0].count > 0;
    } else if (json_is_number(value)) {
        total = json_number_value(value);
    }
    for (i = 0; i < nrows; i++) {
        struct row *r = &rows[i];
        size_t j;
        json_t *b;
        total += r->count;
        r->p50 = r->dist ? dist_quantile(r->dist, r->count, 0.5) : NAN;
        r->p99 = r->dist ? dist_quantile(r->dist, r->count, 0.99) : NAN;
        json_array_foreach(r->dist, j, b)
        {
            int dd = decade_of(json_number_value(json_array_get(json_array_get(b, 0), 0)));
            dmin = dd < dmin ? dd : dmin;
            dmax = dd > dmax ? dd : dmax;
        }
        if ((int)strlen(r->key) > keyw)
            keyw = (int)strlen(r->key);
    }
    qsort(rows, nrows, sizeof(*rows), row_cmp);

    localtime_r(&st, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(line, sizeof(line), "sonde top: %s | %s (%ld s) | total %.15g | %zu key%s", t->title,
             stamp, t->window, total, nrows, nrows == 1 ? "" : "s");
    emit(o, t, cols, line);

    if (t->numeric) {
        int fixed = 10 + 10 + 10 + 3;
        if (dmin <= dmax) {
            ncells = dmax - dmin + 1;
            group = (ncells + TOP_MAX_CELLS - 1) / TOP_MAX_CELLS;
            ncells = (ncells + group - 1) / group;
        }
        if (keyw > 40)
            keyw = 40;
        if (t->tty && keyw + fixed + ncells > cols) {
            keyw = cols - fixed - ncells;
            if (keyw < 8) {
                keyw = 8;
                ncells = cols - fixed - keyw;
                ncells = ncells < 0 ? 0 : ncells;
            }
        }
        if (ncells > 0) {
            char from[32];
            fmt_value(t, pow(10, dmin), from, sizeof(from));
            snprintf(buf, sizeof(buf), "HIST from %s, %s/cell", from,
                     group == 1   ? "x10"
                     : group == 2 ? "x100"
                                  : "x1000+");
        } else {
            snprintf(buf, sizeof(buf), "HIST");
        }
        snprintf(line, sizeof(line), "%-*.*s %10s %10s %10s  %s", keyw, keyw, "KEY", "COUNT", "P50",
                 "P99", buf);
    } else {
        if (keyw > 60)
            keyw = 60;
        if (t->tty && keyw + 11 > cols)
            keyw = cols - 11 > 8 ? cols - 11 : 8;
        snprintf(line, sizeof(line), "%-*.*s %10s", keyw, keyw, "KEY", "COUNT");
    }
    if (t->discrete || t->numeric)
        emit(o, t, cols, line);

    for (i = 0; i < nrows; i++) {
        const struct row *r = &rows[i];
        char cnt[32], p50[32], p99[32], hist[TOP_MAX_CELLS * 4 + 1];
        if (t->tty && (int)i + 3 > lines) /* header, column names, and a last free line */
            break;
        snprintf(cnt, sizeof(cnt), "%.15g", r->count);
        if (t->numeric) {
            fmt_value(t, r->p50, p50, sizeof(p50));
            fmt_value(t, r->p99, p99, sizeof(p99));
            hist[0] = '\0';
            if (r->dist && ncells > 0)
                draw_hist(t, r->dist, dmin, group, ncells, hist, sizeof(hist));
            snprintf(line, sizeof(line), "%-*.*s %10s %*s %*s  |%s|", keyw, keyw, r->key, cnt,
                     wfix(p50, 10), p50, wfix(p99, 10), p99, hist);
        } else {
            snprintf(line, sizeof(line), "%-*.*s %10s", keyw, keyw, r->key, cnt);
        }
        emit(o, t, cols, line);
    }
    if (t->tty)
        fputs("\033[J", o); /* erase what the previous view left below */
    else
        fputs("\n", o);
    fclose(o);
    if (t->tty)
        fputs("\033[H", stdout);
    fwrite(mem, 1, memlen, stdout);
    fflush(stdout);
    free(mem);
    free(rows);
    return SN_EXIT_OK;
}

/* ---- the command ------------------------------------------------------------------------- */

static bool parse_pos(const char *s, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > max)
        return false;
    *out = v;
    return true;
}

int sn_cmd_top(int argc, char **argv)
{
    static const struct option longopts[] = {
        SN_CA_COMMON_OPTS,
        {"window", required_argument, NULL, O_WINDOW},
        {"iterations", required_argument, NULL, O_ITERATIONS},
        {"ascii", no_argument, NULL, O_ASCII},
        {NULL, 0, NULL, 0},
    };
    struct top t;
    char rel[128];
    const char *cs;
    int c, rc = SN_EXIT_OK;

    memset(&t, 0, sizeof(t));
    sn_ca_init(&t.ca, "sonde top");
    t.window = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (sn_ca_option(&t.ca, c, optarg))
            continue;
        switch (c) {
        case 'h':
            sn_ca_usage(stdout, top_usage);
            return SN_EXIT_OK;
        case O_WINDOW:
            if (!parse_pos(optarg, 3600, &t.window)) {
                fprintf(stderr, "sonde top: --window wants 1 to 3600 seconds, not '%s'\n", optarg);
                return SN_EXIT_USAGE;
            }
            break;
        case O_ITERATIONS:
            if (!parse_pos(optarg, 1000000000L, &t.iterations)) {
                fprintf(stderr, "sonde top: --iterations wants a positive count, not '%s'\n",
                        optarg);
                return SN_EXIT_USAGE;
            }
            break;
        case O_ASCII:
            t.ascii = true;
            break;
        default:
            sn_ca_bad_option(&t.ca, c, argv[optind - 1]);
            sn_ca_usage(stderr, top_usage);
            return SN_EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "sonde top: want one instrumentation ID\n\n");
        sn_ca_usage(stderr, top_usage);
        return SN_EXIT_USAGE;
    }
    t.id = argv[optind];
    if (!sn_ca_valid_id(&t.ca, t.id) || sn_ca_ready(&t.ca) != SN_EXIT_OK)
        return SN_EXIT_USAGE;

    setlocale(LC_CTYPE, "");
    cs = nl_langinfo(CODESET);
    if (!cs || (strcmp(cs, "UTF-8") != 0 && strcmp(cs, "utf8") != 0))
        t.ascii = true;
    t.tty = isatty(STDOUT_FILENO) && !t.ca.json;

    if ((rc = top_describe(&t)) != SN_EXIT_OK)
        return rc;
    snprintf(rel, sizeof(rel), "/instrumentations/%s/value/raw?duration=%ld", t.id, t.window);

    top_signal = 0;
    term_setup(&t);
    for (long n = 0; !top_signal; n++) {
        struct timespec a, b;
        json_t *j;
        long spent;

        clock_gettime(CLOCK_MONOTONIC, &a);
        if (sn_ca_call_json(&t.ca, "GET", rel, NULL, true, &j) != SN_EXIT_OK) {
            rc = SN_EXIT_FAILURE;
            break;
        }
        if (t.ca.json) {
            sn_ca_print_json(j);
            fflush(stdout);
        } else {
            rc = top_render(&t, j);
        }
        json_decref(j);
        if (rc != SN_EXIT_OK || (t.iterations && n + 1 >= t.iterations))
            break;
        clock_gettime(CLOCK_MONOTONIC, &b);
        spent = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
        if (wait_or_quit(spent < 1000 ? 1000 - spent : 0))
            break;
    }
    term_restore(&t);
    if (t.tty)
        fputs("\n", stdout);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    return rc;
}
