//! Built-in bitmap font of the renderer, and its glyph atlas, for in-world text panels
//! (instructions, the task timer, the force gauge) drawn in the headset.
//!
//! Owns: the hand-designed glyph bitmaps of printable ASCII (`' '..='~'`) plus one
//! replacement box, the R8 coverage atlas built from them ([`FontAtlas`]), monospace text
//! layout into textured quads ([`GlyphQuad`]) and a CPU RGBA8 text rasterizer (for tests
//! and reports).
//!
//! Contract:
//! - pure CPU: no Vulkan, no I/O, no dependency on any other module of the crate. The
//!   renderer uploads [`FontAtlas::pixels`] as an `R8_UNORM` texture and draws the quads;
//! - deterministic: the same input gives bit-identical atlases, quads and images;
//! - allocation only when an atlas is built, when [`FontAtlas::layout`] grows the
//!   caller's vector, and in [`FontAtlas::rasterize`]: render-thread (or tooling) code,
//!   never the haptic thread;
//! - every `char` renders: one outside `' '..='~'` (`'é'`, `'\t'`, `'\r'`, ...) gets a
//!   visible replacement box.
//!
//! Font metrics, in font pixels (one font pixel is `scale` atlas pixels):
//! - a glyph bitmap is [`GLYPH_W`] x [`GLYPH_H`] = 5 x 9: capitals, digits and ascenders
//!   use rows 0..=6, the x-height of lower case is 5 rows (rows 2..=6), the **baseline**
//!   lies under row 6 (at `y = BASELINE = 7` from the top of the cell), and descenders
//!   (`g j p q y , ;`, and `|`) use rows 7..=8, the underscore row 7;
//! - a character cell is [`CELL_W`] x [`CELL_H`] = 6 x 10: the bitmap at its top-left
//!   corner plus one empty spacing column on the right and one empty row at the bottom,
//!   so neighbouring cells never touch;
//! - lines are [`LINE_SPACING`] = 1.2 cell heights apart.

/// Width of a glyph bitmap, in font pixels.
pub const GLYPH_W: u32 = 5;
/// Height of a glyph bitmap, in font pixels: 7 rows down to the baseline, 2 descender rows.
pub const GLYPH_H: u32 = 9;
/// Rows of a glyph above the baseline: the baseline is this many font pixels below the
/// top of the cell.
pub const BASELINE: u32 = 7;
/// Width of a character cell (glyph plus one spacing column), in font pixels.
pub const CELL_W: u32 = 6;
/// Height of a character cell (glyph plus one spacing row), in font pixels.
pub const CELL_H: u32 = 10;
/// Distance between the tops of consecutive lines, in cell heights.
pub const LINE_SPACING: f32 = 1.2;
/// Glyph cells per atlas row.
pub const ATLAS_COLUMNS: u32 = 16;
/// Empty atlas pixels around every cell, so bilinear sampling never reads a neighbour.
pub const ATLAS_PADDING: u32 = 1;
/// Largest accepted [`FontAtlas::builtin_scaled`] factor.
pub const MAX_ATLAS_SCALE: u32 = 32;

/// Line pitch in font pixels (`LINE_SPACING * CELL_H`, exact).
const LINE_PITCH_PX: u32 = 12;
/// Glyphs of printable ASCII, `' '..='~'`.
const ASCII_GLYPHS: usize = 95;
/// Atlas slot of the replacement box (right after `'~'`).
const REPLACEMENT: usize = ASCII_GLYPHS;
/// Atlas slots: printable ASCII plus the replacement box.
const SLOTS: usize = ASCII_GLYPHS + 1;

/// One glyph bitmap: row `r` (0 = top) in `rows[r]`, column `c` (0 = left) in bit
/// `GLYPH_W - 1 - c`.
type GlyphBits = [u8; GLYPH_H as usize];

/// The font atlas: one R8 coverage texture holding every glyph, 16 cells per row.
///
/// Cell `i` (`i = c - ' '` for printable ASCII, 95 for the replacement box) sits at atlas
/// column `i % 16`, row `i / 16`, in a slot of `(cell_w + 2 * padding) x (cell_h + 2 *
/// padding)` atlas pixels whose padding ring is empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FontAtlas {
    /// Atlas width in pixels.
    pub width: u32,
    /// Atlas height in pixels.
    pub height: u32,
    /// `width * height` coverage bytes (0 or 255), row-major, top row first (`R8_UNORM`).
    pub pixels: Vec<u8>,
    /// Width of one character cell in atlas pixels, padding excluded
    /// (`CELL_W * scale`).
    pub cell_w: u32,
    /// Height of one character cell in atlas pixels, padding excluded
    /// (`CELL_H * scale`).
    pub cell_h: u32,
    /// Atlas pixels per font pixel.
    pub scale: u32,
    /// Empty atlas pixels on each side of every cell ([`ATLAS_PADDING`]).
    pub padding: u32,
}

/// One textured quad of laid-out text, in the panel frame of [`FontAtlas::layout`].
///
/// `min` is the top-left corner, `max` the bottom-right one (`min <= max`); the texture
/// coordinates map `uv_min` to `min` and `uv_max` to `max` (v grows downwards, like y).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GlyphQuad {
    /// Top-left corner (x right, y down).
    pub min: [f32; 2],
    /// Bottom-right corner.
    pub max: [f32; 2],
    /// Atlas coordinates at `min`.
    pub uv_min: [f32; 2],
    /// Atlas coordinates at `max`.
    pub uv_max: [f32; 2],
}

/// Whether `c` has a glyph of its own (printable ASCII, `' '..='~'`); any other `char`
/// renders as the replacement box.
pub fn has_glyph(c: char) -> bool {
    (' '..='~').contains(&c)
}

