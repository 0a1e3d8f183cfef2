//! `toron-server`: the sync server binary. See `toron_server::cli`.

fn main() -> std::process::ExitCode {
    toron_server::cli::main()
}
