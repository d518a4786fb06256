//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  packer --rootfs ./result/tarball/nixos-system.tar.gz --out nixos-wsl-installer.tar.gz
  packer --rootfs /srv/rootfs --format rootfs --out nixos.tar.gz
  packer --rootfs /srv/rootfs --out NixOS.wsl --name NixOS --icon nixos.ico --default-uid 1000
  packer check NixOS.wsl

Formats:
  installer  (default) a tiny hardlink-free distribution whose root shell is the installer; the
             root filesystem travels inside it as a payload that keeps its hard links
  rootfs     a hardlink-free root filesystem tar.gz for `wsl --import`
  wsl        the same as a .wsl file with /etc/wsl-distribution.conf (implied by a .wsl name)

Every root filesystem gets init as root's shell (its old shell goes to
/etc/nixos-wsl/init.conf; an existing init.conf is kept), packer's settings first in
/etc/wsl.conf, and, unless it is NixOS, the systemd units that fight WSL masked.
  --systemd native (default for .wsl): [boot] systemd=true, /sbin/init is init, and the user
    is WSL's default user ([user] default, in a .wsl too), so sessions, `wsl -e` and /mnt/c
    are the user's, inside systemd; `wsl -u root` gives root's real shell.
  --systemd wrapper (default for rootfs and installer: any WSL 2, and the installer's first
    start has no systemd): [user] default=root, /sbin/init where the source has none, and
    [automount] options with the user's uid= and gid= so /mnt/c belongs to the user. Nothing is written through a symlink of the source. A NixOS system
whose activation would replace init as root's shell is refused: build it with the toolkit's
NixOS module.

Environment:
  SOURCE_DATE_EPOCH  no time in the archive is later (default 1, like the Nix store)

Exit codes: 0 done; 1 failed (the message names the file and the problem), or `check` found
errors; 2 usage error. Ctrl-C, SIGTERM and SIGHUP remove packer's temporary files, then end
it by that signal (128+N in a shell). Nothing is left behind on failure either.";

#[derive(Debug, Parser)]
#[command(name = "packer", version, about = "Packs a root filesystem into archives WSL imports: reproducible, hardlink-free, fast", after_help = EXAMPLES, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub pack: PackArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Reports what WSL's import or Microsoft's distribution validator rejects (errors, exit 1)
    /// or warns about (warnings, exit 0).
    Check {
        /// A tar or tar.gz (.wsl) archive.
        archive: PathBuf,
        /// The architecture the archive is for (default: its /bin/sh's); /bin/sh, /bin/bash,
        /// /sbin/init and init must be of it (the validator's --arm64).
        #[arg(long, value_enum)]
        arch: Option<ArchArg>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Installer,
    Rootfs,
    Wsl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SystemdArg {
    Native,
    Wrapper,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchArg {
    #[value(name = "x86_64", alias = "x86-64", alias = "amd64")]
    X86_64,
    #[value(name = "aarch64", alias = "arm64")]
    Aarch64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeflaterArg {
    Libdeflate,
    ZlibRs,
    Miniz,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// The root filesystem: a directory, or a tar, tar.gz or tar.xz (told by content).
    #[arg(long, value_name = "SRC")]
    pub rootfs: Option<PathBuf>,
    /// The archive to write: a new name or a regular file it replaces (a `.wsl` name implies --format wsl).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Distribution name for wsl-distribution.conf (oobe.defaultName).
    #[arg(long)]
    pub name: Option<String>,
    /// Icon (.ico, at most 1 MiB) for the Windows shortcut, copied into the tree.
    #[arg(long, value_name = "FILE")]
    pub icon: Option<PathBuf>,
    /// Command WSL runs once as root on the first interactive start (default in a native .wsl
    /// of a tree that ships its user: packer's own, which the held-back user goes with).
    #[arg(long, value_name = "CMD")]
    pub oobe_command: Option<String>,
    /// uid WSL starts as after the OOBE (oobe.defaultUid; default in a native .wsl: the user's).
    #[arg(long, value_name = "UID")]
    pub default_uid: Option<u32>,
    /// User init drops WSL's shells to (default: the source's /etc/wsl.conf [user] default, else root).
    #[arg(long, value_name = "USER")]
    pub default_user: Option<String>,
    /// How systemd runs (default: native for .wsl, wrapper for rootfs and installer; a
    /// NixOS tree keeps the mode its declared wsl.conf says). native: WSL boots systemd (`[boot]
    /// systemd=true`, /sbin/init is init) and starts the user directly; wrapper: WSL starts
    /// root, whose shell, init, starts systemd and drops to the user (WSL without systemd
    /// support).
    #[arg(long, value_enum, value_name = "MODE")]
    pub systemd: Option<SystemdArg>,
    /// gzip level.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub level: u32,
    /// Compression threads (default: all cores); the output is the same for any number.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// The tree's architecture (default: the ELF machine of its /bin/sh, or of the NixOS
    /// system's programs); init and installer must match it.
    #[arg(long, value_enum)]
    pub arch: Option<ArchArg>,
    /// The static init binary (default: `init` next to packer; `aarch64/init` for aarch64).
    #[arg(long, value_name = "PATH")]
    pub init: Option<PathBuf>,
    /// The static installer binary (default: `installer` next to packer; `aarch64/installer`
    /// for aarch64).
    #[arg(long, value_name = "PATH")]
    pub installer: Option<PathBuf>,
    /// No progress bar and no summary (warnings and errors still show).
    #[arg(long, short)]
    pub quiet: bool,
    /// Deflate implementation (for benchmarks).
    #[arg(long, value_enum, default_value_t = DeflaterArg::Libdeflate, hide = true)]
    pub deflate: DeflaterArg,
}

impl From<ArchArg> for crate::arch::Arch {
    fn from(arg: ArchArg) -> Self {
        match arg {
            ArchArg::X86_64 => crate::arch::Arch::X86_64,
            ArchArg::Aarch64 => crate::arch::Arch::Aarch64,
        }
    }
}