/// The bitmap drawn for `c`: [`GLYPH_H`] rows, top first, column 0 (left) in bit
/// `GLYPH_W - 1` of each row. Characters without a glyph give the replacement box.
pub fn glyph_bitmap(c: char) -> &'static [u8; GLYPH_H as usize] {
    &GLYPHS[slot(c)]
}

/// Atlas slot of `c`.
fn slot(c: char) -> usize {
    if has_glyph(c) {
        c as usize - ' ' as usize
    } else {
        REPLACEMENT
    }
}

/// Whether the glyph pixel at (`col`, `row`) is set.
fn bit(bits: &GlyphBits, col: u32, row: u32) -> bool {
    bits[row as usize] & (1 << (GLYPH_W - 1 - col)) != 0
}

/// Columns (longest line, in `char`s) and lines of `text`, split on `'\n'`; `""` has none.
fn text_extent(text: &str) -> (usize, usize) {
    if text.is_empty() {
        return (0, 0);
    }
    text.split('\n').fold((0, 0), |(cols, lines), line| {
        (cols.max(line.chars().count()), lines + 1)
    })
}

impl FontAtlas {
    /// The built-in font at one atlas pixel per font pixel: a 128 x 72 atlas.
    pub fn builtin() -> FontAtlas {
        FontAtlas::builtin_scaled(1)
    }

    /// The built-in font with every font pixel drawn as a `scale` x `scale` block, so text
    /// stays crisp when magnified with linear filtering. The atlas is `16 * (6 * scale +
    /// 2)` x `6 * (10 * scale + 2)` pixels.
    ///
    /// # Panics
    /// If `scale` is 0 or above [`MAX_ATLAS_SCALE`].
    pub fn builtin_scaled(scale: u32) -> FontAtlas {
        assert!(
            (1..=MAX_ATLAS_SCALE).contains(&scale),
            "font atlas scale {scale} outside 1..={MAX_ATLAS_SCALE}"
        );
        let padding = ATLAS_PADDING;
        let cell_w = CELL_W * scale;
        let cell_h = CELL_H * scale;
        let rows = (SLOTS as u32).div_ceil(ATLAS_COLUMNS);
        let width = ATLAS_COLUMNS * (cell_w + 2 * padding);
        let height = rows * (cell_h + 2 * padding);
        let mut pixels = vec![0u8; width as usize * height as usize];
        let mut atlas = FontAtlas {
            width,
            height,
            pixels: Vec::new(),
            cell_w,
            cell_h,
            scale,
            padding,
        };
        for (i, bits) in GLYPHS.iter().enumerate() {
            let (x0, y0) = atlas.cell_origin(i);
            for row in 0..GLYPH_H {
                for col in (0..GLYPH_W).filter(|&col| bit(bits, col, row)) {
                    for dy in 0..scale {
                        let y = (y0 + row * scale + dy) as usize;
                        let x = (x0 + col * scale) as usize;
                        let start = y * width as usize + x;
                        pixels[start..start + scale as usize].fill(255);
                    }
                }
            }
        }
        atlas.pixels = pixels;
        atlas
    }

    /// Top-left atlas pixel of slot `i`'s cell (inside its padding).
    fn cell_origin(&self, i: usize) -> (u32, u32) {
        let i = i as u32;
        let x = (i % ATLAS_COLUMNS) * (self.cell_w + 2 * self.padding) + self.padding;
        let y = (i / ATLAS_COLUMNS) * (self.cell_h + 2 * self.padding) + self.padding;
        (x, y)
    }

    /// Texture coordinates `[u0, v0, u1, v1]` of `c`'s cell, padding excluded: the whole
    /// `CELL_W x CELL_H` cell (glyph, spacing column and spacing row), top-left `(u0, v0)`,
    /// bottom-right `(u1, v1)`, all in `[0, 1]`. Characters without a glyph give the
    /// replacement box's cell.
    pub fn glyph_uv(&self, c: char) -> [f32; 4] {
        let (x0, y0) = self.cell_origin(slot(c));
        let (w, h) = (self.width as f32, self.height as f32);
        [
            x0 as f32 / w,
            y0 as f32 / h,
            (x0 + self.cell_w) as f32 / w,
            (y0 + self.cell_h) as f32 / h,
        ]
    }

    /// Horizontal advance of one character for text `glyph_height` high:
    /// `glyph_height * cell_w / cell_h` (= 0.6 * `glyph_height`).
    pub fn advance(&self, glyph_height: f32) -> f32 {
        glyph_height * self.cell_w as f32 / self.cell_h as f32
    }

    /// Lays `text` out as one quad per visible character, into `out` (cleared first).
    ///
    /// Frame: the panel's 2D frame, origin at the text's top-left corner, x right, y
    /// **down**, in the caller's units (e.g. metres). `glyph_height` is the height of a
    /// whole character cell (ascenders to descenders plus the spacing row); the baseline
    /// of a line lies `0.7 * glyph_height` below its top. Text is monospace: character `k`
    /// of a line (counting `char`s) spans `x` in `[k * a, (k + 1) * a]` with advance
    /// `a = glyph_height * cell_w / cell_h` (0.6 * `glyph_height`); line `n` (split on
    /// `'\n'`) spans `y` in `[n * p, n * p + glyph_height]` with line pitch
    /// `p = 1.2 * glyph_height`. Spaces advance but emit no quad; characters without a
    /// glyph emit the replacement box.
    ///
    /// Returns the text's `[width, height]`: `[columns * a, (lines - 1) * p +
    /// glyph_height]` with [`FontAtlas::measure`]'s counts, `[0, 0]` for `""`.
    pub fn layout(&self, text: &str, glyph_height: f32, out: &mut Vec<GlyphQuad>) -> [f32; 2] {
        out.clear();
        let advance = self.advance(glyph_height);
        let pitch = LINE_SPACING * glyph_height;
        if text.is_empty() {
            return [0.0, 0.0];
        }
        for (n, line) in text.split('\n').enumerate() {
            let y = n as f32 * pitch;
            for (k, c) in line.chars().enumerate() {
                if c == ' ' {
                    continue;
                }
                let x = k as f32 * advance;
                let [u0, v0, u1, v1] = self.glyph_uv(c);
                out.push(GlyphQuad {
                    min: [x, y],
                    max: [x + advance, y + glyph_height],
                    uv_min: [u0, v0],
                    uv_max: [u1, v1],
                });
            }
        }
        let (cols, lines) = text_extent(text);
        [
            cols as f32 * advance,
            (lines - 1) as f32 * pitch + glyph_height,
        ]
    }

