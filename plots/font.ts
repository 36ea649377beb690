// A hand-drawn proportional bitmap font for ASCII 32..126, so the plots need no font files.
//
// Every glyph is drawn on a 5-column x 9-row grid ('#' = ink, '.' = paper). Rows 0..6 hold the
// capital letters and digits (the cap height is 7), rows 7..8 hold descenders (g, j, p, q, y, comma).
// The table below shows 16 glyphs per block, in character-code order starting at 32 (space); the
// first line of a block only names the glyphs for the human reader and is ignored by the parser.
//
// The font is proportional: blank columns on both sides of a glyph are trimmed, so 'i' is narrower
// than 'm'. Digits keep their full 5 columns, so numbers line up in tick labels. One blank column
// separates neighbouring glyphs.

/** Rows per glyph cell, including the two descender rows. */
export const GLYPH_HEIGHT = 9;
/** Rows from the top of the cell to the baseline (the height of capitals and digits). */
export const CAP_HEIGHT = 7;
/** Blank columns between two glyphs. */
export const LETTER_SPACING = 1;
/** Width of a space, in font pixels. */
const SPACE_WIDTH = 3;
const CELL_WIDTH = 5;
const FIRST_CODE = 32;
const LAST_CODE = 126;
const PER_BLOCK = 16;

const FONT_SOURCE = `
spc   !     "     #     $     %     &     '     (     )     *     +     ,     -     .     /
..... ..#.. .#.#. .#.#. ..#.. ##... .##.. ..#.. ...#. .#... ..... ..... ..... ..... ..... ....#
..... ..#.. .#.#. .#.#. .#### ##..# #..#. ..#.. ..#.. ..#.. ..#.. ..#.. ..... ..... ..... ...#.
..... ..#.. .#.#. ##### #.#.. ...#. #.#.. ..#.. .#... ...#. #.#.# ..#.. ..... ..... ..... ...#.
..... ..#.. ..... .#.#. .###. ..#.. .#... ..... .#... ...#. .###. ##### ..... ####. ..... ..#..
..... ..#.. ..... ##### ..#.# .#... #.#.# ..... .#... ...#. #.#.# ..#.. ..... ..... ..... .#...
..... ..... ..... .#.#. ####. #..## #..#. ..... ..#.. ..#.. ..#.. ..#.. .##.. ..... ##... .#...
..... ..#.. ..... .#.#. ..#.. ...## .##.# ..... ...#. .#... ..... ..... .##.. ..... ##... #....
..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..#.. ..... ..... .....
..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .#... ..... ..... .....

0     1     2     3     4     5     6     7     8     9     :     ;     <     =     >     ?
.###. ..#.. .###. .###. ...#. ##### ..##. ##### .###. .###. ..... ..... ...#. ..... .#... .###.
#...# .##.. #...# #...# ..##. #.... .#... ....# #...# #...# ..... ..... ..#.. ..... ..#.. #...#
#...# ..#.. ....# ....# .#.#. ####. #.... ...#. #...# #...# ##... .##.. .#... ##### ...#. ....#
#...# ..#.. ...#. ..##. #..#. ....# ####. ..#.. .###. .#### ##... .##.. #.... ..... ....# ...#.
#...# ..#.. ..#.. ....# ##### ....# #...# .#... #...# ....# ..... ..... .#... ##### ...#. ..#..
#...# ..#.. .#... #...# ...#. #...# #...# .#... #...# ...#. ##... .##.. ..#.. ..... ..#.. .....
.###. .###. ##### .###. ...#. .###. .###. .#... .###. .##.. ##... .##.. ...#. ..... .#... ..#..
..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..#.. ..... ..... ..... .....
..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .#... ..... ..... ..... .....

@     A     B     C     D     E     F     G     H     I     J     K     L     M     N     O
.###. .###. ####. .###. ####. ##### ##### .###. #...# .###. ..### #...# #.... #...# #...# .###.
#...# #...# #...# #...# #...# #.... #.... #...# #...# ..#.. ...#. #..#. #.... ##.## #...# #...#
#.### #...# #...# #.... #...# #.... #.... #.... #...# ..#.. ...#. #.#.. #.... #.#.# ##..# #...#
#.#.# ##### ####. #.... #...# ####. ####. #.### ##### ..#.. ...#. ##... #.... #.#.# #.#.# #...#
#.##. #...# #...# #.... #...# #.... #.... #...# #...# ..#.. ...#. #.#.. #.... #...# #..## #...#
#.... #...# #...# #...# #...# #.... #.... #...# #...# ..#.. #..#. #..#. #.... #...# #...# #...#
.#### #...# ####. .###. ####. ##### #.... .#### #...# .###. .##.. #...# ##### #...# #...# .###.
..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....
..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....

P     Q     R     S     T     U     V     W     X     Y     Z     [     \\     ]     ^     _
####. .###. ####. .#### ##### #...# #...# #...# #...# #...# ##### ###.. #.... ..### ..#.. .....
#...# #...# #...# #.... ..#.. #...# #...# #...# #...# #...# ....# #.... .#... ....# .#.#. .....
#...# #...# #...# #.... ..#.. #...# #...# #...# .#.#. .#.#. ...#. #.... .#... ....# #...# .....
####. #...# ####. .###. ..#.. #...# #...# #.#.# ..#.. ..#.. ..#.. #.... ..#.. ....# ..... .....
#.... #.#.# #.#.. ....# ..#.. #...# #...# #.#.# .#.#. ..#.. .#... #.... ...#. ....# ..... .....
#.... #..#. #..#. ....# ..#.. #...# .#.#. #.#.# #...# ..#.. #.... #.... ...#. ....# ..... .....
#.... .##.# #...# ####. ..#.. .###. ..#.. .#.#. #...# ..#.. ##### ###.. ....# ..### ..... .....
..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... #####
..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....

\`     a     b     c     d     e     f     g     h     i     j     k     l     m     n     o
.#... ..... #.... ..... ....# ..... ..##. ..... #.... .#... ...#. #.... ##... ..... ..... .....
..#.. ..... #.... ..... ....# ..... .#... ..... #.... ..... ..... #.... .#... ..... ..... .....
..... .###. ####. .###. .#### .###. .#... .#### #.##. ##... ..##. #..#. .#... ##.#. #.##. .###.
..... ....# #...# #.... #...# #...# ###.. #...# ##..# .#... ...#. #.#.. .#... #.#.# ##..# #...#
..... .#### #...# #.... #...# ##### .#... #...# #...# .#... ...#. ##... .#... #.#.# #...# #...#
..... #...# #...# #.... #...# #.... .#... #...# #...# .#... ...#. #.#.. .#... #.#.# #...# #...#
..... .#### ####. .###. .#### .###. .#... .#### #...# ###.. ...#. #..#. ###.. #.#.# #...# .###.
..... ..... ..... ..... ..... ..... ..... ....# ..... ..... #..#. ..... ..... ..... ..... .....
..... ..... ..... ..... ..... ..... ..... .###. ..... ..... .##.. ..... ..... ..... ..... .....

p     q     r     s     t     u     v     w     x     y     z     {     |     }     ~
..... ..... ..... ..... .#... ..... ..... ..... ..... ..... ..... ..##. ..#.. .##.. .....
..... ..... ..... ..... .#... ..... ..... ..... ..... ..... ..... .#... ..#.. ...#. .....
####. .#### #.##. .#### ###.. #...# #...# #...# #...# #...# ##### .#... ..#.. ...#. .#...
#...# #...# ##... #.... .#... #...# #...# #...# .#.#. #...# ...#. #.... ..#.. ....# #.#.#
#...# #...# #.... .###. .#... #...# #...# #.#.# ..#.. #...# ..#.. .#... ..#.. ...#. ...#.
#...# #...# #.... ....# .#... #..## .#.#. #.#.# .#.#. #...# .#... .#... ..#.. ...#. .....
####. .#### #.... ####. ..##. .##.# ..#.. .#.#. #...# .#### ##### ..##. ..#.. .##.. .....
#.... ....# ..... ..... ..... ..... ..... ..... ..... ....# ..... ..... ..#.. ..... .....
#.... ....# ..... ..... ..... ..... ..... ..... ..... .###. ..... ..... ..#.. ..... .....
`;

