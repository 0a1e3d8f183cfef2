//! The report in each format it is filed in — HTML, Markdown, CSV, XLSX, HWPX, PDF — from an
//! export: one entry point ([`render`]) for every format, the same bytes for the same data.
//! Pure of the server: the HTTP route calls it for the light formats, the typesetter's child
//! process (`typeset`) for the PDF and the HWPX.

use toron_domain::report::{self, Lang};

/// What a report is of: a session (or the whole series), one department's part (or all).
#[derive(Debug, Clone, Copy, Default)]
pub struct Part<'a> {
    pub session: Option<&'a str>,
    pub department: Option<&'a str>,
}

/// Renders the report; the same data always gives the same bytes.
pub fn render(
    bundle: serde_json::Value,
    part: Part<'_>,
    format: &str,
    lang: Lang,
    base: &str,
) -> Result<(Vec<u8>, &'static str), RenderError> {
    let mut bundle = bundle;
    if let Some(d) = part.department {
        // A department's part carries its own answers only, also on findings addressed to
        // other departments as well.
        if let Some(rs) = bundle
            .get_mut("department_responses")
            .and_then(serde_json::Value::as_array_mut)
        {
            rs.retain(|r| r["department"] == d);
        }
    }
    let mut blocks = report::from_export(bundle, part.session, lang)?;
    if let Some(d) = part.department {
        blocks = report::department_part(&blocks, d, lang).ok_or_else(|| {
            RenderError::Format(format!("the report addresses nothing to department `{d}`"))
        })?;
    }
    report::with_base(&mut blocks, base);
    match format {
        "html" => Ok((
            report::html(&blocks, lang).into_bytes(),
            "text/html; charset=utf-8",
        )),
        "md" => Ok((
            report::markdown(&blocks).into_bytes(),
            "text/markdown; charset=utf-8",
        )),
        "csv" => Ok((department_csv(&blocks, lang)?, "text/csv; charset=utf-8")),
        "xlsx" => Ok((
            department_xlsx(&blocks, lang).map_err(|e| RenderError::Write(e.to_string()))?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )),
        "hwpx" => Ok((
            toron_office::hwpx::write(&blocks, &office_meta(&blocks, lang))
                .map_err(|e| RenderError::Write(e.to_string()))?,
            "application/hwp+zip",
        )),
        "pdf" => Ok((pdf(&blocks, lang)?, "application/pdf")),
        other => Err(RenderError::Format(format!(
            "unknown format `{other}` (html, md, csv, xlsx, hwpx or pdf)"
        ))),
    }
}

/// Why a report could not be rendered: a format nobody offers (the asker's mistake), or a
/// writer that failed (the server's: a PDF without its fonts).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{0}")]
    Format(String),
    #[error("{0}")]
    Write(String),
    /// A limit of the server's (the typesetter's memory or time, renders waiting): 503.
    #[error("{0}")]
    Busy(String),
}

impl From<String> for RenderError {
    fn from(e: String) -> Self {
        RenderError::Format(e)
    }
}

fn office_meta(blocks: &[report::Block], lang: Lang) -> toron_office::hwpx::Meta<'_> {
    toron_office::hwpx::Meta {
        title: report::title(blocks),
        language: match lang {
            Lang::Ko => "ko",
            Lang::En => "en",
        },
    }
}

#[cfg(feature = "pdf")]
fn pdf(blocks: &[report::Block], lang: Lang) -> Result<Vec<u8>, RenderError> {
    toron_office::pdf::write(blocks, lang).map_err(|e| RenderError::Write(e.to_string()))
}

#[cfg(not(feature = "pdf"))]
fn pdf(_: &[report::Block], _: Lang) -> Result<Vec<u8>, RenderError> {
    Err(RenderError::Write(
        "this server was built without PDF reports (the `pdf` feature)".into(),
    ))
}

/// The department tables as CSV, with a UTF-8 byte order mark: without it Excel on a Korean
/// Windows reads the file as CP949 and garbles every Hangul cell.
fn department_csv(blocks: &[report::Block], lang: Lang) -> Result<Vec<u8>, String> {
    let (head, rows) = report::department_rows(blocks, lang);
    let mut w = csv::Writer::from_writer("\u{feff}".as_bytes().to_vec());
    w.write_record(&head).map_err(|e| e.to_string())?;
    for r in rows {
        w.write_record(r.iter().map(|c| report::csv_cell(c).into_owned()))
            .map_err(|e| e.to_string())?;
    }
    w.into_inner().map_err(|e| e.to_string())
}

/// The department tables as one worksheet, its header row bold and frozen. The same report
/// gives the same bytes: the file's creation time is fixed (the zip's times are too).
fn department_xlsx(
    blocks: &[report::Block],
    lang: Lang,
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook};
    let (head, rows) = report::department_rows(blocks, lang);
    let mut book = Workbook::new();
    let created = ExcelDateTime::from_ymd(2000, 1, 1)?;
    book.set_properties(&DocProperties::new().set_creation_datetime(&created));
    let sheet = book.add_worksheet();
    sheet.set_name(match lang {
        Lang::Ko => "부서별 조치",
        Lang::En => "Department actions",
    })?;
    let bold = Format::new().set_bold();
    for (c, h) in head.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, h, &bold)?;
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            sheet.write_string(r as u32 + 1, c as u16, cell)?;
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofit();
    book.save_to_buffer()
}
