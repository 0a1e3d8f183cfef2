//! What an operator runs beside serving: backups (taken live through the control socket),
//! restores, and `verify` (the log against its checksums and the derived views).

pub mod backup;
pub mod backup_file;
#[cfg(unix)]
pub mod control;
pub mod verify;
