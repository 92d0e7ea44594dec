//! Client handles: creating, reading through and closing a client.

use std::ffi::c_char;
use std::future::Future;
use std::time::Duration;

use keystead::{BlockingClient, Client, Config, Error, ErrorClass, Secret};
use parking_lot::RwLock;
use tokio_util::sync::CancellationToken;

use crate::arguments::{guard, handle, reference, text, write_out};
use crate::cancel::CancelToken;
use crate::error::{cancelled, closed, report, ErrorHandle};
use crate::metrics::Metrics;
use crate::secret::SecretHandle;
use crate::status::{timeout_from_millis, Status};

/// A keystead client with its own background threads. Safe to use from
/// many threads at once. Close it with `keystead_client_close` and free it
/// with `keystead_client_free`.
pub struct ClientHandle {
    /// Serves the calls that never wait (cached reads, invalidation,
    /// metrics) without taking `owner`'s lock.
    client: Client,
    /// Owns the runtime; `None` once the client is closed. Blocking calls
    /// hold the read lock while they wait, and closing takes the write lock.
    owner: RwLock<Option<BlockingClient>>,
    /// Cancelled by `close` so that blocking calls in flight return at once
    /// and release the read lock.
    closing: CancellationToken,
}

impl ClientHandle {
    fn new(config: Config) -> Result<ClientHandle, Error> {
        let owner = BlockingClient::new(config)?;
        Ok(ClientHandle {
            client: owner.client().clone(),
            owner: RwLock::new(Some(owner)),
            closing: CancellationToken::new(),
        })
    }

    /// Runs the future that `start` builds on the client's runtime, until it
    /// finishes, `timeout` passes, `cancel` fires or the client closes.
    pub(crate) fn block_on<'s, T, F>(
        &'s self,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
        start: impl FnOnce(&'s Client) -> F,
    ) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>>,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            // Blocking inside a runtime worker (for example from a rotation
            // callback) would panic in tokio or stall the worker.
            return Err(Error::new(
                ErrorClass::Internal,
                "a blocking keystead call was made on a keystead worker thread, such as inside a rotation callback; make it from another thread",
            ));
        }
        let owner = self.owner.read();
        let Some(blocking) = owner.as_ref() else {
            return Err(closed());
        };
        let future = start(&self.client);
        blocking.block_on(timeout, async {
            tokio::select! {
                biased;
                result = future => result,
                () = self.closing.cancelled() => Err(closed()),
                () = cancelled_by(cancel) => Err(cancelled()),
            }
        })
    }

    /// Runs `start` with the blocking client under the read lock, for calls
    /// that need the runtime but do not wait.
    pub(crate) fn with_runtime<T>(
        &self,
        start: impl FnOnce(&BlockingClient) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let owner = self.owner.read();
        match owner.as_ref() {
            Some(blocking) => start(blocking),
            None => Err(closed()),
        }
    }

    fn get(
        &self,
        reference: &str,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<Secret, Error> {
        if let Some(secret) = self.client.get_cached(reference) {
            return Ok(secret);
        }
        self.block_on(timeout, cancel, |client| client.get(reference))
            .map_err(|error| error.for_reference(reference))
    }

    fn refresh(
        &self,
        reference: &str,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<Secret, Error> {
        self.block_on(timeout, cancel, |client| client.refresh(reference))
            .map_err(|error| error.for_reference(reference))
    }

    fn close(&self, timeout: Option<Duration>) {
        self.closing.cancel();
        self.client.close();
        let owner = self.owner.write().take();
        if let Some(owner) = owner {
            owner.close(timeout);
        }
    }
}

async fn cancelled_by(cancel: Option<&CancelToken>) {
    match cancel {
        Some(token) => token.cancelled().await,
        None => std::future::pending().await,
    }
}

/// Creates a client from JSON configuration, with the same schema as
/// `keystead.toml` (for example `{"cache": {"ttl": "30s"}}`). When
/// `config_json` is NULL, the configuration comes from the file named by
/// the `KEYSTEAD_CONFIG` environment variable, or the defaults when it is
/// unset. No backend is contacted. Stores the client in `*out`.
///
/// Fails with `KEYSTEAD_STATUS_CONFIG` for invalid configuration.
///
/// # Safety
/// `config_json` is NULL or points to `config_json_length` readable bytes;
/// `out` and `error` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn keystead_client_new(
    config_json: *const c_char,
    config_json_length: usize,
    out: *mut *mut ClientHandle,
    error: *mut *mut ErrorHandle,
) -> Status {
    // SAFETY: pointers are forwarded under the caller's guarantees.
    unsafe {
        guard("keystead_client_new", error, || {
            let config = if config_json.is_null() {
                Config::from_env()?
            } else {
                let json = text(
                    config_json,
                    config_json_length,
                    "the JSON configuration",
                    ErrorClass::Config,
                )?;
                Config::from_json(json, "the JSON configuration")?
            };
            let client = ClientHandle::new(config)?;
            write_out(out, Box::into_raw(Box::new(client)), "out")
        })
    }
}

