//! `env://NAME`: a process environment variable.

use async_trait::async_trait;

use crate::error::{Error, ErrorClass};
use crate::provider::{Fetched, Provider};
use crate::reference::Reference;
use crate::secret::SecretValue;

/// Reads environment variables. A value that is not valid UTF-8 is binary.
#[derive(Clone, Copy, Debug, Default)]
pub struct EnvProvider;

#[async_trait]
impl Provider for EnvProvider {
    fn scheme(&self) -> &'static str {
        "env"
    }

    fn validate(&self, reference: &Reference) -> Result<(), Error> {
        reference.check_query_keys(&[])?;
        let name = reference.path();
        if name.contains('=') || name.contains('\0') {
            return Err(Error::invalid_reference(format!(
                "`{name}` is not a valid environment variable name"
            ))
            .for_reference(&reference.to_string()));
        }
        Ok(())
    }

    async fn fetch(&self, reference: &Reference) -> Result<Fetched, Error> {
        let name = reference.path();
        let Some(value) = std::env::var_os(name) else {
            return Err(Error::new(
                ErrorClass::NotFound,
                format!("environment variable {name} is not set"),
            ));
        };
        let value = {
            #[cfg(unix)]
            {
                use std::os::unix::ffi::OsStringExt;
                SecretValue::detect(value.into_vec())
            }
            #[cfg(not(unix))]
            {
                match value.into_string() {
                    Ok(text) => SecretValue::text(text),
                    Err(other) => SecretValue::binary(other.to_string_lossy().into_owned().into_bytes()),
                }
            }
        };
        let mut fetched = Fetched::new(value);
        fetched.name = Some(name.to_owned());
        Ok(fetched)
    }
}
