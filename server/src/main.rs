//! `toron-server`: the sync server binary. See `toron_server::cli`.

fn main() -> anyhow::Result<()> {
    toron_server::cli::main()
}
