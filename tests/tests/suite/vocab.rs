//! The web client's vocabulary is the domain's (issue 31, point 2): `web/src/vocab.json` is
//! what `toron_domain::vocab::json()` gives, so a kind, status or word changed in
//! domain/src/vocab.rs reaches the page or this test fails. `TORON_GOLDEN=write` writes it
//! (then rebuild the page: `cd web && node build.mjs`).

use std::path::Path;

#[test]
fn the_web_clients_vocabulary_is_the_domains() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/src/vocab.json");
    let want = format!(
        "{}\n",
        serde_json::to_string_pretty(&toron_domain::vocab::json()).expect("json")
    );
    if std::env::var("TORON_GOLDEN").as_deref() == Ok("write") {
        std::fs::write(&file, &want).expect("write vocab.json");
        return;
    }
    let have = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        have == want,
        "web/src/vocab.json is not the domain's vocabulary: run `TORON_GOLDEN=write cargo test -p toron-tests --test suite vocab::` and `cd web && node build.mjs`"
    );
}
