//! The report as files the district office opens (issue 19): the whole report as HWPX (한글)
//! and as PDF, the department tables as an Excel workbook and as CSV that Excel on Korean
//! Windows reads. Each file is read back by a reader written independently of what writes it:
//! `calamine` for the workbook, the PyPI package `python-hwpx` (with its schema and
//! package validators) for HWPX, poppler's `pdftotext`, `pdffonts` and `pdfinfo` for PDF.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use calamine::{open_workbook_from_rs, Reader, Xlsx};
use toron_server::Running;
use toron_tests::{secured, toron_line};

const ADMIN: &str = "toron_admin_for_the_report_files_test";

async fn imported() -> (tempfile::TempDir, Running) {
    let (dir, server) = secured(ADMIN).await;
    let bundle =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/debate-bundle.json");
    let path = bundle.to_str().expect("path");
    let (ok, _, err) = toron_tests::toron(&server, ADMIN, &["import", path]).await;
    assert!(ok, "{err}");
    (dir, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_department_tables_open_in_excel_as_the_csv_has_them() {
    let (dir, server) = imported().await;

    // CSV: a byte order mark first, then the same table the Markdown report has.
    let (ok, csv, err) = toron_line(&server, ADMIN, "report HB-BENCH-2012 --format csv").await;
    assert!(ok, "{err}");
    let body = csv
        .strip_prefix('\u{feff}')
        .expect("the CSV starts with a UTF-8 byte order mark");
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body.as_bytes());
    let table: Vec<Vec<String>> = rd
        .records()
        .map(|r| r.expect("row").iter().map(str::to_string).collect())
        .collect();
    assert!(table.len() > 1, "a header and rows: {table:?}");
    assert_eq!(table[0][0], "부서", "Korean headers in the Korean report");
    assert!(
        table.iter().any(|r| r.iter().any(|c| c == "F-LIB-01")),
        "{table:?}"
    );

    // XLSX: a file, the same rows and cells, the same bytes each time.
    let files: Vec<_> = ["a.xlsx", "b.xlsx"]
        .iter()
        .map(|f| dir.path().join(f))
        .collect();
    for f in &files {
        let out = f.to_str().expect("path");
        let line = format!("report HB-BENCH-2012 --format xlsx -o {out}");
        let (ok, _, err) = toron_line(&server, ADMIN, &line).await;
        assert!(ok, "{err}");
    }
    let bytes = std::fs::read(&files[0]).expect("xlsx written");
    assert_eq!(
        bytes,
        std::fs::read(&files[1]).expect("xlsx written"),
        "the same report gives the same bytes"
    );
    let mut book: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).expect("an xlsx file");
    assert_eq!(book.sheet_names(), vec!["부서별 조치".to_string()]);
    let range = book.worksheet_range("부서별 조치").expect("the sheet");
    let cells: Vec<Vec<String>> = range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(cells, table, "the workbook holds what the CSV holds");

    // A workbook is not printed on a terminal: the command asks for a file name.
    let (ok, _, err) = toron_line(&server, ADMIN, "report HB-BENCH-2012 --format xlsx").await;
    assert!(!ok && err.contains("--output"), "{err}");
    server.shutdown().await.expect("shutdown");
}

