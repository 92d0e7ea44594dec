//! Conversion of `keystead::Error` into JavaScript `Error` objects.
//!
//! `index.js` defines one `Error` subclass per core error class and
//! registers a factory that builds them. The factory is stored per Node-API
//! environment (instance data), because the main thread and every worker
//! thread load their own copy of `index.js` and have their own classes.

use napi::bindgen_prelude::{
    Either, FnArgs, Function, FunctionRef, JsObjectValue, Object, Undefined, Unknown,
};
use napi::{Env, JsError, JsValue, Status};
use napi_derive::napi;

use keystead::ErrorClass;

/// Arguments of the factory: error class name, stable code, message,
/// reference (or `undefined`), and whether the failure is transient.
type FactoryArgs = FnArgs<(String, String, String, Either<String, Undefined>, bool)>;

struct ErrorFactory(FunctionRef<FactoryArgs, Unknown<'static>>);

/// Registers the function that builds keystead errors for this environment.
/// `index.js` calls it once when it loads; applications never need to.
#[napi(
    js_name = "registerErrorFactory",
    ts_args_type = "factory: (errorClass: string, code: string, message: string, reference: string | undefined, transient: boolean) => Error"
)]
pub fn register_error_factory(
    env: Env,
    factory: Function<'_, FactoryArgs, Unknown<'static>>,
) -> napi::Result<()> {
    let reference = factory.create_ref()?;
    env.set_instance_data(ErrorFactory(reference), (), |_| {})
}

/// Returns the stable `code` of an error class, for example
/// `ERR_KEYSTEAD_NOT_FOUND`.
pub(crate) fn error_code(class: ErrorClass) -> String {
    format!(
        "ERR_KEYSTEAD_{}",
        class.as_str().to_ascii_uppercase().replace('-', "_")
    )
}

/// Builds the JavaScript error for `error` and wraps it so that napi-rs
/// throws or rejects with that exact object.
pub(crate) fn to_js_error(env: &Env, error: &keystead::Error) -> napi::Error {
    match build_error(env, error) {
        Ok(object) => napi::Error::from(object),
        // Building the object can only fail while the environment shuts
        // down; a plain error with the same text is the best left to do.
        Err(_) => napi::Error::new(Status::GenericFailure, error.to_string()),
    }
}

/// Builds the JavaScript error object for `error`.
pub(crate) fn build_error<'env>(
    env: &'env Env,
    error: &keystead::Error,
) -> napi::Result<Unknown<'env>> {
    let class = error.class();
    let reference = match error.reference() {
        Some(reference) => Either::A(reference.to_owned()),
        None => Either::B(()),
    };
    let args = FnArgs::from((
        class.as_str().to_owned(),
        error_code(class),
        error.to_string(),
        reference,
        error.is_transient(),
    ));

    if let Some(factory) = env.get_instance_data::<ErrorFactory>()? {
        let built: Unknown<'static> = factory.0.borrow_back(env)?.call(args)?;
        return Ok(built);
    }
    build_plain_error(env, args)
}

/// Builds an `Error` with the same properties as the classes in `index.js`,
/// for code that loads the native module without it.
fn build_plain_error<'env>(env: &'env Env, args: FactoryArgs) -> napi::Result<Unknown<'env>> {
    let (class, code, message, reference, transient) = args.data;
    let error = JsError::from(napi::Error::new(code, message)).into_unknown(*env);
    let mut object = Object::from_raw(env.raw(), error.raw());
    object.set_named_property("errorClass", class)?;
    object.set_named_property("reference", reference)?;
    object.set_named_property("transient", transient)?;
    Ok(error)
}
