/*
 * The web UI's files (ui/, compiled into the binary) at "/" and "/ui/...", and the table of
 * compiled-in assets they come from (cmake/embed.cmake).
 *
 * Every file is revalidated on each load (Cache-Control: no-cache) against a strong ETag of
 * its content, so a browser keeps nothing stale across an upgrade and pays one 304 per file
 * otherwise. The page runs under a Content-Security-Policy that allows only this origin's
 * scripts, styles and API (images also from data: URLs: the heatmaps arrive as base64 PNG).
 *
 * `sonde serve --ui-dir DIR` serves DIR/... from disk instead, for working on the UI
 * without rebuilding; nothing is cached then.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/assets.h"
#include "api/internal.h"

#define UI_FILE_MAX (4u << 20) /* a file of --ui-dir larger than this is refused */

static const char csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'";

const struct sn_asset *sn_asset_find(const char *name)
{
    for (size_t i = 0; i < sn_nassets; i++)
        if (strcmp(sn_assets[i].name, name) == 0)
            return &sn_assets[i];
    return NULL;
}

static const char *ctype_of(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
        {".md", "text/markdown; charset=utf-8"},
    };
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t e = strlen(types[i].ext);
        if (n > e && strcmp(name + n - e, types[i].ext) == 0)
            return types[i].type;
    }
    return "application/octet-stream";
}

/* A name under ui/ we are willing to look for: [A-Za-z0-9._-] segments, no "..", no
 * leading dot (so no hidden files), nothing empty. */
static bool name_ok(const char *p)
{
    if (!*p || strlen(p) > 200)
        return false;
    for (const char *seg = p; *seg;) {
        size_t n = strcspn(seg, "/");
        if (n == 0 || seg[0] == '.')
            return false;
        for (size_t i = 0; i < n; i++) {
            char ch = seg[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
                return false;
        }
        seg += n;
        if (*seg == '/')
            seg++;
    }
    return p[strlen(p) - 1] != '/';
}

static void add_header(struct sn_resp *resp, const char *name, const char *value)
{
    for (size_t i = 0; i < sizeof(resp->hdr) / sizeof(resp->hdr[0]); i++)
        if (!resp->hdr[i][0]) {
            resp->hdr[i][0] = name;
            resp->hdr[i][1] = value;
            return;
        }
}

/* Serves a copy of len bytes at data as name's type. */
static void send_copy(struct sn_resp *resp, const char *name, const unsigned char *data, size_t len)
{
    unsigned char *b = malloc(len ? len : 1);
    if (!b) {
        sn_resp_empty(resp, 500);
        return;
    }
    memcpy(b, data, len);
    sn_resp_bytes(resp, 200, ctype_of(name), b, len);
    add_header(resp, "X-Content-Type-Options", "nosniff");
    if (strcmp(ctype_of(name), "text/html; charset=utf-8") == 0) {
        add_header(resp, "Content-Security-Policy", csp);
        add_header(resp, "Referrer-Policy", "no-referrer");
    }
}

/* name under --ui-dir: 404 unless it is a regular file (a directory such as ui/js is not
 * one), 500 when it cannot be read. */
static void from_disk(struct sn_server *s, const char *name, struct sn_resp *resp)
{
    char path[1024];
    struct stat st;
    unsigned char *b = NULL;
    size_t len;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", s->uidir, name);
    f = fopen(path, "rb");
    if (!f) {
        sn_resp_empty(resp, errno == ENOENT || errno == ENOTDIR || errno == EISDIR ? 404 : 500);
        return;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        sn_resp_empty(resp, 404);
        fclose(f);
        return;
    }
    len = (size_t)st.st_size;
    if (st.st_size > (off_t)UI_FILE_MAX || !(b = malloc(len + 1)) || fread(b, 1, len, f) != len) {
        sn_resp_empty(resp, 500);
    } else {
        send_copy(resp, name, b, len);
        add_header(resp, "Cache-Control", "no-store");
    }
    free(b);
    fclose(f);
}

bool sn_api_ui(struct sn_server *s, const struct sn_req *req, struct sn_resp *resp)
{
    const char *p = req->path, *rel;
    char name[256];

    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
        return false;
    if (strcmp(p, "/") == 0) {
        /* a client asking for JSON (and not a page) gets the server's description */
        if (req->accept && strstr(req->accept, "application/json") &&
            !strstr(req->accept, "text/html"))
            return false;
        rel = "index.html";
    } else if (strncmp(p, "/ui/", 4) == 0) {
        rel = p + 4;
        /* the page lives at "/" only: its URLs are relative to it (so that it also works
         * under a proxy's path prefix), and would not resolve from /ui/index.html */
        if (strcmp(rel, "index.html") == 0) {
            sn_resp_empty(resp, 404);
            return true;
        }
    } else {
        return false;
    }
    if (!name_ok(rel)) {
        sn_resp_empty(resp, 404);
        return true;
    }
    if (s->uidir[0]) {
        from_disk(s, rel, resp);
        return true;
    }
    snprintf(name, sizeof(name), "ui/%s", rel);
    const struct sn_asset *a = sn_asset_find(name);
    if (!a) {
        sn_resp_empty(resp, 404);
        return true;
    }
    if (req->if_none_match && strstr(req->if_none_match, a->etag)) {
        sn_resp_empty(resp, 304);
        add_header(resp, "ETag", a->etag);
        return true;
    }
    send_copy(resp, name, a->data, a->len);
    add_header(resp, "ETag", a->etag);
    add_header(resp, "Cache-Control", "no-cache");
    return true;
}
