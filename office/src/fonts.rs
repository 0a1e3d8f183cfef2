//! Where the Korean fonts are: the system's Noto Sans CJK (Debian's `fonts-noto-cjk`), or the
//! folder `TORON_FONT_DIR` names. The PDF embeds them; the HWPX's chart images are drawn with
//! them.

use std::path::{Path, PathBuf};

/// The regular and the bold face, in this order.
pub const FONT_FILES: [&str; 2] = ["NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc"];

fn font_dirs() -> Vec<PathBuf> {
    match std::env::var_os("TORON_FONT_DIR") {
        Some(d) => vec![PathBuf::from(d)],
        None => [
            "/usr/share/fonts/opentype/noto",
            "/usr/share/fonts/noto-cjk",
            "/usr/share/fonts/google-noto-cjk",
            "/usr/local/share/fonts",
        ]
        .iter()
        .map(PathBuf::from)
        .collect(),
    }
}

fn find(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// The bytes of each of `names`, in order, or which is missing where.
pub fn read(names: &[&str]) -> Result<Vec<Vec<u8>>, String> {
    let dirs = font_dirs();
    names
        .iter()
        .map(|name| {
            let path = find(&dirs, name).ok_or_else(|| {
                format!(
                    "{name} is in none of {}",
                    dirs.iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect()
}

/// Where the fonts were found: for the server's start-up log.
pub fn font_folder() -> Option<PathBuf> {
    let dirs = font_dirs();
    find(&dirs, FONT_FILES[0]).and_then(|p| p.parent().map(Path::to_path_buf))
}