/// The Korean report names annotation kinds and triage statuses in Korean, in its summary and
/// its appendix — the planning officer reads `질의`, `미처리`, not `question`, `open`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_korean_report_says_kinds_and_statuses_in_korean() {
    let (_dir, server) = imported().await;
    let (ok, md, err) = toron_line(&server, ADMIN, "report HB-BENCH-2012 --format md").await;
    assert!(ok, "{err}");
    // Every kind and status as the documents store them (English words).
    let english: Vec<&str> = toron_domain::vocab::AnnotationKind::NAMES
        .iter()
        .chain(toron_domain::vocab::TriageStatus::NAMES.iter())
        .copied()
        .collect();
    let cells: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with('|'))
        .flat_map(|l| l.split('|').map(str::trim))
        .collect();
    let left: Vec<&&str> = cells.iter().filter(|c| english.contains(c)).collect();
    assert!(
        left.is_empty(),
        "English words in the Korean report's tables: {left:?}"
    );
    let summary = md
        .lines()
        .find(|l| l.starts_with("- 주석:"))
        .expect("the summary counts the annotations");
    assert!(
        summary.contains("질의") && !english.iter().any(|w| summary.contains(w)),
        "{summary}"
    );
    // The appendix names the statuses the example's triage gave.
    assert!(cells.contains(&"추후검토"), "L-09 was deferred");

    // Nowhere in what the reader sees (the text, not the links' addresses): no English kind
    // or status, no JSON path of an evaluation form, no raw ISO time, no pledge key.
    let mut visible = String::new();
    let mut rest = md.as_str();
    while let Some(i) = rest.find("](") {
        visible.push_str(&rest[..i]);
        rest = rest[i..]
            .split_once(')')
            .map(|(_, r)| r)
            .unwrap_or_default();
    }
    visible.push_str(rest);
    let words: Vec<&str> = visible
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .collect();
    let english_words: Vec<&&str> = words.iter().filter(|w| english.contains(w)).collect();
    assert!(
        english_words.is_empty(),
        "English words in the report: {english_words:?}"
    );
    let tokens: Vec<&str> = visible.split_whitespace().collect();
    let paths: Vec<&&str> = tokens
        .iter()
        .filter(|t| t.starts_with('/') && t[1..].starts_with(|c: char| c.is_ascii_alphabetic()))
        .collect();
    assert!(paths.is_empty(), "JSON paths in the report: {paths:?}");
    let iso: Vec<&&str> = tokens
        .iter()
        .filter(|t| t.len() > 11 && t.as_bytes()[10] == b'T' && t.as_bytes()[4] == b'-')
        .collect();
    assert!(iso.is_empty(), "raw ISO times in the report: {iso:?}");
    assert!(!visible.contains("PL-03"), "the pledge is named, not keyed");
    assert!(visible.contains("생활권 도서관 확충"));
    assert!(
        visible.contains("평가서(정유나) 부족한 점"),
        "a source in words"
    );
    assert!(
        visible.contains("2012. 11. 7.(수) 16:20"),
        "a moment as an office writes it"
    );
    assert!(visible.contains("8,400 (2012)"), "thousands separated");
    // 붙임: the forms as written and the cases as presented.
    assert!(visible.contains("붙임 1. 평가서") && visible.contains("| 효율성 | 해당없음 |"));
    assert!(visible.contains("붙임 2. 사례 자료") && visible.contains("추진배경: 한빛구는"));
    // 추진 개요 as an office writes it: the round, why, where, who came, where the series
    // stands; governments by name at the head of the score table, not case keys.
    for line in [
        "### 제2차 도서관 — ",
        "- 목적: 우리 구 정책을 모범 지자체의 사례와 견주어",
        "- 장소: 한빛구청 대회의실",
        "- 참석: 41명 (공무원 14명, 전문가 6명, 활동가 21명)",
        "- 시리즈 진행: 이번이 제2차 — 등록된 토론회 2회(제2차·제3차) 가운데 2회 개최",
        "- 사례 1: 한빛구 — 작은도서관 통합 회원제와 상호대차",
        "| 항목(가중치) | 한빛구 | 누리구 |",
    ] {
        assert!(visible.contains(line), "the report lacks `{line}`");
    }
    // No case key outside the links' addresses (the visible text of the Markdown report).
    let mut parts = visible.split("](");
    let mut shown = parts.next().unwrap_or_default().to_string();
    for part in parts {
        shown.push_str(part.split_once(')').map_or(part, |(_, after)| after));
    }
    assert!(
        !shown.contains("C-LIB-HB"),
        "a case key in the Korean report: {shown}"
    );
    server.shutdown().await.expect("shutdown");
}

/// The report in `format`, written twice by the CLI: the bytes, which must be the same.
async fn report_file(server: &Running, dir: &Path, format: &str) -> (PathBuf, Vec<u8>) {
    let mut written = Vec::new();
    for name in ["a", "b"] {
        let path = dir.join(format!("{name}.{format}"));
        let line = format!(
            "report HB-BENCH-2012 --format {format} -o {}",
            path.to_str().expect("path")
        );
        let (ok, _, err) = toron_line(server, ADMIN, &line).await;
        assert!(ok, "{err}");
        written.push((path.clone(), std::fs::read(&path).expect("file written")));
    }
    assert_eq!(
        written[0].1, written[1].1,
        "the same report gives the same {format} bytes"
    );
    written.swap_remove(0)
}

/// What the report must hold, taken from elsewhere than the file under test: every weighted
/// total from the Markdown report's score tables, every finding id from the bundle, and the
/// department tables from the CSV (department name, then the row).
struct Expected {
    totals: Vec<String>,
    findings: Vec<String>,
    csv: Vec<Vec<String>>,
}

impl Expected {
    /// Every weighted total and every finding id is in `text`.
    fn all_in(&self, text: &str) {
        for total in &self.totals {
            assert!(
                text.contains(total.as_str()),
                "weighted total {total} missing"
            );
        }
        for f in &self.findings {
            assert!(text.contains(f.as_str()), "finding {f} missing");
        }
    }
}

