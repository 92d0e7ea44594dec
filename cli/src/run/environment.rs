//! Environment variables that carry secrets: which reference each one
//! reads, and their current values.

use std::collections::{BTreeMap, BTreeSet};

use keystead::{Client, Error, ErrorClass, Reference, Secret};
use zeroize::Zeroizing;

use crate::output::{exit_code, Failure};

/// One environment variable and the reference it is set from.
#[derive(Clone, Debug)]
pub(crate) struct Mapping {
    pub(crate) name: String,
    pub(crate) reference: String,
    /// The reference without its `#field`: the secret that is read.
    pub(crate) secret: String,
    pub(crate) field: Option<String>,
}

/// Builds the mappings from the `[run.env]` table and the `--env` flags;
/// a flag replaces a table entry with the same name.
pub(crate) fn mappings(table: &BTreeMap<String, String>, flags: &[String]) -> Result<Vec<Mapping>, Failure> {
    let mut merged = table.clone();
    let mut from_flags = BTreeSet::new();
    for flag in flags {
        let Some((name, reference)) = flag.split_once('=') else {
            return Err(Failure::usage(format!(
                "invalid --env `{flag}`: write NAME=REFERENCE, for example DB_PASSWORD=aws-sm://prod/db#password"
            )));
        };
        // Two flags for one name are almost always a copy-paste slip; the
        // last one silently winning would inject the wrong secret.
        if !from_flags.insert(name.to_owned()) {
            return Err(Failure::usage(format!("--env sets {name} more than once")));
        }
        merged.insert(name.to_owned(), reference.to_owned());
    }

    merged
        .into_iter()
        .map(|(name, reference)| mapping(name, reference))
        .collect()
}

fn mapping(name: String, reference: String) -> Result<Mapping, Failure> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(Failure::usage(format!(
            "invalid environment variable name `{name}`: it must be non-empty and contain no `=` or NUL"
        )));
    }
    let parsed = Reference::parse(&reference)
        .map_err(|error| Failure::usage(format!("invalid reference for {name}: {error}")))?;
    Ok(Mapping {
        name,
        secret: parsed.without_field().to_string(),
        field: parsed.field().map(str::to_owned),
        reference,
    })
}

/// Returns the distinct secrets the mappings read.
pub(crate) fn secrets(mappings: &[Mapping]) -> BTreeSet<String> {
    mappings.iter().map(|mapping| mapping.secret.clone()).collect()
}

/// Environment variable values, by name. Values are wiped when dropped.
#[derive(Default, PartialEq, Eq)]
pub(crate) struct InjectedValues {
    values: BTreeMap<String, Zeroizing<String>>,
}

impl InjectedValues {
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(name, value)| (name.as_str(), value.as_str()))
    }

    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// Counts the variables that differ between `self` and `other`.
    pub(crate) fn changed_count(&self, other: &InjectedValues) -> usize {
        let names: BTreeSet<&String> = self.values.keys().chain(other.values.keys()).collect();
        names
            .into_iter()
            .filter(|name| self.values.get(*name) != other.values.get(*name))
            .count()
    }
}

/// Reads every mapping's value.
///
/// Each secret is read once and every field of it is taken from that one
/// read. So the username and password of one leased secret always come
/// from the same lease, even when the lease is replaced between two
/// variables.
pub(crate) async fn resolve(client: &Client, mappings: &[Mapping]) -> Result<InjectedValues, Failure> {
    let mut secrets: BTreeMap<&str, Secret> = BTreeMap::new();
    let mut values = BTreeMap::new();
    for mapping in mappings {
        let secret = match secrets.get(mapping.secret.as_str()) {
            Some(secret) => secret.clone(),
            None => {
                let secret = client.get(&mapping.secret).await.map_err(|error| failure(mapping, &error))?;
                secrets.insert(&mapping.secret, secret.clone());
                secret
            }
        };
        let selected = match &mapping.field {
            Some(field) => secret.field(field).map_err(|error| failure(mapping, &error))?,
            None => secret,
        };
        values.insert(mapping.name.clone(), text_of(mapping, &selected)?);
    }
    Ok(InjectedValues { values })
}

fn text_of(mapping: &Mapping, secret: &Secret) -> Result<Zeroizing<String>, Failure> {
    let text = secret.expose_str().map_err(|error| failure(mapping, &error))?;
    if text.contains('\0') {
        let error = Error::new(
            ErrorClass::NotText,
            "the value contains a NUL byte, which an environment variable cannot hold",
        );
        return Err(failure(mapping, &error));
    }
    Ok(Zeroizing::new(text.to_owned()))
}

fn failure(mapping: &Mapping, error: &Error) -> Failure {
    Failure {
        message: format!(
            "cannot set {} from {}: {}",
            mapping.name,
            mapping.reference,
            error.to_string().replace(['\n', '\r'], " ")
        ),
        code: exit_code(error.class()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_table() {
        let table = BTreeMap::from([("A".to_owned(), "env://X".to_owned()), ("B".to_owned(), "env://Y#f".to_owned())]);
        let mappings = mappings(&table, &["A=env://Z".to_owned()]).unwrap();
        let pairs: Vec<(&str, &str)> = mappings.iter().map(|m| (m.name.as_str(), m.reference.as_str())).collect();
        assert_eq!(pairs, vec![("A", "env://Z"), ("B", "env://Y#f")]);
        assert_eq!(mappings[1].secret, "env://Y");
        assert_eq!(mappings[1].field.as_deref(), Some("f"));
    }

    #[test]
    fn invalid_flags_are_rejected() {
        for flag in ["NOEQUALS", "=env://X", "A=not a reference"] {
            let failure = mappings(&BTreeMap::new(), &[flag.to_owned()]).unwrap_err();
            assert_eq!(failure.code, crate::output::EXIT_USAGE, "{flag}");
        }
    }

    #[test]
    fn changed_count_compares_by_name() {
        let make = |pairs: &[(&str, &str)]| InjectedValues {
            values: pairs
                .iter()
                .map(|(name, value)| ((*name).to_owned(), Zeroizing::new((*value).to_owned())))
                .collect(),
        };
        let before = make(&[("A", "1"), ("B", "2")]);
        assert_eq!(before.changed_count(&make(&[("A", "1"), ("B", "2")])), 0);
        assert_eq!(before.changed_count(&make(&[("A", "2"), ("B", "1")])), 2);
        assert_eq!(before.changed_count(&make(&[("A", "1"), ("B", "3")])), 1);
    }
}
