//! Temporary files next to the output: removed on every error path (on drop), renamed into
//! place only when everything succeeded.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::Error;

pub struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    /// Creates `.<output name>.<tag>.<pid>.tmp` in the output's folder.
    pub fn create_next_to(output: &Path, tag: &str) -> Result<(Self, File), Error> {
        let dir = output
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "packer".into());
        let path = dir.join(format!(".{name}.{tag}.{}.tmp", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::write(&path, e))?;
        Ok((Self { path, armed: true }, file))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the finished file to `output` (same folder, so the rename is atomic).
    pub fn persist(mut self, output: &Path) -> Result<(), Error> {
        fs::rename(&self.path, output).map_err(|e| Error::write(output, e))?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}
