/*
 * Heatmap PNGs: encoded, then decoded again (libspng's decoder) to the same pixels, with the
 * PNG signature and header a browser expects; bad sizes are refused.
 */
#include <errno.h>
#include <spng.h>
#include <stdlib.h>
#include <string.h>

#include "render/raster.h"
#include "render/png.h"
#include "t.h"

static void test_round_trip(void)
{
    static const struct sn_hm_range r[] = {{10, 20, 5}, {30, 40, 3}, {0, 4, 1}};
    struct sn_hm_column cols[60];
    struct sn_hm_params p = {.width = 600, .height = 300, .nbuckets = 100, .ymin = 0, .ymax = 50};
    size_t n = 600 * 300 * 3, len = 0, dlen = 0;
    uint8_t *rgb = malloc(n), *back = malloc(n);
    unsigned char *png = NULL;

    T_REQUIRE(rgb && back);
    for (int i = 0; i < 60; i++)
        cols[i] = (struct sn_hm_column){r, (size_t)(i % 3 + 1)};
    T_EQ(sn_hm_render(&p, cols, NULL, 0, 60, rgb, NULL), 0);
    T_EQ(sn_png_encode_rgb(rgb, 600, 300, &png, &len), 0);
    T_REQUIRE(png != NULL);
    T_MEM(png, "\x89PNG\r\n\x1a\n", 8);
    t_note("%zu bytes for 600x300", len);
    T_OK(len < n / 10); /* runs of equal pixels compress well */

    spng_ctx *d = spng_ctx_new(0);
    struct spng_ihdr ihdr;
    T_REQUIRE(d != NULL);
    T_EQ(spng_set_png_buffer(d, png, len), 0);
    T_EQ(spng_get_ihdr(d, &ihdr), 0);
    T_EQU(ihdr.width, 600);
    T_EQU(ihdr.height, 300);
    T_EQ(ihdr.bit_depth, 8);
    T_EQ(ihdr.color_type, SPNG_COLOR_TYPE_TRUECOLOR);
    T_EQ(spng_decoded_image_size(d, SPNG_FMT_RGB8, &dlen), 0);
    T_EQU(dlen, n);
    T_EQ(spng_decode_image(d, back, n, SPNG_FMT_RGB8, 0), 0);
    T_OK(memcmp(back, rgb, n) == 0);
    spng_ctx_free(d);
    free(png);
    free(rgb);
    free(back);
}

static void test_bad_sizes(void)
{
    uint8_t px[3] = {0, 0, 0};
    unsigned char *png = NULL;
    size_t len;
    T_EQ(sn_png_encode_rgb(px, 0, 1, &png, &len), -EINVAL);
    T_EQ(sn_png_encode_rgb(px, 1, -1, &png, &len), -EINVAL);
    T_EQ(sn_png_encode_rgb(px, 1, 1, &png, &len), 0);
    free(png);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("a 600x300 heatmap encodes and decodes to the same pixels", test_round_trip);
    t_run("bad sizes are refused", test_bad_sizes);
    return t_done();
}
