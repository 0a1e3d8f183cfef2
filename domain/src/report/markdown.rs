//! The report as Markdown.

use super::{Block, Cell, Inline};

/// Text as Markdown shows it literally: every character with a meaning in Markdown (links,
/// emphasis, inline HTML, tables, headings) is backslash-escaped, and line breaks become
/// spaces, so that what a participant wrote cannot become a link, markup or HTML in the
/// report someone opens.
fn md_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '!' | '&' | '~' => {
                o.push('\\');
                o.push(c);
            }
            '\n' | '\r' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// A link target made safe to print in Markdown or HTML: our links are paths on the server,
/// and whatever part of them came from content is percent-encoded, so it cannot end the link,
/// add an attribute or change the scheme.
pub(super) fn href_safe(h: &str) -> String {
    let mut o = String::with_capacity(h.len() + 1);
    let absolute = h.starts_with("http://") || h.starts_with("https://");
    if !h.starts_with('/') && !absolute {
        o.push('/');
    }
    for b in h.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:?=#&%+,".contains(&b) {
            o.push(char::from(b));
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

fn md_cell(c: &Cell) -> String {
    c.iter()
        .map(|i| match i {
            Inline::Text(t) => md_escape(t),
            Inline::Link(t, href) => format!("[{}]({})", md_escape(t), href_safe(href)),
        })
        .collect()
}

pub fn markdown(blocks: &[Block]) -> String {
    let mut s = String::new();
    for b in blocks {
        match b {
            Block::Heading(l, t) => s.push_str(&format!(
                "{} {}\n\n",
                "#".repeat(usize::from(*l)),
                md_escape(t)
            )),
            Block::Para(c) => s.push_str(&format!("{}\n\n", md_cell(c))),
            Block::List(items) => {
                for i in items {
                    s.push_str(&format!("- {}\n", md_cell(i)));
                }
                s.push('\n');
            }
            Block::Table { head, rows, .. } => {
                s.push_str(&format!(
                    "| {} |\n",
                    head.iter()
                        .map(|h| md_escape(h))
                        .collect::<Vec<_>>()
                        .join(" | ")
                ));
                s.push_str(&format!("|{}\n", "---|".repeat(head.len())));
                for r in rows {
                    s.push_str(&format!(
                        "| {} |\n",
                        r.iter().map(md_cell).collect::<Vec<_>>().join(" | ")
                    ));
                }
                s.push('\n');
            }
            // The numbers of a chart are in the table beside it.
            Block::Chart(_) => {}
            Block::Cover(cover) => {
                for line in cover.lines().iter().filter(|l| !l.title) {
                    s.push_str(&format!("{}  \n", md_escape(&line.text)));
                }
                s.push('\n');
            }
        }
    }
    s
}
