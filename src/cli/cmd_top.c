/*
 * `sonde top ID`: a terminal view of an instrumentation, refreshed each second. Keys (the
 * discrete field of the decomposition) sorted by count, p50 or p99, descending, with their count
 * and, when the instrumentation also has a numeric field, p50 and p99 interpolated within the
 * key's log-linear bucket ranges (in human units: ns/µs/ms/s for time, B/KiB/MiB/GiB for sizes,
 * from describe's `types`) and a small histogram, one cell per decade (or group of decades).
 *
 * Plain ANSI escapes only (alternate screen, cursor position, erase line, hide/show cursor), no
 * curses: it works over ssh in any terminal. Each view draws exactly the terminal's rows, each
 * line positioned and cut to the width (autowrap off), so the screen never scrolls and the
 * title stays on line 1 however many keys there are; the size comes from TIOCGWINSZ (80x24
 * when that fails) and is read again after SIGWINCH. The histogram's axis (its first decade and
 * decades per cell) is kept for the session and only widened when values fall outside it, so
 * that a cell means the same thing from one second to the next.
 *
 * Keys (stdin in non-canonical mode, restored on exit and after SIGINT/SIGTERM/SIGHUP): q quits;
 * c, 5, 9 sort by count, p50, p99 and s cycles; p or space pauses (the view freezes, requests go
 * on so that the status stays true); / edits a substring filter on the keys (Enter applies, Esc
 * clears); ? shows the keys. A request that fails does not end the view: the status line says
 * the server is unreachable and when the next try comes (0.5 s, doubling up to 5 s), and the
 * view carries on when the server answers again; a 404 says the instrumentation is gone.
 *
 * When stdout is not a terminal (or with --json) each refresh prints one plain snapshot (no
 * escapes, every key) followed by a blank line, and a failed request ends the command (exit 1).
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

#define TOP_MAX_CELLS   12
#define TOP_FETCH_MS    3000 /* a request's bound while the view runs */
#define TOP_FILTER_MAX  64
#define TOP_BACKOFF_MIN 500
#define TOP_BACKOFF_MAX 5000

enum { O_WINDOW = 256, O_ITERATIONS, O_ASCII };

enum sort_by { BY_COUNT, BY_P50, BY_P99 };

static const char *const sort_names[] = {"count", "p50", "p99"};

struct top {
    struct sn_ca ca;
    const char *id;
    long window, iterations;
    bool ascii, tty;
    bool numeric, discrete; /* what the value holds: histograms, keys */
    struct sn_unit unit;    /* of the numeric field's values (none when there is none) */
    char title[256];
    /* the view's state (terminal mode) */
    enum sort_by sort;
    bool paused, help, editing;
    char filter[TOP_FILTER_MAX], edit[TOP_FILTER_MAX];
    int dlo, dhi;         /* the histogram's decades, only widened; dlo > dhi: none yet */
    json_t *shown;        /* the reply on screen (frozen while paused) */
    json_t *latest;       /* the last reply received */
    int problem;          /* 0, or what the last request got: -errno, or an HTTP status */
    long retry_ms;        /* the current backoff */
    struct timespec next; /* when the next request goes */
};

struct row {
    const char *key;
    double count, p50, p99;
    json_t *dist; /* [[[lo,hi],n],...] or NULL */
};

static const char top_usage[] =
    "usage: sonde top [options] ID\n"
    "       sonde top --trace DIR | --live NAME [options]  (a recording: sonde top --trace -h)\n"
    "\n"
    "Shows instrumentation ID, refreshed each second: its keys (the discrete field of the\n"
    "decomposition) by count, descending, with p50, p99 and a histogram of the numeric field\n"
    "(one cell per decade) over the last complete second, or the last N seconds.\n"
    "Keys: q quits; c, 5, 9 sort by count, p50, p99 (s cycles); p or space pauses;\n"
    "/ filters the keys by a substring (Enter applies, Esc clears); ? lists the keys.\n"
    "When the server goes away the view says so and retries until it is back.\n"
    "When standard output is not a terminal, prints one plain snapshot per refresh.\n"
    "\n"
    "options:\n"
    "  --window N        seconds summed in each view (default 1)\n"
    "  --iterations N    quit after N refreshes\n"
    "  --ascii           draw histograms with '#' and write units in ASCII "
    "(\"us\")\n" SN_CA_COMMON_HELP;

