//! Loading init's configuration: a missing file gives the defaults; bad lines are reported
//! with their number and the rest still applies. Never fatal.

use std::io::ErrorKind;

use wsl_common::init_config::InitConfig;
use wsl_common::paths;

pub fn load() -> InitConfig {
    match crate::sys::read_file(paths::INIT_CONFIG) {
        Ok(bytes) => {
            let (config, errors) = InitConfig::parse(&String::from_utf8_lossy(&bytes));
            for error in errors {
                crate::say!("{}: {error}; using the default for it", paths::INIT_CONFIG);
            }
            config
        }
        Err(e) if e.kind() == ErrorKind::NotFound => InitConfig::default(),
        Err(e) => {
            crate::say!("cannot read {}: {e}; using defaults", paths::INIT_CONFIG);
            InitConfig::default()
        }
    }
}
