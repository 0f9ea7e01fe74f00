/*
 * Sonde's bitmap font for text drawn into images (heatmap annotations): 5 x 9 pixel glyphs of
 * our own design (7 rows from the cap line to the baseline, 2 below it for descenders), drawn
 * on a 6-pixel advance. Printable ASCII, plus µ, the middle dot, the en dash, the ellipsis and
 * the degree sign; anything else draws as a small hollow box.
 */
#ifndef SN_RENDER_GLYPHS_H
#define SN_RENDER_GLYPHS_H

#include <stdint.h>

#define SN_GLYPH_W       5 /* ink columns */
#define SN_GLYPH_H       9 /* rows: 7 above the baseline, 2 below */
#define SN_GLYPH_ADVANCE 6 /* pixels from one character to the next */
#define SN_GLYPH_ASCENT  7 /* rows from the top of a glyph to its baseline */

/* The rows of code point cp, SN_GLYPH_H strings of SN_GLYPH_W characters, '#' where ink is;
 * never NULL (the box for code points the font lacks). */
const char *const *sn_glyph(uint32_t cp);

#endif