/// Creates a client from a `keystead.toml` file and stores it in `*out`.
///
/// Fails with `KEYSTEAD_STATUS_CONFIG` when the file cannot be read or is
/// invalid; the message names the file, key and line.
///
/// # Safety
/// `path` points to `path_length` readable bytes; `out` and `error` are
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn keystead_client_new_from_file(
    path: *const c_char,
    path_length: usize,
    out: *mut *mut ClientHandle,
    error: *mut *mut ErrorHandle,
) -> Status {
    // SAFETY: pointers are forwarded under the caller's guarantees.
    unsafe {
        guard("keystead_client_new_from_file", error, || {
            let path = text(
                path,
                path_length,
                "the config file path",
                ErrorClass::Config,
            )?;
            let config = Config::from_file(path)?;
            let client = ClientHandle::new(config)?;
            write_out(out, Box::into_raw(Box::new(client)), "out")
        })
    }
}

/// Reads a reference, from the cache when the value is fresh, and stores a
/// new secret handle in `*out`.
///
/// Blocks until the value is loaded, `timeout_ms` milliseconds pass
/// (`KEYSTEAD_NO_TIMEOUT` waits without limit), `cancel` is cancelled (NULL
/// for no token) or the client is closed. Timeout and cancellation fail
/// with `KEYSTEAD_STATUS_UNAVAILABLE`; the load itself keeps running, so a
/// later read may find its result. Concurrent reads of one reference share
/// one backend call. Inside a rotation callback only a cached value can be
/// read; a read that would wait fails with `KEYSTEAD_STATUS_INTERNAL`.
///
/// # Safety
/// `client` is NULL or a live client; `reference` points to
/// `reference_length` readable bytes; `cancel` is NULL or a live token;
/// `out` and `error` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn keystead_get(
    client: *const ClientHandle,
    reference: *const c_char,
    reference_length: usize,
    timeout_ms: u64,
    cancel: *const CancelToken,
    out: *mut *mut SecretHandle,
    error: *mut *mut ErrorHandle,
) -> Status {
    // SAFETY: pointers are forwarded under the caller's guarantees.
    unsafe {
        guard("keystead_get", error, || {
            let client = handle(client, "client")?;
            let reference = crate::arguments::reference(reference, reference_length)?;
            let secret = client.get(reference, timeout_from_millis(timeout_ms), cancel.as_ref())?;
            write_out(out, SecretHandle::into_raw(secret), "out")
        })
    }
}

/// Returns the reference's fresh cached value without I/O or waiting, or
/// NULL when there is none (also for an invalid reference, a cached error
/// and a closed client: `keystead_get` reports those).
///
/// `known` is NULL or a handle the caller already holds for this
/// reference. When the cached value is the version `known` refers to (the
/// same value and metadata), the function returns `known` itself and
/// allocates nothing, so the caller owns no new handle. Otherwise it
/// returns a new handle, which the caller frees. Passing the last handle
/// read makes repeated warm reads allocation-free.
///
/// # Safety
/// `client` is NULL or a live client; `reference` points to
/// `reference_length` readable bytes; `known` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn keystead_get_cached(
    client: *const ClientHandle,
    reference: *const c_char,
    reference_length: usize,
    known: *const SecretHandle,
) -> *mut SecretHandle {
    let lookup = || -> Option<*mut SecretHandle> {
        // SAFETY: pointers are forwarded under the caller's guarantees.
        let client = unsafe { client.as_ref() }?;
        // SAFETY: as above.
        let reference = unsafe { crate::arguments::reference(reference, reference_length) }.ok()?;
        let secret = client.client.get_cached(reference)?;
        // SAFETY: as above.
        if let Some(known_secret) = unsafe { known.as_ref() } {
            if known_secret.holds(&secret) {
                return Some(known.cast_mut());
            }
        }
        Some(SecretHandle::into_raw(secret))
    };
    // A panic cannot be reported here; the panic hook printed it, and the
    // caller sees a miss.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(lookup))
        .ok()
        .flatten()
        .unwrap_or(std::ptr::null_mut())
}

