//! The web client's page (`web/src/index.html`) and built files (`web/dist`), embedded in the
//! binary, so running the server needs no Node, and served for a hall on slow Wi-Fi:
//!
//! - each script, style sheet and the Automerge WASM under a name holding a hash of its bytes
//!   (`/assets/app.3f2a….js`), so it can be cached for a year as `immutable`: a reload asks
//!   for nothing but the page, and a new build has new names;
//! - compressed ahead of time (brotli and gzip copies made by `web/build.mjs`), the best one
//!   the browser accepts sent;
//! - with an `ETag`, the page too: the page is `no-cache` (it names the current assets), so a
//!   reload costs one `304 Not Modified`.

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One built file with its precompressed copies.
pub struct Asset {
    /// Its path in `web/dist`, and in the page before hashing (`/app.js`).
    pub source: &'static str,
    pub content_type: &'static str,
    raw: &'static [u8],
    gzip: &'static [u8],
    brotli: &'static [u8],
    /// `/assets/app.<hash>.js`.
    pub url: String,
    etag: String,
}

impl std::fmt::Debug for Asset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Asset")
            .field("url", &self.url)
            .field("bytes", &self.raw.len())
            .finish()
    }
}

macro_rules! built {
    ($name:literal, $ctype:literal) => {
        (
            $name,
            $ctype,
            include_bytes!(concat!("../../../web/dist/", $name)).as_slice(),
            include_bytes!(concat!("../../../web/dist/", $name, ".gz")).as_slice(),
            include_bytes!(concat!("../../../web/dist/", $name, ".br")).as_slice(),
        )
    };
}

const PAGE: &[u8] = include_bytes!("../../../web/src/index.html");

/// The hex of the first 8 bytes of SHA-256: enough to tell builds apart.
fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The hashed files, computed once.
pub fn assets() -> &'static [Asset] {
    static ASSETS: OnceLock<Vec<Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        [
            built!("app.js", "text/javascript; charset=utf-8"),
            built!("app.css", "text/css; charset=utf-8"),
            built!("automerge.wasm", "application/wasm"),
        ]
        .into_iter()
        .map(|(source, content_type, raw, gzip, brotli)| {
            let hash = short_hash(raw);
            let url = match source.rsplit_once('.') {
                Some((stem, ext)) => format!("/assets/{stem}.{hash}.{ext}"),
                None => format!("/assets/{source}.{hash}"),
            };
            Asset {
                source,
                content_type,
                raw,
                gzip,
                brotli,
                url,
                etag: format!("\"{hash}\""),
            }
        })
        .collect()
    })
}

/// The page, naming the hashed files, and its ETag.
fn page() -> &'static (String, String) {
    static PAGE_NOW: OnceLock<(String, String)> = OnceLock::new();
    PAGE_NOW.get_or_init(|| {
        let mut html = String::from_utf8_lossy(PAGE).into_owned();
        for a in assets() {
            // Only the attribute values that name the file: `"/app.js"`.
            html = html.replace(&format!("\"/{}\"", a.source), &format!("\"{}\"", a.url));
        }
        let etag = format!("\"{}\"", short_hash(html.as_bytes()));
        (html, etag)
    })
}

/// Whether the browser already has this version (`If-None-Match` names its ETag or `*`).
fn fresh(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t.trim_start_matches("W/") == etag
            })
        })
}

/// Which encoding to send: brotli, then gzip, if accepted with a non-zero quality.
fn accepted(headers: &HeaderMap, coding: &str) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            name.eq_ignore_ascii_case(coding) && q > 0.0
        })
}

/// `GET /assets/{name}`: a hashed file, or 404 for a name this build does not have (a page of
/// an older build asks again after its reload).
pub fn asset(name: &str, headers: &HeaderMap) -> Response {
    let Some(a) = assets()
        .iter()
        .find(|a| a.url.strip_prefix("/assets/") == Some(name))
    else {
        return (StatusCode::NOT_FOUND, "no such asset in this build\n").into_response();
    };
    let mut r = if fresh(headers, &a.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if accepted(headers, "br") {
        let mut r = a.brotli.into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
        r
    } else if accepted(headers, "gzip") {
        let mut r = a.gzip.into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        a.raw.into_response()
    };
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Ok(v) = HeaderValue::from_str(&a.etag) {
        h.insert(header::ETAG, v);
    }
    r
}

/// What the page may load and run: its own script and the Automerge WASM (compiled from its
/// own server), its own styles (inline ones too: the report is shown inline in a sandboxed
/// frame, which inherits this policy), its own server to connect to, and no framing by other
/// sites.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The page itself: small and revalidated every time (it names the current build).
pub fn index(headers: &HeaderMap) -> Response {
    let (html, etag) = page();
    let mut r = if fresh(headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        html.clone().into_response()
    };
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: header::HeaderName, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn the_page_names_hashed_files_that_are_served() {
        let (html, _) = page();
        for a in assets() {
            assert!(html.contains(&a.url), "the page names {}", a.url);
            let name = a.url.trim_start_matches("/assets/");
            assert_eq!(asset(name, &HeaderMap::new()).status(), StatusCode::OK);
        }
        assert!(!html.contains("\"/app.js\""), "{html}");
        assert_eq!(
            asset("app.0000000000000000.js", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn encodings_follow_what_the_browser_accepts() {
        let name = assets()[0].url.trim_start_matches("/assets/").to_string();
        let enc = |accept: &'static str| {
            asset(&name, &with(header::ACCEPT_ENCODING, accept))
                .headers()
                .get(header::CONTENT_ENCODING)
                .map(|v| v.to_str().unwrap_or("").to_string())
        };
        assert_eq!(enc("gzip, deflate, br, zstd").as_deref(), Some("br"));
        assert_eq!(enc("gzip, deflate").as_deref(), Some("gzip"));
        assert_eq!(enc("br;q=0, gzip;q=0.5").as_deref(), Some("gzip"));
        assert_eq!(enc("identity").as_deref(), None);
    }

    #[test]
    fn a_known_version_is_not_sent_again() {
        let a = &assets()[2];
        let name = a.url.trim_start_matches("/assets/");
        let first = asset(name, &HeaderMap::new());
        let etag = first.headers()[header::ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(asset(name, &again).status(), StatusCode::NOT_MODIFIED);
        let page_etag = index(&HeaderMap::new()).headers()[header::ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, page_etag);
        assert_eq!(index(&again).status(), StatusCode::NOT_MODIFIED);
    }
}
