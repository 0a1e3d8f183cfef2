//! The real `toron-server` command line, built inside this package so that its tests can
//! start it as a child process.

fn main() -> std::process::ExitCode {
    toron_server::cli::main()
}
