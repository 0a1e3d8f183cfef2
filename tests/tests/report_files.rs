//! The report as files the district office opens (issue 19): the department tables as an
//! Excel workbook and as CSV that Excel on Korean Windows reads. The workbook is read back with
//! `calamine`, a reader written independently of the crate that writes it.

use std::io::Cursor;

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
    let english: Vec<&str> = toron_domain::schema::ANNOTATION_KINDS
        .iter()
        .chain(toron_domain::schema::TRIAGE_STATUSES.iter())
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
    server.shutdown().await.expect("shutdown");
}