/// Loads a reference from its backend now, bypassing the cache's freshness
/// and error backoff, and stores the new value's handle in `*out`. Waits
/// like `keystead_get`. When the load fails, the cached value is kept unless
/// the failure is authoritative (not found, access denied, deleted).
///
/// # Safety
/// As `keystead_get`.
#[no_mangle]
pub unsafe extern "C" fn keystead_refresh(
    client: *const ClientHandle,
    reference: *const c_char,
    reference_length: usize,
    timeout_ms: u64,
    cancel: *const CancelToken,
    out: *mut *mut SecretHandle,
    error: *mut *mut ErrorHandle,
) -> Status {
    // SAFETY: pointers are forwarded under the caller's guarantees.
    unsafe {
        guard("keystead_refresh", error, || {
            let client = handle(client, "client")?;
            let reference = crate::arguments::reference(reference, reference_length)?;
            let secret =
                client.refresh(reference, timeout_from_millis(timeout_ms), cancel.as_ref())?;
            write_out(out, SecretHandle::into_raw(secret), "out")
        })
    }
}

/// Drops a reference's cached value (and every field of it) and wipes it.
/// Stores in `*was_cached` (when not NULL) whether a value was cached.
/// Never waits.
///
/// # Safety
/// `client` is NULL or a live client; `reference` points to
/// `reference_length` readable bytes; `was_cached` and `error` are NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn keystead_invalidate(
    client: *const ClientHandle,
    reference: *const c_char,
    reference_length: usize,
    was_cached: *mut bool,
    error: *mut *mut ErrorHandle,
) -> Status {
    // SAFETY: pointers are forwarded under the caller's guarantees.
    unsafe {
        guard("keystead_invalidate", error, || {
            let client = handle(client, "client")?;
            let reference = crate::arguments::reference(reference, reference_length)?;
            let removed = client.client.invalidate(reference)?;
            if !was_cached.is_null() {
                was_cached.write(removed);
            }
            Ok(())
        })
    }
}

/// Loads `count` references at once, using each backend's batch call where
/// it has one. References already fresh or loading are left alone.
///
/// `references[i]` points to `reference_lengths[i]` bytes. For each
/// reference, `statuses[i]` receives its outcome, and `errors[i]` (when
/// `errors` is not NULL) receives NULL or an error handle the caller frees.
/// The return value is `KEYSTEAD_STATUS_OK` when the per-reference outcomes
/// were written, even if some of them failed. It is an error status, with
/// the arrays untouched, when the whole call timed out, was cancelled, or
/// the client is closed. Waits like `keystead_get`.
///
/// # Safety
/// `client` is NULL or a live client; `references` and `reference_lengths`
/// hold `count` entries, each pointing to readable bytes; `statuses` has
/// room for `count` entries; `errors` is NULL or has room for `count`
/// entries; `cancel` is NULL or a live token; `error` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn keystead_prefetch(
    client: *const ClientHandle,
    references: *const *const c_char,
    reference_lengths: *const usize,
    count: usize,
    timeout_ms: u64,
    cancel: *const CancelToken,
    statuses: *mut Status,
    errors: *mut *mut ErrorHandle,
    error: *mut *mut ErrorHandle,
) -> Status {
    // SAFETY: pointers are forwarded under the caller's guarantees.
    unsafe {
        guard("keystead_prefetch", error, || {
            let client = handle(client, "client")?;
            if count > 0
                && (references.is_null() || reference_lengths.is_null() || statuses.is_null())
            {
                return Err(Error::new(
                    ErrorClass::Internal,
                    "references, reference_lengths and statuses must not be NULL when count is not zero",
                ));
            }
            let mut texts = Vec::with_capacity(count);
            for index in 0..count {
                texts.push(reference(
                    *references.add(index),
                    *reference_lengths.add(index),
                ));
            }
            let valid: Vec<&str> = texts
                .iter()
                .filter_map(|text| text.as_ref().ok().copied())
                .collect();

            let mut outcomes = client
                .block_on(
                    timeout_from_millis(timeout_ms),
                    cancel.as_ref(),
                    |client| async move { Ok(client.prefetch(&valid).await) },
                )?
                .into_iter();

            for (index, text) in texts.into_iter().enumerate() {
                let result = match text {
                    Ok(_) => outcomes
                        .next()
                        .map(|outcome| outcome.result)
                        .unwrap_or_else(|| {
                            Err(Error::new(
                                ErrorClass::Internal,
                                "prefetch returned too few outcomes",
                            ))
                        }),
                    Err(invalid) => Err(invalid),
                };
                let (status, handle) = match result {
                    Ok(()) => (Status::Ok, std::ptr::null_mut()),
                    Err(failure) => {
                        let mut handle = std::ptr::null_mut();
                        let status = report(&failure, &mut handle);
                        (status, handle)
                    }
                };
                statuses.add(index).write(status);
                if errors.is_null() {
                    crate::error::keystead_error_free(handle);
                } else {
                    errors.add(index).write(handle);
                }
            }
            Ok(())
        })
    }
}

