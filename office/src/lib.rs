//! The report as the district office files it.
pub mod hwpx;
#[cfg(feature = "pdf")]
pub mod pdf;
