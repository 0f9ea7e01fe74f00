/*
 * Files compiled into the binary (cmake/embed.cmake): the web UI under ui/ and the API
 * document docs/api.md. One table, named by path in the source tree, so that the server needs
 * no file at run time and a binary always serves the UI it was built with.
 */
#ifndef SN_API_ASSETS_H
#define SN_API_ASSETS_H

#include <stddef.h>

struct sn_asset {
    const char *name;          /* path in the source tree, e.g. "ui/index.html" */
    const unsigned char *data; /* the bytes, followed by a NUL not counted in len */
    size_t len;
    const char *etag; /* a quoted strong ETag: the content's SHA-1, 16 hex digits */
};

extern const struct sn_asset sn_assets[]; /* ends with an entry whose name is NULL */
extern const size_t sn_nassets;

/* The asset of that name, or NULL. */
const struct sn_asset *sn_asset_find(const char *name);

#endif
