//! packer: turns a root filesystem into archives WSL imports. See `packer --help` and
//! docs/packer.md.

mod arch;
mod binaries;
mod check;
mod cli;
mod deflate_walk;
mod edits;
mod entry;
mod error;
mod gzip;
mod header;
mod icon;
mod incompressible;
mod json;
mod nixos;
mod pack;
mod placement;
mod progress;
mod reserved;
mod sink;
mod source_dir;
mod source_tar;
mod sys;
mod tar_head;
mod temp;
mod tmpfiles_unit;
mod tree;
mod validator;
mod wsl_conf;
mod xattr;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use arch::Arch;
use binaries::Binaries;
use cli::{Cli, Command, DeflaterArg, FormatArg, SystemdArg};
use edits::{DistributionConf, Systemd};
use error::Error;
use gzip::Deflater;
use pack::{Format, Options};

/// mtime of everything when SOURCE_DATE_EPOCH is not set (what the Nix store uses).
const DEFAULT_EPOCH: i64 = 1;

fn main() -> ExitCode {
    remove_temporary_files_on_termination();
    match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("packer: {error}");
            match error {
                Error::Usage(_) => ExitCode::from(2),
                _ => ExitCode::from(1),
            }
        }
    }
}

fn run() -> Result<ExitCode, Error> {
    let cli = Cli::parse();
    if let Some(Command::Check { archive, arch }) = cli.command {
        return check::run(&archive, arch.map(Arch::from));
    }
    let args = cli.pack;
    let (Some(source), Some(output)) = (args.rootfs, args.out) else {
        return Err(Error::Usage(
            "--rootfs SRC and --out FILE are required".into(),
        ));
    };
    let format = match args.format {
        Some(FormatArg::Installer) => Format::Installer,
        Some(FormatArg::Rootfs) => Format::Rootfs,
        Some(FormatArg::Wsl) => Format::Wsl,
        None if output.extension().is_some_and(|e| e == "wsl") => Format::Wsl,
        None => Format::Installer,
    };
    if format != Format::Wsl
        && (args.icon.is_some() || args.oobe_command.is_some() || args.default_uid.is_some())
    {
        return Err(Error::Usage(
            "--icon, --oobe-command and --default-uid belong to --format wsl".into(),
        ));
    }
    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) => value.trim().parse::<i64>().map_err(|_| {
            Error::Usage(format!(
                "SOURCE_DATE_EPOCH must be whole seconds, not {value:?}"
            ))
        })?,
        Err(_) => DEFAULT_EPOCH,
    };
    let threads = args.threads.map(|t| t as usize).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
    });
    let options = Options {
        source,
        output,
        format,
        level: args.level,
        threads,
        deflater: match args.deflate {
            DeflaterArg::Libdeflate => Deflater::Libdeflate,
            DeflaterArg::ZlibRs => Deflater::ZlibRs,
            DeflaterArg::Miniz => Deflater::Miniz,
        },
        binaries: Binaries {
            init: args.init,
            installer: args.installer,
            arch: args.arch.map(Arch::from),
            beside: beside_me(),
        },
        default_user: args.default_user,
        systemd: args.systemd.map(|mode| match mode {
            SystemdArg::Native => Systemd::Native,
            SystemdArg::Wrapper => Systemd::Wrapper,
        }),
        distribution: Some(DistributionConf {
            name: args.name.unwrap_or_else(|| "NixOS".into()),
            icon: args.icon,
            oobe_command: args.oobe_command,
            default_uid: args.default_uid,
        }),
        epoch,
        quiet: args.quiet,
    };
    pack::pack(&options)?;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C, SIGTERM and SIGHUP remove packer's temporary files, then end packer by that
/// signal. Blocked before any other thread exists, so the compressor threads inherit the mask
/// and only this thread takes them.
fn remove_temporary_files_on_termination() {
    sys::block_termination();
    std::thread::spawn(|| {
        let signal = sys::wait_for_termination();
        let _held = temp::remove_all_for_exit();
        sys::die_of(signal)
    });
}

/// The folder packer runs from: scripts/build puts init and installer there (target/dist).
fn beside_me() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_default()
}
