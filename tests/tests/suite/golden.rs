//! Goldens (issue 31, point 1): what the example gives today — its export as JSON and its
//! report in all six formats — kept as files in `tests/golden/`, and a data directory written
//! by an earlier build, kept zipped, that must load and give the same export. They guard every
//! step of the typing and the services: a change of any byte is a change of what people get.
//!
//! The server runs under a manual clock, so the times the import records (and the report
//! prints) are the same at every run. The PDF is compared by its text (`pdftotext -layout`):
//! the typesetter's bytes are not promised to be stable. `TORON_GOLDEN=write` writes the files
//! anew (the data directory too) — a deliberate change, reviewed in the diff.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use toron_server::clock::Clock;
use toron_server::Running;

const ADMIN: &str = "toron_admin_for_the_goldens";
const SERIES: &str = "HB-BENCH-2012";
const SESSION: &str = "S-LIB";
/// 2026-11-24 07:00:00 UTC (16:00 KST), the day the goldens were first written.
const CLOCK_MS: u64 = 1_795_503_600_000;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

fn writing() -> bool {
    std::env::var("TORON_GOLDEN").as_deref() == Ok("write")
}

/// `GET path` as the administrator: the body's bytes (the status must be 200).
async fn get(server: &Running, path: &str) -> Vec<u8> {
    let url = format!("http://{}{path}", server.addr());
    tokio::task::spawn_blocking(move || {
        let mut r = ureq::get(&url)
            .header("Authorization", format!("Bearer {ADMIN}"))
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let mut body = Vec::new();
        r.body_mut()
            .as_reader()
            .read_to_end(&mut body)
            .expect("the body");
        body
    })
    .await
    .expect("the request's thread")
}

/// What the files hold: `(file name, bytes)` — the export, and the series' and the session's
/// reports. The PDF as its text.
async fn outputs(server: &Running) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![(
        "export.json".to_string(),
        get(server, &format!("/api/v1/export/{SERIES}")).await,
    )];
    for key in [SERIES, SESSION] {
        for format in ["md", "html", "csv", "xlsx", "hwpx", "pdf"] {
            let body = get(
                server,
                &format!("/api/v1/reports/{key}?lang=ko&format={format}"),
            )
            .await;
            if format == "pdf" {
                out.push((format!("report-{key}.pdf.txt"), pdf_text(&body)));
            } else if format == "html" {
                // Kept as text: an expected page, not a page of the project's.
                out.push((format!("report-{key}.html.txt"), body));
            } else {
                out.push((format!("report-{key}.{format}"), body));
            }
        }
    }
    out.push((
        format!("report-{SERIES}.en.md"),
        get(
            server,
            &format!("/api/v1/reports/{SERIES}?lang=en&format=md"),
        )
        .await,
    ));
    out
}

fn pdf_text(pdf: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("report.pdf");
    std::fs::write(&file, pdf).expect("write");
    let out = std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) runs");
    assert!(out.status.success(), "pdftotext: {:?}", out.status);
    out.stdout
}

/// Each output equals its golden file (or, when writing, becomes it).
fn compare(outputs: &[(String, Vec<u8>)], what: &str) {
    let dir = golden_dir();
    let mut differ = Vec::new();
    for (name, bytes) in outputs {
        let file = dir.join(name);
        if writing() {
            std::fs::create_dir_all(&dir).expect("golden dir");
            std::fs::write(&file, bytes).expect("write a golden");
            continue;
        }
        let want = std::fs::read(&file)
            .unwrap_or_else(|e| panic!("{}: {e} (TORON_GOLDEN=write makes it)", file.display()));
        if &want != bytes {
            let seen = dir.join(format!("{name}.new"));
            let _ = std::fs::write(&seen, bytes);
            differ.push(format!("{name} (now in {})", seen.display()));
        }
    }
    assert!(
        differ.is_empty(),
        "{what}: these differ from their goldens: {differ:?}"
    );
}

/// The server's settings for the goldens: the administrator's token, the manual clock, and a
/// public address (the reports' links name it, not the test's port).
fn config(dir: &Path) -> toron_server::config::Config {
    let mut config = toron_tests::secure_config(dir);
    config.admin_token = Some(ADMIN.into());
    config.clock = Clock::manual(CLOCK_MS);
    config.public_url = Some("https://toron.hanbit.example".into());
    config
}

async fn imported(dir: &Path) -> Running {
    let server = toron_tests::start_with(config(dir)).await;
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/debate-bundle.json");
    let (ok, _, err) =
        toron_tests::toron(&server, ADMIN, &["import", bundle.to_str().expect("path")]).await;
    assert!(ok, "{err}");
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_export_and_reports_are_as_they_were() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = imported(&data).await;
    let got = outputs(&server).await;
    server.shutdown().await.expect("shutdown");
    compare(&got, "the example imported now");
    if writing() {
        zip_dir(&data, &golden_dir().join("data-dir.zip"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_of_an_earlier_build_loads_and_gives_the_same_export() {
    if writing() {
        return; // written by the test above
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    unzip(&golden_dir().join("data-dir.zip"), &data);
    let server = toron_tests::start_with(config(&data)).await;
    let got = outputs(&server).await;
    server.shutdown().await.expect("shutdown");
    compare(&got, "the data directory of an earlier build");
}

/// Zips the files under `dir` (paths relative to it), in name order.
fn zip_dir(dir: &Path, to: &Path) {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(to).expect("create the zip"));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    for f in files {
        let name = f.strip_prefix(dir).expect("under dir").to_string_lossy();
        zip.start_file(name.replace('\\', "/"), options)
            .expect("a file in the zip");
        zip.write_all(&std::fs::read(&f).expect("read"))
            .expect("write");
    }
    zip.finish().expect("finish the zip");
}

fn unzip(from: &Path, dir: &Path) {
    let file = std::fs::File::open(from)
        .unwrap_or_else(|e| panic!("{}: {e} (TORON_GOLDEN=write makes it)", from.display()));
    let mut zip = zip::ZipArchive::new(file).expect("a zip");
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).expect("an entry");
        let Some(name) = f.enclosed_name() else {
            panic!("an entry outside the directory")
        };
        let to = dir.join(name);
        std::fs::create_dir_all(to.parent().expect("a parent")).expect("dirs");
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).expect("read");
        std::fs::write(&to, bytes).expect("write");
    }
}
