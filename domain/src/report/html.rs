//! The report as HTML (one page that prints as the report).

use super::{href_safe, title, Block, Cell, Inline, Lang};

/// Text as HTML or XML character data: markup characters escaped, and the characters neither
/// may hold (C0 controls other than tab and line breaks, U+FFFE, U+FFFF) dropped, so that
/// nothing a participant typed can make the page or the file unreadable.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if u32::from(c) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => o.push(c),
        }
    }
    o
}

fn html_cell(c: &Cell) -> String {
    c.iter()
        .map(|i| match i {
            Inline::Text(t) => esc(t),
            Inline::Link(t, href) => {
                // `_top`: shown inside the web client's frame, a link opens the replay in the
                // page itself (a frame may not show the page).
                format!(
                    "<a href=\"{}\" target=\"_top\">{}</a>",
                    esc(&href_safe(href)),
                    esc(t)
                )
            }
        })
        .collect()
}

pub fn html(blocks: &[Block], lang: Lang) -> String {
    let title = title(blocks);
    let mut s = format!(
        "<!doctype html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>\n\
body{{font-family:'Noto Sans CJK KR','Noto Sans KR','Malgun Gothic',sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#1d232a;line-height:1.55}}\n\
h1{{border-bottom:3px solid #234;padding-bottom:.3rem}}h2{{border-bottom:1px solid #9ab;margin-top:2.2rem}}h4{{margin-bottom:.3rem}}\n\
table{{border-collapse:collapse;margin:.6rem 0 1.2rem;font-size:.92rem}}th,td{{border:1px solid #c5ced8;padding:.3rem .5rem;vertical-align:top;text-align:left}}\n\
th{{background:#eef2f6}}a{{color:#1a5fb4}}\n\
figure.chart{{margin:.6rem 0 1.2rem;overflow-x:auto}}figure.chart svg{{max-width:100%;height:auto}}figcaption{{font-size:.9rem;color:#4a5560}}.cover p{{margin:.1rem 0;color:#4a5560}}\n\
@media print{{body{{max-width:none;margin:0;font-size:10pt}}h2{{break-before:page}}table,figure{{break-inside:auto}}tr,figure.chart{{break-inside:avoid}}thead{{display:table-header-group}}a{{color:inherit;text-decoration:none}}}}\n</style>\n</head>\n<body>\n",
        if lang == Lang::Ko { "ko" } else { "en" },
        esc(title)
    );
    for b in blocks {
        match b {
            Block::Heading(l, t) => s.push_str(&format!("<h{l}>{}</h{l}>\n", esc(t))),
            Block::Para(c) => s.push_str(&format!("<p>{}</p>\n", html_cell(c))),
            Block::List(items) => {
                s.push_str("<ul>\n");
                for i in items {
                    s.push_str(&format!("<li>{}</li>\n", html_cell(i)));
                }
                s.push_str("</ul>\n");
            }
            Block::Table { id, head, rows } => {
                s.push_str(&format!("<table data-table=\"{}\">\n<thead><tr>", esc(id)));
                for h in head {
                    s.push_str(&format!("<th>{}</th>", esc(h)));
                }
                s.push_str("</tr></thead>\n<tbody>\n");
                for r in rows {
                    s.push_str("<tr>");
                    for c in r {
                        s.push_str(&format!("<td>{}</td>", html_cell(c)));
                    }
                    s.push_str("</tr>\n");
                }
                s.push_str("</tbody>\n</table>\n");
            }
            Block::Chart(chart) => s.push_str(&format!(
                "<figure class=\"chart\" data-chart=\"{}\">\n{}<figcaption>{}</figcaption>\n</figure>\n",
                esc(&chart.id),
                chart.svg(),
                esc(&chart.title)
            )),
            Block::Cover(cover) => {
                s.push_str("<div class=\"cover\">\n");
                for line in cover.lines().iter().filter(|l| !l.title) {
                    s.push_str(&format!("<p>{}</p>\n", esc(&line.text)));
                }
                s.push_str("</div>\n");
            }
        }
    }
    s.push_str("</body>\n</html>\n");
    s
}