/* ---- terminal ---------------------------------------------------------------------------- */

static volatile sig_atomic_t top_signal, top_winch;
static struct termios saved_tio;
static bool tio_saved;

static void on_signal(int sig)
{
    if (sig == SIGWINCH)
        top_winch = 1;
    else
        top_signal = sig;
}

static void term_restore(const struct top *t)
{
    if (tio_saved) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
        tio_saved = false;
    }
    if (t->tty) {
        /* autowrap back on, cursor shown, the main screen back */
        fputs("\033[0m\033[?7h\033[?25h\033[?1049l", stdout);
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
    if (t->tty)
        sigaction(SIGWINCH, &sa, NULL);
    if (t->tty && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
        struct termios raw = saved_tio;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
            tio_saved = true;
    }
    if (t->tty) {
        /* the alternate screen, cleared; cursor hidden; autowrap off (a full last line must
         * not scroll) */
        fputs("\033[?1049h\033[H\033[2J\033[?25l\033[?7l", stdout);
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

static long ms_until(const struct timespec *when)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (when->tv_sec - now.tv_sec) * 1000 + (when->tv_nsec - now.tv_nsec) / 1000000;
}

static void after_ms(struct timespec *when, const struct timespec *from, long ms)
{
    *when = *from;
    when->tv_sec += ms / 1000;
    when->tv_nsec += (ms % 1000) * 1000000;
    if (when->tv_nsec >= 1000000000) {
        when->tv_sec++;
        when->tv_nsec -= 1000000000;
    }
}

/* ---- units ------------------------------------------------------------------------------- */

static void fmt_value(const struct top *t, double v, char *out, size_t cap)
{
    sn_fmt_unit(out, cap, v, &t->unit);
}

/* ---- text cells -------------------------------------------------------------------------- */

/* Display cells of UTF-8 s (continuation bytes take none). */
static int cells(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* s in exactly w cells into out: cut with an ellipsis when longer, padded with spaces (on the
 * right, or on the left with right) when shorter. */
static void fit(const struct top *t, char *out, size_t cap, const char *s, int w, bool right)
{
    const char *ell = t->ascii ? "~" : "\xe2\x80\xa6";
    int n = cells(s), pad = 0;
    size_t off = 0, len = strlen(s);

    if (cap == 0)
        return;
    out[0] = '\0';
    if (w <= 0)
        return;
    if (n > w) { /* w - 1 cells of s, then the ellipsis */
        const char *p = s;
        int c = 0;
        while (*p && !(c >= w - 1 && ((unsigned char)*p & 0xc0) != 0x80)) {
            c += ((unsigned char)*p & 0xc0) != 0x80;
            p++;
        }
        snprintf(out, cap, "%.*s%s", (int)(p - s), s, ell);
        return;
    }
    pad = w - n;
    if (right)
        for (; pad > 0 && off + 1 < cap; pad--)
            out[off++] = ' ';
    if (off + len >= cap)
        len = cap - off - 1;
    memcpy(out + off, s, len);
    off += len;
    for (; pad > 0 && off + 1 < cap; pad--)
        out[off++] = ' ';
    out[off] = '\0';
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

static enum sort_by row_sort;

/* Descending by the sort's field (keys without it last), then by count, then by name. */
static int row_cmp(const void *pa, const void *pb)
{
    const struct row *a = pa, *b = pb;
    double x = row_sort == BY_P50 ? a->p50 : row_sort == BY_P99 ? a->p99 : a->count;
    double y = row_sort == BY_P50 ? b->p50 : row_sort == BY_P99 ? b->p99 : b->count;
    if (isnan(x) != isnan(y))
        return isnan(x) ? 1 : -1;
    if (!isnan(x) && x != y)
        return x > y ? -1 : 1;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return strcmp(a->key, b->key);
}

/* True when needle (ASCII case-insensitively) is in hay. */
static bool contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               (hay[i] == needle[i] || ((hay[i] | 0x20) == (needle[i] | 0x20) &&
                                        (needle[i] | 0x20) >= 'a' && (needle[i] | 0x20) <= 'z')))
            i++;
        if (i == n)
            return true;
    }
    return n == 0;
}

static const char *jstr(const json_t *j)
{
    const char *s = json_string_value(j);
    return s ? s : "?";
}

