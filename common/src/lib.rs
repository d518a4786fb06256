//! Formats and facts shared by `packer` (which writes them), `installer` and `init` (which read
//! them). Std only, no `unsafe`: every binary links it.

pub mod init_config;
pub mod manifest;
pub mod paths;
pub mod units;