    /// The text's `(columns, lines)`: the longest line's length in `char`s and the number
    /// of lines split on `'\n'` (`"A\n"` has 2); `""` is `(0, 0)`.
    pub fn measure(&self, text: &str) -> (usize, usize) {
        text_extent(text)
    }

    /// Draws `text` on the CPU as an RGBA8 image, `scale_px` image pixels per font pixel
    /// (0 counts as 1), `fg` on `bg`. Same layout as [`FontAtlas::layout`] with
    /// `glyph_height = CELL_H * scale_px`: `columns * CELL_W * scale_px` by
    /// `((lines - 1) * 12 + CELL_H) * scale_px` pixels.
    ///
    /// Returns `(width, height, pixels)`, row-major, top row first, 4 bytes a pixel;
    /// `(0, 0, [])` for `""`.
    pub fn rasterize(
        &self,
        text: &str,
        scale_px: u32,
        fg: [u8; 4],
        bg: [u8; 4],
    ) -> (u32, u32, Vec<u8>) {
        let s = scale_px.max(1);
        let (cols, lines) = text_extent(text);
        if lines == 0 {
            return (0, 0, Vec::new());
        }
        let width = cols as u32 * CELL_W * s;
        let height = ((lines as u32 - 1) * LINE_PITCH_PX + CELL_H) * s;
        let mut pixels = bg.repeat(width as usize * height as usize);
        for (n, line) in text.split('\n').enumerate() {
            let y0 = n as u32 * LINE_PITCH_PX * s;
            for (k, c) in line.chars().enumerate() {
                let bits = glyph_bitmap(c);
                let x0 = k as u32 * CELL_W * s;
                for row in 0..GLYPH_H {
                    for col in (0..GLYPH_W).filter(|&col| bit(bits, col, row)) {
                        for dy in 0..s {
                            let y = (y0 + row * s + dy) as usize;
                            let x = (x0 + col * s) as usize;
                            let start = (y * width as usize + x) * 4;
                            for px in pixels[start..start + 4 * s as usize].chunks_exact_mut(4) {
                                px.copy_from_slice(&fg);
                            }
                        }
                    }
                }
            }
        }
        (width, height, pixels)
    }
}

/// Parses one glyph's string art (7 to 9 rows of 5 `'#'`/`'.'`; missing rows are empty).
/// Malformed art fails the build: it is evaluated in a `static` initializer.
const fn parse_art(rows: &[&str]) -> GlyphBits {
    assert!(
        rows.len() >= 7 && rows.len() <= GLYPH_H as usize,
        "glyph art must have 7 to 9 rows"
    );
    let mut bits = [0u8; GLYPH_H as usize];
    let mut r = 0;
    while r < rows.len() {
        let row = rows[r].as_bytes();
        assert!(
            row.len() == GLYPH_W as usize,
            "glyph art rows must be 5 characters wide"
        );
        let mut c = 0;
        while c < row.len() {
            match row[c] {
                b'#' => bits[r] |= 1 << (GLYPH_W as usize - 1 - c),
                b'.' => {}
                _ => panic!("glyph art uses only '#' and '.'"),
            }
            c += 1;
        }
        r += 1;
    }
    bits
}

/// Parses [`GLYPH_ART`] and [`REPLACEMENT_ART`] into atlas slot order, checking at
/// compile time that the art lists `' '..='~'` in order.
const fn parse_all() -> [GlyphBits; SLOTS] {
    let mut table = [[0u8; GLYPH_H as usize]; SLOTS];
    let mut i = 0;
    while i < ASCII_GLYPHS {
        let (c, art) = GLYPH_ART[i];
        assert!(
            c as usize == ' ' as usize + i,
            "GLYPH_ART must list ' '..='~' in order"
        );
        table[i] = parse_art(art);
        i += 1;
    }
    table[REPLACEMENT] = parse_art(REPLACEMENT_ART);
    table
}

/// Every glyph bitmap, in atlas slot order, parsed at compile time.
static GLYPHS: [GlyphBits; SLOTS] = parse_all();

/// The replacement box, drawn for every character without a glyph: the whole 5 x 9
/// bitmap outlined, so it is taller than any letter.
#[rustfmt::skip]
const REPLACEMENT_ART: &[&str] = &[
    "#####",
    "#...#",
    "#...#",
    "#...#",
    "#...#",
    "#...#",
    "#...#",
    "#...#",
    "#####",
];