/* The instrumentation's title and value shape, and its numeric field's unit. */
static int top_describe(struct top *t)
{
    struct sn_ca_inst in;
    const char *arity;
    json_t *dec, *f;
    size_t i, off;
    int rc;

    if ((rc = sn_ca_inst_get(&t->ca, t->id, true, &in)) != SN_EXIT_OK) {
        sn_ca_inst_free(&in);
        return rc;
    }
    arity = jstr(json_object_get(in.props, "value-arity"));
    t->numeric = in.numeric;
    t->discrete =
        strcmp(arity, "discrete-decomposition") == 0 || strcmp(arity, "numeric-decomposition") == 0;
    dec = json_object_get(in.props, "decomposition");
    off = (size_t)snprintf(t->title, sizeof(t->title), "%s %s.%s", t->id,
                           jstr(json_object_get(in.props, "module")),
                           jstr(json_object_get(in.props, "stat")));
    json_array_foreach(dec, i, f)
    {
        if (off < sizeof(t->title))
            off += (size_t)snprintf(t->title + off, sizeof(t->title) - off, "%s%s",
                                    i ? ", " : " by ", jstr(f));
    }
    t->unit = in.unit;
    t->unit.ascii = t->ascii;
    sn_ca_inst_free(&in);
    return SN_EXIT_OK;
}

/* Widens the histogram's axis to the decades of reply's values. */
static void widen_axis(struct top *t, const json_t *reply)
{
    const json_t *value = json_object_get(reply, "value");
    const char *k;
    json_t *v, *b;
    size_t j;

    if (json_is_array(value)) {
        json_array_foreach(value, j, b)
        {
            int d = decade_of(json_number_value(json_array_get(json_array_get(b, 0), 0)));
            t->dlo = t->dlo > t->dhi || d < t->dlo ? d : t->dlo;
            t->dhi = d > t->dhi ? d : t->dhi;
        }
        return;
    }
    json_object_foreach((json_t *)value, k, v)
    {
        json_array_foreach(v, j, b)
        {
            int d = decade_of(json_number_value(json_array_get(json_array_get(b, 0), 0)));
            if (t->dlo > t->dhi) {
                t->dlo = t->dhi = d;
                continue;
            }
            t->dlo = d < t->dlo ? d : t->dlo;
            t->dhi = d > t->dhi ? d : t->dhi;
        }
    }
}

/* ---- drawing ----------------------------------------------------------------------------- */

/* The lines of one view; a terminal gets them positioned, a pipe one a line. */
struct frame {
    char **line;
    bool *inverse;
    int n, cap;
};

static void put(struct frame *f, const char *s, bool inverse)
{
    if (f->n == f->cap) {
        int cap = f->cap ? f->cap * 2 : 32;
        char **l = realloc(f->line, (size_t)cap * sizeof(*l));
        bool *inv = l ? realloc(f->inverse, (size_t)cap * sizeof(*inv)) : NULL;
        if (l)
            f->line = l;
        if (!l || !inv)
            return;
        f->inverse = inv;
        f->cap = cap;
    }
    if ((f->line[f->n] = strdup(s)))
        f->inverse[f->n++] = inverse;
}

static void frame_free(struct frame *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->line[i]);
    free(f->line);
    free(f->inverse);
}

/* Writes f: on a terminal exactly `rows` lines, each at its place, cut to `cols` cells (an
 * ellipsis marking the cut) and the rest of the line erased; nothing scrolls. */
