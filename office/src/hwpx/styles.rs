//! `Contents/header.xml`: the fonts, borders, character and paragraph shapes and styles the
//! sections refer to by id.

use super::{border, char_shape, para_shape, style, NS, XML_DECL};

pub(super) fn font_faces() -> String {
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

pub(super) fn border_fill(id: u32, line: &str, face: &str) -> String {
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
pub(super) fn char_pr(id: u32, height: u32, bold: bool, color: &str, underline: bool) -> String {
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
pub(super) fn para_pr(
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

pub(super) fn header(section_count: usize) -> String {
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
