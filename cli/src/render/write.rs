//! Writing a rendered file so that no reader ever sees part of it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

/// Whether a write changed the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteOutcome {
    /// The file already had these contents and this mode.
    Unchanged,
    /// The file was created or replaced.
    Written,
}

/// Writes `contents` to `destination` with `mode`.
///
/// The bytes go to a temporary file in the same folder, created with
/// `mode` (and set to it again, since the umask may have cleared bits),
/// flushed to disk, and renamed over the destination. A rename within one
/// file system is atomic, so a reader opens either the old file or the new
/// one, never a half-written one. A missing folder is created, readable by
/// the owner only.
pub(crate) fn write_atomically(destination: &Path, contents: &[u8], mode: u32) -> io::Result<WriteOutcome> {
    if is_current(destination, contents, mode)? {
        return Ok(WriteOutcome::Unchanged);
    }

    let folder = match destination.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !folder.exists() {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&folder)?;
    }

    let temporary = temporary_path(&folder, destination);
    let result = write_temporary(&temporary, contents, mode).and_then(|()| fs::rename(&temporary, destination));
    if let Err(error) = result {
        let _ = fs::remove_file(&temporary);
        return Err(error);
    }
    // The rename is durable only once the folder's entry is on disk too.
    File::open(&folder)?.sync_all()?;
    Ok(WriteOutcome::Written)
}

fn is_current(destination: &Path, contents: &[u8], mode: u32) -> io::Result<bool> {
    let metadata = match fs::metadata(destination) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(error),
    };
    if metadata.permissions().mode() & 0o7777 != mode || metadata.len() != contents.len() as u64 {
        return Ok(false);
    }
    let existing = Zeroizing::new(fs::read(destination)?);
    Ok(existing.as_slice() == contents)
}

fn write_temporary(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Returns a name in `folder` that no other writer uses: hidden, and unique
/// per process and per write.
fn temporary_path(folder: &Path, destination: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let file_name = destination
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rendered".to_owned());
    let sequence = COUNTER.fetch_add(1, Ordering::Relaxed);
    folder.join(format!(".{file_name}.keystead-{}-{sequence}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn new_file_gets_mode_despite_umask() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("app.conf");
        assert_eq!(write_atomically(&path, b"a=1\n", 0o600).unwrap(), WriteOutcome::Written);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o7777, 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"a=1\n");
    }

    #[test]
    fn replacement_is_a_new_file() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("app.conf");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let before = fs::metadata(&path).unwrap().ino();
        let mut reader = File::open(&path).unwrap();

        write_atomically(&path, b"new contents", 0o600).unwrap();

        let mut old = String::new();
        io::Read::read_to_string(&mut reader, &mut old).unwrap();
        assert_eq!(old, "old");
        assert_ne!(fs::metadata(&path).unwrap().ino(), before);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o7777, 0o600);
        assert_eq!(fs::read_dir(folder.path()).unwrap().count(), 1);
    }

    #[test]
    fn same_contents_are_not_rewritten() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("app.conf");
        write_atomically(&path, b"same", 0o600).unwrap();
        let before = fs::metadata(&path).unwrap().ino();
        assert_eq!(write_atomically(&path, b"same", 0o600).unwrap(), WriteOutcome::Unchanged);
        assert_eq!(fs::metadata(&path).unwrap().ino(), before);
        assert_eq!(write_atomically(&path, b"same", 0o640).unwrap(), WriteOutcome::Written);
    }

    #[test]
    fn missing_folder_is_created_private() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("a/b/app.conf");
        write_atomically(&path, b"x", 0o600).unwrap();
        assert_eq!(fs::metadata(folder.path().join("a")).unwrap().permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn failed_write_leaves_no_temporary_file() {
        let folder = tempfile::tempdir().unwrap();
        let target = folder.path().join("is-a-folder");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("keep"), b"x").unwrap();
        assert!(write_atomically(&target, b"x", 0o600).is_err());
        let names: Vec<_> = fs::read_dir(folder.path()).unwrap().map(|entry| entry.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("is-a-folder")]);
    }
}
