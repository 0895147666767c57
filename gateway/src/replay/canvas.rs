//! An RGB pixel buffer with the few drawing primitives the replay plot needs (rectangles,
//! lines, dashes, translucent fills, bitmap text) and PNG encoding. Every primitive clips
//! to the canvas, so callers may pass coordinates outside it.

use super::font::{glyph, ADVANCE, GLYPH_WIDTH};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    pub const WHITE: Rgb = Rgb(255, 255, 255);
    pub const BLACK: Rgb = Rgb(0, 0, 0);
}

/// Coordinates further outside than this are pulled in before rasterising lines, so a wild
/// value cannot make a line loop over billions of pixels.
const COORD_LIMIT: i32 = 1 << 16;

pub struct Canvas {
    width: usize,
    height: usize,
    /// Row-major RGB, 3 bytes per pixel.
    pixels: Vec<u8>,
}

impl Canvas {
    pub fn new(width: usize, height: usize, background: Rgb) -> Canvas {
        let mut pixels = Vec::with_capacity(width * height * 3);
        for _ in 0..width * height {
            pixels.extend_from_slice(&[background.0, background.1, background.2]);
        }
        Canvas {
            width,
            height,
            pixels,
        }
    }

    fn offset(&self, x: i32, y: i32) -> Option<usize> {
        let x = usize::try_from(x).ok().filter(|x| *x < self.width)?;
        let y = usize::try_from(y).ok().filter(|y| *y < self.height)?;
        Some((y * self.width + x) * 3)
    }

    pub fn pixel(&self, x: i32, y: i32) -> Option<Rgb> {
        let o = self.offset(x, y)?;
        match self.pixels.get(o..o + 3)? {
            [r, g, b] => Some(Rgb(*r, *g, *b)),
            _ => None,
        }
    }

    pub fn set(&mut self, x: i32, y: i32, c: Rgb) {
        if let Some(o) = self.offset(x, y) {
            if let Some(px) = self.pixels.get_mut(o..o + 3) {
                px.copy_from_slice(&[c.0, c.1, c.2]);
            }
        }
    }

    /// Mixes `c` over the pixel with opacity `alpha` (0..=1).
    pub fn blend(&mut self, x: i32, y: i32, c: Rgb, alpha: f32) {
        let Some(old) = self.pixel(x, y) else { return };
        let a = alpha.clamp(0.0, 1.0);
        let mix = |o: u8, n: u8| (f32::from(o) * (1.0 - a) + f32::from(n) * a).round() as u8;
        self.set(x, y, Rgb(mix(old.0, c.0), mix(old.1, c.1), mix(old.2, c.2)));
    }

    /// Fills `x0..x1` × `y0..y1` (end exclusive).
    pub fn fill_rect(&mut self, x0: i32, y0: i32, x1: i32, y1: i32, c: Rgb) {
        self.fill_rect_alpha(x0, y0, x1, y1, c, 1.0);
    }

    pub fn fill_rect_alpha(&mut self, x0: i32, y0: i32, x1: i32, y1: i32, c: Rgb, alpha: f32) {
        let (x0, x1) = (x0.max(0), x1.min(self.width as i32));
        let (y0, y1) = (y0.max(0), y1.min(self.height as i32));
        for y in y0..y1 {
            for x in x0..x1 {
                if alpha >= 1.0 {
                    self.set(x, y, c);
                } else {
                    self.blend(x, y, c, alpha);
                }
            }
        }
    }

    /// Vertical run from `y0` to `y1` inclusive, in either order.
    pub fn vline(&mut self, x: i32, y0: i32, y1: i32, c: Rgb) {
        let (a, b) = (y0.min(y1), y0.max(y1));
        self.fill_rect(x, a, x + 1, b + 1, c);
    }

    pub fn hline(&mut self, x0: i32, x1: i32, y: i32, c: Rgb) {
        let (a, b) = (x0.min(x1), x0.max(x1));
        self.fill_rect(a, y, b + 1, y + 1, c);
    }

    pub fn dashed_hline(&mut self, x0: i32, x1: i32, y: i32, c: Rgb, dash: i32) {
        let dash = dash.max(1);
        let mut x = x0.min(x1);
        while x <= x0.max(x1) {
            self.hline(x, (x + dash - 1).min(x0.max(x1)), y, c);
            x += 2 * dash;
        }
    }

    pub fn dashed_vline(&mut self, x: i32, y0: i32, y1: i32, c: Rgb, dash: i32) {
        let dash = dash.max(1);
        let mut y = y0.min(y1);
        while y <= y0.max(y1) {
            self.vline(x, y, (y + dash - 1).min(y0.max(y1)), c);
            y += 2 * dash;
        }
    }

