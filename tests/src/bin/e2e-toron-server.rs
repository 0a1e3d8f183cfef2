//! The real `toron-server` command line, built inside this package so that its tests can
//! start it as a child process.

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
