//! The report as an HWPX package (OWPML, KS X 6101): what 한글 opens and what 온나라 takes as
//! an attachment.
//!
//! A package is a zip whose first entry, `mimetype`, is stored uncompressed (readers sniff it
//! at a fixed offset), then `version.xml`, `META-INF/` (the container, its manifest and RDF),
//! `Contents/content.hpf` (the package's manifest and spine), `Contents/header.xml` (every
//! font, character, paragraph and border shape the body refers to by id) and
//! `Contents/section0.xml` (the body), plus `Preview/PrvText.txt`, the plain text that file
//! browsers and 온나라 show before opening.
//!
//! Headings use the outline paragraph shapes (개요 1–3), so 한글's 개요 view and 차례 tool
//! find them; tables are real `hp:tbl` tables whose first row repeats on every page they
//! cross. The same blocks always give the same bytes: ids are counters, the zip's times are
//! fixed, and nothing reads the clock.

use std::io::{Cursor, Write};

use toron_domain::report::Block;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

mod body;
mod styles;

use body::{sections, xml_text};
use styles::header;

/// Why a package could not be written (only the zip writer can fail: every input is text).
#[derive(Debug, thiserror::Error)]
pub enum HwpxError {
    #[error("writing the HWPX package: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("writing the HWPX package: {0}")]
    Io(#[from] std::io::Error),
}

/// What the package says of itself besides its body.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    pub title: &'a str,
    /// `ko` or `en`.
    pub language: &'a str,
}

/// A4 in HWPUNIT (1/7200 inch), and the text width between 30 mm margins.
const PAGE_W: u32 = 59528;
const PAGE_H: u32 = 84186;
const MARGIN_X: u32 = 8504;
const TEXT_W: u32 = PAGE_W - 2 * MARGIN_X;
/// The text's width on a landscape page (the sheet turned: its height across).
const TEXT_W_LANDSCAPE: u32 = PAGE_H - 2 * MARGIN_X;

const NS: &str = concat!(
    r##"xmlns:ha="http://www.hancom.co.kr/hwpml/2011/app" "##,
    r##"xmlns:hp="http://www.hancom.co.kr/hwpml/2011/paragraph" "##,
    r##"xmlns:hp10="http://www.hancom.co.kr/hwpml/2016/paragraph" "##,
    r##"xmlns:hs="http://www.hancom.co.kr/hwpml/2011/section" "##,
    r##"xmlns:hc="http://www.hancom.co.kr/hwpml/2011/core" "##,
    r##"xmlns:hh="http://www.hancom.co.kr/hwpml/2011/head" "##,
    r##"xmlns:hhs="http://www.hancom.co.kr/hwpml/2011/history" "##,
    r##"xmlns:hm="http://www.hancom.co.kr/hwpml/2011/master-page" "##,
    r##"xmlns:hpf="http://www.hancom.co.kr/schema/2011/hpf" "##,
    r##"xmlns:dc="http://purl.org/dc/elements/1.1/" "##,
    r##"xmlns:opf="http://www.idpf.org/2007/opf/" "##,
    r##"xmlns:ooxmlchart="http://www.hancom.co.kr/hwpml/2016/ooxmlchart" "##,
    r##"xmlns:hwpunitchar="http://www.hancom.co.kr/hwpml/2016/HwpUnitChar" "##,
    r##"xmlns:epub="http://www.idpf.org/2007/ops" "##,
    r##"xmlns:config="urn:oasis:names:tc:opendocument:xmlns:config:1.0""##
);
const XML_DECL: &str = r##"<?xml version="1.0" encoding="UTF-8" standalone="yes" ?>"##;

/// Character shapes (`charPr` ids) the body uses.
mod char_shape {
    pub(super) const BODY: u32 = 0;
    pub(super) const BOLD: u32 = 1;
    pub(super) const TITLE: u32 = 2;
    pub(super) const H1: u32 = 3;
    pub(super) const H2: u32 = 4;
    pub(super) const H3: u32 = 5;
    pub(super) const SMALL: u32 = 6;
    pub(super) const SMALL_BOLD: u32 = 7;
    pub(super) const LINK: u32 = 8;
}