/** One glyph: `width` columns of ink, `rows[r][c]` is true where row r, column c is inked. */
export interface Glyph {
  readonly width: number;
  readonly rows: readonly (readonly boolean[])[];
}

function parseFont(source: string): Map<string, Glyph> {
  const lines = source.split('\n').filter((l) => l.trim() !== '');
  const glyphs = new Map<string, Glyph>();
  const blockLines = GLYPH_HEIGHT + 1;
  let code = FIRST_CODE;
  for (let b = 0; b * blockLines < lines.length; b++) {
    const rows = lines.slice(b * blockLines + 1, (b + 1) * blockLines);
    for (let i = 0; i < PER_BLOCK && code <= LAST_CODE; i++, code++) {
      const cells = rows.map((row) =>
        Array.from(row.slice(i * (CELL_WIDTH + 1), i * (CELL_WIDTH + 1) + CELL_WIDTH), (c) => c === '#'),
      );
      glyphs.set(String.fromCharCode(code), trimGlyph(String.fromCharCode(code), cells));
    }
  }
  return glyphs;
}

function trimGlyph(ch: string, cells: boolean[][]): Glyph {
  if (ch === ' ') {
    return { width: SPACE_WIDTH, rows: cells.map(() => new Array<boolean>(SPACE_WIDTH).fill(false)) };
  }
  if (ch >= '0' && ch <= '9') return { width: CELL_WIDTH, rows: cells };
  const inked = (c: number): boolean => cells.some((row) => row[c]);
  let first = 0;
  let last = CELL_WIDTH - 1;
  while (first < last && !inked(first)) first++;
  while (last > first && !inked(last)) last--;
  return { width: last - first + 1, rows: cells.map((row) => row.slice(first, last + 1)) };
}

const GLYPHS = parseFont(FONT_SOURCE);
const FALLBACK = GLYPHS.get('?') as Glyph;

/** The glyph for one character; characters outside ASCII 32..126 are drawn as '?'. */
export function getGlyph(ch: string): Glyph {
  return GLYPHS.get(ch) ?? FALLBACK;
}

/** Width of `text` in font pixels (multiply by the scale factor for screen pixels). */
export function textWidthUnits(text: string): number {
  let width = 0;
  for (const ch of text) width += getGlyph(ch).width + LETTER_SPACING;
  return Math.max(0, width - LETTER_SPACING);
}
