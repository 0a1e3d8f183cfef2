//! The department tables as a spreadsheet takes them: CSV (with a byte order mark) and one
//! XLSX worksheet.

use toron_domain::report::{self, Block, Lang};

/// Why a table could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SheetError {
    #[error("writing the CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing the CSV: {0}")]
    CsvInner(String),
    #[error("writing the workbook: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
}

/// The department tables as CSV, with a UTF-8 byte order mark: without it Excel on a Korean
/// Windows reads the file as CP949 and garbles every Hangul cell.
pub fn department_csv(blocks: &[Block], lang: Lang) -> Result<Vec<u8>, SheetError> {
    let (head, rows) = report::department_rows(blocks, lang);
    let mut w = csv::Writer::from_writer("\u{feff}".as_bytes().to_vec());
    w.write_record(&head)?;
    for r in rows {
        w.write_record(r.iter().map(|c| report::csv_cell(c).into_owned()))?;
    }
    w.into_inner()
        .map_err(|e| SheetError::CsvInner(e.to_string()))
}

/// The department tables as one worksheet, its header row bold and frozen. The same report
/// gives the same bytes: the file's creation time is fixed (the zip's times are too).
pub fn department_xlsx(blocks: &[Block], lang: Lang) -> Result<Vec<u8>, SheetError> {
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
    Ok(book.save_to_buffer()?)
}