/// Paragraph shapes (`paraPr` ids).
mod para_shape {
    pub(super) const BODY: u32 = 0;
    pub(super) const CENTER: u32 = 1;
    /// 개요 1, 2, 3: outline levels 0, 1, 2.
    pub(super) const OUTLINE: [u32; 3] = [2, 3, 4];
    pub(super) const CELL: u32 = 5;
    pub(super) const LIST: u32 = 6;
}

/// Styles (`style` ids): 바탕글, then 개요 1–3.
mod style {
    pub(super) const NORMAL: u32 = 0;
    pub(super) const OUTLINE: [u32; 3] = [1, 2, 3];
}

/// Border fills: 1 none (the page), 2 none (character shapes), 3 a table cell, 4 a header cell.
mod border {
    pub(super) const CHAR: u32 = 2;
    pub(super) const CELL: u32 = 3;
    pub(super) const HEAD: u32 = 4;
}

/// The package's manifest: the header, the section, the settings, and each picture
/// (`isEmbeded`: its bytes are in the package, under `BinData/`).
fn content_hpf(meta: &Meta<'_>, images: usize, sections: usize) -> String {
    let section_items: String = (0..sections)
        .map(|n| {
            format!(
                r##"<opf:item id="section{n}" href="Contents/section{n}.xml" media-type="application/xml"/>"##
            )
        })
        .collect();
    let section_refs: String = (0..sections)
        .map(|n| format!(r##"<opf:itemref idref="section{n}" linear="yes"/>"##))
        .collect();
    let pictures: String = (1..=images)
        .map(|n| {
            format!(
                r##"<opf:item id="image{n}" href="BinData/image{n}.png" media-type="image/png" isEmbeded="1"/>"##
            )
        })
        .collect();
    format!(
        concat!(
            "{decl}<opf:package {ns} version=\"\" unique-identifier=\"\" id=\"\">",
            "<opf:metadata><opf:title>{title}</opf:title><opf:language>{lang}</opf:language>",
            r##"<opf:meta name="creator" content="text">Toron</opf:meta>"##,
            "</opf:metadata>",
            "<opf:manifest>",
            r##"<opf:item id="header" href="Contents/header.xml" media-type="application/xml"/>"##,
            "{section_items}",
            r##"<opf:item id="settings" href="settings.xml" media-type="application/xml"/>"##,
            "{pictures}</opf:manifest>",
            r##"<opf:spine><opf:itemref idref="header" linear="yes"/>{section_refs}</opf:spine>"##,
            "</opf:package>"
        ),
        decl = XML_DECL,
        ns = NS,
        title = xml_text(meta.title),
        lang = xml_text(meta.language),
        pictures = pictures,
        section_items = section_items,
        section_refs = section_refs,
    )
}

/// The report as an HWPX package.
pub fn write(blocks: &[Block], meta: &Meta<'_>) -> Result<Vec<u8>, HwpxError> {
    let (sections, preview, images) = sections(blocks);
    let section_rdf: String = (0..sections.len())
        .map(|n| {
            format!(
                concat!(
                    r##"<rdf:Description rdf:about=""><ns0:hasPart xmlns:ns0="http://www.hancom.co.kr/hwpml/2016/meta/pkg#" rdf:resource="Contents/section{n}.xml"/></rdf:Description>"##,
                    r##"<rdf:Description rdf:about="Contents/section{n}.xml"><rdf:type rdf:resource="http://www.hancom.co.kr/hwpml/2016/meta/pkg#SectionFile"/></rdf:Description>"##
                ),
                n = n
            )
        })
        .collect();
    let stored = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .last_modified_time(DateTime::default());
    let deflated = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default());
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let mut parts: Vec<(String, String)> = vec![
        ("mimetype".into(), "application/hwp+zip".to_string()),
        (
            "version.xml".into(),
            format!(
                r##"{XML_DECL}<hv:HCFVersion xmlns:hv="http://www.hancom.co.kr/hwpml/2011/version" tagetApplication="WORDPROCESSOR" major="5" minor="1" micro="1" buildNumber="0" os="1" xmlVersion="1.5" application="Toron" appVersion="{}"/>"##,
                env!("CARGO_PKG_VERSION")
            ),
        ),
        (
            "META-INF/container.xml".into(),
            format!(
                concat!(
                    "{}",
                    r##"<ocf:container xmlns:ocf="urn:oasis:names:tc:opendocument:xmlns:container" xmlns:hpf="http://www.hancom.co.kr/schema/2011/hpf"><ocf:rootfiles>"##,
                    r##"<ocf:rootfile full-path="Contents/content.hpf" media-type="application/hwpml-package+xml"/>"##,
                    r##"<ocf:rootfile full-path="Preview/PrvText.txt" media-type="text/plain"/>"##,
                    r##"<ocf:rootfile full-path="META-INF/container.rdf" media-type="application/rdf+xml"/>"##,
                    "</ocf:rootfiles></ocf:container>"
                ),
                XML_DECL
            ),
        ),
        (
            "META-INF/manifest.xml".into(),
            format!(
                r##"{XML_DECL}<odf:manifest xmlns:odf="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"/>"##
            ),
        ),
        (
            "META-INF/container.rdf".into(),
            format!(
                concat!(
                    "{}",
                    r##"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">"##,
                    r##"<rdf:Description rdf:about=""><ns0:hasPart xmlns:ns0="http://www.hancom.co.kr/hwpml/2016/meta/pkg#" rdf:resource="Contents/header.xml"/></rdf:Description>"##,
                    r##"<rdf:Description rdf:about="Contents/header.xml"><rdf:type rdf:resource="http://www.hancom.co.kr/hwpml/2016/meta/pkg#HeaderFile"/></rdf:Description>"##,
                    "{}",
                    r##"<rdf:Description rdf:about=""><rdf:type rdf:resource="http://www.hancom.co.kr/hwpml/2016/meta/pkg#Document"/></rdf:Description>"##,
                    "</rdf:RDF>"
                ),
                XML_DECL, section_rdf
            ),
        ),
        (
            "Contents/content.hpf".into(),
            content_hpf(meta, images.len(), sections.len()),
        ),
        ("Contents/header.xml".into(), header(sections.len())),
    ];
    for (n, s) in sections.into_iter().enumerate() {
        parts.push((format!("Contents/section{n}.xml"), s));
    }
    parts.push((
        "settings.xml".into(),
        format!(
            r##"{XML_DECL}<ha:HWPApplicationSetting xmlns:ha="http://www.hancom.co.kr/hwpml/2011/app" xmlns:config="urn:oasis:names:tc:opendocument:xmlns:config:1.0"><ha:CaretPosition listIDRef="0" paraIDRef="0" pos="0"/></ha:HWPApplicationSetting>"##
        ),
    ));
    for (name, text) in parts {
        let options = if name == "mimetype" { stored } else { deflated };
        zip.start_file(name, options)?;
        zip.write_all(text.as_bytes())?;
    }
    // A PNG is compressed already: stored as it is.
    for (n, png) in images.iter().enumerate() {
        zip.start_file(format!("BinData/image{}.png", n + 1), stored)?;
        zip.write_all(png)?;
    }
    // The preview is the document's first characters as plain text (온나라 and file browsers
    // show it); readers expect it short.
    let preview: String = preview.chars().take(1024).collect();
    zip.start_file("Preview/PrvText.txt", deflated)?;
    zip.write_all(preview.as_bytes())?;
    Ok(zip.finish()?.into_inner())
}
