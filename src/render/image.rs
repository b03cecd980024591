//! CPU images read back from the renderer, and PNG writing.
//!
//! Contract: [`RgbaImage`] is RGBA8, sRGB-encoded, row-major, top row first, tightly packed
//! (`pixels.len() == width * height * 4`). PNG files are written atomically enough for
//! tooling: encoded into `<path>.tmp`, then renamed.

use std::io::BufWriter;
use std::path::Path;

use super::RenderError;

/// An RGBA8 (sRGB-encoded) image, row-major, top row first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbaImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 4` bytes, R, G, B, A per pixel.
    pub pixels: Vec<u8>,
}

impl RgbaImage {
    /// The pixel at column `x`, row `y` (row 0 is the top).
    ///
    /// # Panics
    /// If `(x, y)` is outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 4] {
        assert!(
            x < self.width && y < self.height,
            "pixel ({x}, {y}) outside {}x{} image",
            self.width,
            self.height
        );
        let i = (y as usize * self.width as usize + x as usize) * 4;
        [
            self.pixels[i],
            self.pixels[i + 1],
            self.pixels[i + 2],
            self.pixels[i + 3],
        ]
    }

    /// Writes the image as an 8-bit RGBA PNG (sRGB chunk set).
    pub fn save_png(&self, path: &Path) -> Result<(), RenderError> {
        let err = |source| RenderError::Png {
            path: path.to_owned(),
            source,
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        let file = std::fs::File::create(&tmp).map_err(|e| err(png::EncodingError::IoError(e)))?;
        let mut w = BufWriter::new(file);
        png_encode(&mut w, self).map_err(err)?;
        let file = w
            .into_inner()
            .map_err(|e| err(png::EncodingError::IoError(e.into_error())))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(|e| err(png::EncodingError::IoError(e)))
    }
}

/// Encodes `image` as an 8-bit RGBA PNG into `w`.
pub fn png_encode<W: std::io::Write>(w: W, image: &RgbaImage) -> Result<(), png::EncodingError> {
    let expected = image.width as usize * image.height as usize * 4;
    if image.pixels.len() != expected {
        return Err(png::EncodingError::IoError(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "image claims {}x{} but holds {} bytes (expected {expected})",
                image.width,
                image.height,
                image.pixels.len()
            ),
        )));
    }
    let mut enc = png::Encoder::new(w, image.width, image.height);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_source_srgb(png::SrgbRenderingIntent::Perceptual);
    let mut writer = enc.write_header()?;
    writer.write_image_data(&image.pixels)?;
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_small_image() {
        let img = RgbaImage {
            width: 2,
            height: 1,
            pixels: vec![255, 0, 0, 255, 0, 255, 0, 255],
        };
        assert_eq!(img.pixel(1, 0), [0, 255, 0, 255]);
        let mut bytes = Vec::new();
        png_encode(&mut bytes, &img).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let bad = RgbaImage {
            width: 3,
            height: 1,
            pixels: vec![0; 4],
        };
        assert!(png_encode(Vec::new(), &bad).is_err());
    }
}
