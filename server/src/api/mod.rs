//! The HTTP API under `/api/v1`, one module per resource, and the web client's pages.

pub mod admin;
pub mod assets;
pub mod export;
pub mod history;
pub mod import;
pub mod invite;
pub mod me;
pub mod prepare;
pub mod render;
pub mod report;
pub mod timeline;
pub mod typeset;

pub mod auth;
pub mod error;
pub mod state;