/// The hand-designed glyphs of `' '..='~'`, in ASCII order: 7 rows (down to the baseline)
/// or 9 (with descenders, and `'|'`; 8 for `'_'`) of 5 columns, `'#'` set, `'.'` clear.
#[rustfmt::skip]
const GLYPH_ART: [(char, &[&str]); ASCII_GLYPHS] = [
    (' ', &[
        ".....",
        ".....",
        ".....",
        ".....",
        ".....",
        ".....",
        ".....",
    ]),
    ('!', &[
        "..#..",
        "..#..",
        "..#..",
        "..#..",
        "..#..",
        ".....",
        "..#..",
    ]),
    ('"', &[
        ".#.#.",
        ".#.#.",
        ".#.#.",
        ".....",
        ".....",
        ".....",
        ".....",
    ]),
    ('#', &[
        ".#.#.",
        ".#.#.",
        "#####",
        ".#.#.",
        "#####",
        ".#.#.",
        ".#.#.",
    ]),
    ('$', &[
        "..#..",
        ".####",
        "#.#..",
        ".###.",
        "..#.#",
        "####.",
        "..#..",
    ]),
    ('%', &[
        "##...",
        "##..#",
        "...#.",
        "..#..",
        ".#...",
        "#..##",
        "...##",
    ]),
    ('&', &[
        ".##..",
        "#..#.",
        "#.#..",
        ".#...",
        "#.#.#",
        "#..#.",
        ".##.#",
    ]),
    ('\'', &[
        "..#..",
        "..#..",
        "..#..",
        ".....",
        ".....",
        ".....",
        ".....",
    ]),
    ('(', &[
        "...#.",
        "..#..",
        ".#...",
        ".#...",
        ".#...",
        "..#..",
        "...#.",
    ]),
    (')', &[
        ".#...",
        "..#..",
        "...#.",
        "...#.",
        "...#.",
        "..#..",
        ".#...",
    ]),
    ('*', &[
        ".....",
        "..#..",
        "#.#.#",
        ".###.",
        "#.#.#",
        "..#..",
        ".....",
    ]),
    ('+', &[
        ".....",
        "..#..",
        "..#..",
        "#####",
        "..#..",
        "..#..",
        ".....",
    ]),
    (',', &[
        ".....",
        ".....",
        ".....",
        ".....",
        ".....",
        ".##..",
        ".##..",
        "..#..",
        ".#...",
    ]),
    ('-', &[
        ".....",
        ".....",
        ".....",
        "#####",
        ".....",
        ".....",
        ".....",
    ]),
    ('.', &[
        ".....",
        ".....",
        ".....",
        ".....",
        ".....",
        ".##..",
        ".##..",
    ]),
    ('/', &[
        "....#",
        "....#",
        "...#.",
        "..#..",
        ".#...",
        "#....",
        "#....",
    ]),
    ('0', &[
        ".###.",
        "#...#",
        "#..##",
        "#.#.#",
        "##..#",
        "#...#",
        ".###.",
    ]),
    ('1', &[
        "..#..",
        ".##..",
        "..#..",
        "..#..",
        "..#..",
        "..#..",
        ".###.",
    ]),
    ('2', &[
        ".###.",
        "#...#",
        "....#",
        "...#.",
        "..#..",
        ".#...",
        "#####",
    ]),
    ('3', &[
        "#####",
        "...#.",
        "..#..",
        "...#.",
        "....#",
        "#...#",
        ".###.",
    ]),
    ('4', &[
        "...#.",
        "..##.",
        ".#.#.",
        "#..#.",
        "#####",
        "...#.",
        "...#.",
    ]),
    ('5', &[
        "#####",
        "#....",
        "####.",
        "....#",
        "....#",
        "#...#",
        ".###.",
    ]),
    ('6', &[
        "..##.",
        ".#...",
        "#....",
        "####.",
        "#...#",
        "#...#",
        ".###.",
    ]),
    ('7', &[
        "#####",
        "....#",
        "...#.",
        "..#..",
        ".#...",
        ".#...",
        ".#...",
    ]),
    ('8', &[
        ".###.",
        "#...#",
        "#...#",
        ".###.",
        "#...#",
        "#...#",
        ".###.",
    ]),
    ('9', &[
        ".###.",
        "#...#",
        "#...#",
        ".####",
        "....#",
        "...#.",
        ".##..",
    ]),
    (':', &[
        ".....",
        ".....",
        ".##..",
        ".##..",
        ".....",
        ".##..",
        ".##..",
    ]),
    (';', &[
        ".....",
        ".....",
        ".##..",
        ".##..",
        ".....",
        ".##..",
        ".##..",
        "..#..",
        ".#...",
    ]),
    ('<', &[
        "....#",
        "...#.",
        "..#..",
        ".#...",
        "..#..",
        "...#.",
        "....#",
    ]),
    ('=', &[
        ".....",
        ".....",
        "#####",
        ".....",
        "#####",
        ".....",
        ".....",
    ]),
    ('>', &[
        "#....",
        ".#...",
        "..#..",
        "...#.",
        "..#..",
        ".#...",
        "#....",
    ]),
    ('?', &[
        ".###.",
        "#...#",
        "....#",
        "...#.",
        "..#..",
        ".....",
        "..#..",
    ]),
    ('@', &[
        ".###.",
        "#...#",
        "#.###",
        "#.#.#",
        "#.##.",
        "#....",
        ".###.",
    ]),
    ('A', &[
        ".###.",
        "#...#",
        "#...#",
        "#####",
        "#...#",
        "#...#",
        "#...#",
    ]),
    ('B', &[
        "####.",
        "#...#",
        "#...#",
        "####.",
        "#...#",
        "#...#",
        "####.",
    ]),
    ('C', &[
        ".###.",
        "#...#",
        "#....",
        "#....",
        "#....",
        "#...#",
        ".###.",
    ]),
    ('D', &[
        "###..",
        "#..#.",
        "#...#",
        "#...#",
        "#...#",
        "#..#.",
        "###..",
    ]),
    ('E', &[
        "#####",
        "#....",
        "#....",
        "####.",
        "#....",
        "#....",
        "#####",
    ]),
    ('F', &[
        "#####",
        "#....",
        "#....",
        "####.",
        "#....",
        "#....",
        "#....",
    ]),
    ('G', &[
        ".###.",
        "#...#",
        "#....",
        "#.###",
        "#...#",
        "#...#",
        ".####",
    ]),
    ('H', &[
        "#...#",
        "#...#",
        "#...#",
        "#####",
        "#...#",
        "#...#",
        "#...#",
    ]),
    ('I', &[
        ".###.",
        "..#..",
        "..#..",
        "..#..",
        "..#..",
        "..#..",
        ".###.",
    ]),
    ('J', &[
        "..###",
        "...#.",
        "...#.",
        "...#.",
        "...#.",
        "#..#.",
        ".##..",
    ]),
    ('K', &[
        "#...#",
        "#..#.",
        "#.#..",
        "##...",
        "#.#..",
        "#..#.",
        "#...#",
    ]),
    ('L', &[
        "#....",
        "#....",
        "#....",
        "#....",
        "#....",
        "#....",
        "#####",
    ]),
    ('M', &[
        "#...#",
        "##.##",
        "#.#.#",
        "#.#.#",
        "#...#",
        "#...#",
        "#...#",
    ]),
    ('N', &[
        "#...#",
        "#...#",
        "##..#",
        "#.#.#",
        "#..##",
        "#...#",
        "#...#",
    ]),
    ('O', &[
        ".###.",
        "#...#",
        "#...#",
        "#...#",
        "#...#",
        "#...#",
        ".###.",
    ]),
    ('P', &[
        "####.",
        "#...#",
        "#...#",
        "####.",
        "#....",
        "#....",
        "#....",
    ]),
    ('Q', &[
        ".###.",
        "#...#",
        "#...#",
        "#...#",
        "#.#.#",
        "#..#.",
        ".##.#",
    ]),
    ('R', &[
        "####.",
        "#...#",
        "#...#",
        "####.",
        "#.#..",
        "#..#.",
        "#...#",
    ]),
    ('S', &[
        ".####",
        "#....",
        "#....",
        ".###.",
        "....#",
        "....#",
        "####.",
    ]),
    ('T', &[
        "#####",
        "..#..",
        "..#..",
        "..#..",
        "..#..",
        "..#..",
        "..#..",
    ]),
    ('U', &[
        "#...#",
        "#...#",
        "#...#",
        "#...#",
        "#...#",
        "#...#",
        ".###.",
    ]),
    ('V', &[
        "#...#",
        "#...#",
        "#...#",
        "#...#",
        "#...#",
        ".#.#.",
        "..#..",
    ]),
    ('W', &[
        "#...#",
        "#...#",
        "#...#",
        "#.#.#",
        "#.#.#",
        "#.#.#",
        ".#.#.",
    ]),
    ('X', &[
        "#...#",
        "#...#",
        ".#.#.",
        "..#..",
        ".#.#.",
        "#...#",
        "#...#",
    ]),
    ('Y', &[
        "#...#",
        "#...#",
        ".#.#.",
        "..#..",
        "..#..",
        "..#..",
        "..#..",
    ]),
    ('Z', &[
        "#####",
        "....#",
        "...#.",
        "..#..",
        ".#...",
        "#....",
        "#####",
    ]),
    ('[', &[
        ".###.",
        ".#...",
        ".#...",
        ".#...",
        ".#...",
        ".#...",
        ".###.",
    ]),
    ('\\', &[
        "#....",
        "#....",
        ".#...",
        "..#..",
        "...#.",
        "....#",
        "....#",
    ]),
    (']', &[
        ".###.",
        "...#.",
        "...#.",
        "...#.",
        "...#.",
        "...#.",
        ".###.",
    ]),
    ('^', &[
        "..#..",
        ".#.#.",
        "#...#",
        ".....",
        ".....",
        ".....",
        ".....",
    ]),
    ('_', &[
        ".....",
        ".....",
        ".....",
        ".....",
        ".....",
        ".....",
        ".....",
        "#####",
    ]),
    ('`', &[
        ".#...",
        "..#..",
        ".....",
        ".....",
        ".....",
        ".....",
        ".....",
    ]),
    ('a', &[
        ".....",
        ".....",
        ".###.",
        "....#",
        ".####",
        "#...#",
        ".####",
    ]),
    ('b', &[
        "#....",
        "#....",
        "####.",
        "#...#",
        "#...#",
        "#...#",
        "####.",
    ]),
    ('c', &[
        ".....",
        ".....",
        ".###.",
        "#....",
        "#....",
        "#...#",
        ".###.",
    ]),
    ('d', &[
        "....#",
        "....#",
        ".####",
        "#...#",
        "#...#",
        "#...#",
        ".####",
    ]),
    ('e', &[
        ".....",
        ".....",
        ".###.",
        "#...#",
        "#####",
        "#....",
        ".###.",
    ]),
    ('f', &[
        "..##.",
        ".#..#",
        ".#...",
        "####.",
        ".#...",
        ".#...",
        ".#...",
    ]),
    ('g', &[
        ".....",
        ".....",
        ".####",
        "#...#",
        "#...#",
        "#...#",
        ".####",
        "....#",
        ".###.",
    ]),
    ('h', &[
        "#....",
        "#....",
        "#.##.",
        "##..#",
        "#...#",
        "#...#",
        "#...#",
    ]),
    ('i', &[
        "..#..",
        ".....",
        ".##..",
        "..#..",
        "..#..",
        "..#..",
        ".###.",
    ]),
    ('j', &[
        "...#.",
        ".....",
        "..##.",
        "...#.",
        "...#.",
        "...#.",
        "...#.",
        "#..#.",
        ".##..",
    ]),
    ('k', &[
        "#....",
        "#....",
        "#..#.",
        "#.#..",
        "##...",
        "#.#..",
        "#..#.",
    ]),
    ('l', &[
        "##...",
        ".#...",
        ".#...",
        ".#...",
        ".#...",
        ".#...",
        "..##.",
    ]),
    ('m', &[
        ".....",
        ".....",
        "##.#.",
        "#.#.#",
        "#.#.#",
        "#.#.#",
        "#.#.#",
    ]),
    ('n', &[
        ".....",
        ".....",
        "#.##.",
        "##..#",
        "#...#",
        "#...#",
        "#...#",
    ]),
    ('o', &[
        ".....",
        ".....",
        ".###.",
        "#...#",
        "#...#",
        "#...#",
        ".###.",
    ]),
    ('p', &[
        ".....",
        ".....",
        "####.",
        "#...#",
        "#...#",
        "#...#",
        "####.",
        "#....",
        "#....",
    ]),
    ('q', &[
        ".....",
        ".....",
        ".####",
        "#...#",
        "#...#",
        "#...#",
        ".####",
        "....#",
        "....#",
    ]),
    ('r', &[
        ".....",
        ".....",
        "#.##.",
        "##..#",
        "#....",
        "#....",
        "#....",
    ]),
    ('s', &[
        ".....",
        ".....",
        ".####",
        "#....",
        ".###.",
        "....#",
        "####.",
    ]),
    ('t', &[
        ".#...",
        ".#...",
        "####.",
        ".#...",
        ".#...",
        ".#..#",
        "..##.",
    ]),
    ('u', &[
        ".....",
        ".....",
        "#...#",
        "#...#",
        "#...#",
        "#..##",
        ".##.#",
    ]),
    ('v', &[
        ".....",
        ".....",
        "#...#",
        "#...#",
        "#...#",
        ".#.#.",
        "..#..",
    ]),
    ('w', &[
        ".....",
        ".....",
        "#...#",
        "#...#",
        "#.#.#",
        "#.#.#",
        ".#.#.",
    ]),
    ('x', &[
        ".....",
        ".....",
        "#...#",
        ".#.#.",
        "..#..",
        ".#.#.",
        "#...#",
    ]),
    ('y', &[
        ".....",
        ".....",
        "#...#",
        "#...#",
        "#...#",
        "#...#",
        ".####",
        "....#",
        ".###.",
    ]),
    ('z', &[
        ".....",
        ".....",
        "#####",
        "...#.",
        "..#..",
        ".#...",
        "#####",
    ]),
    ('{', &[
        "...##",
        "..#..",
        "..#..",
        ".#...",
        "..#..",
        "..#..",
        "...##",
    ]),
    ('|', &[
        "..#..",
        "..#..",
        "..#..",
        "..#..",
        "..#..",
        "..#..",
        "..#..",
        "..#..",
        "..#..",
    ]),
    ('}', &[
        "##...",
        "..#..",
        "..#..",
        "...#.",
        "..#..",
        "..#..",
        "##...",
    ]),
    ('~', &[
        ".....",
        ".....",
        ".#...",
        "#.#.#",
        "...#.",
        ".....",
        ".....",
    ]),
];

