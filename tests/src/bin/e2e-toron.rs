//! The real `toron` command line, built inside this package so that its tests can run it.

fn main() -> std::process::ExitCode {
    toron_cli::cli::main()
}
