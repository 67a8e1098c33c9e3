//! The `strongroom` binary's commands as a library, so the fuzz targets
//! (`fuzz/`) drive the real configuration loader and audit-export verifier.
//! `main.rs` is the command line over these modules.
#![forbid(unsafe_code)]

pub mod audit;
pub mod config;
pub mod copy;
pub mod kek;
pub mod kms_check;
pub mod serve;
pub mod store;
pub mod transport;
