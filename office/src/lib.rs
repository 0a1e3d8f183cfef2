//! The report as the district office files it, in every format, from the blocks
//! `toron_domain::report` builds: one entry point, [`render`]. HWPX for 한글 and 온나라
//! ([`hwpx`]), PDF ([`pdf`], behind the `pdf` feature), the department tables as CSV and XLSX
//! ([`sheets`]), and the Markdown and HTML the domain writes itself. The same blocks give the
//! same bytes.

use toron_domain::report::{self, Block, Cell, Format, Inline, Lang};

#[cfg(feature = "pdf")]
pub mod fonts;
pub mod hwpx;
#[cfg(feature = "pdf")]
pub mod pdf;
#[cfg(feature = "pdf")]
pub mod raster;
pub mod sheets;

/// Why a format could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OfficeError {
    #[error(transparent)]
    Hwpx(#[from] hwpx::HwpxError),
    #[error(transparent)]
    Sheet(#[from] sheets::SheetError),
    #[cfg(feature = "pdf")]
    #[error(transparent)]
    Pdf(#[from] pdf::PdfError),
    #[error("this server was built without PDF reports (the `pdf` feature)")]
    NoPdf,
}

/// The report in `format`, from its blocks.
pub fn render(blocks: &[Block], format: Format, lang: Lang) -> Result<Vec<u8>, OfficeError> {
    Ok(match format {
        Format::Html => report::html(blocks, lang).into_bytes(),
        Format::Md => report::markdown(blocks).into_bytes(),
        Format::Csv => sheets::department_csv(blocks, lang)?,
        Format::Xlsx => sheets::department_xlsx(blocks, lang)?,
        Format::Hwpx => hwpx::write(
            blocks,
            &hwpx::Meta {
                title: report::title(blocks),
                language: lang.as_str(),
            },
        )?,
        Format::Pdf => pdf_of(blocks, lang)?,
    })
}

#[cfg(feature = "pdf")]
fn pdf_of(blocks: &[Block], lang: Lang) -> Result<Vec<u8>, OfficeError> {
    Ok(pdf::write(blocks, lang)?)
}

#[cfg(not(feature = "pdf"))]
fn pdf_of(_: &[Block], _: Lang) -> Result<Vec<u8>, OfficeError> {
    Err(OfficeError::NoPdf)
}

/// A text's width in half-ems: Hangul, Hanja and other wide characters take two, the rest one.
fn half_ems(s: &str) -> usize {
    s.chars()
        .map(|c| match u32::from(c) {
            0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6 => 2,
            _ => 1,
        })
        .sum()
}

fn cell_text(cell: &Cell) -> String {
    cell.iter()
        .map(|i| match i {
            Inline::Text(t) | Inline::Link(t, _) => t.as_str(),
        })
        .collect()
}

/// How wide a column wants to be: a short column (a number, a priority, a date) keeps its
/// text on one line; a long one shares what is left by how much it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnWidth {
    /// Half-ems of its widest cell: it is laid out at that width.
    Short(usize),
    /// A share of the rest, by its widest cell (capped, so that one long cell does not
    /// starve the others).
    Long(usize),
}

/// Up to this many half-ems (ten Hangul syllables), a column is short.
const SHORT: usize = 20;
const LONG_CAP: usize = 60;

fn column_widths(head: &[String], rows: &[Vec<Cell>]) -> Vec<ColumnWidth> {
    let cols = head.len().max(rows.iter().map(Vec::len).max().unwrap_or(0));
    (0..cols)
        .map(|c| {
            let widest = rows
                .iter()
                .filter_map(|r| r.get(c))
                .map(|cell| half_ems(&cell_text(cell)))
                .chain(head.get(c).map(|h| half_ems(h)))
                .max()
                .unwrap_or(0)
                .max(2);
            if widest <= SHORT {
                ColumnWidth::Short(widest)
            } else {
                ColumnWidth::Long(widest.min(LONG_CAP))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_columns_keep_their_text_on_one_line() {
        let head = vec!["분야".to_string(), "내용".to_string()];
        let rows = vec![vec![
            vec![Inline::Text("도서관".into())],
            vec![Inline::Text("작은도서관 운영 인력의 자원봉사 의존".into())],
        ]];
        assert_eq!(
            column_widths(&head, &rows),
            vec![ColumnWidth::Short(6), ColumnWidth::Long(36)]
        );
        assert_eq!(half_ems("F-LIB-01"), 8);
    }
}
