/*
 * annotate=true on value/heatmap/image (Sonde's extension; render/annotate.h) against a real
 * `sonde serve --no-agent` fed through POST /ca/ingest, and `sonde heatmap --annotate -o`:
 * the annotated PNG is larger than the plain one and holds it unchanged, pixel for pixel, at
 * the place the JSON reply gives (`annotated`: width, height, plot_x, plot_y); the margins have
 * the legend's swatches in the layers' hues; annotate=false is the plain image; a bad value is
 * CA's 409. Data sit 5-6 minutes in the past so that no request waits. The annotated images are
 * left in the test's output directory to be looked at.
 */
#include <jansson.h>
#include <spng.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/b64.h"
#include "http.h"
#include "t.h"

static const char *sonde;
static struct th_serve srv;
static long long B; /* the first second of the data: a multiple of 60, 6 minutes ago */
static char out[1 << 16], err[1 << 16];

struct img {
    int w, h;
    uint8_t *px;
};

static bool png_decode(const void *png, size_t len, struct img *im)
{
    spng_ctx *d = spng_ctx_new(0);
    struct spng_ihdr ihdr;
    size_t n = 0;
    bool ok = false;

    memset(im, 0, sizeof(*im));
    if (d && len >= 8 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0 &&
        spng_set_png_buffer(d, png, len) == 0 && spng_get_ihdr(d, &ihdr) == 0 &&
        spng_decoded_image_size(d, SPNG_FMT_RGB8, &n) == 0 && (im->px = malloc(n)) &&
        spng_decode_image(d, im->px, n, SPNG_FMT_RGB8, 0) == 0) {
        im->w = (int)ihdr.width;
        im->h = (int)ihdr.height;
        ok = true;
    }
    if (!ok) {
        free(im->px);
        im->px = NULL;
    }
    spng_ctx_free(d);
    return T_OK(ok);
}

/* GET path as a raw PNG into im; the HTTP status. */
static int get_png(const char *path, struct img *im)
{
    struct th_resp r;
    int status;

    memset(im, 0, sizeof(*im));
    if (th_get(srv.port, path, &r) != 0)
        return 0;
    status = r.status;
    if (status == 200)
        png_decode(r.body, r.len, im);
    else
        t_note("GET %s: %d %.300s", path, r.status, r.body ? r.body : "");
    th_resp_free(&r);
    return status;
}

static bool holds(const struct img *big, const struct img *plot, int x0, int y0)
{
    if (x0 < 0 || y0 < 0 || x0 + plot->w > big->w || y0 + plot->h > big->h)
        return false;
    for (int y = 0; y < plot->h; y++)
        if (memcmp(&big->px[((size_t)(y0 + y) * (size_t)big->w + (size_t)x0) * 3],
                   &plot->px[(size_t)y * (size_t)plot->w * 3], (size_t)plot->w * 3) != 0) {
            t_note("row %d of the plot differs", y);
            return false;
        }
    return true;
}

static bool has_colour(const struct img *im, const uint8_t c[3])
{
    for (size_t i = 0; i < (size_t)im->w * (size_t)im->h; i++)
        if (memcmp(&im->px[i * 3], c, 3) == 0)
            return true;
    return false;
}

static void save(const char *name, const char *path)
{
    struct th_resp r;
    char file[512];
    if (th_get(srv.port, path, &r) == 0 && r.status == 200) {
        snprintf(file, sizeof(file), "%s/%s", t_outdir(), name);
        FILE *f = fopen(file, "wb");
        if (f) {
            fwrite(r.body, 1, r.len, f);
            fclose(f);
        }
    }
    th_resp_free(&r);
}

