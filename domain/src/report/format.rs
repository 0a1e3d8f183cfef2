//! The formats a report is filed in: one closed set, named here only, parsed once where a
//! request or a command line names one.

use std::fmt;
use std::str::FromStr;

/// A format of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// One page that prints as the report.
    Html,
    /// Markdown.
    Md,
    /// The department tables, for a spreadsheet.
    Csv,
    /// The department tables as an Excel workbook.
    Xlsx,
    /// 한글's package format (OWPML).
    Hwpx,
    /// A4, typeset.
    Pdf,
}

/// A format nobody offers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format `{0}` (html, md, csv, xlsx, hwpx or pdf)")]
pub struct UnknownFormat(pub String);

impl Format {
    /// Every format, in the order they are offered.
    pub const ALL: [Format; 6] = [
        Format::Html,
        Format::Md,
        Format::Csv,
        Format::Xlsx,
        Format::Hwpx,
        Format::Pdf,
    ];

    /// Its name, which is also its files' extension.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Md => "md",
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
            Format::Hwpx => "hwpx",
            Format::Pdf => "pdf",
        }
    }

    /// Its media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Html => "text/html; charset=utf-8",
            Format::Md => "text/markdown; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Hwpx => "application/hwp+zip",
            Format::Pdf => "application/pdf",
        }
    }

    /// Whether making it takes typesetting (the server does it in a child process with
    /// limits): the PDF, and the HWPX whose charts are drawn.
    pub fn is_typeset(self) -> bool {
        matches!(self, Format::Hwpx | Format::Pdf)
    }

    /// Whether it is a file to save rather than text to read on a terminal.
    pub fn is_file(self) -> bool {
        matches!(self, Format::Xlsx | Format::Hwpx | Format::Pdf)
    }
}

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, UnknownFormat> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

serde_as_text!(Format);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_reads_back_from_its_name_and_nothing_else_does() {
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>(), Ok(f));
        }
        assert_eq!(
            "docx".parse::<Format>().map_err(|e| e.to_string()),
            Err("unknown format `docx` (html, md, csv, xlsx, hwpx or pdf)".to_string())
        );
        assert_eq!("PDF".parse::<Format>(), Err(UnknownFormat("PDF".into())));
    }
}
