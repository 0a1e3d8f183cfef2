//! Runs the Node interop check (`tests/node/interop.mjs`): the official JavaScript
//! automerge-repo 2.5.6 client, pinned by `tests/node/package-lock.json`, against the real
//! server binary. Installs the packages with `npm ci` on first use.

use std::path::Path;
use std::process::Command;

#[test]
fn official_javascript_client_interoperates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("node");
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "this check needs Node.js (20 or newer) and npm on PATH"
    );
    if !dir.join("node_modules/@automerge/automerge-repo").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("run npm ci");
        assert!(status.success(), "npm ci failed in {}", dir.display());
    }
    let out = Command::new("node")
        .arg("interop.mjs")
        .current_dir(&dir)
        .env("TORON_SERVER_BIN", env!("CARGO_BIN_EXE_e2e-toron-server"))
        .env("TORON_BIN", env!("CARGO_BIN_EXE_e2e-toron"))
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "interop check failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("5 passed, 0 failed"), "{stdout}");
}