static void flush_frame(const struct top *t, const struct frame *f, int cols, int rows)
{
    char *mem = NULL, cut[2048];
    size_t memlen = 0;
    FILE *o = open_memstream(&mem, &memlen);

    if (!o)
        return;
    if (!t->tty) {
        for (int i = 0; i < f->n; i++)
            fprintf(o, "%s\n", f->line[i]);
        fputs("\n", o);
    } else {
        for (int i = 0; i < rows; i++) {
            fprintf(o, "\033[%d;1H\033[2K", i + 1);
            if (i >= f->n)
                continue;
            if (f->inverse[i]) {
                fit(t, cut, sizeof(cut), f->line[i], cols, false); /* the bar spans the line */
                fprintf(o, "\033[7m%s\033[0m", cut);
            } else if (cells(f->line[i]) > cols) {
                fit(t, cut, sizeof(cut), f->line[i], cols, false);
                fputs(cut, o);
            } else {
                fputs(f->line[i], o);
            }
        }
    }
    fclose(o);
    fwrite(mem, 1, memlen, stdout);
    fflush(stdout);
    free(mem);
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

/* The status bar of the terminal view: the sort, the filter, pause and the connection. */
static void status_line(const struct top *t, char *out, size_t cap, size_t nshown, size_t nkeys)
{
    size_t off = 0;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (off < cap)                                                                             \
            off += (size_t)snprintf(out + off, cap - off, __VA_ARGS__);                            \
    } while (0)

    if (t->editing) {
        ADD(" filter: %s_   (Enter applies, Esc clears)", t->edit);
        return;
    }
    ADD(" sort: %s", sort_names[t->sort]);
    if (t->filter[0])
        ADD(" | filter \"%s\": %zu of %zu key%s", t->filter, nshown, nkeys, nkeys == 1 ? "" : "s");
    if (t->paused)
        ADD(" | PAUSED (p resumes)");
    if (t->problem) {
        long left = ms_until(&t->next);
        char in[32];
        if (left < 0)
            left = 0;
        if (left < 1000)
            snprintf(in, sizeof(in), "%.1f s", (double)left / 1000);
        else
            snprintf(in, sizeof(in), "%ld s", (left + 999) / 1000);
        if (t->problem < 0)
            ADD(" | server unreachable, retrying in %s", in);
        else if (t->problem == 404)
            ADD(" | instrumentation %s is gone from the server (deleted?); retrying in %s", t->id,
                in);
        else
            ADD(" | the server answered HTTP %d, retrying in %s", t->problem, in);
    }
    ADD(" | ? help, q quits");
#undef ADD
}

static void help_lines(const struct top *t, struct frame *f)
{
    static const char *const help[] = {
        "",
        "  Keys",
        "",
        "    c          sort by count (descending)",
        "    5          sort by p50",
        "    9          sort by p99",
        "    s          next sort order",
        "    p, space   pause / resume the view",
        "    /          filter keys by a substring (Enter applies)",
        "    Esc        clear the filter",
        "    ?          this help (any key closes it)",
        "    q          quit",
    };
    (void)t;
    for (size_t i = 0; i < sizeof(help) / sizeof(help[0]); i++)
        put(f, help[i], false);
}