#[cfg(test)]
mod tests {
    use super::*;

    const FG: [u8; 4] = [255, 255, 255, 255];
    const BG: [u8; 4] = [0, 0, 0, 255];

    fn printable() -> impl Iterator<Item = char> {
        ' '..='~'
    }

    fn popcount(bits: &GlyphBits) -> u32 {
        bits.iter().map(|r| r.count_ones()).sum()
    }

    /// Rows of `c`'s bitmap holding at least one set pixel.
    fn inked_rows(c: char) -> Vec<usize> {
        let bits = glyph_bitmap(c);
        (0..GLYPH_H as usize).filter(|&r| bits[r] != 0).collect()
    }

    fn hamming(a: char, b: char) -> u32 {
        let (a, b) = (glyph_bitmap(a), glyph_bitmap(b));
        a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() <= 1e-6
    }

    fn assert_quad(q: &GlyphQuad, min: [f32; 2], max: [f32; 2], atlas: &FontAtlas, c: char) {
        let uv = atlas.glyph_uv(c);
        assert!(
            close(q.min[0], min[0]) && close(q.min[1], min[1]),
            "{q:?} min, want {min:?}"
        );
        assert!(
            close(q.max[0], max[0]) && close(q.max[1], max[1]),
            "{q:?} max, want {max:?}"
        );
        assert_eq!(
            [q.uv_min[0], q.uv_min[1], q.uv_max[0], q.uv_max[1]],
            uv,
            "{c:?}"
        );
    }

