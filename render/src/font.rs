//! A 5×7 bitmap font and label drawing, for object ids written into images.
//!
//! Lower-case letters are drawn as capitals; characters without a glyph show as `?`.

use glam::Vec2;

const GLYPH_WIDTH: u32 = 5;
const GLYPH_HEIGHT: u32 = 7;
/// Horizontal advance per character, glyph plus one column of spacing.
const ADVANCE: u32 = GLYPH_WIDTH + 1;

/// Rows top to bottom, bit 4 is the leftmost column.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [
            0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110,
        ],
        '1' => [
            0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110,
        ],
        '2' => [
            0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111,
        ],
        '3' => [
            0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110,
        ],
        '4' => [
            0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010,
        ],
        '5' => [
            0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110,
        ],
        '6' => [
            0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110,
        ],
        '7' => [
            0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000,
        ],
        '8' => [
            0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110,
        ],
        '9' => [
            0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100,
        ],
        'A' => [
            0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001,
        ],
        'B' => [
            0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110,
        ],
        'C' => [
            0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110,
        ],
        'D' => [
            0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100,
        ],
        'E' => [
            0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111,
        ],
        'F' => [
            0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000,
        ],
        'G' => [
            0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111,
        ],
        'H' => [
            0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001,
        ],
        'I' => [
            0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110,
        ],
        'J' => [
            0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100,
        ],
        'K' => [
            0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001,
        ],
        'L' => [
            0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111,
        ],
        'M' => [
            0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001,
        ],
        'N' => [
            0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001,
        ],
        'O' => [
            0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110,
        ],
        'P' => [
            0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000,
        ],
        'Q' => [
            0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101,
        ],
        'R' => [
            0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001,
        ],
        'S' => [
            0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110,
        ],
        'T' => [
            0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100,
        ],
        'U' => [
            0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110,
        ],
        'V' => [
            0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100,
        ],
        'W' => [
            0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010,
        ],
        'X' => [
            0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001,
        ],
        'Y' => [
            0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100, 0b00100,
        ],
        'Z' => [
            0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111,
        ],
        '_' => [0, 0, 0, 0, 0, 0, 0b11111],
        '-' => [0, 0, 0, 0b11111, 0, 0, 0],
        '.' => [0, 0, 0, 0, 0, 0b01100, 0b01100],
        ' ' => [0; 7],
        _ => [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0, 0b00100],
    }
}

/// Draws each `(text, anchor)` label centred on its anchor into an RGBA8 image: white glyphs
/// on a dark box, kept inside the image and moved up or down off labels already drawn.
pub fn draw_labels(rgba: &mut [u8], width: u32, height: u32, labels: &[(&str, Vec2)]) {
    let mut taken: Vec<[u32; 4]> = Vec::new();
    for &(text, anchor) in labels {
        if let Some(placed) = draw_label(rgba, width, height, text, anchor, &taken) {
            taken.push(placed);
        }
    }
}

/// Draws one label avoiding the `taken` boxes where it can; returns its box
/// `[left, top, right, bottom]`, or `None` if it does not fit the image.
fn draw_label(
    rgba: &mut [u8],
    width: u32,
    height: u32,
    text: &str,
    anchor: Vec2,
    taken: &[[u32; 4]],
) -> Option<[u32; 4]> {
    let chars: Vec<char> = text.chars().collect();
    let scale = (height / 640).max(1);
    let box_w = (chars.len() as u32 * ADVANCE + 1) * scale;
    let box_h = (GLYPH_HEIGHT + 2) * scale;
    if chars.is_empty() || box_w > width || box_h > height {
        return None;
    }
    let place = |shift: f32| {
        let left = (anchor.x - 0.5 * box_w as f32)
            .round()
            .clamp(0.0, (width - box_w) as f32) as u32;
        let top = (anchor.y - 0.5 * box_h as f32 + shift)
            .round()
            .clamp(0.0, (height - box_h) as f32) as u32;
        [left, top, left + box_w, top + box_h]
    };
    let overlaps = |b: &[u32; 4]| {
        taken
            .iter()
            .any(|t| b[0] < t[2] && t[0] < b[2] && b[1] < t[3] && t[1] < b[3])
    };
    let step = box_h as f32;
    let [left, top, _, _] = [0.0, step, -step, 2.0 * step, -2.0 * step]
        .into_iter()
        .map(place)
        .find(|b| !overlaps(b))
        .unwrap_or_else(|| place(0.0));
    let mut put = |x: u32, y: u32, rgb: [u8; 3], alpha: f32| {
        let i = ((y * width + x) * 4) as usize;
        for (channel, value) in rgba[i..i + 3].iter_mut().zip(rgb) {
            *channel = (f32::from(*channel) * (1.0 - alpha) + f32::from(value) * alpha) as u8;
        }
    };
    for y in top..top + box_h {
        for x in left..left + box_w {
            put(x, y, [20, 20, 24], 0.72);
        }
    }
    for (k, &c) in chars.iter().enumerate() {
        let rows = glyph(c);
        let origin_x = left + (k as u32 * ADVANCE + 1) * scale;
        let origin_y = top + scale;
        for (row, bits) in rows.iter().enumerate() {
            for column in 0..GLYPH_WIDTH {
                if bits & (1 << (GLYPH_WIDTH - 1 - column)) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        put(
                            origin_x + column * scale + dx,
                            origin_y + row as u32 * scale + dy,
                            [255, 255, 255],
                            1.0,
                        );
                    }
                }
            }
        }
    }
    Some([left, top, left + box_w, top + box_h])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_draws_white_glyph_pixels_inside_the_image() {
        let (w, h) = (40, 20);
        let mut rgba = vec![128; (w * h * 4) as usize];
        // Anchored past the corner: the label is pushed back inside.
        draw_labels(&mut rgba, w, h, &[("bed_1", Vec2::new(100.0, -5.0))]);
        let white = rgba
            .chunks_exact(4)
            .filter(|p| p[..3] == [255, 255, 255])
            .count();
        let glyph_bits: u32 = "bed_1"
            .chars()
            .map(|c| glyph(c).iter().map(|r| r.count_ones()).sum::<u32>())
            .sum();
        assert_eq!(white as u32, glyph_bits);
    }

    #[test]
    fn overlapping_labels_are_moved_apart() {
        let (w, h) = (60, 60);
        let mut rgba = vec![128; (w * h * 4) as usize];
        let at = Vec2::new(30.0, 30.0);
        draw_labels(&mut rgba, w, h, &[("ab", at), ("cd", at)]);
        // Both labels show all their glyph pixels: neither covers the other.
        let white = rgba
            .chunks_exact(4)
            .filter(|p| p[..3] == [255, 255, 255])
            .count();
        let glyph_bits: u32 = "abcd"
            .chars()
            .map(|c| glyph(c).iter().map(|r| r.count_ones()).sum::<u32>())
            .sum();
        assert_eq!(white as u32, glyph_bits);
    }
}
