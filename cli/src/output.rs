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

/// Maximum length of a printed error message, in characters after escaping. A message
/// repeats the reference, and a 2,000-character line still shows any
/// realistic reference whole while a 100 KB one cannot flood the terminal.
pub(crate) const MAX_MESSAGE_CHARS: usize = 2_000;

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

    /// Formats the message for a terminal or a log line. Every control and
    /// bidirectional formatting character is escaped, so that a reference
    /// decoded from `%1b` or `%00` cannot send escape sequences. The result
    /// is cut to `MAX_MESSAGE_CHARS` with a trailing `…`.
    pub(crate) fn printable_message(&self) -> String {
        printable(&self.message, MAX_MESSAGE_CHARS)
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        // Error's Display names the reference and the class and never the
        // value. Newlines in it are escaped when printed, which keeps the
        // error one line.
        Failure {
            message: error.to_string(),
            code: exit_code(error.class()),
        }
    }
}

fn printable(message: &str, max_chars: usize) -> String {
    let mut line = String::with_capacity(message.len().min(max_chars));
    let mut length = 0;
    for character in message.chars() {
        let piece = match character {
            '\n' | '\r' | '\t' | '\0' => character.escape_debug().to_string(),
            _ if character.is_control() || is_bidi_control(character) => character.escape_unicode().to_string(),
            _ => character.to_string(),
        };
        let piece_length = piece.chars().count();
        if length + piece_length > max_chars {
            line.push('…');
            return line;
        }
        line.push_str(&piece);
        length += piece_length;
    }
    line
}

/// Characters that reorder the text displayed around them (Unicode
/// bidirectional embeddings, overrides and isolates). They are not control
/// characters to `char::is_control`, yet can make a line read differently
/// from its bytes.
fn is_bidi_control(character: char) -> bool {
    matches!(character, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_control_characters() {
        assert_eq!(printable("a\u{1b}[31mb\0c\nd\u{7f}e\u{9b}f", 100), "a\\u{1b}[31mb\\0c\\nd\\u{7f}e\\u{9b}f");
        assert_eq!(printable("x\u{202e}y", 100), "x\\u{202e}y");
        assert_eq!(printable("prod/db#pässwörd", 100), "prod/db#pässwörd");
    }

    #[test]
    fn printable_cuts_long_messages() {
        assert_eq!(printable("abcdef", 4), "abcd…");
        assert_eq!(printable("abcd", 4), "abcd");
        assert_eq!(printable("ab\u{1}", 4), "ab…");
    }
}