static int top_render(const struct top *t, const json_t *reply)
{
    const json_t *value = json_object_get(reply, "value");
    struct row *rows = NULL;
    struct frame fr = {0};
    size_t nrows = 0, nkeys = 0, i;
    double total = 0;
    int cols = 80, lines = 24, keyw = 8, group = 1, ncells = 0;
    char line[2048], stamp[64], buf[256], keycell[512];
    time_t st = (time_t)json_integer_value(json_object_get(reply, "start_time"));
    struct tm tm;

    if (t->tty)
        term_size(&cols, &lines);
    if (json_is_object(value)) {
        const char *k;
        json_t *v;
        rows = calloc(json_object_size(value) + 1, sizeof(*rows));
        if (!rows)
            return SN_EXIT_FAILURE;
        json_object_foreach((json_t *)value, k, v)
        {
            struct row r = {.key = k, .dist = json_is_array(v) ? v : NULL};
            r.count = r.dist ? dist_total(v) : json_number_value(v);
            total += r.count;
            nkeys++;
            if (t->filter[0] && !contains(k, t->filter))
                continue;
            rows[nrows++] = r;
        }
    } else if (json_is_array(value)) {
        rows = calloc(1, sizeof(*rows));
        if (!rows)
            return SN_EXIT_FAILURE;
        rows[0].key = "(all)";
        rows[0].dist = (json_t *)value;
        rows[0].count = dist_total(value);
        nrows = nkeys = rows[0].count > 0;
        total = rows[0].count;
    } else if (json_is_number(value)) {
        total = json_number_value(value);
    }
    for (i = 0; i < nrows; i++) {
        struct row *r = &rows[i];
        r->p50 = r->dist ? dist_quantile(r->dist, r->count, 0.5) : NAN;
        r->p99 = r->dist ? dist_quantile(r->dist, r->count, 0.99) : NAN;
        if (cells(r->key) > keyw)
            keyw = cells(r->key);
    }
    row_sort = t->numeric ? t->sort : BY_COUNT;
    qsort(rows, nrows, sizeof(*rows), row_cmp);

    localtime_r(&st, &tm);
    strftime(stamp, sizeof(stamp), t->tty ? "%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(line, sizeof(line), "sonde top: %s | %s (%ld s) | total %.15g | %zu key%s", t->title,
             stamp, t->window, total, nkeys, nkeys == 1 ? "" : "s");
    put(&fr, line, false);
    if (t->tty) {
        status_line(t, line, sizeof(line), nrows, nkeys);
        put(&fr, line, true);
    }

    if (t->numeric) {
        int fixed = 10 + 10 + 10 + 3;
        if (t->dlo <= t->dhi) {
            ncells = t->dhi - t->dlo + 1;
            group = (ncells + TOP_MAX_CELLS - 1) / TOP_MAX_CELLS;
            ncells = (ncells + group - 1) / group;
        }
        if (keyw > 40)
            keyw = 40;
        if (t->tty && keyw + fixed + ncells + 2 > cols) {
            keyw = cols - fixed - ncells - 2;
            if (keyw < 8) {
                keyw = 8;
                ncells = cols - fixed - keyw - 2;
                ncells = ncells < 0 ? 0 : ncells;
            }
        }
        if (ncells > 0) {
            char from[32];
            fmt_value(t, pow(10, t->dlo), from, sizeof(from));
            snprintf(buf, sizeof(buf), "HIST from %s, %s/cell", from,
                     group == 1   ? "x10"
                     : group == 2 ? "x100"
                                  : "x1000+");
        } else {
            snprintf(buf, sizeof(buf), "HIST");
        }
        fit(t, keycell, sizeof(keycell), "KEY", keyw, false);
        if (t->tty) { /* the sorted column marked */
            const char *mark = t->ascii ? "*" : "\xe2\x96\xbc";
            char h[3][32];
            snprintf(h[0], sizeof(h[0]), "%s%s", t->sort == BY_COUNT ? mark : "", "COUNT");
            snprintf(h[1], sizeof(h[1]), "%s%s", t->sort == BY_P50 ? mark : "", "P50");
            snprintf(h[2], sizeof(h[2]), "%s%s", t->sort == BY_P99 ? mark : "", "P99");
            char c0[64], c1[64], c2[64];
            fit(t, c0, sizeof(c0), h[0], 10, true);
            fit(t, c1, sizeof(c1), h[1], 10, true);
            fit(t, c2, sizeof(c2), h[2], 10, true);
            snprintf(line, sizeof(line), "%s %s %s %s  %s", keycell, c0, c1, c2, buf);
        } else {
            snprintf(line, sizeof(line), "%s %10s %10s %10s  %s", keycell, "COUNT", "P50", "P99",
                     buf);
        }
    } else {
        if (keyw > 60)
            keyw = 60;
        if (t->tty && keyw + 11 > cols)
            keyw = cols - 11 > 8 ? cols - 11 : 8;
        fit(t, keycell, sizeof(keycell), "KEY", keyw, false);
        snprintf(line, sizeof(line), "%s %10s", keycell, "COUNT");
    }
    if (t->discrete || t->numeric)
        put(&fr, line, false);

    if (t->tty && t->help) {
        help_lines(t, &fr);
        nrows = 0;
    }
    for (i = 0; i < nrows; i++) {
        const struct row *r = &rows[i];
        char cnt[32], p50[32], p99[32], hist[TOP_MAX_CELLS * 4 + 1];
        if (t->tty && fr.n >= lines - 1 && i + 1 < nrows) { /* the last row says what is cut */
            snprintf(line, sizeof(line), "%s %zu more key%s (/ filters)",
                     t->ascii ? "..." : "\xe2\x80\xa6", nrows - i, nrows - i == 1 ? "" : "s");
            put(&fr, line, false);
            break;
        }
        snprintf(cnt, sizeof(cnt), "%.15g", r->count);
        fit(t, keycell, sizeof(keycell), r->key, keyw, false);
        if (t->numeric) {
            char a[64], b[64];
            fmt_value(t, r->p50, p50, sizeof(p50));
            fmt_value(t, r->p99, p99, sizeof(p99));
            fit(t, a, sizeof(a), p50, 10, true);
            fit(t, b, sizeof(b), p99, 10, true);
            hist[0] = '\0';
            if (r->dist && ncells > 0)
                draw_hist(t, r->dist, t->dlo, group, ncells, hist, sizeof(hist));
            snprintf(line, sizeof(line), "%s %10s %s %s  |%s|", keycell, cnt, a, b, hist);
        } else {
            snprintf(line, sizeof(line), "%s %10s", keycell, cnt);
        }
        put(&fr, line, false);
    }
    flush_frame(t, &fr, cols, lines);
    frame_free(&fr);
    free(rows);
    return SN_EXIT_OK;
}

