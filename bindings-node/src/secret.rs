//! The `Secret` class: a value and its metadata, revealed only on request.

use std::time::{SystemTime, UNIX_EPOCH};

use napi::bindgen_prelude::{Buffer, Either, Undefined};
use napi::{Env, JsDate};
use napi_derive::napi;

use keystead::Encoding;

use crate::error::to_js_error;

/// A secret value and its metadata.
///
/// The value stays in keystead's zeroizing buffer until `reveal()` or
/// `revealBuffer()` copies it into JavaScript memory. `toString()`,
/// `toJSON()` and `util.inspect` show the metadata and `[REDACTED]`, never
/// the value.
#[napi]
pub struct Secret {
    inner: keystead::Secret,
}

impl From<keystead::Secret> for Secret {
    fn from(inner: keystead::Secret) -> Secret {
        Secret { inner }
    }
}

/// The JSON form of a secret: its metadata, and `"[REDACTED]"` in place of
/// the value.
#[napi(object, object_from_js = false)]
pub struct SecretJson {
    pub reference: String,
    pub provider: String,
    pub name: Option<String>,
    pub arn: Option<String>,
    pub version_id: Option<String>,
    pub version_stages: Vec<String>,
    pub version_number: Option<f64>,
    pub field: Option<String>,
    pub encoding: String,
    pub value: String,
}

#[napi]
impl Secret {
    /// Copies the value into a JavaScript string.
    ///
    /// JavaScript strings cannot be wiped, so the copy lives until the
    /// garbage collector frees it. Throws `NotTextError` when the value is
    /// binary.
    #[napi]
    pub fn reveal(&self, env: Env) -> napi::Result<String> {
        match self.inner.expose_str() {
            Ok(text) => Ok(text.to_owned()),
            Err(error) => Err(to_js_error(&env, &error)),
        }
    }

    /// Copies the value's exact bytes, text or binary, into a new `Buffer`.
    /// The caller owns the copy and may wipe it with `buffer.fill(0)`.
    #[napi]
    pub fn reveal_buffer(&self) -> Buffer {
        Buffer::from(self.inner.expose_bytes().to_vec())
    }

    /// Selects a field of a JSON value by dot path, for example `"db.port"`.
    /// String fields give their text; other JSON values their compact JSON
    /// text. Throws `FieldNotFoundError`, `InvalidJsonError` or
    /// `InvalidReferenceError`.
    #[napi]
    pub fn field(&self, env: Env, path: String) -> napi::Result<Secret> {
        match self.inner.field(&path) {
            Ok(selected) => Ok(Secret::from(selected)),
            Err(error) => Err(to_js_error(&env, &error)),
        }
    }

    /// The reference the value was loaded for, in canonical form and
    /// without a field selector.
    #[napi(getter)]
    pub fn reference(&self) -> String {
        self.inner.metadata().reference.clone()
    }

    /// The provider scheme, for example `aws-sm`.
    #[napi(getter)]
    pub fn provider(&self) -> String {
        self.inner.metadata().provider.clone()
    }

    /// The backend's name for the secret, when it reports one.
    #[napi(getter)]
    pub fn name(&self) -> Either<String, Undefined> {
        optional(self.inner.metadata().name.clone())
    }

    /// The backend's ARN or other unique id, when it reports one.
    #[napi(getter)]
    pub fn arn(&self) -> Either<String, Undefined> {
        optional(self.inner.metadata().arn.clone())
    }

    /// The backend's version id (AWS `VersionId`).
    #[napi(getter)]
    pub fn version_id(&self) -> Either<String, Undefined> {
        optional(self.inner.metadata().version_id.clone())
    }

    /// The staging labels of this version (AWS `VersionStages`, SSM labels).
    #[napi(getter)]
    pub fn version_stages(&self) -> Vec<String> {
        self.inner.metadata().version_stages.clone()
    }

    /// The version number (SSM parameter version, Vault KV version).
    #[napi(getter)]
    pub fn version_number(&self) -> Either<f64, Undefined> {
        // Version numbers stay far below 2^53, where f64 is exact.
        optional(
            self.inner
                .metadata()
                .version_number
                .map(|number| number as f64),
        )
    }

    /// The `#field` path applied to produce this value, if any.
    #[napi(getter)]
    pub fn field_path(&self) -> Either<String, Undefined> {
        optional(self.inner.metadata().field.clone())
    }

    /// When the backend created this version, when it reports that.
    #[napi(getter)]
    pub fn created_at<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<Either<JsDate<'env>, Undefined>> {
        to_date(env, self.inner.metadata().created_at)
    }

    /// When keystead fetched this value (wall clock, for display).
    #[napi(getter)]
    pub fn fetched_at<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<Either<JsDate<'env>, Undefined>> {
        to_date(env, self.inner.metadata().fetched_at)
    }

    /// When keystead plans to refresh the value in the background.
    #[napi(getter)]
    pub fn refresh_at<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<Either<JsDate<'env>, Undefined>> {
        to_date(env, self.inner.metadata().refresh_at)
    }

    /// When the value stops being valid at the backend (a lease or
    /// credential expiry), when there is such a time.
    #[napi(getter)]
    pub fn expires_at<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<Either<JsDate<'env>, Undefined>> {
        to_date(env, self.inner.metadata().expires_at)
    }

    /// Whether the value is binary. `reveal()` throws for binary values;
    /// `revealBuffer()` works for both.
    #[napi(getter)]
    pub fn is_binary(&self) -> bool {
        self.inner.is_binary()
    }

    /// `"text"` or `"binary"`.
    #[napi(getter, ts_return_type = "'text' | 'binary'")]
    pub fn encoding(&self) -> String {
        encoding_name(self.inner.encoding()).to_owned()
    }

    /// Returns `"[REDACTED]"`, so that string interpolation does not reveal
    /// the value.
    #[napi(js_name = "toString")]
    pub fn to_js_string(&self) -> String {
        self.inner.to_string()
    }

    /// Returns the metadata, with `"[REDACTED]"` in place of the value.
    #[napi(js_name = "toJSON")]
    pub fn to_json(&self) -> SecretJson {
        let metadata = self.inner.metadata();
        SecretJson {
            reference: metadata.reference.clone(),
            provider: metadata.provider.clone(),
            name: metadata.name.clone(),
            arn: metadata.arn.clone(),
            version_id: metadata.version_id.clone(),
            version_stages: metadata.version_stages.clone(),
            version_number: metadata.version_number.map(|number| number as f64),
            field: metadata.field.clone(),
            encoding: encoding_name(self.inner.encoding()).to_owned(),
            value: self.inner.to_string(),
        }
    }
}

fn optional<T>(value: Option<T>) -> Either<T, Undefined> {
    match value {
        Some(value) => Either::A(value),
        None => Either::B(()),
    }
}

fn encoding_name(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Text => "text",
        // `Encoding` is non-exhaustive; only text values can be revealed as
        // strings, so any other encoding reports as binary.
        _ => "binary",
    }
}

fn to_date(env: &Env, time: Option<SystemTime>) -> napi::Result<Either<JsDate<'_>, Undefined>> {
    let Some(time) = time else {
        return Ok(Either::B(()));
    };
    let millis = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_secs_f64() * 1000.0,
        Err(before) => -(before.duration().as_secs_f64() * 1000.0),
    };
    Ok(Either::A(env.create_date(millis)?))
}
