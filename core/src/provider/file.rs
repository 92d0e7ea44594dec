//! `file://PATH`: the contents of a file.
//!
//! `file:///run/secrets/db` reads an absolute path; `file://config/token`
//! reads a path relative to the working directory. The file is re-read on
//! every refresh, which by default comes every few seconds, so a file
//! rewritten in place or replaced by a symlink swap (as Kubernetes does for
//! mounted secrets) is picked up; the cache notifies subscribers only when
//! the bytes changed.

use std::io::ErrorKind;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Error, ErrorClass};
use crate::provider::{Fetched, Provider};
use crate::reference::Reference;
use crate::secret::SecretValue;

/// How often a file is re-read. Kubernetes takes up to a minute or more to
/// project an updated secret into a pod, so five seconds adds little delay
/// and one `read` every five seconds costs nothing measurable.
pub const FILE_DEFAULT_TTL: Duration = Duration::from_secs(5);

/// Largest file read, so that a reference pointing at a log file or a
/// device does not fill memory. Secrets are small; certificate bundles fit.
pub const FILE_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// Reads files. Contents that are valid UTF-8 are text; others are binary.
#[derive(Clone, Copy, Debug, Default)]
pub struct FileProvider;

#[async_trait]
impl Provider for FileProvider {
    fn scheme(&self) -> &'static str {
        "file"
    }

    fn validate(&self, reference: &Reference) -> Result<(), Error> {
        reference.check_query_keys(&[])
    }

    fn default_ttl(&self) -> Option<Duration> {
        Some(FILE_DEFAULT_TTL)
    }

    async fn fetch(&self, reference: &Reference) -> Result<Fetched, Error> {
        let path = reference.path().to_owned();
        let bytes = tokio::task::spawn_blocking(move || read_bounded(&path))
            .await
            .map_err(|_| Error::new(ErrorClass::Internal, "the file read task failed"))??;
        let mut fetched = Fetched::new(SecretValue::detect(bytes));
        fetched.name = Some(reference.path().to_owned());
        Ok(fetched)
    }
}

fn read_bounded(path: &str) -> Result<Vec<u8>, Error> {
    use std::io::Read;

    let file = open_without_blocking(path)?;
    let metadata = file.metadata().map_err(|error| map_io(path, &error))?;
    if metadata.is_dir() {
        return Err(Error::new(
            ErrorClass::NotFound,
            format!("{path} is a directory, not a file"),
        ));
    }
    if !metadata.is_file() {
        // A FIFO, socket or device could block forever or never end.
        return Err(Error::new(
            ErrorClass::InvalidReference,
            format!("{path} is not a regular file (a FIFO, socket or device); point the reference at a file"),
        ));
    }
    let mut bytes = Vec::with_capacity(metadata.len().min(FILE_MAX_BYTES) as usize);
    let read = file
        .take(FILE_MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| map_io(path, &error))?;
    if read as u64 > FILE_MAX_BYTES {
        zeroize::Zeroize::zeroize(&mut bytes);
        return Err(Error::new(
            ErrorClass::InvalidReference,
            format!("{path} is larger than {FILE_MAX_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}

/// Opens `path` for reading. On Unix the open does not block, because
/// opening a FIFO that has no writer would otherwise wait forever on a
/// thread that shutdown then waits for.
fn open_without_blocking(path: &str) -> Result<std::fs::File, Error> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path).map_err(|error| map_io(path, &error))
}

fn map_io(path: &str, error: &std::io::Error) -> Error {
    let class = match error.kind() {
        ErrorKind::NotFound | ErrorKind::NotADirectory => ErrorClass::NotFound,
        ErrorKind::PermissionDenied => ErrorClass::AccessDenied,
        ErrorKind::InvalidInput | ErrorKind::InvalidFilename => ErrorClass::InvalidReference,
        _ => ErrorClass::Unavailable,
    };
    Error::new(class, format!("cannot read {path}: {error}"))
}
