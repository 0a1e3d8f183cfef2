//! The sections' XML: the report's blocks as HWPML paragraphs and tables, with the pages
//! that turn to landscape for wide tables.

use toron_domain::report::{Block, Cell, Chart, Inline};

use super::{
    border, char_shape, para_shape, style, MARGIN_X, NS, PAGE_H, PAGE_W, TEXT_W, TEXT_W_LANDSCAPE,
    XML_DECL,
};

/// Text as XML character data (the report's escaping: markup escaped, and what XML 1.0 may
/// not hold dropped, so that nothing a participant typed can make the file unreadable).
pub(super) fn xml_text(s: &str) -> String {
    toron_domain::report::esc(s)
}

/// The body being written: paragraphs and tables in order, each with a fresh id.
pub(super) struct Body {
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
    pub(super) fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    /// A run of text with `char_shape`; line breaks inside it become `hp:lineBreak`.
    pub(super) fn run(out: &mut String, char_shape: u32, text: &str) {
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
    pub(super) fn cell_runs(out: &mut String, cell: &Cell, plain: u32) {
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

    pub(super) fn paragraph(&mut self, para_shape: u32, style: u32, runs: &str, page_break: bool) {
        let id = self.id();
        let page_break = page_break || std::mem::take(&mut self.break_next);
        self.xml.push_str(&format!(
            r##"<hp:p id="{id}" paraPrIDRef="{para_shape}" styleIDRef="{style}" pageBreak="{}" columnBreak="0" merged="0">{runs}</hp:p>"##,
            u8::from(page_break)
        ));
    }

    pub(super) fn text_para(&mut self, para_shape: u32, style: u32, char_shape: u32, text: &str) {
        let mut runs = String::new();
        Body::run(&mut runs, char_shape, text);
        self.paragraph(para_shape, style, &runs, false);
        self.preview.push_str(text);
        self.preview.push('\n');
    }

    pub(super) fn heading(&mut self, level: u8, text: &str) {
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

    pub(super) fn cell_para(&mut self, cell: &Cell, char_shape: u32) -> String {
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
    pub(super) fn table(&mut self, head: &[String], rows: &[Vec<Cell>]) {
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
    pub(super) fn contents(&mut self, blocks: &[Block], title: &str) {
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
    pub(super) fn chart(&mut self, chart: &Chart) {
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
    pub(super) fn picture(&mut self, png: crate::raster::Png, alt: &str) {
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

pub(super) fn plain(cell: &Cell) -> String {
    crate::cell_text(cell)
}

/// Column widths in HWPUNIT summing to the text width: a short column as wide as its text at
/// the cells' 9 pt (a half-em is 450 HWPUNIT) and their margins, the long ones sharing the
/// rest; where even the short ones do not fit, every column in proportion.
pub(super) fn column_widths(
    head: &[String],
    rows: &[Vec<Cell>],
    cols: usize,
    text_w: u32,
) -> Vec<u32> {
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
pub(super) fn section_start(landscape: bool) -> String {
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
pub(super) fn landscape_span(blocks: &[Block]) -> Option<(usize, usize)> {
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
pub(super) fn sections(blocks: &[Block]) -> (Vec<String>, String, Vec<Vec<u8>>) {
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
pub(super) fn section_xml(landscape: bool, body: &str) -> String {
    format!(
        "{XML_DECL}<hs:sec {NS}>{}{body}</hs:sec>",
        section_start(landscape)
    )
}
