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

use toron_domain::report::{Block, Cell, Chart, Inline};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

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

/// Text as XML character data (the report's escaping: markup escaped, and what XML 1.0 may
/// not hold dropped, so that nothing a participant typed can make the file unreadable).
fn xml_text(s: &str) -> String {
    toron_domain::report::esc(s)
}

/// The body being written: paragraphs and tables in order, each with a fresh id.
struct Body {
    xml: String,
    next_id: u32,
    /// The plain text of the document, for `Preview/PrvText.txt`.
    preview: String,
    /// Whether the next paragraph begins a page (after the cover, after the contents).
    break_next: bool,
    /// The pictures (PNG), `BinData/image{n}.png` for the n-th, counted from 1.
    images: Vec<Vec<u8>>,
    /// The text's width in the section being written (portrait or landscape).
    text_w: u32,
}

impl Body {
    fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    /// A run of text with `char_shape`; line breaks inside it become `hp:lineBreak`.
    fn run(out: &mut String, char_shape: u32, text: &str) {
        out.push_str(&format!(r##"<hp:run charPrIDRef="{char_shape}"><hp:t>"##));
        let mut first = true;
        for line in text.split('\n') {
            if !first {
                out.push_str("<hp:lineBreak/>");
            }
            first = false;
            out.push_str(&xml_text(&line.replace(['\t', '\r'], " ")));
        }
        out.push_str("</hp:t></hp:run>");
    }

    /// The runs of a cell: text in `plain`, the text of a link in the link shape (an HWPX
    /// hyperlink is a field; the address follows the text, so a printed page keeps it).
    fn cell_runs(out: &mut String, cell: &Cell, plain: u32) {
        if cell.is_empty() {
            Body::run(out, plain, "");
        }
        for part in cell {
            match part {
                Inline::Text(t) => Body::run(out, plain, t),
                Inline::Link(t, _) => Body::run(out, char_shape::LINK, t),
            }
        }
    }

    fn paragraph(&mut self, para_shape: u32, style: u32, runs: &str, page_break: bool) {
        let id = self.id();
        let page_break = page_break || std::mem::take(&mut self.break_next);
        self.xml.push_str(&format!(
            r##"<hp:p id="{id}" paraPrIDRef="{para_shape}" styleIDRef="{style}" pageBreak="{}" columnBreak="0" merged="0">{runs}</hp:p>"##,
            u8::from(page_break)
        ));
    }

    fn text_para(&mut self, para_shape: u32, style: u32, char_shape: u32, text: &str) {
        let mut runs = String::new();
        Body::run(&mut runs, char_shape, text);
        self.paragraph(para_shape, style, &runs, false);
        self.preview.push_str(text);
        self.preview.push('\n');
    }

    fn heading(&mut self, level: u8, text: &str) {
        let (shape, char_shape) = match level {
            0 | 1 => (0, char_shape::TITLE),
            2 => (0, char_shape::H1),
            3 => (1, char_shape::H2),
            _ => (2, char_shape::H3),
        };
        let mut runs = String::new();
        Body::run(&mut runs, char_shape, text);
        // A part (Ⅱ, Ⅲ, …) begins a page, as in a printed 결과보고서.
        let page_break = level == 2 && self.next_id > 1 && !text.starts_with('Ⅰ');
        self.paragraph(
            para_shape::OUTLINE[shape],
            style::OUTLINE[shape],
            &runs,
            page_break,
        );
        self.preview.push_str(text);
        self.preview.push('\n');
    }

    fn cell_para(&mut self, cell: &Cell, char_shape: u32) -> String {
        let id = self.id();
        let mut runs = String::new();
        Body::cell_runs(&mut runs, cell, char_shape);
        format!(
            r##"<hp:p id="{id}" paraPrIDRef="{}" styleIDRef="{}" pageBreak="0" columnBreak="0" merged="0">{runs}</hp:p>"##,
            para_shape::CELL,
            style::NORMAL
        )
    }

    /// A table as wide as the text, its columns sized by how much they hold, its head row
    /// repeated on every page the table crosses.
    fn table(&mut self, head: &[String], rows: &[Vec<Cell>]) {
        let cols = head.len().max(rows.iter().map(Vec::len).max().unwrap_or(0));
        if cols == 0 {
            return;
        }
        let widths = column_widths(head, rows, cols, self.text_w);
        let mut xml = String::new();
        let row_count = rows.len() + usize::from(!head.is_empty());
        let id = self.id();
        xml.push_str(&format!(
            r##"<hp:tbl id="{id}" zOrder="0" numberingType="TABLE" textWrap="TOP_AND_BOTTOM" textFlow="BOTH_SIDES" lock="0" dropcapstyle="None" pageBreak="CELL" repeatHeader="1" rowCnt="{row_count}" colCnt="{cols}" cellSpacing="0" borderFillIDRef="{}" noAdjust="0">"##,
            border::CELL
        ));
        xml.push_str(&format!(
            r##"<hp:sz width="{}" widthRelTo="ABSOLUTE" height="{}" heightRelTo="ABSOLUTE" protect="0"/>"##,
            self.text_w,
            row_count * 1000
        ));
        xml.push_str(r##"<hp:pos treatAsChar="0" affectLSpacing="0" flowWithText="1" allowOverlap="0" holdAnchorAndSO="0" vertRelTo="PARA" horzRelTo="COLUMN" vertAlign="TOP" horzAlign="LEFT" vertOffset="0" horzOffset="0"/>"##);
        xml.push_str(r##"<hp:outMargin left="0" right="0" top="283" bottom="283"/>"##);
        xml.push_str(r##"<hp:inMargin left="425" right="425" top="141" bottom="141"/>"##);
        let mut preview_rows = Vec::new();
        let mut all: Vec<(bool, Vec<Cell>)> = Vec::new();
        if !head.is_empty() {
            all.push((
                true,
                head.iter().map(|h| vec![Inline::Text(h.clone())]).collect(),
            ));
        }
        all.extend(rows.iter().map(|r| (false, r.clone())));
        for (r, (is_head, cells)) in all.iter().enumerate() {
            xml.push_str("<hp:tr>");
            let mut line = Vec::new();
            for (c, width) in widths.iter().enumerate() {
                let empty = Vec::new();
                let cell = cells.get(c).unwrap_or(&empty);
                let (fill, shape) = if *is_head {
                    (border::HEAD, char_shape::SMALL_BOLD)
                } else {
                    (border::CELL, char_shape::SMALL)
                };
                let para = self.cell_para(cell, shape);
                xml.push_str(&format!(
                    r##"<hp:tc name="" header="{}" hasMargin="0" protect="0" editable="0" dirty="0" borderFillIDRef="{fill}"><hp:subList id="" textDirection="HORIZONTAL" lineWrap="BREAK" vertAlign="CENTER" linkListIDRef="0" linkListNextIDRef="0" textWidth="0" textHeight="0" hasTextRef="0" hasNumRef="0">{para}</hp:subList><hp:cellAddr colAddr="{c}" rowAddr="{r}"/><hp:cellSpan colSpan="1" rowSpan="1"/><hp:cellSz width="{width}" height="1000"/><hp:cellMargin left="425" right="425" top="141" bottom="141"/></hp:tc>"##,
                    u8::from(*is_head)
                ));
                line.push(plain(cell));
            }
            xml.push_str("</hp:tr>");
            preview_rows.push(line.join("\t"));
        }
        xml.push_str("</hp:tbl>");
        let mut runs = format!(r##"<hp:run charPrIDRef="{}">"##, char_shape::BODY);
        runs.push_str(&xml);
        runs.push_str("<hp:t/></hp:run>");
        self.paragraph(para_shape::BODY, style::NORMAL, &runs, false);
        for l in preview_rows {
            self.preview.push_str(&l);
            self.preview.push('\n');
        }
    }

    /// 목차 on a page of its own: the parts and the fields, as the outline has them (한글's
    /// 차례 tool makes one with page numbers from the same headings).
    fn contents(&mut self, blocks: &[Block], title: &str) {
        self.break_next = true;
        self.text_para(para_shape::CENTER, style::NORMAL, char_shape::H1, title);
        for b in blocks {
            if let Block::Heading(level @ (2 | 3), text) = b {
                let indent = if *level == 2 { "" } else { "    " };
                self.text_para(
                    para_shape::LIST,
                    style::NORMAL,
                    char_shape::BODY,
                    &format!("{indent}{text}"),
                );
            }
        }
        self.break_next = true;
    }

    /// A chart: its bars as a picture (한글 draws no SVG: a PNG of the same drawing), then the
    /// table of its numbers, which a reader of the file checks and a screen reader reads.
    /// Without the fonts to draw it (or a build without the `pdf` feature), the table alone.
    fn chart(&mut self, chart: &Chart) {
        self.text_para(
            para_shape::BODY,
            style::NORMAL,
            char_shape::BOLD,
            &chart.title,
        );
        #[cfg(feature = "pdf")]
        if let Ok(png) = crate::raster::png(&chart.svg()) {
            self.picture(png, &chart.title);
        }
        let (head, rows) = chart.as_table();
        self.table(&head, &rows);
    }

    /// A picture as wide as the text, in a paragraph of its own, treated as a character (it
    /// moves with the text). Its elements are in the order 한글 writes them.
    #[cfg(feature = "pdf")]
    fn picture(&mut self, png: crate::raster::Png, alt: &str) {
        self.images.push(png.bytes);
        let n = self.images.len();
        let id = self.id();
        // The image's own size at 144 dpi (50 HWPUNIT a pixel), shown scaled to the text width.
        let (org_w, org_h) = (png.width * 50, png.height * 50);
        let w = self.text_w;
        let h = u32::try_from(u64::from(w) * u64::from(png.height) / u64::from(png.width.max(1)))
            .unwrap_or(w);
        let (sx, sy) = (
            f64::from(w) / f64::from(org_w.max(1)),
            f64::from(h) / f64::from(org_h.max(1)),
        );
        let xml = format!(
            concat!(
                r##"<hp:run charPrIDRef="{shape}"><hp:pic id="{id}" zOrder="0" numberingType="PICTURE" textWrap="TOP_AND_BOTTOM" textFlow="BOTH_SIDES" lock="0" dropcapstyle="None" href="" groupLevel="0" instid="{id}" reverse="0">"##,
                r##"<hp:offset x="0" y="0"/><hp:orgSz width="{ow}" height="{oh}"/><hp:curSz width="{w}" height="{h}"/>"##,
                r##"<hp:flip horizontal="0" vertical="0"/><hp:rotationInfo angle="0" centerX="{cx}" centerY="{cy}" rotateimage="1"/>"##,
                r##"<hp:renderingInfo><hc:transMatrix e1="1" e2="0" e3="0" e4="0" e5="1" e6="0"/><hc:scaMatrix e1="{sx:.6}" e2="0" e3="0" e4="0" e5="{sy:.6}" e6="0"/><hc:rotMatrix e1="1" e2="0" e3="0" e4="0" e5="1" e6="0"/></hp:renderingInfo>"##,
                r##"<hc:img binaryItemIDRef="image{n}" bright="0" contrast="0" effect="REAL_PIC" alpha="0"/>"##,
                r##"<hp:imgRect><hc:pt0 x="0" y="0"/><hc:pt1 x="{ow}" y="0"/><hc:pt2 x="{ow}" y="{oh}"/><hc:pt3 x="0" y="{oh}"/></hp:imgRect>"##,
                r##"<hp:imgClip left="0" right="{ow}" top="0" bottom="{oh}"/><hp:inMargin left="0" right="0" top="0" bottom="0"/>"##,
                r##"<hp:imgDim dimwidth="{ow}" dimheight="{oh}"/><hp:effects/>"##,
                r##"<hp:sz width="{w}" widthRelTo="ABSOLUTE" height="{h}" heightRelTo="ABSOLUTE" protect="0"/>"##,
                r##"<hp:pos treatAsChar="1" affectLSpacing="0" flowWithText="1" allowOverlap="0" holdAnchorAndSO="0" vertRelTo="PARA" horzRelTo="COLUMN" vertAlign="TOP" horzAlign="LEFT" vertOffset="0" horzOffset="0"/>"##,
                r##"<hp:outMargin left="0" right="0" top="0" bottom="0"/><hp:shapeComment>{alt}</hp:shapeComment></hp:pic><hp:t/></hp:run>"##
            ),
            shape = char_shape::BODY,
            id = id,
            n = n,
            w = w,
            h = h,
            sx = sx,
            sy = sy,
            ow = org_w,
            oh = org_h,
            cx = w / 2,
            cy = h / 2,
            alt = xml_text(alt),
        );
        self.paragraph(para_shape::CENTER, style::NORMAL, &xml, false);
    }
}

fn plain(cell: &Cell) -> String {
    crate::cell_text(cell)
}

/// Column widths in HWPUNIT summing to the text width: a short column as wide as its text at
/// the cells' 9 pt (a half-em is 450 HWPUNIT) and their margins, the long ones sharing the
/// rest; where even the short ones do not fit, every column in proportion.
fn column_widths(head: &[String], rows: &[Vec<Cell>], cols: usize, text_w: u32) -> Vec<u32> {
    const HALF_EM: usize = 450;
    const PAD: usize = 1000;
    let wants = crate::column_widths(head, rows);
    let short: usize = wants
        .iter()
        .map(|w| match w {
            crate::ColumnWidth::Short(n) => n * HALF_EM + PAD,
            crate::ColumnWidth::Long(_) => 0,
        })
        .sum();
    let long_weight: usize = wants
        .iter()
        .map(|w| match w {
            crate::ColumnWidth::Long(n) => *n,
            crate::ColumnWidth::Short(_) => 0,
        })
        .sum();
    let text = text_w as usize;
    // What the long columns share, at least 30 half-ems each.
    let long_min = wants
        .iter()
        .filter(|w| matches!(w, crate::ColumnWidth::Long(_)))
        .count()
        * (30 * HALF_EM);
    let mut widths: Vec<usize> = if short + long_min <= text {
        let rest = text - short;
        wants
            .iter()
            .map(|w| match w {
                crate::ColumnWidth::Short(n) => n * HALF_EM + PAD,
                crate::ColumnWidth::Long(n) => rest * n / long_weight.max(1),
            })
            .collect()
    } else {
        let natural: Vec<usize> = wants
            .iter()
            .map(|w| match w {
                crate::ColumnWidth::Short(n) => n * HALF_EM + PAD,
                crate::ColumnWidth::Long(_) => 30 * HALF_EM,
            })
            .collect();
        let sum: usize = natural.iter().sum();
        natural.iter().map(|n| text * n / sum.max(1)).collect()
    };
    widths.resize(cols, 0);
    let used: usize = widths.iter().sum();
    if let Some(last) = widths.last_mut() {
        *last += text.saturating_sub(used);
    }
    widths
        .into_iter()
        .map(|w| u32::try_from(w).unwrap_or(text_w))
        .collect()
}

/// The first paragraph of a section carries its page setup (A4, portrait or turned to
/// landscape: the sheet's size stays portrait and `NARROWLY` turns it, as 한글 writes it;
/// margins) and the page number at the foot of every page.
fn section_start(landscape: bool) -> String {
    format!(
        concat!(
            r##"<hp:p id="0" paraPrIDRef="0" styleIDRef="0" pageBreak="0" columnBreak="0" merged="0"><hp:run charPrIDRef="0">"##,
            r##"<hp:secPr id="" textDirection="HORIZONTAL" spaceColumns="1134" tabStop="8000" tabStopVal="4000" tabStopUnit="HWPUNIT" outlineShapeIDRef="1" memoShapeIDRef="0" textVerticalWidthHead="0" masterPageCnt="0">"##,
            r##"<hp:grid lineGrid="0" charGrid="0" wonggojiFormat="0"/>"##,
            r##"<hp:startNum pageStartsOn="BOTH" page="0" pic="0" tbl="0" equation="0"/>"##,
            r##"<hp:visibility hideFirstHeader="0" hideFirstFooter="0" hideFirstMasterPage="0" border="SHOW_ALL" fill="SHOW_ALL" hideFirstPageNum="1" hideFirstEmptyLine="0" showLineNumber="0"/>"##,
            r##"<hp:lineNumberShape restartType="0" countBy="0" distance="0" startNumber="0"/>"##,
            r##"<hp:pagePr landscape="{turn}" width="{w}" height="{h}" gutterType="LEFT_ONLY"><hp:margin header="4252" footer="4252" gutter="0" left="{mx}" right="{mx}" top="5668" bottom="4252"/></hp:pagePr>"##,
            r##"<hp:footNotePr><hp:autoNumFormat type="DIGIT" userChar="" prefixChar="" suffixChar=")" supscript="0"/><hp:noteLine length="-1" type="SOLID" width="0.12 mm" color="#000000"/><hp:noteSpacing betweenNotes="283" belowLine="567" aboveLine="850"/><hp:numbering type="CONTINUOUS" newNum="1"/><hp:placement place="EACH_COLUMN" beneathText="0"/></hp:footNotePr>"##,
            r##"<hp:endNotePr><hp:autoNumFormat type="DIGIT" userChar="" prefixChar="" suffixChar=")" supscript="0"/><hp:noteLine length="14692344" type="SOLID" width="0.12 mm" color="#000000"/><hp:noteSpacing betweenNotes="0" belowLine="567" aboveLine="850"/><hp:numbering type="CONTINUOUS" newNum="1"/><hp:placement place="END_OF_DOCUMENT" beneathText="0"/></hp:endNotePr>"##,
            r##"<hp:pageBorderFill type="BOTH" borderFillIDRef="1" textBorder="PAPER" headerInside="0" footerInside="0" fillArea="PAPER"><hp:offset left="1417" right="1417" top="1417" bottom="1417"/></hp:pageBorderFill>"##,
            r##"</hp:secPr>"##,
            r##"<hp:ctrl><hp:colPr id="" type="NEWSPAPER" layout="LEFT" colCount="1" sameSz="1" sameGap="0"/></hp:ctrl>"##,
            r##"<hp:ctrl><hp:pageNum pos="BOTTOM_CENTER" formatType="DIGIT" sideChar="-"/></hp:ctrl>"##,
            r##"</hp:run><hp:run charPrIDRef="0"><hp:t/></hp:run></hp:p>"##
        ),
        w = PAGE_W,
        h = PAGE_H,
        mx = MARGIN_X,
        turn = if landscape { "NARROWLY" } else { "WIDELY" }
    )
}

/// Where the department tables are, as `(first, last)` block indexes: from the headings just
/// before the first `department:` table to that of the last. They go on landscape pages (a
/// section of their own): twelve columns do not fit a portrait A4.
fn landscape_span(blocks: &[Block]) -> Option<(usize, usize)> {
    let is_dept = |b: &Block| matches!(b, Block::Table { id, .. } if id.starts_with("department:"));
    let first = blocks.iter().position(is_dept)?;
    let last = blocks.iter().rposition(is_dept)?;
    let mut start = first;
    while start > 0 && matches!(blocks[start - 1], Block::Heading(l, _) if l > 1) {
        start -= 1;
    }
    Some((start, last))
}

/// The body of the report: every block in order, in sections — portrait, the department
/// tables on landscape pages, portrait again — each section's XML with its own page setup.
fn sections(blocks: &[Block]) -> (Vec<String>, String, Vec<Vec<u8>>) {
    let mut body = Body {
        xml: String::new(),
        next_id: 0,
        preview: String::new(),
        break_next: false,
        images: Vec::new(),
        text_w: TEXT_W,
    };
    let has_cover = blocks.iter().any(|b| matches!(b, Block::Cover(_)));
    let span = landscape_span(blocks);
    let mut out = Vec::new();
    let mut landscape = false;
    for (i, b) in blocks.iter().enumerate() {
        let turned = span.is_some_and(|(a, z)| (a..=z).contains(&i));
        if turned != landscape {
            // A new section begins (on a new page, as a section does in 한글).
            if !body.xml.is_empty() {
                out.push(section_xml(landscape, &std::mem::take(&mut body.xml)));
            }
            landscape = turned;
            body.text_w = if landscape { TEXT_W_LANDSCAPE } else { TEXT_W };
        }
        match b {
            // The cover shows the title.
            Block::Heading(1, _) if has_cover => {}
            Block::Heading(level, text) => body.heading(*level, text),
            Block::Para(cell) => {
                let mut runs = String::new();
                Body::cell_runs(&mut runs, cell, char_shape::BODY);
                body.paragraph(para_shape::BODY, style::NORMAL, &runs, false);
                body.preview.push_str(&plain(cell));
                body.preview.push('\n');
            }
            Block::List(items) => {
                for item in items {
                    let mut runs = String::new();
                    Body::run(&mut runs, char_shape::BODY, "- ");
                    Body::cell_runs(&mut runs, item, char_shape::BODY);
                    body.paragraph(para_shape::LIST, style::NORMAL, &runs, false);
                    body.preview.push_str(&format!("- {}\n", plain(item)));
                }
            }
            Block::Table { head, rows, .. } => body.table(head, rows),
            Block::Chart(chart) => body.chart(chart),
            Block::Cover(cover) => {
                for line in cover.lines() {
                    let shape = if line.title {
                        char_shape::TITLE
                    } else {
                        char_shape::H2
                    };
                    body.text_para(para_shape::CENTER, style::NORMAL, shape, &line.text);
                }
                let (head, rows) = cover.approval_table();
                body.table(&head, &rows);
                body.contents(blocks, cover.contents_title());
            }
        }
    }
    if !body.xml.is_empty() || out.is_empty() {
        out.push(section_xml(landscape, &body.xml));
    }
    (out, body.preview, body.images)
}

/// One section's XML: its page setup, then its paragraphs.
fn section_xml(landscape: bool, body: &str) -> String {
    format!(
        "{XML_DECL}<hs:sec {NS}>{}{body}</hs:sec>",
        section_start(landscape)
    )
}

fn font_faces() -> String {
    let langs = [
        "HANGUL", "LATIN", "HANJA", "JAPANESE", "OTHER", "SYMBOL", "USER",
    ];
    let mut s = format!(r##"<hh:fontfaces itemCnt="{}">"##, langs.len());
    for lang in langs {
        // 맑은 고딕 is on every office PC with Windows; 한글 substitutes its own for a
        // font it lacks.
        s.push_str(&format!(
            concat!(
                r##"<hh:fontface lang="{lang}" fontCnt="1">"##,
                r##"<hh:font id="0" face="맑은 고딕" type="TTF" isEmbedded="0">"##,
                r##"<hh:typeInfo familyType="FCAT_GOTHIC" weight="6" proportion="4" contrast="0" strokeVariation="1" armStyle="1" letterform="1" midline="1" xHeight="1"/>"##,
                r##"</hh:font></hh:fontface>"##
            ),
            lang = lang
        ));
    }
    s.push_str("</hh:fontfaces>");
    s
}

fn border_fill(id: u32, line: &str, face: &str) -> String {
    let side =
        |name: &str| format!(r##"<hh:{name} type="{line}" width="0.12 mm" color="#5A6470"/>"##);
    format!(
        concat!(
            r##"<hh:borderFill id="{id}" threeD="0" shadow="0" centerLine="NONE" breakCellSeparateLine="0">"##,
            r##"<hh:slash type="NONE" Crooked="0" isCounter="0"/><hh:backSlash type="NONE" Crooked="0" isCounter="0"/>"##,
            "{l}{r}{t}{b}",
            r##"<hh:diagonal type="SOLID" width="0.1 mm" color="#000000"/>"##,
            r##"<hc:fillBrush><hc:winBrush faceColor="{face}" hatchColor="#999999" alpha="0"/></hc:fillBrush>"##,
            "</hh:borderFill>"
        ),
        id = id,
        l = side("leftBorder"),
        r = side("rightBorder"),
        t = side("topBorder"),
        b = side("bottomBorder"),
        face = face
    )
}

/// A character shape: `height` in 1/100 pt.
fn char_pr(id: u32, height: u32, bold: bool, color: &str, underline: bool) -> String {
    let all = |v: u32| {
        format!(
            r##"hangul="{v}" latin="{v}" hanja="{v}" japanese="{v}" other="{v}" symbol="{v}" user="{v}""##
        )
    };
    format!(
        concat!(
            r##"<hh:charPr id="{id}" height="{height}" textColor="{color}" shadeColor="none" useFontSpace="0" useKerning="0" symMark="NONE" borderFillIDRef="{bf}">"##,
            "<hh:fontRef {zero}/><hh:ratio {hundred}/><hh:spacing {zero}/><hh:relSz {hundred}/><hh:offset {zero}/>",
            "{bold}",
            r##"<hh:underline type="{ul}" shape="SOLID" color="{color}"/>"##,
            r##"<hh:strikeout shape="NONE" color="#000000"/><hh:outline type="NONE"/><hh:shadow type="NONE" color="#C0C0C0" offsetX="10" offsetY="10"/>"##,
            "</hh:charPr>"
        ),
        id = id,
        height = height,
        color = color,
        bf = border::CHAR,
        zero = all(0),
        hundred = all(100),
        bold = if bold { "<hh:bold/>" } else { "" },
        ul = if underline { "BOTTOM" } else { "NONE" },
    )
}

/// A paragraph shape: alignment, outline level (or none), space before and after (HWPUNIT),
/// line spacing (percent), left indent.
fn para_pr(
    id: u32,
    align: &str,
    outline: Option<u32>,
    before: u32,
    after: u32,
    spacing: u32,
    left: u32,
) -> String {
    let heading = match outline {
        Some(level) => format!(r##"<hh:heading type="OUTLINE" idRef="1" level="{level}"/>"##),
        None => r##"<hh:heading type="NONE" idRef="0" level="0"/>"##.to_string(),
    };
    let margin = format!(
        concat!(
            r##"<hh:margin><hc:intent value="0" unit="HWPUNIT"/><hc:left value="{left}" unit="HWPUNIT"/><hc:right value="0" unit="HWPUNIT"/>"##,
            r##"<hc:prev value="{before}" unit="HWPUNIT"/><hc:next value="{after}" unit="HWPUNIT"/></hh:margin>"##,
            r##"<hh:lineSpacing type="PERCENT" value="{spacing}" unit="HWPUNIT"/>"##
        ),
        left = left,
        before = before,
        after = after,
        spacing = spacing
    );
    format!(
        concat!(
            r##"<hh:paraPr id="{id}" tabPrIDRef="0" condense="0" fontLineHeight="0" snapToGrid="1" suppressLineNumbers="0" checked="0" textDir="LTR">"##,
            r##"<hh:align horizontal="{align}" vertical="BASELINE"/>{heading}"##,
            r##"<hh:breakSetting breakLatinWord="KEEP_WORD" breakNonLatinWord="BREAK_WORD" widowOrphan="0" keepWithNext="{keep}" keepLines="0" pageBreakBefore="0" lineWrap="BREAK"/>"##,
            r##"<hh:autoSpacing eAsianEng="0" eAsianNum="0"/>"##,
            r##"<hp:switch><hp:case hp:required-namespace="http://www.hancom.co.kr/hwpml/2016/HwpUnitChar">{margin}</hp:case><hp:default>{margin}</hp:default></hp:switch>"##,
            r##"<hh:border borderFillIDRef="{bf}" offsetLeft="0" offsetRight="0" offsetTop="0" offsetBottom="0" connect="0" ignoreMargin="0"/>"##,
            "</hh:paraPr>"
        ),
        id = id,
        align = align,
        heading = heading,
        keep = u8::from(outline.is_some()),
        margin = margin,
        bf = border::CHAR
    )
}

fn header(section_count: usize) -> String {
    let chars = [
        char_pr(char_shape::BODY, 1000, false, "#000000", false),
        char_pr(char_shape::BOLD, 1000, true, "#000000", false),
        char_pr(char_shape::TITLE, 2200, true, "#000000", false),
        char_pr(char_shape::H1, 1600, true, "#1D2A3A", false),
        char_pr(char_shape::H2, 1300, true, "#1D2A3A", false),
        char_pr(char_shape::H3, 1100, true, "#000000", false),
        char_pr(char_shape::SMALL, 900, false, "#000000", false),
        char_pr(char_shape::SMALL_BOLD, 900, true, "#000000", false),
        char_pr(char_shape::LINK, 900, false, "#1A5FB4", true),
    ];
    let paras = [
        para_pr(para_shape::BODY, "JUSTIFY", None, 0, 400, 160, 0),
        para_pr(para_shape::CENTER, "CENTER", None, 1200, 1200, 160, 0),
        para_pr(para_shape::OUTLINE[0], "LEFT", Some(0), 1800, 800, 150, 0),
        para_pr(para_shape::OUTLINE[1], "LEFT", Some(1), 1400, 600, 150, 0),
        para_pr(para_shape::OUTLINE[2], "LEFT", Some(2), 1000, 400, 150, 0),
        para_pr(para_shape::CELL, "LEFT", None, 0, 0, 130, 0),
        para_pr(para_shape::LIST, "LEFT", None, 0, 200, 160, 1000),
    ];
    // The outline's numbering shows no number of its own: the headings carry theirs (Ⅰ., 2.).
    let mut numbering =
        String::from(r##"<hh:numberings itemCnt="1"><hh:numbering id="1" start="0">"##);
    for level in 1..=7 {
        numbering.push_str(&format!(
            r##"<hh:paraHead start="1" level="{level}" align="LEFT" useInstWidth="1" autoIndent="1" widthAdjust="0" textOffsetType="PERCENT" textOffset="50" numFormat="DIGIT" charPrIDRef="4294967295" checkable="0"></hh:paraHead>"##
        ));
    }
    numbering.push_str("</hh:numbering></hh:numberings>");
    let styles = [
        (
            style::NORMAL,
            "바탕글",
            "Normal",
            para_shape::BODY,
            char_shape::BODY,
        ),
        (
            style::OUTLINE[0],
            "개요 1",
            "Outline 1",
            para_shape::OUTLINE[0],
            char_shape::H1,
        ),
        (
            style::OUTLINE[1],
            "개요 2",
            "Outline 2",
            para_shape::OUTLINE[1],
            char_shape::H2,
        ),
        (
            style::OUTLINE[2],
            "개요 3",
            "Outline 3",
            para_shape::OUTLINE[2],
            char_shape::H3,
        ),
    ];
    let mut style_xml = format!(r##"<hh:styles itemCnt="{}">"##, styles.len());
    for (id, name, eng, para, chr) in styles {
        style_xml.push_str(&format!(
            r##"<hh:style id="{id}" type="PARA" name="{name}" engName="{eng}" paraPrIDRef="{para}" charPrIDRef="{chr}" nextStyleIDRef="{id}" langID="1042" lockForm="0"/>"##
        ));
    }
    style_xml.push_str("</hh:styles>");
    format!(
        concat!(
            "{decl}<hh:head {ns} version=\"1.5\" secCnt=\"{secs}\">",
            r##"<hh:beginNum page="1" footnote="1" endnote="1" pic="1" tbl="1" equation="1"/>"##,
            "<hh:refList>{fonts}",
            r##"<hh:borderFills itemCnt="4">{b1}{b2}{b3}{b4}</hh:borderFills>"##,
            r##"<hh:charProperties itemCnt="{nc}">{chars}</hh:charProperties>"##,
            r##"<hh:tabProperties itemCnt="1"><hh:tabPr id="0" autoTabLeft="0" autoTabRight="0"/></hh:tabProperties>"##,
            "{numbering}",
            r##"<hh:paraProperties itemCnt="{np}">{paras}</hh:paraProperties>"##,
            "{styles}",
            "</hh:refList>",
            r##"<hh:compatibleDocument targetProgram="HWP201X"><hh:layoutCompatibility/></hh:compatibleDocument>"##,
            r##"<hh:docOption><hh:linkinfo path="" pageInherit="0" footnoteInherit="0"/></hh:docOption>"##,
            r##"<hh:trackchageConfig flags="56"/>"##,
            "</hh:head>"
        ),
        decl = XML_DECL,
        ns = NS,
        secs = section_count,
        fonts = font_faces(),
        b1 = border_fill(1, "NONE", "none"),
        b2 = border_fill(border::CHAR, "NONE", "none"),
        b3 = border_fill(border::CELL, "SOLID", "none"),
        b4 = border_fill(border::HEAD, "SOLID", "#E6ECF2"),
        nc = chars.len(),
        chars = chars.concat(),
        numbering = numbering,
        np = paras.len(),
        paras = paras.concat(),
        styles = style_xml,
    )
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
