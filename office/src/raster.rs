//! A chart as a PNG image, for the HWPX: 한글 shows pictures, not SVG. Drawn by resvg from the
//! same SVG the HTML and the PDF show, with the Korean fonts, at twice its size for print.
//! The same SVG always gives the same bytes (no clock, no randomness in the encoder).

use std::sync::{Arc, OnceLock};

use resvg::{tiny_skia, usvg};

/// Pixels per SVG unit: the chart is 640 units wide, printed about 16 cm wide.
const SCALE: f32 = 2.0;

/// A drawn chart: the PNG's bytes and its size in pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Png {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// The fonts the charts are drawn with, read once (the same files the PDF embeds).
fn fontdb() -> Result<Arc<usvg::fontdb::Database>, String> {
    static DB: OnceLock<Result<Arc<usvg::fontdb::Database>, String>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        for data in crate::fonts::read(&crate::fonts::FONT_FILES)? {
            db.load_font_data(data);
        }
        if db.is_empty() {
            return Err("the font files hold no font".into());
        }
        db.set_sans_serif_family("Noto Sans CJK KR");
        Ok(Arc::new(db))
    })
    .clone()
}

/// `svg` drawn as a PNG, or why not (no fonts, an SVG resvg cannot read).
pub fn png(svg: &str) -> Result<Png, String> {
    let options = usvg::Options {
        fontdb: fontdb()?,
        font_family: "Noto Sans CJK KR".into(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| e.to_string())?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(SCALE)
        .ok_or("an empty chart")?;
    let mut pixmap =
        tiny_skia::Pixmap::new(size.width(), size.height()).ok_or("a chart too large to draw")?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(SCALE, SCALE),
        &mut pixmap.as_mut(),
    );
    let bytes = pixmap.encode_png().map_err(|e| e.to_string())?;
    Ok(Png {
        bytes,
        width: size.width(),
        height: size.height(),
    })
}
