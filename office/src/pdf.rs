//! The report as a PDF: A4, Korean fonts embedded, a cover, 목차 with page numbers, page
//! numbers at every foot, tables whose header row repeats on every page they cross, the
//! charts drawn from their SVG. Typeset by typst used as a library, from a template compiled
//! into the binary (`report.typ`) and the report's blocks given to it as JSON data.
//!
//! The fonts are the system's Noto Sans CJK (Debian's `fonts-noto-cjk`), read once and kept:
//! `TORON_FONT_DIR` names another folder holding `NotoSansCJK-Regular.ttc` and
//! `NotoSansCJK-Bold.ttc`. The same blocks give the same bytes: the document carries no date
//! and a fixed identifier, and typst itself reads no clock.

use std::sync::OnceLock;

use serde_json::{json, Value};
use toron_domain::report::{Block, Cell, Inline, Lang};
use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime, Duration, Smart};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};
use typst_layout::PagedDocument;

/// Why no PDF could be made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error(
        "PDF reports need the Korean fonts Noto Sans CJK (Debian: apt install fonts-noto-cjk; \
         or set TORON_FONT_DIR to a folder holding NotoSansCJK-Regular.ttc): {0}"
    )]
    Fonts(String),
    #[error("typesetting the report: {0}")]
    Typeset(String),
}

const TEMPLATE: &str = include_str!("report.typ");
use crate::fonts::FONT_FILES;

struct Fonts {
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
}

fn load_fonts() -> Result<Fonts, String> {
    let mut fonts = Vec::new();
    for data in crate::fonts::read(&FONT_FILES)? {
        fonts.extend(Font::iter(Bytes::new(data)));
    }
    if fonts.is_empty() {
        return Err("the font files hold no font".into());
    }
    Ok(Fonts {
        book: LazyHash::new(FontBook::from_fonts(&fonts)),
        fonts,
    })
}

/// The fonts, read on the first PDF and kept for the life of the process (about 40 MB).
fn fonts() -> Result<&'static Fonts, PdfError> {
    static FONTS: OnceLock<Result<Fonts, String>> = OnceLock::new();
    FONTS
        .get_or_init(load_fonts)
        .as_ref()
        .map_err(|e| PdfError::Fonts(e.clone()))
}

/// What typst sees: the template as its one source, the report's data as its one file.
struct ReportWorld {
    library: LazyHash<Library>,
    fonts: &'static Fonts,
    main: Source,
    data: Bytes,
}

fn file_id(path: &str) -> Result<FileId, PdfError> {
    let vpath = VirtualPath::new(path).map_err(|e| PdfError::Typeset(format!("{e:?}")))?;
    Ok(FileId::new(RootedPath::new(VirtualRoot::Project, vpath)))
}

impl World for ReportWorld {
    fn library(&self) -> &LazyHash<Library> {
        &self.library
    }
    fn book(&self) -> &LazyHash<FontBook> {
        &self.fonts.book
    }
    fn main(&self) -> FileId {
        self.main.id()
    }
    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main.id() {
            Ok(self.main.clone())
        } else {
            Err(FileError::AccessDenied)
        }
    }
    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id.vpath().get_without_slash() == "report.json" {
            Ok(self.data.clone())
        } else {
            Err(FileError::AccessDenied)
        }
    }
    fn font(&self, index: usize) -> Option<Font> {
        self.fonts.fonts.get(index).cloned()
    }
    /// No clock: the report's dates come from its data.
    fn today(&self, _: Option<Duration>) -> Option<Datetime> {
        None
    }
}

fn parts(cell: &Cell) -> Value {
    Value::Array(
        cell.iter()
            .map(|i| match i {
                Inline::Text(t) => json!({ "t": t }),
                Inline::Link(t, href) => json!({ "t": t, "href": href }),
            })
            .collect(),
    )
}

