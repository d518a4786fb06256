//! `init`: root's login shell and `/sbin/init` of a NixOS-WSL distribution. It starts systemd
//! once as PID 1 of its own PID and mount namespaces and runs the default user's shell inside,
//! or, as PID 1 (native mode), prepares and becomes systemd. See `init --help` and docs/init.md.

// A shell wrapper must never die on something a user can cause.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod args;
mod commands;
mod config;
mod enter;
mod env;
mod error;
mod first_boot;
mod first_boot_account;
mod handle;
mod leftover;
mod lock;
mod namespace;
mod native;
mod place;
mod readiness;
mod set_environment;
mod shell;
mod sys;
mod user;
mod user_shell;
mod wrapper;
mod wsl_default_user;
mod wslg;

use std::process::ExitCode;

/// dlmalloc instead of musl's malloc, which maps and unmaps memory for each small file read.
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

use args::Mode;
use error::Error;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            say!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run() -> Result<ExitCode, Error> {
    let mode = args::parse(std::env::args_os().collect(), sys::pid()).map_err(Error::Usage)?;
    match mode {
        Mode::Native => native::run(),
        Mode::Help => {
            sys::write_quietly(1, args::HELP.as_bytes());
            Ok(ExitCode::SUCCESS)
        }
        Mode::Version => {
            sys::write_quietly(
                1,
                concat!("init ", env!("CARGO_PKG_VERSION"), "\n").as_bytes(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Mode::Status => commands::status(),
        Mode::Shutdown => commands::shutdown(),
        Mode::Recovery => commands::recovery(),
        Mode::WslgLinks => wslg::links_command(),
        // A user other than root whose shell is init (WSL starts it directly in native mode).
        Mode::Shell { login, args } if sys::euid() != 0 => Err(user_shell::run(login, &args)),
        Mode::Shell { login, args } => wrapper::run(login, &args),
    }
}
