/*
 * PNG encoding of rendered heatmaps (8-bit RGB, no alpha), through libspng. Live heatmaps are
 * redrawn every second, so compression is set for speed: heatmaps are mostly runs of equal
 * pixels, which deflate's fastest level already shrinks well.
 */
#ifndef SN_RENDER_PNG_H
#define SN_RENDER_PNG_H

#include <stddef.h>
#include <stdint.h>

/* Encodes width x height RGB (rows top to bottom) into a new buffer *out (free() it) of *len
 * bytes. Returns 0, -EINVAL for bad sizes, -ENOMEM, or -EIO when the encoder fails. */
int sn_png_encode_rgb(const uint8_t *rgb, int width, int height, unsigned char **out, size_t *len);

#endif