static void test_setup(void)
{
    struct th_resp r;
    static char body[1 << 16];
    size_t off = 0;

    T_EQ(th_send(srv.port, "POST", "/ca/instrumentations", "application/x-www-form-urlencoded",
                 "module=syscall&stat=syscalls&decomposition=execname,latency", &r),
         0);
    T_EQ(r.status, 201);
    th_resp_free(&r);
    for (long long t = B; t < B + 60; t++)
        off += (size_t)snprintf(body + off, sizeof(body) - off,
                                "{\"id\":\"1\",\"host\":\"h\",\"t\":%lld,\"arity\":"
                                "\"numeric-decomposition\",\"value\":{"
                                "\"nginx\":[[[%lld,%lld],%lld]],"
                                "\"redis\":[[[100000,109999],10]],"
                                "\"postgres\":[[[20000000,20999999],3]]}}\n",
                                t, 1000000 + (t % 10) * 100000, 1000000 + (t % 10) * 100000 + 99999,
                                20 + t % 7);
    T_EQ(th_send(srv.port, "POST", "/ca/ingest", "application/json", body, &r), 0);
    T_EQ(r.status, 200);
    T_OK(r.body && strstr(r.body, "\"accepted\":60") != NULL);
    if (r.body && !strstr(r.body, "\"accepted\":60"))
        t_note("ingest: %s", r.body);
    th_resp_free(&r);
}

static void test_api(void)
{
    static const char *const forms[] = {
        "yscale=log&selected=nginx,redis",
        "ymax=30000000&coloring=linear",
        "yscale=log&decompose_all=true&width=300&height=120&nbuckets=40",
        "selected=postgres&isolate=true&hues=200",
    };
    char q[1024], path[2048];

    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        struct img plain, ann, again;
        struct th_resp r;
        json_t *j = NULL;
        int x = -1, y = -1, w = 0, h = 0;

        snprintf(q, sizeof(q), "start_time=%lld&duration=60&%s", B, forms[i]);
        t_note("%s", q);
        snprintf(path, sizeof(path), "/ca/instrumentations/1/value/heatmap/image?%s&format=png", q);
        T_EQ(get_png(path, &plain), 200);
        snprintf(path, sizeof(path),
                 "/ca/instrumentations/1/value/heatmap/image?%s&annotate=true&format=png", q);
        T_EQ(get_png(path, &ann), 200);
        if (i == 0)
            save("annotated-api.png", path);
        /* where the plot went: the JSON form says */
        snprintf(path, sizeof(path), "/ca/instrumentations/1/value/heatmap/image?%s&annotate=true",
                 q);
        T_EQ(th_get(srv.port, path, &r), 0);
        T_EQ(r.status, 200);
        if (r.body && (j = json_loads(r.body, 0, NULL))) {
            json_t *a = json_object_get(j, "annotated");
            x = (int)json_integer_value(json_object_get(a, "plot_x"));
            y = (int)json_integer_value(json_object_get(a, "plot_y"));
            w = (int)json_integer_value(json_object_get(a, "width"));
            h = (int)json_integer_value(json_object_get(a, "height"));
            T_EQ(json_integer_value(json_object_get(j, "width")), plain.w); /* the plot's */
            const char *b64 = json_string_value(json_object_get(j, "image"));
            unsigned char *png = b64 ? malloc(sn_b64_decoded_max(strlen(b64))) : NULL;
            ssize_t n = png ? sn_b64_decode_strict(b64, strlen(b64), png) : -1;
            if (T_OK(n > 0) && png_decode(png, (size_t)n, &again)) {
                T_EQ(again.w, ann.w);
                T_EQ(again.h, ann.h);
                T_OK(again.px && ann.px &&
                     memcmp(again.px, ann.px, (size_t)ann.w * (size_t)ann.h * 3) == 0);
                free(again.px);
            }
            free(png);
        }
        th_resp_free(&r);
        T_OK(j != NULL);
        T_EQ(ann.w, w);
        T_EQ(ann.h, h);
        T_OK(ann.w > plain.w && ann.h > plain.h);
        T_OK(plain.px && ann.px && holds(&ann, &plain, x, y));
        json_decref(j);
        free(plain.px);
        free(ann.px);
    }

    /* the legend's swatches are the layers' colours at full intensity (api.md) */
    struct img ann;
    snprintf(path, sizeof(path),
             "/ca/instrumentations/1/value/heatmap/image?start_time=%lld&duration=60&"
             "selected=nginx&annotate=true&format=png",
             B);
    T_EQ(get_png(path, &ann), 200);
    T_OK(ann.px && has_colour(&ann, (const uint8_t[3]){242, 101, 24}));
    T_OK(ann.px && has_colour(&ann, (const uint8_t[3]){53, 242, 24}));
    free(ann.px);

    /* annotate=false is the plain image; a bad value is refused */
    struct img a, b;
    snprintf(path, sizeof(path),
             "/ca/instrumentations/1/value/heatmap/image?start_time=%lld&duration=60&format=png",
             B);
    T_EQ(get_png(path, &a), 200);
    snprintf(path, sizeof(path),
             "/ca/instrumentations/1/value/heatmap/image?start_time=%lld&duration=60&"
             "annotate=false&format=png",
             B);
    T_EQ(get_png(path, &b), 200);
    T_OK(a.px && b.px && a.w == b.w && a.h == b.h &&
         memcmp(a.px, b.px, (size_t)a.w * (size_t)a.h * 3) == 0);
    free(a.px);
    free(b.px);
    snprintf(path, sizeof(path),
             "/ca/instrumentations/1/value/heatmap/image?start_time=%lld&annotate=bogus", B);
    T_EQ(get_png(path, &a), 409);
}

