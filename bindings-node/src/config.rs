//! The `config` argument of `new Client(config)`.

use napi::bindgen_prelude::{Either, Function, JsObjectValue, Object, Unknown};
use napi::{Env, JsValue};

use keystead::Config;

use crate::error::to_js_error;

/// Names an object config in error messages.
const OBJECT_ORIGIN: &str = "the config object passed to new Client()";

/// Reads the configuration: `undefined` uses `KEYSTEAD_CONFIG` or the
/// defaults, a string is the path of a `keystead.toml`, and an object has
/// the same schema as that file (durations as text such as `"30s"`).
pub(crate) fn from_argument(
    env: &Env,
    config: Option<Either<String, Object>>,
) -> napi::Result<Config> {
    let parsed = match config {
        None => Config::from_env(),
        Some(Either::A(path)) => Config::from_file(path),
        Some(Either::B(object)) => {
            let text = stringify(env, object)?;
            Config::from_json(&text, OBJECT_ORIGIN)
        }
    };
    parsed.map_err(|error| to_js_error(env, &error))
}

/// Serializes `object` with the engine's own `JSON.stringify`, so that the
/// text is exactly what JavaScript would write (integers stay integers,
/// `undefined` members are left out).
fn stringify(env: &Env, object: Object) -> napi::Result<String> {
    let json: Object = env.get_global()?.get_named_property("JSON")?;
    let stringify: Function<'_, Object, Unknown> = json.get_named_property("stringify")?;
    let text = stringify.apply(json, object)?;
    text.coerce_to_string()?.into_utf8()?.into_owned()
}
