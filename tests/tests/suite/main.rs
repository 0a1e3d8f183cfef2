//! The end-to-end suite: one test binary, one module per concern (one file each, as before).
//!
//! Every module starts real servers on `127.0.0.1:0` with real sled in temp directories, and
//! real clients. They are one binary, not one per file, because each binary links the whole
//! server (and the PDF typesetter): thirty-eight of them were ten gigabytes of links and
//! filled CI's disk. Run one concern with `cargo test -p toron-tests --test suite sync::`.

mod admin;
mod after_session;
mod anchors;
mod attacks;
mod backup;
mod bad_bundles;
mod bounds;
mod cli;
mod cluster_crash;
mod cluster_interop;
mod cluster_jetstream;
mod cluster_nodes;
mod cluster_views;
mod crash;
mod debate;
mod drill;
mod durability;
mod fuzz_properties;
mod golden;
mod history;
mod hostile_input;
mod import_warnings;
mod js_properties;
mod layout;
mod load_generator;
mod metrics;
mod node_interop;
mod permissions;
mod prepared;
mod presence;
mod red_team;
mod red_team_2;
mod red_team_network;
mod report_files;
mod samod_interop;
mod sync;
mod three_clients;
mod timeline;
mod token_secrecy;
mod verify;
mod vocab;
mod w3c;
mod web_e2e;
