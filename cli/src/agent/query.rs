//! Query strings, decoded the way HTML forms encode them (`+` is a space),
//! as the AWS agent decodes them.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// A decoded query: names and values in order.
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Decodes `text`. A name given twice, or bytes that are not UTF-8
    /// after decoding, are rejected with a message naming the problem.
    pub(crate) fn parse(text: Option<&str>) -> Result<Query, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for piece in text.unwrap_or("").split('&').filter(|piece| !piece.is_empty()) {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            let name = decode(name)?;
            let value = decode(value)?;
            if pairs.iter().any(|(known, _)| *known == name) {
                return Err(format!("the query parameter {name} is given more than once"));
            }
            pairs.push((name, value));
        }
        Ok(Query { pairs })
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| value.as_str())
    }

    /// Returns the first name not in `allowed`, if any.
    pub(crate) fn unknown(&self, allowed: &[&str]) -> Option<&str> {
        self.pairs
            .iter()
            .map(|(name, _)| name.as_str())
            .find(|name| !allowed.contains(name))
    }
}

/// Parses a `true`/`false` flag as the AWS agent does (`1` and `0` too).
pub(crate) fn flag(name: &str, value: Option<&str>) -> Result<bool, String> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(false),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(format!("{name} must be true or false, not `{other}`")),
    }
}

fn decode(text: &str) -> Result<String, String> {
    let spaced: Cow<'_, str> = if text.contains('+') {
        Cow::Owned(text.replace('+', " "))
    } else {
        Cow::Borrowed(text)
    };
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| format!("the query parameter `{text}` is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus() {
        let query = Query::parse(Some("secretId=prod%2Fdb&versionStage=AWS+PENDING&empty")).unwrap();
        assert_eq!(query.get("secretId"), Some("prod/db"));
        assert_eq!(query.get("versionStage"), Some("AWS PENDING"));
        assert_eq!(query.get("empty"), Some(""));
        assert_eq!(query.unknown(&["secretId", "versionStage"]), Some("empty"));
    }

    #[test]
    fn repeated_name_is_rejected() {
        assert!(Query::parse(Some("a=1&a=2")).is_err());
        assert!(Query::parse(Some("a=%FF")).is_err());
    }

    #[test]
    fn flags_accept_aws_spellings() {
        assert_eq!(flag("refreshNow", Some("TRUE")), Ok(true));
        assert_eq!(flag("refreshNow", Some("0")), Ok(false));
        assert_eq!(flag("refreshNow", None), Ok(false));
        assert!(flag("refreshNow", Some("yes")).is_err());
    }
}
