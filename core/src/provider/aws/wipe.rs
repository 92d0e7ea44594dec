//! Moving secret bytes between buffers without leaving unwiped copies.
//!
//! `secrecy` (and so [`crate::SecretValue`]) turns a `String` or `Vec<u8>`
//! into a boxed slice. When the buffer has spare capacity that conversion
//! reallocates and frees the old allocation without wiping it, so secrets
//! are handed over in buffers whose capacity equals their length.

use zeroize::{Zeroize, Zeroizing};

/// Returns `text` in a buffer with no spare capacity, wiping the original
/// buffer if a new one was needed.
pub(crate) fn exact_text(mut text: String) -> String {
    if text.len() == text.capacity() {
        return text;
    }
    let mut exact = String::with_capacity(text.len());
    exact.push_str(&text);
    text.zeroize();
    exact
}

/// Returns `bytes` in a buffer with no spare capacity, wiping the original
/// buffer if a new one was needed.
pub(crate) fn exact_bytes(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.len() == bytes.capacity() {
        return bytes;
    }
    let mut exact = Vec::with_capacity(bytes.len());
    exact.extend_from_slice(&bytes);
    bytes.zeroize();
    exact
}

/// Appends to a zeroizing buffer. When the buffer must grow, a new one is
/// allocated and the old one wiped, instead of letting `Vec` reallocate
/// (which would free the old allocation without wiping it).
pub(crate) fn append(buffer: &mut Zeroizing<Vec<u8>>, chunk: &[u8]) {
    let needed = buffer.len() + chunk.len();
    if needed > buffer.capacity() {
        let mut grown = Zeroizing::new(Vec::with_capacity(needed.max(buffer.capacity() * 2)));
        grown.extend_from_slice(buffer);
        grown.extend_from_slice(chunk);
        *buffer = grown;
    } else {
        buffer.extend_from_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_text_drops_spare_capacity() {
        let mut text = String::with_capacity(64);
        text.push_str("secret");
        let exact = exact_text(text);
        assert_eq!(exact, "secret");
        assert_eq!(exact.capacity(), exact.len());
    }

    #[test]
    fn exact_bytes_drops_spare_capacity() {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&[1, 2, 3]);
        let exact = exact_bytes(bytes);
        assert_eq!(exact, vec![1, 2, 3]);
        assert_eq!(exact.capacity(), exact.len());
    }

    #[test]
    fn growing_buffer_keeps_bytes_in_order() {
        let mut buffer = Zeroizing::new(Vec::with_capacity(2));
        append(&mut buffer, b"ab");
        append(&mut buffer, b"cde");
        append(&mut buffer, b"f");
        assert_eq!(buffer.as_slice(), b"abcdef");
    }
}