    fn rgba(img: &(u32, u32, Vec<u8>), x: u32, y: u32) -> [u8; 4] {
        let i = (y * img.0 + x) as usize * 4;
        img.2[i..i + 4].try_into().unwrap()
    }

    #[test]
    fn every_printable_ascii_char_has_well_formed_art() {
        assert_eq!(GLYPH_ART.len(), 95);
        for ((c, art), want) in GLYPH_ART.iter().zip(printable()) {
            assert_eq!(*c, want, "art out of ASCII order");
            assert!(has_glyph(want));
            assert!((7..=9).contains(&art.len()), "{c:?}: {} rows", art.len());
            for row in art.iter() {
                assert_eq!(row.len(), GLYPH_W as usize, "{c:?}: row {row:?}");
                assert!(row.chars().all(|p| p == '#' || p == '.'), "{c:?}: {row:?}");
            }
            assert_eq!(*glyph_bitmap(*c), parse_art(art), "{c:?}");
            assert_eq!(popcount(glyph_bitmap(*c)) == 0, *c == ' ', "{c:?} ink");
        }
        for row in REPLACEMENT_ART {
            assert_eq!(row.len(), GLYPH_W as usize);
        }
    }

    #[test]
    fn glyphs_are_pairwise_distinct() {
        for (i, a) in GLYPHS.iter().enumerate() {
            for (j, b) in GLYPHS.iter().enumerate().skip(i + 1) {
                assert_ne!(a, b, "slots {i} and {j} share a bitmap");
            }
        }
    }

