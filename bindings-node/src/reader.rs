//! Synchronous cached reads of one reference, written against Node-API
//! directly.
//!
//! `getCached` is the call an application makes on every request, so its
//! cost is the binding's cost. A `#[napi]` method pays for napi-rs's
//! per-call bookkeeping (borrow tracking and class checks: about 250 ns per
//! call with napi 3.16 on a 2-core x86-64 machine), and building a new
//! `Secret` instance costs about a microsecond more. A reader avoids both:
//! it is a plain Node-API function without arguments whose data holds a
//! core `SecretHandle` (the reference resolved once), and it hands back the
//! same `Secret` object for as long as core returns the same cached value.
//! `index.js` keeps one reader per reference in a `Map` and calls it from
//! `getCached`.
//!
//! Core still decides on every call whether a value is cached and fresh.
//! The reader only maps a core value to the JavaScript object wrapping it.

use std::cell::RefCell;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use napi::bindgen_prelude::ToNapiValue;
use napi::sys;

use keystead::{Metadata, SecretHandle};

use crate::secret::Secret;

/// The data behind one reader function.
struct HandleReader {
    client: keystead::Client,
    reference: String,
    handle: RefCell<SecretHandle>,
    /// The value found while creating the reader, handed out by its first
    /// call so that creating a reader and reading once counts one hit.
    first: RefCell<Option<keystead::Secret>>,
    last: RefCell<Option<LastObject>>,
}

/// The JavaScript object last handed out by a reader.
struct LastObject {
    /// Address of the core value's metadata. While the object is alive it
    /// keeps that value alive, so no other value can have this address.
    identity: *const Metadata,
    /// A weak reference: the reader never keeps a secret alive.
    object: sys::napi_ref,
}

/// Creates a reader for `reference`, or returns `None` when the reference
/// has no fresh cached value. Checking first means that asking for a reader
/// never adds an entry to the cache (which could evict another).
///
/// # Safety
/// `env` must be the current environment, on its JavaScript thread.
pub(crate) unsafe fn create(
    env: sys::napi_env,
    client: &keystead::Client,
    reference: &str,
) -> napi::Result<Option<sys::napi_value>> {
    let Some(first) = client.get_cached(reference) else {
        return Ok(None);
    };
    let Ok(handle) = client.handle(reference) else {
        return Ok(None);
    };
    let reader = Box::into_raw(Box::new(HandleReader {
        client: client.clone(),
        reference: reference.to_owned(),
        handle: RefCell::new(handle),
        first: RefCell::new(Some(first)),
        last: RefCell::new(None),
    }));

    let name = "readCached";
    let mut function = ptr::null_mut();
    let status = unsafe {
        sys::napi_create_function(
            env,
            name.as_ptr().cast(),
            name.len() as isize,
            Some(read_cached),
            reader.cast(),
            &mut function,
        )
    };
    if status != sys::Status::napi_ok {
        drop(unsafe { Box::from_raw(reader) });
        return Err(failed(status));
    }
    let status = unsafe {
        sys::napi_add_finalizer(
            env,
            function,
            reader.cast(),
            Some(finalize_reader),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    if status != sys::Status::napi_ok {
        // The function exists but nothing would free its data; leak it
        // rather than free memory the function can still reach.
        return Err(failed(status));
    }
    Ok(Some(function))
}

unsafe extern "C" fn finalize_reader(env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    let reader = unsafe { Box::from_raw(data.cast::<HandleReader>()) };
    if let Some(last) = reader.last.into_inner() {
        unsafe { sys::napi_delete_reference(env, last.object) };
    }
}

unsafe extern "C" fn read_cached(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // A panic must not unwind into Node; it becomes a JavaScript error.
    match catch_unwind(AssertUnwindSafe(|| unsafe { read_cached_inner(env, info) })) {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => {
            unsafe { throw_error(env, &error.reason) };
            ptr::null_mut()
        }
        Err(_) => {
            unsafe { throw_error(env, "keystead: reading the cache panicked") };
            ptr::null_mut()
        }
    }
}

unsafe fn read_cached_inner(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> napi::Result<sys::napi_value> {
    let mut argc = 0;
    let mut data = ptr::null_mut();
    check(unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            ptr::null_mut(),
            ptr::null_mut(),
            &mut data,
        )
    })?;
    // SAFETY: `data` is the `HandleReader` this function was created with,
    // freed only by the function's own finalizer.
    let reader = unsafe { &*data.cast::<HandleReader>() };

    let Some(secret) = reader.current() else {
        return unsafe { undefined(env) };
    };

    let identity: *const Metadata = secret.metadata();
    if let Some(last) = reader.last.borrow().as_ref() {
        if last.identity == identity {
            let mut object = ptr::null_mut();
            check(unsafe { sys::napi_get_reference_value(env, last.object, &mut object) })?;
            if !object.is_null() {
                return Ok(object);
            }
        }
    }

    let object = unsafe { Secret::to_napi_value(env, Secret::from(secret))? };
    let mut weak = ptr::null_mut();
    check(unsafe { sys::napi_create_reference(env, object, 0, &mut weak) })?;
    let replaced = reader.last.borrow_mut().replace(LastObject {
        identity,
        object: weak,
    });
    if let Some(replaced) = replaced {
        unsafe { sys::napi_delete_reference(env, replaced.object) };
    }
    Ok(object)
}

impl HandleReader {
    /// The fresh cached value, as `Client::get_cached` would return it.
    fn current(&self) -> Option<keystead::Secret> {
        if let Some(secret) = self.first.borrow_mut().take() {
            return Some(secret);
        }
        if let Some(secret) = self.handle.borrow().current() {
            return Some(secret);
        }
        // The handle's entry may have been evicted or invalidated and a new
        // one loaded since; look the reference up again and follow it.
        let secret = self.client.get_cached(&self.reference)?;
        if let Ok(handle) = self.client.handle(&self.reference) {
            *self.handle.borrow_mut() = handle;
        }
        Some(secret)
    }
}

unsafe fn undefined(env: sys::napi_env) -> napi::Result<sys::napi_value> {
    let mut value = ptr::null_mut();
    check(unsafe { sys::napi_get_undefined(env, &mut value) })?;
    Ok(value)
}

unsafe fn throw_error(env: sys::napi_env, message: &str) {
    let mut pending = false;
    unsafe { sys::napi_is_exception_pending(env, &mut pending) };
    if pending {
        return;
    }
    let message = std::ffi::CString::new(message.replace('\0', " ")).unwrap_or_default();
    unsafe { sys::napi_throw_error(env, ptr::null(), message.as_ptr()) };
}

fn check(status: sys::napi_status) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(failed(status))
    }
}

fn failed(status: sys::napi_status) -> napi::Error {
    napi::Error::new(
        napi::Status::from(status),
        "a Node-API call failed while reading the cache",
    )
}