/* A view before any data (the first request failed, or none answered yet). */
static void top_render_empty(const struct top *t)
{
    json_t *j = json_pack("{s:i, s:{}}", "start_time", (json_int_t)time(NULL), "value");
    if (j)
        top_render(t, j);
    json_decref(j);
}

static void top_redraw(const struct top *t)
{
    if (t->shown)
        top_render(t, t->shown);
    else
        top_render_empty(t);
}

/* ---- requests ---------------------------------------------------------------------------- */

/* One GET of rel under the scope, quietly (the view is on screen): 0 with *out, -errno when
 * the server cannot be reached or its reply is not JSON, or the HTTP status of a refusal. */
static int top_fetch(struct top *t, const char *rel, json_t **out)
{
    char path[4096], auth[1024];
    const char *headers[2] = {NULL, NULL};
    struct sn_http_resp r;
    int rc, n;

    *out = NULL;
    if (t->ca.tenant)
        n = snprintf(path, sizeof(path), "%s/ca/customers/%s%s", t->ca.u.path, t->ca.tenant, rel);
    else
        n = snprintf(path, sizeof(path), "%s/ca%s", t->ca.u.path, rel);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -ENAMETOOLONG;
    if (t->ca.token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->ca.token);
        headers[0] = auth;
    }
    if ((rc = sn_http_request(&t->ca.u, "GET", path, headers, NULL, 0, TOP_FETCH_MS, &r)) < 0)
        return rc;
    if (r.status < 200 || r.status > 299) {
        rc = r.status;
        sn_http_resp_free(&r);
        return rc;
    }
    *out = json_loadb(r.body, r.len, 0, NULL);
    sn_http_resp_free(&r);
    return *out ? 0 : -EPROTO;
}

/* ---- keys -------------------------------------------------------------------------------- */

/* Handles the bytes typed; true when the view must be drawn again. Sets *quit on q. */
static bool top_keys(struct top *t, const char *buf, size_t n, bool *quit)
{
    bool dirty = false;

    for (size_t i = 0; i < n && !*quit; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == 27 && i + 1 < n && (buf[i + 1] == '[' || buf[i + 1] == 'O')) {
            /* an escape sequence (arrows...): skipped to its final byte */
            for (i += 2; i < n && !((buf[i] >= 'A' && buf[i] <= 'Z') ||
                                    (buf[i] >= 'a' && buf[i] <= 'z') || buf[i] == '~');
                 i++)
                ;
            continue;
        }
        dirty = true;
        if (t->editing) {
            size_t l = strlen(t->edit);
            if (c == '\r' || c == '\n') {
                memcpy(t->filter, t->edit, sizeof(t->filter));
                t->editing = false;
            } else if (c == 27) {
                t->filter[0] = t->edit[0] = '\0';
                t->editing = false;
            } else if (c == 127 || c == 8) {
                while (l > 0 && ((unsigned char)t->edit[l - 1] & 0xc0) == 0x80)
                    l--; /* a whole UTF-8 character */
                t->edit[l ? l - 1 : 0] = '\0';
            } else if (c == 21) { /* ^U */
                t->edit[0] = '\0';
            } else if (c >= 32 && l + 1 < sizeof(t->edit)) {
                t->edit[l] = (char)c;
                t->edit[l + 1] = '\0';
            }
            continue;
        }
        if (c == 'q' || c == 'Q') {
            *quit = true;
        } else if (t->help) {
            t->help = false; /* any key closes the help */
        } else if (c == '?' || c == 'h') {
            t->help = true;
        } else if (c == 'c') {
            t->sort = BY_COUNT;
        } else if (c == '5' && t->numeric) {
            t->sort = BY_P50;
        } else if (c == '9' && t->numeric) {
            t->sort = BY_P99;
        } else if (c == 's' || c == 'S') {
            t->sort = t->numeric ? (t->sort + 1) % 3 : BY_COUNT;
        } else if (c == 'p' || c == 'P' || c == ' ') {
            t->paused = !t->paused;
            if (!t->paused && t->latest && t->latest != t->shown) {
                json_decref(t->shown);
                t->shown = json_incref(t->latest);
            }
        } else if (c == '/') {
            t->editing = true;
            memcpy(t->edit, t->filter, sizeof(t->edit));
        } else if (c == 27) {
            t->filter[0] = '\0';
        } else {
            dirty = false;
        }
    }
    return dirty;
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