    #[test]
    fn confusable_characters_differ_clearly() {
        for (a, b) in [
            ('I', 'l'),
            ('I', '1'),
            ('l', '1'),
            ('i', 'l'),
            ('O', '0'),
            ('o', '0'),
            ('S', '5'),
            ('Z', '2'),
            ('B', '8'),
            ('g', 'q'),
            ('g', 'y'),
            ('.', ','),
            (':', ';'),
            ('-', '_'),
            ('\'', '`'),
            ('|', '!'),
        ] {
            assert!(hamming(a, b) >= 2, "{a:?} vs {b:?}: {}", hamming(a, b));
        }
        for (a, b) in [('I', 'l'), ('I', '1'), ('l', '1'), ('O', '0')] {
            assert!(hamming(a, b) >= 3, "{a:?} vs {b:?}: {}", hamming(a, b));
        }
        for c in printable() {
            assert!(hamming(c, 'é') >= 3, "{c:?} looks like the replacement box");
        }
    }

    #[test]
    fn metrics_are_consistent() {
        // Capitals and digits: 7 rows, top row to baseline, no descender.
        for c in ('A'..='Z').chain('0'..='9') {
            let rows = inked_rows(c);
            assert_eq!(
                (rows[0], *rows.last().unwrap()),
                (0, BASELINE as usize - 1),
                "{c:?}"
            );
        }
        // Lower case without ascender or descender: x-height of 5 rows.
        for c in "acemnorsuvwxz".chars() {
            assert_eq!(inked_rows(c), vec![2, 3, 4, 5, 6], "{c:?}");
        }
        for c in "bdfhklt".chars() {
            let rows = inked_rows(c);
            assert_eq!((rows[0], *rows.last().unwrap()), (0, 6), "{c:?} ascender");
        }
        for c in "gjpqy,;|".chars() {
            assert_eq!(*inked_rows(c).last().unwrap(), 8, "{c:?} descender");
        }
        for c in printable().filter(|c| !"gjpqy,;|_".contains(*c)) {
            assert!(inked_rows(c).iter().all(|&r| r < 7), "{c:?} below baseline");
        }
    }

    #[test]
    fn atlas_has_expected_size() {
        let a = FontAtlas::builtin();
        assert_eq!((a.width, a.height, a.cell_w, a.cell_h), (128, 72, 6, 10));
        assert_eq!((a.scale, a.padding), (1, 1));
        let a3 = FontAtlas::builtin_scaled(3);
        assert_eq!(
            (a3.width, a3.height, a3.cell_w, a3.cell_h),
            (320, 192, 18, 30)
        );
        for a in [&a, &a3] {
            assert_eq!(a.pixels.len(), (a.width * a.height) as usize);
            assert!(a.pixels.iter().all(|&p| p == 0 || p == 255));
            assert!(close(a.advance(1.0), 0.6));
        }
        assert_eq!(
            FontAtlas::builtin(),
            FontAtlas::builtin_scaled(1),
            "deterministic"
        );
    }

    #[test]
    #[should_panic(expected = "scale 0")]
    fn atlas_rejects_scale_zero() {
        let _ = FontAtlas::builtin_scaled(0);
    }

    #[test]
    fn glyph_pixels_land_inside_their_uv_rect() {
        for scale in [1, 2, 3] {
            let a = FontAtlas::builtin_scaled(scale);
            let at = |x: u32, y: u32| a.pixels[(y * a.width + x) as usize];
            let mut total = 0;
            for c in printable().chain(['é']) {
                let [u0, v0, u1, v1] = a.glyph_uv(c);
                assert!([u0, v0, u1, v1].iter().all(|t| (0.0..=1.0).contains(t)));
                let x0 = (u0 * a.width as f32).round() as u32;
                let y0 = (v0 * a.height as f32).round() as u32;
                let x1 = (u1 * a.width as f32).round() as u32;
                let y1 = (v1 * a.height as f32).round() as u32;
                assert_eq!((x1 - x0, y1 - y0), (a.cell_w, a.cell_h), "{c:?}");
                let bits = glyph_bitmap(c);
                let mut inside = 0;
                for y in y0..y1 {
                    for x in x0..x1 {
                        let (col, row) = ((x - x0) / scale, (y - y0) / scale);
                        let want = col < GLYPH_W && row < GLYPH_H && bit(bits, col, row);
                        assert_eq!(at(x, y) == 255, want, "{c:?} at ({x}, {y}), scale {scale}");
                        inside += u32::from(at(x, y) == 255);
                    }
                }
                assert_eq!(inside, popcount(bits) * scale * scale, "{c:?}");
                // The padding ring around the cell is empty.
                for x in x0 - 1..=x1 {
                    assert_eq!((at(x, y0 - 1), at(x, y1)), (0, 0), "{c:?} padding");
                }
                for y in y0 - 1..=y1 {
                    assert_eq!((at(x0 - 1, y), at(x1, y)), (0, 0), "{c:?} padding");
                }
                total += inside;
            }
            // Nothing outside the cells.
            let set = a.pixels.iter().filter(|&&p| p == 255).count() as u32;
            assert_eq!(set, total, "scale {scale}");
        }
    }

    #[test]
    fn layout_places_lines_and_columns() {
        let a = FontAtlas::builtin();
        let mut out = vec![GlyphQuad::default(); 5];
        let size = a.layout("AB\nC", 0.1, &mut out);
        assert_eq!(out.len(), 3);
        assert_quad(&out[0], [0.0, 0.0], [0.06, 0.1], &a, 'A');
        assert_quad(&out[1], [0.06, 0.0], [0.12, 0.1], &a, 'B');
        assert_quad(&out[2], [0.0, 0.12], [0.06, 0.22], &a, 'C');
        assert!(close(size[0], 0.12) && close(size[1], 0.22), "{size:?}");
        assert_eq!(a.measure("AB\nC"), (2, 2));
    }

