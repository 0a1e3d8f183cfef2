//! `toron`: the command-line client of Toron. See `toron_cli::cli`.

fn main() -> std::process::ExitCode {
    toron_cli::cli::main()
}