async fn expected(server: &Running) -> Expected {
    let (ok, md, err) = toron_line(server, ADMIN, "report HB-BENCH-2012 --format md").await;
    assert!(ok, "{err}");
    let totals: Vec<String> = md
        .lines()
        .filter(|l| l.starts_with("| 가중 총점"))
        .flat_map(|l| l.split('|').skip(2).map(str::trim).collect::<Vec<_>>())
        .filter_map(|c| c.split_whitespace().next().map(str::to_string))
        .collect();
    assert!(totals.len() >= 3, "three cases are scored: {totals:?}");
    let bundle: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/debate-bundle.json"),
        )
        .expect("bundle"),
    )
    .expect("json");
    let findings: Vec<String> = bundle["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["key"].as_str().expect("key").to_string())
        .collect();
    let (ok, csv, err) = toron_line(server, ADMIN, "report HB-BENCH-2012 --format csv").await;
    assert!(ok, "{err}");
    let csv: Vec<Vec<String>> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv.trim_start_matches('\u{feff}').as_bytes())
        .records()
        .map(|r| r.expect("row").iter().map(str::to_string).collect())
        .collect();
    Expected {
        totals,
        findings,
        csv,
    }
}

/// A Python with `python-hwpx` (pinned): `TORON_HWPX_PYTHON`, or a virtual environment the
/// test makes under the build's temporary folder on its first run (as the Node interop check
/// installs its packages with `npm ci`).
fn hwpx_python() -> PathBuf {
    if let Some(p) = std::env::var_os("TORON_HWPX_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hwpx-reader");
    let python = venv.join("bin/python");
    let has_reader = |py: &Path| {
        Command::new(py)
            .args(["-c", "import hwpx"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has_reader(&python) {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 (the machine's) makes a virtual environment");
        assert!(made.success(), "python3 -m venv failed");
        let pip = Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--timeout",
                "60",
                "python-hwpx==6.9.0",
            ])
            .status()
            .expect("pip runs");
        assert!(pip.success(), "pip install python-hwpx failed");
    }
    python
}

pub(crate) fn tool(name: &str, args: &[&str]) -> String {
    let out = Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!("{name}: {e} (poppler-utils: apt-get install poppler-utils; .ci/run installs it)")
    });
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The department's rows of the CSV (its first column is the department's name).
fn department_rows<'a>(csv: &'a [Vec<String>], department: &str) -> Vec<&'a [String]> {
    csv.iter()
        .skip(1)
        .filter(|r| r[0] == department)
        .map(|r| &r[1..])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hwpx_report_reads_back_with_its_tables_and_outline() {
    let (dir, server) = imported().await;
    let want = expected(&server).await;
    let (path, bytes) = report_file(&server, dir.path(), "hwpx").await;
    assert!(
        bytes.starts_with(b"PK") && bytes[30..38] == *b"mimetype",
        "the package's first entry is its mimetype"
    );
    let out = Command::new(hwpx_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("python/read_hwpx.py"))
        .arg(&path)
        .output()
        .expect("the reader runs");
    assert!(
        out.status.success(),
        "python-hwpx cannot read the report: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");

    // A package 한글 opens: mimetype first and stored, valid against the OWPML schemas.
    assert_eq!(read["first_part"], "mimetype");
    assert_eq!(read["first_stored"], true);
    for part in [
        "Contents/content.hpf",
        "Contents/header.xml",
        "Contents/section0.xml",
    ] {
        assert!(read["parts"]
            .as_array()
            .expect("parts")
            .iter()
            .any(|p| p == part));
    }
    assert_eq!(read["schema_issues"], serde_json::json!([]), "{read}");
    assert_eq!(read["package_errors"], serde_json::json!([]), "{read}");
    assert_eq!(read["reopen_ok"], true);
    assert!(
        read["fonts"]
            .as_array()
            .expect("fonts")
            .iter()
            .any(|f| f == "맑은 고딕"),
        "a Korean font is named: {}",
        read["fonts"]
    );

    let text = read["text"].as_str().expect("text");
    want.all_in(text);

    // Each chart the HTML report draws is a picture, in the same order, named by its title
    // (its alternative text), its PNG in the package and listed in the manifest.
    let (ok, html, err) = toron_line(&server, ADMIN, "report HB-BENCH-2012 --format html").await;
    assert!(ok, "{err}");
    let charts: Vec<&str> = html
        .split("<svg ")
        .skip(1)
        .filter_map(|s| s.split("<title>").nth(1)?.split("</title>").next())
        .collect();
    assert!(charts.len() >= 2, "the report draws charts: {charts:?}");
    let pictures = read["pictures"].as_array().expect("pictures");
    let named: Vec<String> = pictures
        .iter()
        .map(|p| toron_domain::report::esc(p["comment"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(named, charts, "one picture per chart, in order");
    for p in pictures {
        let href = read["manifest_images"]
            [p["ref"].as_str().expect("a picture refers to an image")]
        .as_str()
        .unwrap_or_else(|| panic!("{p} is not in the manifest"));
        let size = &read["images"][href];
        assert_eq!(
            size[0], 1280,
            "{href} is a PNG drawn at twice the chart's width: {size}"
        );
        assert!(size[1].as_u64().is_some_and(|h| h > 100), "{href}: {size}");
    }

    // The department tables are on landscape pages: a section of their own, its sheet A4
    // turned (`NARROWLY`, drawn wider than high), its tables as wide as that page's text;
    // before and after it the pages are portrait (python-hwpx reads each section's setup).
    let sections = read["sections"].as_array().expect("sections");
    assert_eq!(
        sections.len(),
        3,
        "portrait, landscape, portrait: {sections:?}"
    );
    let turned = &sections[1];
    assert_eq!(turned["orientation"], "NARROWLY", "{turned}");
    assert!(
        turned["drawn_width"].as_u64() > turned["drawn_height"].as_u64(),
        "{turned}"
    );
    for s in [&sections[0], &sections[2]] {
        assert_eq!(s["orientation"], "WIDELY", "{s}");
        assert!(s["drawn_width"].as_u64() < s["drawn_height"].as_u64());
    }
    let widths = turned["table_widths"].as_array().expect("widths");
    assert!(
        !widths.is_empty(),
        "the department tables are in the landscape section"
    );
    for w in widths {
        assert!(
            w.as_u64().is_some_and(|w| w > 60_000),
            "a department table spans the landscape page (a portrait one is 42,520): {w}"
        );
    }
    assert!(
        sections[0]["table_heads"]
            .as_array()
            .expect("heads")
            .iter()
            .chain(sections[2]["table_heads"].as_array().expect("heads"))
            .all(|h| !h.as_str().unwrap_or_default().starts_with("번호구분")),
        "no department table is left on a portrait page"
    );

    // The outline (개요) has the parts and every department.
    let outline: Vec<&str> = read["outline"]
        .as_array()
        .expect("outline")
        .iter()
        .filter_map(|h| h.as_str())
        .collect();
    assert!(outline.contains(&"Ⅱ. 분야별 결과"), "{outline:?}");

    // Every department's rows are a table of their own, with the CSV's header and cells.
    let tables: Vec<Vec<Vec<String>>> =
        serde_json::from_value(read["tables"].clone()).expect("tables");
    let departments: std::collections::BTreeSet<&str> =
        want.csv.iter().skip(1).map(|r| r[0].as_str()).collect();
    assert!(departments.len() >= 3, "{departments:?}");
    for d in departments {
        assert!(outline.contains(&d), "department {d} is not in the outline");
        let rows = department_rows(&want.csv, d);
        // The CSV's header without its first (부서) and last (출처 링크) columns.
        let head = &want.csv[0][1..want.csv[0].len() - 1];
        let table = tables
            .iter()
            .find(|t| t.len() == rows.len() + 1 && t[0] == head && t[1][0] == rows[0][0])
            .unwrap_or_else(|| panic!("no table for {d}: {tables:?}"));
        for (got, row) in table[1..].iter().zip(&rows) {
            // The CSV adds the links' addresses in its last column; the table shows their text.
            assert_eq!(got[..], row[..got.len()], "{d}");
        }
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pdf_report_is_a4_with_its_text_and_korean_fonts_embedded() {
    let (dir, server) = imported().await;
    let want = expected(&server).await;
    let (path, bytes) = report_file(&server, dir.path(), "pdf").await;
    assert!(bytes.starts_with(b"%PDF-"));
    let file = path.to_str().expect("path");

    let text = tool("pdftotext", &[file, "-"]);
    want.all_in(&text);
    // pdftotext drops the thin spaces of `- 1 -`.
    let squeezed: String = text.split_whitespace().collect();
    assert!(
        text.contains("목차") && squeezed.contains("-1-") && squeezed.contains("-2-"),
        "contents and page numbers: {text}"
    );
    for row in want.csv.iter().skip(1) {
        // Each department row's recommendation title is printed (the column may wrap).
        let title: String = row[4].chars().take(6).collect();
        assert!(text.contains(&title), "{title} of {row:?}");
    }

    // Every font is embedded, and the Korean text is set in Noto Sans CJK.
    let fonts = tool("pdffonts", &[file]);
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert!(!rows.is_empty(), "{fonts}");
    for r in &rows {
        let cols: Vec<&str> = r.split_whitespace().collect();
        let emb = cols[cols.len() - 5];
        assert_eq!(emb, "yes", "a font is not embedded: {r}");
    }
    assert!(fonts.contains("NotoSansCJK"), "{fonts}");

    // A4, portrait for the text and landscape for the department tables.
    let info = tool("pdfinfo", &["-f", "1", "-l", "200", file]);
    assert!(info.contains("595.276 x 841.89 pts (A4)"), "{info}");
    assert!(
        info.contains("841.89 x 595.276 pts (A4)"),
        "the department tables' pages: {info}"
    );
    server.shutdown().await.expect("shutdown");
}
