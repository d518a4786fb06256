//! The static init and installer packer adds, chosen for the tree's architecture: given with
//! `--init` / `--installer`, else the ones scripts/build puts beside packer (`init`,
//! `installer`; `aarch64/init`, `aarch64/installer`). An ELF binary of another architecture
//! than the tree is refused: WSL would fail to run root's shell ("execvpe(...) failed").

use std::path::{Path, PathBuf};

use crate::arch::{self, Arch};
use crate::error::Error;
use crate::tree::Lookup;

#[derive(Debug, Clone)]
pub struct Binaries {
    pub init: Option<PathBuf>,
    pub installer: Option<PathBuf>,
    /// `--arch`, when the tree's own cannot or should not be taken.
    pub arch: Option<Arch>,
    /// The folder packer runs from.
    pub beside: PathBuf,
}

/// What packer adds, once the architecture is settled.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub init: PathBuf,
    pub installer: PathBuf,
}

impl Binaries {
    /// Settles the architecture (`--arch`, else the tree's, else init's own) and the binaries,
    /// refusing any that is missing or of another architecture. `installer` is checked only
    /// when the format ships it.
    pub fn choose(
        &self,
        tree: &dyn Lookup,
        source: &Path,
        needs_installer: bool,
    ) -> Result<Chosen, Error> {
        let of_tree = arch::of_tree(tree);
        if let (Some(wanted), Some((found, witness))) = (self.arch, &of_tree) {
            if wanted != *found {
                return Err(Error::Input {
                    path: source.to_owned(),
                    problem: format!(
                        "--arch {wanted} but the tree is {found} ({witness}): WSL could not run its programs"
                    ),
                });
            }
        }
        let arch = match (self.arch, &of_tree) {
            (Some(arch), _) => arch,
            (None, Some((arch, _))) => *arch,
            // No ELF shell to tell (a test tree of scripts, say): init's own architecture.
            (None, None) => {
                let init = self.path(self.init.as_ref(), Arch::X86_64, "init");
                arch::head_of(&init)
                    .ok()
                    .and_then(|h| Arch::of_elf(&h))
                    .unwrap_or(Arch::X86_64)
            }
        };
        let init = self.path(self.init.as_ref(), arch, "init");
        check(&init, arch, "init", "--init", &of_tree)?;
        let installer = self.path(self.installer.as_ref(), arch, "installer");
        if needs_installer {
            check(&installer, arch, "installer", "--installer", &of_tree)?;
        }
        Ok(Chosen { init, installer })
    }

    fn path(&self, given: Option<&PathBuf>, arch: Arch, name: &str) -> PathBuf {
        given
            .cloned()
            .unwrap_or_else(|| self.beside.join(arch.dist_dir()).join(name))
    }
}

fn check(
    path: &Path,
    arch: Arch,
    what: &str,
    flag: &str,
    of_tree: &Option<(Arch, String)>,
) -> Result<(), Error> {
    let input = |problem: String| Error::Input {
        path: path.to_owned(),
        problem,
    };
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => {
            return Err(input(format!(
            "not a file; expected the {arch} {what} (build it with scripts/build, or pass {flag})"
        )))
        }
        Err(e) => {
            return Err(input(format!(
                "{e}; expected the {arch} {what} (build it with scripts/build, or pass {flag})"
            )))
        }
    }
    let head = arch::head_of(path).map_err(|e| input(format!("cannot read it: {e}")))?;
    // A script (a test's stand-in) runs on any architecture; an ELF must be the tree's.
    if head.starts_with(b"\x7fELF") && Arch::of_elf(&head) != Some(arch) {
        let why = match of_tree {
            Some((_, witness)) => format!("the tree is {arch} ({witness})"),
            None => format!("the archive is {arch}"),
        };
        return Err(input(format!(
            "{what} is {}, but {why}: pass the {arch} {what} with {flag}",
            Arch::describe_elf(&head)
        )));
    }
    Ok(())
}
