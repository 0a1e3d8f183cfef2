//! Read models derived from the log: the session timeline (`projection`) and loaded copies
//! of documents for the history API (`history_cache`). Both can be rebuilt from the log.

pub mod history_cache;
pub mod projection;
