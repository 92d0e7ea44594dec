//! The token every request must carry, which keeps a server-side request
//! forgery (a process tricked into fetching a URL) from reading secrets.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::output::Failure;

/// The expected token, kept only as its SHA-256 digest.
pub(crate) struct TokenCheck {
    digest: [u8; 32],
}

impl TokenCheck {
    /// Reads the token from the first of `variables` that is set. A value
    /// `file://PATH` names a file holding the token (surrounding whitespace
    /// is ignored), as for the AWS agent. Returns the check and the name of
    /// the variable it came from.
    pub(crate) fn from_environment(variables: &[String]) -> Result<(TokenCheck, String), Failure> {
        let Some((name, value)) = variables
            .iter()
            .find_map(|name| std::env::var(name).ok().map(|value| (name.clone(), Zeroizing::new(value))))
        else {
            return Err(Failure::usage(format!(
                "no token: set one of {} (the value, or file://PATH of a file holding it)",
                variables.join(", ")
            )));
        };

        let token = match value.strip_prefix("file://") {
            Some(path) => {
                let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|error| {
                    Failure::usage(format!("cannot read the token file {path} named by {name}: {error}"))
                })?);
                Zeroizing::new(text.trim().to_owned())
            }
            None => value,
        };
        if token.is_empty() {
            return Err(Failure::usage(format!("{name} is set but the token is empty")));
        }
        Ok((TokenCheck::new(token.as_bytes()), name))
    }

    pub(crate) fn new(token: &[u8]) -> TokenCheck {
        TokenCheck {
            digest: Sha256::digest(token).into(),
        }
    }

    /// Checks whether `presented` is the token. Comparing digests in
    /// constant time reveals neither the token's bytes nor its length
    /// through timing.
    pub(crate) fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        digest.ct_eq(&self.digest).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_matches() {
        let check = TokenCheck::new(b"s3cret-token");
        assert!(check.matches(b"s3cret-token"));
        assert!(!check.matches(b"s3cret-toke"));
        assert!(!check.matches(b"s3cret-token "));
        assert!(!check.matches(b""));
    }
}