/// Copies the client's counters into `*out`.
///
/// # Safety
/// `client` is NULL or a live client; `out` and `error` are NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn keystead_client_metrics(
    client: *const ClientHandle,
    out: *mut Metrics,
    error: *mut *mut ErrorHandle,
) -> Status {
    // SAFETY: pointers are forwarded under the caller's guarantees.
    unsafe {
        guard("keystead_client_metrics", error, || {
            let client = handle(client, "client")?;
            write_out(out, Metrics::new(&client.client.metrics()), "out")
        })
    }
}

/// Closes the client: blocking calls in flight return
/// `KEYSTEAD_STATUS_CLOSED`, background refreshes stop, every cached value
/// is wiped, and the client waits up to `timeout_ms` milliseconds
/// (`KEYSTEAD_NO_TIMEOUT`: without limit) for lease revocations before it
/// stops its threads. Later calls fail with `KEYSTEAD_STATUS_CLOSED`.
/// Secret handles already returned stay valid. Calling it again does
/// nothing. The handle stays allocated until `keystead_client_free`.
///
/// # Safety
/// `client` is NULL or a live client.
#[no_mangle]
pub unsafe extern "C" fn keystead_client_close(
    client: *const ClientHandle,
    timeout_ms: u64,
) -> Status {
    // SAFETY: pointers are forwarded under the caller's guarantees.
    unsafe {
        guard("keystead_client_close", std::ptr::null_mut(), || {
            let client = handle(client, "client")?;
            if tokio::runtime::Handle::try_current().is_ok() {
                return Err(Error::new(
                    ErrorClass::Internal,
                    "keystead_client_close was called on a keystead worker thread",
                ));
            }
            client.close(timeout_from_millis(timeout_ms));
            Ok(())
        })
    }
}

/// Frees a client, closing it first (without waiting for lease revocations)
/// when `keystead_client_close` was not called. No other thread may be
/// using the client. NULL is ignored.
///
/// # Safety
/// `client` is NULL or a live client, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn keystead_client_free(client: *mut ClientHandle) {
    if client.is_null() {
        return;
    }
    // SAFETY: from Box::into_raw in `keystead_client_new*`.
    let client = unsafe { Box::from_raw(client) };
    // A free function cannot report a panic, and a panic must not unwind
    // into C. The panic hook has already printed it to standard error.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(client)));
}

#[cfg(test)]
mod tests {
    use std::ptr;

    use super::*;

    fn new_client(json: &str) -> *mut ClientHandle {
        let mut client = ptr::null_mut();
        let status = unsafe {
            keystead_client_new(
                json.as_ptr().cast(),
                json.len(),
                &mut client,
                ptr::null_mut(),
            )
        };
        assert_eq!(status, Status::Ok);
        client
    }

    #[test]
    fn invalid_json_config_is_config_error() {
        let json = r#"{"cache": {"tll": "1s"}}"#;
        let mut client = ptr::null_mut();
        let mut error = ptr::null_mut();
        let status = unsafe {
            keystead_client_new(json.as_ptr().cast(), json.len(), &mut client, &mut error)
        };
        assert_eq!(status, Status::Config);
        assert!(client.is_null());
        let message =
            unsafe { std::ffi::CStr::from_ptr(crate::error::keystead_error_message(error)) };
        assert!(message.to_str().unwrap().contains("tll"));
        unsafe { crate::error::keystead_error_free(error) };
    }

