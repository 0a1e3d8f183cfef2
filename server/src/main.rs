//! `toron-server`: the sync server binary. See `toron_server::cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    match toron_server::cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("toron-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}