static bool read_png_file(const char *file, struct img *im)
{
    static unsigned char buf[1 << 22];
    FILE *f = fopen(file, "rb");
    size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
    if (f)
        fclose(f);
    memset(im, 0, sizeof(*im));
    return T_OK(n > 8) && png_decode(buf, n, im);
}

static void test_cli(void)
{
    char cmd[2048], file[512], plainf[512], path[1024];
    struct img cli, api, plain;

    snprintf(file, sizeof(file), "%s/annotated-cli.png", t_outdir());
    snprintf(plainf, sizeof(plainf), "%s/plain-cli.png", t_outdir());
    snprintf(cmd, sizeof(cmd),
             "%s heatmap 1 --url http://127.0.0.1:%d --start %lld --duration 60 --log "
             "--selected redis --annotate -o %s",
             sonde, srv.port, B, file);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    snprintf(cmd, sizeof(cmd),
             "%s heatmap 1 --url http://127.0.0.1:%d --start %lld --duration 60 --log "
             "--selected redis -o %s",
             sonde, srv.port, B, plainf);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 0);
    snprintf(path, sizeof(path),
             "/ca/instrumentations/1/value/heatmap/image?start_time=%lld&duration=60&"
             "yscale=log&selected=redis&annotate=true&format=png",
             B);
    if (read_png_file(file, &cli) && T_EQ(get_png(path, &api), 200)) {
        T_EQ(cli.w, api.w);
        T_EQ(cli.h, api.h);
        T_OK(api.px && cli.w == api.w && cli.h == api.h &&
             memcmp(cli.px, api.px, (size_t)cli.w * (size_t)cli.h * 3) == 0);
        if (read_png_file(plainf, &plain)) {
            T_EQ(plain.w, 600);
            T_EQ(plain.h, 300);
            T_OK(cli.w > 600 && cli.h > 300);
            free(plain.px);
        }
        free(api.px);
    }
    free(cli.px);
    /* the option is the heatmap's only */
    snprintf(cmd, sizeof(cmd),
             "%s details 1 --annotate --x 1 --y 1 --ymax 10 --url http://127.0.0.1:%d", sonde,
             srv.port);
    T_EQ(t_capture(cmd, NULL, out, sizeof(out), err, sizeof(err)), 2);
}

int main(int argc, char **argv)
{
    static const char *const extra[] = {"--no-agent", NULL};
    sonde = th_sonde_main(argc, argv); /* SONDE [CASE-FILTER] */
    if (th_serve_start(sonde, extra, NULL, &srv) != 0) {
        fprintf(stderr, "cannot start sonde serve\n");
        return 1;
    }
    B = ((long long)time(NULL) - 360) / 60 * 60;
    t_run("setup", test_setup);
    t_run("api", test_api);
    t_run("cli", test_cli);
    th_serve_stop(&srv);
    return t_done();
}