    /// A one-pixel line from (x0, y0) to (x1, y1), both ends included (Bresenham).
    pub fn line(&mut self, x0: i32, y0: i32, x1: i32, y1: i32, c: Rgb) {
        let clamp = |v: i32| v.clamp(-COORD_LIMIT, COORD_LIMIT);
        let (mut x, mut y, x1, y1) = (clamp(x0), clamp(y0), clamp(x1), clamp(y1));
        let dx = (x1 - x).abs();
        let dy = -(y1 - y).abs();
        let sx = if x < x1 { 1 } else { -1 };
        let sy = if y < y1 { 1 } else { -1 };
        let mut err = dx + dy;
        loop {
            self.set(x, y, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Draws `text` with its top-left corner at (x, y), each font pixel `scale`×`scale`.
    /// Returns the width drawn.
    pub fn text(&mut self, x: i32, y: i32, text: &str, c: Rgb, scale: i32) -> i32 {
        let scale = scale.max(1);
        let mut pen = x;
        for ch in text.chars() {
            for (row, bits) in glyph(ch).iter().enumerate() {
                for col in 0..GLYPH_WIDTH {
                    if bits & (1 << (GLYPH_WIDTH - 1 - col)) != 0 {
                        let px = pen + col as i32 * scale;
                        let py = y + row as i32 * scale;
                        self.fill_rect(px, py, px + scale, py + scale, c);
                    }
                }
            }
            pen += ADVANCE as i32 * scale;
        }
        pen - x
    }

    pub fn text_width(text: &str, scale: i32) -> i32 {
        (text.chars().count() * ADVANCE) as i32 * scale.max(1)
    }

    /// The canvas as an 8-bit RGB PNG file.
    pub fn encode_png(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let width = u32::try_from(self.width).map_err(|e| e.to_string())?;
        let height = u32::try_from(self.height).map_err(|e| e.to_string())?;
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| format!("PNG encoding: {e}"))?;
        writer
            .write_image_data(&self.pixels)
            .map_err(|e| format!("PNG encoding: {e}"))?;
        writer.finish().map_err(|e| format!("PNG encoding: {e}"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RED: Rgb = Rgb(255, 0, 0);

    #[test]
    fn a_diagonal_line_sets_exactly_its_pixels() {
        let mut c = Canvas::new(10, 10, Rgb::WHITE);
        c.line(1, 1, 8, 8, RED);
        for i in 0..10 {
            for j in 0..10 {
                let expected = if i == j && (1..=8).contains(&i) {
                    RED
                } else {
                    Rgb::WHITE
                };
                assert_eq!(c.pixel(i, j), Some(expected), "({i}, {j})");
            }
        }
    }

    #[test]
    fn a_shallow_line_is_connected_and_reaches_both_ends() {
        let mut c = Canvas::new(20, 10, Rgb::WHITE);
        c.line(18, 7, 2, 3, RED);
        assert_eq!(c.pixel(2, 3), Some(RED));
        assert_eq!(c.pixel(18, 7), Some(RED));
        // One pixel per column between the ends.
        for x in 2..=18 {
            let n = (0..10).filter(|y| c.pixel(x, *y) == Some(RED)).count();
            assert_eq!(n, 1, "column {x}");
        }
    }

    #[test]
    fn drawing_clips_at_the_edges() {
        let mut c = Canvas::new(4, 4, Rgb::BLACK);
        c.line(-100_000_000, 2, 100_000_000, 2, RED);
        c.fill_rect(-5, -5, 1, 1, RED);
        c.vline(10, 0, 3, RED);
        assert_eq!(c.pixel(3, 2), Some(RED));
        assert_eq!(c.pixel(0, 0), Some(RED));
        assert_eq!(c.pixel(1, 1), Some(Rgb::BLACK));
        assert_eq!(c.pixel(4, 0), None);
    }

    #[test]
    fn translucent_fill_mixes_and_dashes_leave_gaps() {
        let mut c = Canvas::new(10, 3, Rgb::WHITE);
        c.fill_rect_alpha(0, 0, 10, 1, Rgb::BLACK, 0.5);
        assert_eq!(c.pixel(5, 0), Some(Rgb(128, 128, 128)));
        c.dashed_hline(0, 9, 2, RED, 2);
        let drawn: Vec<bool> = (0..10).map(|x| c.pixel(x, 2) == Some(RED)).collect();
        assert_eq!(
            drawn,
            [true, true, false, false, true, true, false, false, true, true]
        );
    }

    #[test]
    fn text_draws_the_glyph_pattern() {
        let mut c = Canvas::new(20, 10, Rgb::WHITE);
        let w = c.text(1, 1, "1", RED, 1);
        assert_eq!(w, 6);
        // The digit 1's stem is the middle column; its base row is three pixels wide.
        assert_eq!(c.pixel(3, 1), Some(RED));
        assert_eq!(c.pixel(1, 1), Some(Rgb::WHITE));
        assert_eq!(c.pixel(2, 7), Some(RED));
        assert_eq!(c.pixel(4, 7), Some(RED));
        assert_eq!(Canvas::text_width("ab", 2), 24);
    }

    #[test]
    fn png_round_trips() {
        let mut c = Canvas::new(7, 5, Rgb::WHITE);
        c.set(3, 2, RED);
        let bytes = c.encode_png().unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (7, 5));
        let o = (2 * 7 + 3) * 3;
        assert_eq!(&buf[o..o + 3], &[255, 0, 0]);
        assert_eq!(&buf[0..3], &[255, 255, 255]);
    }
}