/* The plain form (a pipe, or --json): one snapshot a refresh; a failed request ends it. */
static int top_plain(struct top *t, const char *rel)
{
    int rc = SN_EXIT_OK;

    for (long n = 0; !top_signal; n++) {
        struct timespec a, b;
        json_t *j;
        long spent;

        clock_gettime(CLOCK_MONOTONIC, &a);
        if (sn_ca_call_json(&t->ca, "GET", rel, NULL, true, &j) != SN_EXIT_OK)
            return SN_EXIT_FAILURE;
        if (t->ca.json) {
            sn_ca_print_json(j);
            fflush(stdout);
        } else {
            widen_axis(t, j);
            rc = top_render(t, j);
        }
        json_decref(j);
        if (rc != SN_EXIT_OK || (t->iterations && n + 1 >= t->iterations))
            break;
        clock_gettime(CLOCK_MONOTONIC, &b);
        spent = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
        if (spent < 1000 && !top_signal)
            poll(NULL, 0, (int)(1000 - spent));
    }
    return rc;
}

/* The terminal view: requests on their schedule, keys and resizes in between. */
static int top_live(struct top *t, const char *rel)
{
    long n = 0;
    bool quit = false;

    clock_gettime(CLOCK_MONOTONIC, &t->next);
    top_redraw(t);
    while (!top_signal && !quit) {
        bool dirty = false;
        long wait;

        if (ms_until(&t->next) <= 0) {
            struct timespec a;
            json_t *j = NULL;
            int rc;

            clock_gettime(CLOCK_MONOTONIC, &a);
            rc = top_fetch(t, rel, &j);
            if (rc == 0) {
                t->problem = 0;
                t->retry_ms = 0;
                widen_axis(t, j);
                json_decref(t->latest);
                t->latest = j;
                if (!t->paused || !t->shown) {
                    json_decref(t->shown);
                    t->shown = json_incref(j);
                }
                after_ms(&t->next, &a, 1000);
            } else {
                t->problem = rc;
                t->retry_ms = t->retry_ms ? t->retry_ms * 2 : TOP_BACKOFF_MIN;
                if (t->retry_ms > TOP_BACKOFF_MAX)
                    t->retry_ms = TOP_BACKOFF_MAX;
                clock_gettime(CLOCK_MONOTONIC, &a);
                after_ms(&t->next, &a, t->retry_ms);
            }
            dirty = true;
            if (t->iterations && ++n >= t->iterations) {
                top_redraw(t);
                break;
            }
        }
        if (top_winch) {
            top_winch = 0;
            dirty = true;
        }
        if (dirty)
            top_redraw(t);
        wait = ms_until(&t->next);
        if (t->problem && wait > 250) /* the countdown on screen moves */
            wait = 250;
        if (wait <= 0)
            continue;
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        int r = poll(&p, tio_saved ? 1 : 0, (int)wait);
        if (r > 0) {
            char buf[64];
            ssize_t got = read(STDIN_FILENO, buf, sizeof(buf));
            if (got <= 0) /* the terminal went away */
                break;
            if (top_keys(t, buf, (size_t)got, &quit) && !quit)
                top_redraw(t);
        } else if (r == 0 && t->problem) {
            top_redraw(t);
        }
    }
    return SN_EXIT_OK;
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

    for (int i = 1; i < argc; i++) /* a recording's top: cmd_top_trace.c */
        if (!strncmp(argv[i], "--trace", 7) || !strncmp(argv[i], "--live", 6))
            return sn_cmd_top_trace(argc, argv);

    memset(&t, 0, sizeof(t));
    sn_ca_init(&t.ca, "sonde top");
    t.window = 1;
    t.dlo = 1;
    t.dhi = 0;
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
    top_winch = 0;
    term_setup(&t);
    rc = t.tty ? top_live(&t, rel) : top_plain(&t, rel);
    term_restore(&t);
    json_decref(t.shown);
    json_decref(t.latest);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGWINCH, SIG_DFL);
    return rc;
}
