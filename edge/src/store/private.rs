//! Owner-only permissions for the store: it holds quarantined and queued message bodies and
//! sender numbers, so the directory is 0700 and its files 0600 whatever the process umask.
//!
//! sled creates its own files (`conf`, `db`, `blobs/`, snapshots) with the umask's mode, so
//! they are tightened after opening and at every flush; between two passes a new sled file
//! may briefly carry the umask's mode, but nobody else can reach it through the 0700
//! directory. Decision-log segments are created 0600 from the start.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::Path;

/// Mode of the store directory and the directories in it.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file in the store.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) owner-only, and makes an existing one owner-only.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)?;
    set_mode(dir, DIR_MODE)
}

/// Makes every file in `dir` 0600 and every directory 0700, one level of subdirectories deep
/// (sled's `blobs`).
pub fn restrict(dir: &Path) -> io::Result<()> {
    set_mode(dir, DIR_MODE)?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            set_mode(&entry.path(), DIR_MODE)?;
            for inner in fs::read_dir(entry.path())? {
                let inner = inner?;
                if inner.file_type()?.is_file() {
                    set_mode(&inner.path(), FILE_MODE)?;
                }
            }
        } else if kind.is_file() {
            set_mode(&entry.path(), FILE_MODE)?;
        }
    }
    Ok(())
}

/// Options that create a file owner-only (the umask can only narrow the mode further).
pub fn private_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}