    #[test]
    fn layout_skips_spaces_and_handles_empty_text() {
        let a = FontAtlas::builtin_scaled(2);
        let mut out = Vec::new();
        let size = a.layout("A B \n\n x", 1.0, &mut out);
        assert_eq!(out.len(), 3);
        assert_quad(&out[0], [0.0, 0.0], [0.6, 1.0], &a, 'A');
        assert_quad(&out[1], [1.2, 0.0], [1.8, 1.0], &a, 'B');
        assert_quad(&out[2], [0.6, 2.4], [1.2, 3.4], &a, 'x');
        assert!(close(size[0], 2.4) && close(size[1], 3.4), "{size:?}");
        assert_eq!(a.layout("", 1.0, &mut out), [0.0, 0.0]);
        assert!(out.is_empty());
        let size = a.layout("  ", 1.0, &mut out);
        assert!(out.is_empty());
        assert!(close(size[0], 1.2) && close(size[1], 1.0), "{size:?}");
    }

    #[test]
    fn measure_counts_chars_and_lines() {
        let a = FontAtlas::builtin();
        assert_eq!(a.measure(""), (0, 0));
        assert_eq!(a.measure("A"), (1, 1));
        assert_eq!(a.measure("A\n"), (1, 2));
        assert_eq!(a.measure("abc\n\nxy"), (3, 3));
        assert_eq!(a.measure("é\t"), (2, 1));
    }

    #[test]
    fn unknown_chars_get_the_replacement_box() {
        let a = FontAtlas::builtin();
        let boxed = a.glyph_uv('\u{FFFD}');
        for c in ['é', '\t', '\r', '\0', '\u{7f}', '€'] {
            assert!(!has_glyph(c));
            assert_eq!(a.glyph_uv(c), boxed, "{c:?}");
            assert_eq!(glyph_bitmap(c), &parse_art(REPLACEMENT_ART), "{c:?}");
        }
        for c in printable() {
            assert_ne!(a.glyph_uv(c), boxed, "{c:?}");
        }
        let mut out = Vec::new();
        a.layout("aé", 1.0, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(
            [out[1].uv_min, out[1].uv_max],
            [[boxed[0], boxed[1]], [boxed[2], boxed[3]]]
        );
        // Rasterized: the box's outline spans the full 5 x 9 bitmap.
        let img = a.rasterize("é", 1, FG, BG);
        assert_eq!((img.0, img.1), (6, 10));
        for y in 0..9 {
            assert_eq!(rgba(&img, 0, y), FG);
            assert_eq!(rgba(&img, 4, y), FG);
            assert_eq!(rgba(&img, 2, y), if y == 0 || y == 8 { FG } else { BG });
        }
    }

    #[test]
    fn rasterize_hi() {
        let a = FontAtlas::builtin();
        let img = a.rasterize("HI", 2, FG, BG);
        assert_eq!((img.0, img.1), (24, 20));
        assert_eq!(img.2.len(), 24 * 20 * 4);
        // H: both stems over rows 0..=6, the bar on row 3 only.
        for y in 0..14 {
            assert_eq!(rgba(&img, 0, y), FG, "H left stem, y {y}");
            assert_eq!(rgba(&img, 9, y), FG, "H right stem, y {y}");
            let bar = if (6..8).contains(&y) { FG } else { BG };
            assert_eq!(rgba(&img, 4, y), bar, "H middle, y {y}");
        }
        // I starts at x = 12: serifs on rows 0 and 6 (x 14..20), stem at x 16..18.
        assert_eq!(rgba(&img, 12, 0), BG);
        assert_eq!(rgba(&img, 14, 0), FG);
        assert_eq!(rgba(&img, 19, 1), FG);
        assert_eq!(rgba(&img, 14, 2), BG);
        assert_eq!(rgba(&img, 16, 6), FG);
        assert_eq!(rgba(&img, 17, 7), FG);
        assert_eq!(rgba(&img, 14, 13), FG);
        // Spacing columns and the descender and spacing rows stay background.
        for y in 0..20 {
            for x in [10, 11, 22, 23] {
                assert_eq!(rgba(&img, x, y), BG, "({x}, {y})");
            }
        }
        for y in 14..20 {
            for x in 0..24 {
                assert_eq!(rgba(&img, x, y), BG, "({x}, {y})");
            }
        }
        let fg = img.2.chunks_exact(4).filter(|p| *p == FG).count() as u32;
        let bg = img.2.chunks_exact(4).filter(|p| *p == BG).count() as u32;
        assert_eq!(
            fg,
            (popcount(glyph_bitmap('H')) + popcount(glyph_bitmap('I'))) * 4
        );
        assert_eq!(fg + bg, 24 * 20);
    }

    #[test]
    fn rasterize_matches_layout_geometry() {
        let a = FontAtlas::builtin();
        assert_eq!(a.rasterize("", 3, FG, BG), (0, 0, Vec::new()));
        let (w, h, px) = a.rasterize("ab\ncde", 1, FG, BG);
        assert_eq!((w, h, px.len()), (18, 22, 18 * 22 * 4));
        let mut out = Vec::new();
        let size = a.layout("ab\ncde", CELL_H as f32, &mut out);
        assert!(
            close(size[0], w as f32) && close(size[1], h as f32),
            "{size:?}"
        );
        // Scale 0 counts as 1.
        assert_eq!(a.rasterize("x", 0, FG, BG), a.rasterize("x", 1, FG, BG));
        // 'a' at the top-left: x-height starts on row 2.
        let img = (w, h, px);
        assert_eq!(rgba(&img, 1, 2), FG);
        assert_eq!(rgba(&img, 1, 1), BG);
    }
}