    #[test]
    fn get_reads_env_and_caches() {
        std::env::set_var("KEYSTEAD_CAPI_TEST_GET", "from-env");
        let client = new_client("{}");
        let reference = "env://KEYSTEAD_CAPI_TEST_GET";
        unsafe {
            let mut secret = keystead_get_cached(
                client,
                reference.as_ptr().cast(),
                reference.len(),
                ptr::null(),
            );
            assert!(secret.is_null());
            let status = keystead_get(
                client,
                reference.as_ptr().cast(),
                reference.len(),
                5_000,
                ptr::null(),
                &mut secret,
                ptr::null_mut(),
            );
            assert_eq!(status, Status::Ok);
            let bytes = crate::secret::keystead_secret_bytes(secret);
            assert_eq!(
                std::slice::from_raw_parts(bytes.data, bytes.length),
                b"from-env"
            );
            crate::secret::keystead_secret_free(secret);

            let cached = keystead_get_cached(
                client,
                reference.as_ptr().cast(),
                reference.len(),
                ptr::null(),
            );
            assert!(!cached.is_null());
            let again =
                keystead_get_cached(client, reference.as_ptr().cast(), reference.len(), cached);
            assert_eq!(again, cached, "the same version reuses the known handle");
            crate::secret::keystead_secret_free(cached);

            let mut metrics = Metrics::default();
            assert_eq!(
                keystead_client_metrics(client, &mut metrics, ptr::null_mut()),
                Status::Ok
            );
            assert_eq!(metrics.misses, 1);
            assert_eq!(metrics.hits, 2);

            let mut was_cached = false;
            let status = keystead_invalidate(
                client,
                reference.as_ptr().cast(),
                reference.len(),
                &mut was_cached,
                ptr::null_mut(),
            );
            assert_eq!(status, Status::Ok);
            assert!(was_cached);
            keystead_client_free(client);
        }
    }

    #[test]
    fn cancelled_token_stops_a_waiting_call() {
        // A listener that accepts connections but never responds.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let json = format!(
            r#"{{"aws": {{"endpoint_url": "{endpoint}", "region": "us-east-1", "max_attempts": 1, "attempt_timeout": "30s"}}}}"#
        );
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        let client = new_client(&json);

        let token = crate::cancel::keystead_cancel_token_new();
        let token_address = token as usize;
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            unsafe {
                crate::cancel::keystead_cancel_token_cancel(token_address as *const CancelToken)
            };
        });

        let reference = "aws-sm://never-answered";
        let started = std::time::Instant::now();
        let mut secret = ptr::null_mut();
        let status = unsafe {
            keystead_get(
                client,
                reference.as_ptr().cast(),
                reference.len(),
                0,
                token,
                &mut secret,
                ptr::null_mut(),
            )
        };
        canceller.join().unwrap();

        assert_eq!(status, Status::Unavailable);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        unsafe {
            crate::cancel::keystead_cancel_token_free(token);
            keystead_client_free(client);
        }
        drop(listener);
    }

    #[test]
    fn closed_client_reports_closed() {
        let client = new_client("{}");
        let reference = "env://KEYSTEAD_CAPI_TEST_CLOSED";
        unsafe {
            assert_eq!(keystead_client_close(client, 1_000), Status::Ok);
            assert_eq!(keystead_client_close(client, 1_000), Status::Ok);
            let mut secret = ptr::null_mut();
            let status = keystead_get(
                client,
                reference.as_ptr().cast(),
                reference.len(),
                0,
                ptr::null(),
                &mut secret,
                ptr::null_mut(),
            );
            assert_eq!(status, Status::Closed);
            keystead_client_free(client);
        }
    }

    #[test]
    fn prefetch_reports_each_reference() {
        std::env::set_var("KEYSTEAD_CAPI_TEST_PREFETCH", "x");
        let client = new_client("{}");
        let references = [
            "env://KEYSTEAD_CAPI_TEST_PREFETCH",
            "not a reference",
            "env://KEYSTEAD_CAPI_TEST_UNSET",
        ];
        let pointers: Vec<*const c_char> =
            references.iter().map(|text| text.as_ptr().cast()).collect();
        let lengths: Vec<usize> = references.iter().map(|text| text.len()).collect();
        let mut statuses = [Status::Internal; 3];
        let mut errors = [ptr::null_mut(); 3];
        unsafe {
            let status = keystead_prefetch(
                client,
                pointers.as_ptr(),
                lengths.as_ptr(),
                3,
                5_000,
                ptr::null(),
                statuses.as_mut_ptr(),
                errors.as_mut_ptr(),
                ptr::null_mut(),
            );
            assert_eq!(status, Status::Ok);
            assert_eq!(
                statuses,
                [Status::Ok, Status::InvalidReference, Status::NotFound]
            );
            assert!(errors[0].is_null());
            assert!(!errors[1].is_null());
            errors
                .iter()
                .for_each(|error| crate::error::keystead_error_free(*error));
            keystead_client_free(client);
        }
    }
}
