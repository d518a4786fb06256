//! `wsl --install --from-file X.wsl` and its OOBE. `wsl --import` never runs OOBE
//! (`LXSS_IMPORT_DISTRO_FLAGS_NO_OOBE`, WslClient.cpp:314); an install does, on an interactive
//! start without a command (LxssInstance.cpp:671-674): `oobe.command` of
//! /etc/wsl-distribution.conf as root through `/bin/sh -c`, retried at every such start until
//! it exits 0; then that same session runs as `oobe.defaultUid`, which becomes the
//! distribution's default uid (init.cpp:625-676, LxssInstance.cpp:565-578).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use super::error::{Error, Result};
use super::state::State;
use super::{import, sys, wsl_conf};

/// What Windows keeps about the distribution: `RunOOBE` and `DefaultUid`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Registry {
    pub run_oobe: bool,
    pub default_uid: u32,
}

impl Registry {
    pub fn read(state: &State) -> Self {
        let text = fs::read_to_string(state.registry_path()).unwrap_or_default();
        let mut registry = Self::default();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("RunOOBE", v)) => registry.run_oobe = v == "1",
                Some(("DefaultUid", v)) => registry.default_uid = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        registry
    }

    fn write(self, file: &mut File) -> std::io::Result<()> {
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        write!(
            file,
            "RunOOBE={}\nDefaultUid={}\n",
            u8::from(self.run_oobe),
            self.default_uid
        )
    }

    /// The registry file, opened for an update after the session.
    pub fn open(&self, state: &State) -> Option<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(state.registry_path())
            .ok()
    }

    /// Applies a relay's OOBE result (`ok UID` with -1 for none, or `failed`).
    pub fn record_result(file: &mut File, result: &str) {
        let mut words = result.split_whitespace();
        if words.next() != Some("ok") {
            return;
        }
        let text = {
            use std::io::Read;
            let mut s = String::new();
            let _ = file.seek(SeekFrom::Start(0));
            let _ = file.read_to_string(&mut s);
            s
        };
        let mut registry = Self {
            run_oobe: false,
            default_uid: text
                .lines()
                .find_map(|l| l.strip_prefix("DefaultUid="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        };
        if let Some(uid) = words.next().and_then(|w| w.parse::<i64>().ok()) {
            if let Ok(uid) = u32::try_from(uid) {
                registry.default_uid = uid;
            }
        }
        let _ = registry.write(file);
    }
}

/// `wsl-sim install FILE DIR`: an import, then OOBE pending.
pub fn install(file: &Path, dir: &Path) -> Result<()> {
    import::import(file, dir)?;
    let state = State::for_distro(dir)?;
    let path = state.registry_path();
    let mut out = File::create(&path).map_err(|e| Error::io("cannot write", &path, e))?;
    Registry {
        run_oobe: true,
        default_uid: 0,
    }
    .write(&mut out)
    .map_err(|e| Error::io("cannot write", &path, e))
}

pub enum Outcome {
    Failed,
    Done { default_uid: Option<u32> },
}

/// Runs `oobe.command` as root on the session's descriptors with its environment.
pub fn run(stdio: &[Option<i32>; 3], env: &[(OsString, OsString)]) -> Outcome {
    let entries = fs::read_to_string("/etc/wsl-distribution.conf")
        .map(|t| wsl_conf::entries(&t).0)
        .unwrap_or_default();
    let value = |key: &str| {
        entries
            .iter()
            .find(|e| e.key.eq_ignore_ascii_case(key))
            .map(|e| e.value.clone())
    };
    let default_uid = value("oobe.defaultUid").and_then(|v| v.parse().ok());
    let Some(command) = value("oobe.command").filter(|c| !c.is_empty()) else {
        return Outcome::Done { default_uid };
    };
    let mut child = Command::new("/bin/sh");
    child.arg0("sh").arg("-c").arg(&command).env_clear();
    for (k, v) in env {
        child.env(k, v);
    }
    sys::ChildSetup {
        groups: vec![0],
        gid: 0,
        uid: 0,
        new_session: true,
        controlling_tty: stdio.iter().flatten().copied().find(|&fd| sys::isatty(fd)),
        stdio: *stdio,
        cwd: None,
    }
    .install(&mut child);
    let ok = child.status().is_ok_and(|s| s.success());
    if ok {
        Outcome::Done { default_uid }
    } else {
        let _ = sys::write_fd_all(
            2,
            format!("OOBE command \"{command}\" failed, exiting\n").as_bytes(),
        );
        Outcome::Failed
    }
}