/// The template's column widths: `0` for a short column (typst's `auto`: its text on one
/// line), a weight of the rest for a long one.
fn widths(head: &[String], rows: &[Vec<Cell>]) -> Vec<usize> {
    crate::column_widths(head, rows)
        .into_iter()
        .map(|w| match w {
            crate::ColumnWidth::Short(_) => 0,
            crate::ColumnWidth::Long(n) => n,
        })
        .collect()
}

fn table_json(head: &[String], rows: &[Vec<Cell>]) -> Value {
    let cols = head.len();
    // Every row as wide as the head, so the grid stays a grid.
    let rows: Vec<Vec<Cell>> = rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.resize(cols, Vec::new());
            r
        })
        .collect();
    json!({
        "kind": "table",
        "widths": widths(head, &rows),
        "head": head,
        "rows": rows.iter().map(|r| r.iter().map(parts).collect::<Vec<_>>()).collect::<Vec<_>>(),
    })
}

/// The report's blocks as the template's data. The title (level 1) is the cover's; the
/// other levels move up one, so the parts (Ⅰ, Ⅱ, …) are the outline's first level. A
/// department's heading and table go on a landscape page of their own: ten columns need it.
fn data(blocks: &[Block], lang: Lang) -> Value {
    let mut out = Vec::new();
    let mut cover = Value::Null;
    let mut i = 0;
    while i < blocks.len() {
        match &blocks[i] {
            Block::Cover(c) => {
                cover = json!({
                    "title": c.title,
                    "lines": c.lines().iter().filter(|l| !l.title).map(|l| l.text.clone()).collect::<Vec<_>>(),
                    "approvals": c.approvals,
                });
            }
            Block::Heading(1, _) => {}
            Block::Heading(..) => {
                // The headings in a row, and whether a department's table follows them.
                let mut headings = Vec::new();
                while let Some(Block::Heading(level, text)) = blocks.get(i) {
                    if *level > 1 {
                        headings
                            .push(json!({ "kind": "heading", "level": level - 1, "text": text }));
                    }
                    i += 1;
                }
                match blocks.get(i) {
                    Some(Block::Table { id, head, rows }) if id.starts_with("department:") => {
                        out.push(json!({
                            "kind": "landscape",
                            "headings": headings,
                            "table": table_json(head, rows),
                        }));
                    }
                    _ => {
                        out.extend(headings);
                        continue;
                    }
                }
            }
            Block::Para(c) => out.push(json!({ "kind": "para", "parts": parts(c) })),
            Block::List(items) => out.push(json!({
                "kind": "list",
                "items": items.iter().map(parts).collect::<Vec<_>>(),
            })),
            Block::Table { head, rows, .. } if !head.is_empty() => out.push(table_json(head, rows)),
            Block::Table { .. } => {}
            Block::Chart(c) => {
                out.push(json!({ "kind": "chart", "title": c.title, "svg": c.svg() }))
            }
        }
        i += 1;
    }
    json!({
        "lang": match lang { Lang::Ko => "ko", Lang::En => "en" },
        "title": toron_domain::report::title(blocks),
        "cover": cover,
        "blocks": out,
    })
}

/// The report as a PDF.
pub fn write(blocks: &[Block], lang: Lang) -> Result<Vec<u8>, PdfError> {
    let fonts = fonts()?;
    let main = Source::new(file_id("/report.typ")?, TEMPLATE.to_string());
    let world = ReportWorld {
        library: LazyHash::new(Library::default()),
        fonts,
        main,
        data: Bytes::from_string(data(blocks, lang).to_string()),
    };
    let document: PagedDocument = typst::compile(&world)
        .output
        .map_err(|diags| PdfError::Typeset(messages(&diags)))?;
    let options = typst_pdf::PdfOptions {
        ident: Smart::Custom("toron-report".into()),
        timestamp: None,
        ..Default::default()
    };
    typst_pdf::pdf(&document, &options).map_err(|diags| PdfError::Typeset(messages(&diags)))
}

fn messages(diags: &[typst::diag::SourceDiagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.message.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}
