//! Rendering one template: minijinja with `secret()` functions that read
//! through the keystead client.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine;
use keystead::{Client, Error, ErrorClass, Reference, Secret};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use zeroize::Zeroizing;

use crate::output::{exit_code, Failure, EXIT_USAGE};

/// A rendered template.
pub(crate) struct Rendered {
    pub(crate) text: Zeroizing<String>,
    /// The secrets (references without `#field`) the template read.
    pub(crate) secrets: BTreeSet<String>,
}

/// Renders `source`. Must run on a blocking thread: each `secret()` call
/// blocks on `runtime` until the value is read, for at most `timeout`.
///
/// A secret, field or template variable that does not exist is an error;
/// nothing renders as an empty string or `none` in its place.
pub(crate) fn render(
    name: &str,
    source: &str,
    client: &Client,
    runtime: &tokio::runtime::Handle,
    timeout: Duration,
) -> Result<Rendered, Failure> {
    let reads = Arc::new(Reads {
        client: client.clone(),
        runtime: runtime.clone(),
        timeout,
        state: Mutex::new(ReadState::default()),
    });

    let mut environment = Environment::new();
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    environment.set_auto_escape_callback(|_| AutoEscape::None);
    environment.set_keep_trailing_newline(true);
    // Debug info in errors lists the template's variables, which may hold
    // secret values.
    environment.set_debug(false);
    let text_reads = Arc::clone(&reads);
    environment.add_function("secret", move |reference: &str| -> Result<String, minijinja::Error> {
        let secret = text_reads.read(reference)?;
        match secret.expose_str() {
            Ok(text) => Ok(text.to_owned()),
            Err(error) => Err(text_reads.fail(reference, error)),
        }
    });
    let binary_reads = Arc::clone(&reads);
    environment.add_function("secret_base64", move |reference: &str| -> Result<String, minijinja::Error> {
        let secret = binary_reads.read(reference)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(secret.expose_bytes()))
    });

    // Limitation: minijinja copies each value into its own `Value` strings
    // while rendering and frees them without wiping them; only the rendered
    // text and keystead's own copies are wiped.
    let result = environment
        .template_from_named_str(name, source)
        .and_then(|template| template.render(()));
    drop(environment);
    let reads = Arc::try_unwrap(reads).map_err(|_| Failure::internal("a template kept a reference to its reads".to_owned()))?;
    let state = reads.state.into_inner().unwrap_or_else(PoisonError::into_inner);

    match result {
        Ok(text) => Ok(Rendered {
            text: Zeroizing::new(text),
            secrets: state.secrets,
        }),
        Err(error) => Err(state.failure_for(name, &error)),
    }
}

struct Reads {
    client: Client,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
    state: Mutex<ReadState>,
}

#[derive(Default)]
struct ReadState {
    /// Each secret read once per render, so that every field of one leased
    /// secret comes from the same lease.
    memo: HashMap<String, Secret>,
    secrets: BTreeSet<String>,
    /// The first keystead error, which decides the exit code.
    error: Option<Error>,
    /// Every value handed to the template, to scrub from error messages.
    revealed: Vec<Zeroizing<Vec<u8>>>,
    /// The detail of the template error `Reads::fail` built, which holds a
    /// reference and a keystead error but never a value.
    own_detail: Option<String>,
}

impl Reads {
    fn read(&self, text: &str) -> Result<Secret, minijinja::Error> {
        let reference = Reference::parse(text).map_err(|error| self.fail(text, error))?;
        let secret_reference = reference.without_field().to_string();
        let cached = self.lock().memo.get(&secret_reference).cloned();
        let secret = match cached {
            Some(secret) => secret,
            None => {
                let secret = self.load(&secret_reference).map_err(|error| self.fail(text, error))?;
                let mut state = self.lock();
                state.secrets.insert(secret_reference.clone());
                state.memo.insert(secret_reference, secret.clone());
                secret
            }
        };
        let selected = match reference.field() {
            Some(field) => secret.field(field).map_err(|error| self.fail(text, error))?,
            None => secret,
        };
        self.lock().revealed.push(Zeroizing::new(selected.expose_bytes().to_vec()));
        Ok(selected)
    }

    fn load(&self, reference: &str) -> Result<Secret, Error> {
        let read = self.client.get(reference);
        match self.runtime.block_on(tokio::time::timeout(self.timeout, read)) {
            Ok(result) => result,
            Err(_) => Err(Error::new(
                ErrorClass::Unavailable,
                format!("no answer within {}", humantime::format_duration(self.timeout)),
            )
            .for_reference(reference)),
        }
    }

    /// Records a keystead error and turns it into a template error.
    fn fail(&self, reference: &str, error: Error) -> minijinja::Error {
        let detail = format!("cannot read {reference}: {error}");
        let mut state = self.lock();
        state.error.get_or_insert(error);
        state.own_detail.get_or_insert_with(|| detail.clone());
        minijinja::Error::new(ErrorKind::InvalidOperation, detail)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReadState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ReadState {
    fn failure_for(&self, name: &str, error: &minijinja::Error) -> Failure {
        let mut message = if self.detail_is_safe(error) {
            // Plain Display: the kind, the detail and the line, without the
            // debug listing of variables.
            let mut message = format!("cannot render {name}: {error}");
            if let Some(source) = std::error::Error::source(error) {
                message.push_str(&format!(": {source}"));
            }
            message
        } else {
            // minijinja's detail may quote any value the template computed
            // from a secret (`secret(...)|upper` in an include name, a
            // slice in a failing filter), which no scrubbing of the exact
            // values can catch. Only the kind and the place are reported.
            let line = error.line().map_or_else(String::new, |line| format!(" at line {line}"));
            format!(
                "cannot render {name}: {}{line}; the details are withheld because they may contain secret values",
                error.kind()
            )
        };
        // A filter applied to a value may quote it; this catches values
        // quoted unchanged in the keystead errors reported in full.
        for value in &self.revealed {
            if let Ok(text) = std::str::from_utf8(value) {
                if !text.is_empty() {
                    message = message.replace(text, "[REDACTED]");
                }
            }
        }
        let code = self.error.as_ref().map_or(EXIT_USAGE, |error| exit_code(error.class()));
        Failure {
            message: message.replace(['\n', '\r'], " "),
            code,
        }
    }

    /// Checks that minijinja's detail text contains no value: true when no
    /// secret was read before the error (a syntax error, an undefined variable
    /// before any `secret()` call), or when the error is the one
    /// `Reads::fail` built.
    fn detail_is_safe(&self, error: &minijinja::Error) -> bool {
        if self.revealed.is_empty() {
            return true;
        }
        let own = self.own_detail.as_deref();
        own.is_some() && error.detail() == own && std::error::Error::source(error).is_none()
    }
}
