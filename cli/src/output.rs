//! Exit codes and error lines shared by every subcommand.

use keystead::{Error, ErrorClass};

/// Exit code for success.
pub(crate) const EXIT_OK: u8 = 0;
/// Exit code for failures that fit no other code.
pub(crate) const EXIT_FAILURE: u8 = 1;
/// Exit code for bad usage, an invalid reference or invalid configuration
/// (clap uses 2 for usage errors too).
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit code when the secret, version or field does not exist or was
/// deleted.
pub(crate) const EXIT_NOT_FOUND: u8 = 3;
/// Exit code when the backend denied access or the value could not be
/// decrypted.
pub(crate) const EXIT_ACCESS_DENIED: u8 = 4;
/// Exit code when the backend is unavailable; retrying later may work.
pub(crate) const EXIT_UNAVAILABLE: u8 = 5;

/// A failed command: the one line printed to stderr and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) code: u8,
}

impl Failure {
    pub(crate) fn internal(message: String) -> Failure {
        Failure {
            message,
            code: EXIT_FAILURE,
        }
    }

    pub(crate) fn usage(message: String) -> Failure {
        Failure {
            message,
            code: EXIT_USAGE,
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        // Error's Display names the reference and the class and never the
        // value; newlines in a backend message are flattened so the error
        // stays one line.
        let message = error.to_string().replace(['\n', '\r'], " ");
        Failure {
            message,
            code: exit_code(error.class()),
        }
    }
}

/// Maps an error class to the command's exit code.
pub(crate) fn exit_code(class: ErrorClass) -> u8 {
    match class {
        ErrorClass::InvalidReference | ErrorClass::Config => EXIT_USAGE,
        ErrorClass::NotFound | ErrorClass::SecretDeleted | ErrorClass::FieldNotFound => EXIT_NOT_FOUND,
        ErrorClass::AccessDenied | ErrorClass::DecryptionFailed => EXIT_ACCESS_DENIED,
        ErrorClass::Unavailable => EXIT_UNAVAILABLE,
        _ => EXIT_FAILURE,
    }
}
