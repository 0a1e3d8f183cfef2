//! The report in each format it is filed in — HTML, Markdown, CSV, XLSX, HWPX, PDF — from an
//! export: one entry point ([`render`]) for every format, the same bytes for the same data.
//! Pure of the server: the HTTP route calls it for the light formats, the typesetter's child
//! process (`typeset`) for the PDF and the HWPX.

use toron_domain::report::{self, Format, Lang};

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
    format: Format,
    lang: Lang,
    base: &str,
) -> Result<Vec<u8>, RenderError> {
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
    toron_office::render(&blocks, format, lang).map_err(|e| RenderError::Write(e.to_string()))
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
