/* plot_font.h — the 5×7 bitmap font of the PNG plot renderer. */
#ifndef QB_PLOT_FONT_H
#define QB_PLOT_FONT_H

#define QB_GLYPH_W 5
#define QB_GLYPH_H 9 /* 7 rows above the baseline, 2 below */

/* The QB_GLYPH_H rows of character c (printable ASCII; others give '?'), bit 0x10 leftmost. Static. */
const unsigned char *qb_plot_glyph(unsigned c);

#endif
