//! A department's part of the report, and the department tables as rows (CSV, XLSX).

use std::collections::BTreeSet;

use super::{cell_text, href_safe, t, Block, Inline, Lang};

/// A standalone HTML page (inline style; prints well).
/// One department's part of the report, for its reviewers: the title and cover, its action
/// table, and the findings addressed to it as the report tells them. `None` when the report
/// has no table for `department` (a key).
pub fn department_part(blocks: &[Block], department: &str, lang: Lang) -> Option<Vec<Block>> {
    let table_at = blocks.iter().position(
        |b| matches!(b, Block::Table { id, .. } if id == &format!("department:{department}")),
    )?;
    let keys: BTreeSet<String> = match &blocks[table_at] {
        Block::Table { rows, .. } => rows
            .iter()
            .filter_map(|r| r.first().map(cell_text))
            .collect(),
        _ => BTreeSet::new(),
    };
    let name = match table_at.checked_sub(1).map(|i| &blocks[i]) {
        Some(Block::Heading(_, n)) => n.clone(),
        _ => department.to_string(),
    };
    let mut out: Vec<Block> = blocks
        .iter()
        .take_while(|b| matches!(b, Block::Heading(1, _) | Block::Cover(_)))
        .cloned()
        .collect();
    out.push(Block::Heading(
        2,
        format!("{} — {name}", t(lang, "부서별 정리", "By department")),
    ));
    out.push(blocks[table_at].clone());
    out.push(Block::Heading(2, t(lang, "결과 항목", "Findings")));
    // A finding's block: its heading (`[F-…] …`) and what follows up to the next heading.
    let mut keep = false;
    for b in blocks {
        match b {
            Block::Heading(_, text) => {
                keep = keys.iter().any(|k| text.starts_with(&format!("[{k}]")));
                if keep {
                    out.push(Block::Heading(3, text.clone()));
                }
            }
            other if keep => out.push(other.clone()),
            _ => {}
        }
    }
    Some(out)
}

/// The department tables as CSV: one header row, then the rows of every department, with the
/// department's name first and the row's links (its sources' replay moments) last.
/// The columns of a department's table.
pub(super) fn department_head(lang: Lang) -> Vec<String> {
    [
        ("번호", "ID"),
        ("구분", "Type"),
        ("분야", "Field"),
        ("내용", "Content"),
        ("제기자", "Raised by"),
        ("근거", "Sources"),
        ("우선순위", "Priority"),
        ("주관/협조", "Lead/assist"),
        ("부서 검토의견", "Response"),
        ("조치계획", "Action plan"),
        ("완료 예정", "Due"),
        ("추진상황", "Progress"),
    ]
    .into_iter()
    .map(|(ko, en)| t(lang, ko, en))
    .collect()
}

/// The department tables as rows of one sheet: the department, the table's columns, the
/// links. With no finding yet the sheet is its header row alone.
pub fn department_rows(blocks: &[Block], lang: Lang) -> (Vec<String>, Vec<Vec<String>>) {
    let mut head = vec![t(lang, "부서", "department")];
    head.extend(department_head(lang));
    head.push(t(lang, "출처 링크", "links"));
    let mut rows = Vec::new();
    // A department's table follows its heading, which names it.
    let mut name = "";
    for b in blocks {
        if let Block::Heading(_, text) = b {
            name = text;
        }
        if let Block::Table { id, rows: r, .. } = b {
            if id.starts_with("department:") {
                for row in r {
                    let mut line = vec![name.to_string()];
                    line.extend(row.iter().map(cell_text));
                    let links: Vec<String> = row
                        .iter()
                        .flatten()
                        .filter_map(|i| match i {
                            Inline::Link(_, href) => Some(href_safe(href)),
                            Inline::Text(_) => None,
                        })
                        .collect();
                    line.push(links.join(" "));
                    rows.push(line);
                }
            }
        }
    }
    (head, rows)
}
