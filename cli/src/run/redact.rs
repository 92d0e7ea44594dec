//! Masking secret values in a child's output, as it streams.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

/// Text that replaces a secret value in the output.
pub(crate) const MASK: &[u8] = b"[REDACTED]";

/// Read size of the output pumps.
const CHUNK_BYTES: usize = 8192;

/// The values to mask. Empty values are left out, because they match
/// everywhere.
#[derive(Clone, Default)]
pub(crate) struct Needles {
    values: Arc<Vec<Zeroizing<Vec<u8>>>>,
}

impl Needles {
    pub(crate) fn new<I, V>(values: I) -> Needles
    where
        I: IntoIterator<Item = V>,
        V: AsRef<[u8]>,
    {
        let mut unique: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        for value in values {
            let value = value.as_ref();
            if !value.is_empty() && !unique.iter().any(|known| known.as_slice() == value) {
                unique.push(Zeroizing::new(value.to_vec()));
            }
        }
        Needles {
            values: Arc::new(unique),
        }
    }
}

/// A streaming replacer. Bytes that may be the start of a value split
/// across two reads are held back until the next read shows whether they
/// are. Everything else is passed on at once.
pub(crate) struct Redactor {
    needles: Needles,
    held: Zeroizing<Vec<u8>>,
}

impl Redactor {
    pub(crate) fn new(needles: Needles) -> Redactor {
        Redactor {
            needles,
            held: Zeroizing::new(Vec::new()),
        }
    }

    /// Appends `input` and moves everything that is settled to `output`.
    pub(crate) fn push(&mut self, input: &[u8], output: &mut Vec<u8>) {
        self.held.extend_from_slice(input);
        self.drain(output, false);
    }

    /// Moves everything still held to `output`; the stream has ended.
    pub(crate) fn finish(&mut self, output: &mut Vec<u8>) {
        self.drain(output, true);
    }

    fn drain(&mut self, output: &mut Vec<u8>, at_end: bool) {
        let held = &self.held[..];
        let mut position = 0;
        let mut plain_from = 0;
        while position < held.len() {
            let rest = &held[position..];
            // A longer value that might still complete wins over a shorter
            // one that matched, so that no tail of the longer value leaks.
            if !at_end && self.needles.values.iter().any(|value| value.len() > rest.len() && value.starts_with(rest)) {
                break;
            }
            let longest = self
                .needles
                .values
                .iter()
                .filter(|value| rest.starts_with(value))
                .map(|value| value.len())
                .max();
            match longest {
                Some(length) => {
                    output.extend_from_slice(&held[plain_from..position]);
                    output.extend_from_slice(MASK);
                    position += length;
                    plain_from = position;
                }
                None => position += 1,
            }
        }
        output.extend_from_slice(&held[plain_from..position]);
        let remaining = held[position..].to_vec();
        self.held = Zeroizing::new(remaining);
    }
}

/// Copies `from` to `to` until end of file, masking `needles`. Write errors
/// (a closed stdout) end the copy quietly, like a pipe's reader leaving.
pub(crate) async fn pump<R, W>(mut from: R, mut to: W, needles: Needles)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut redactor = Redactor::new(needles);
    let mut chunk = Zeroizing::new(vec![0u8; CHUNK_BYTES]);
    let mut output = Vec::with_capacity(CHUNK_BYTES);
    loop {
        let read = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        output.clear();
        redactor.push(&chunk[..read], &mut output);
        if to.write_all(&output).await.is_err() || to.flush().await.is_err() {
            return;
        }
    }
    output.clear();
    redactor.finish(&mut output);
    let _ = to.write_all(&output).await;
    let _ = to.flush().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(needles: &[&str], chunks: &[&str]) -> String {
        let mut redactor = Redactor::new(Needles::new(needles.iter().map(|needle| needle.as_bytes())));
        let mut output = Vec::new();
        for chunk in chunks {
            redactor.push(chunk.as_bytes(), &mut output);
        }
        redactor.finish(&mut output);
        String::from_utf8(output).unwrap()
    }

    #[test]
    fn value_in_one_chunk_is_masked() {
        assert_eq!(redact(&["hunter2"], &["pw=hunter2;\n"]), "pw=[REDACTED];\n");
    }

    #[test]
    fn value_split_across_chunks_is_masked() {
        assert_eq!(redact(&["hunter2"], &["pw=hun", "ter", "2 ok"]), "pw=[REDACTED] ok");
    }

    #[test]
    fn longer_value_wins_over_its_prefix() {
        assert_eq!(redact(&["abc", "abcdef"], &["x abc", "def y"]), "x [REDACTED] y");
        assert_eq!(redact(&["abc", "abcdef"], &["x abc", "dx y"]), "x [REDACTED]dx y");
    }

    #[test]
    fn unmatched_prefix_is_released_at_end() {
        assert_eq!(redact(&["hunter2"], &["hunt"]), "hunt");
    }

    #[test]
    fn settled_bytes_are_not_held() {
        let mut redactor = Redactor::new(Needles::new([b"hunter2"]));
        let mut output = Vec::new();
        redactor.push(b"ready\nhun", &mut output);
        assert_eq!(output, b"ready\n");
    }

    #[test]
    fn multiline_and_repeated_values_are_masked() {
        let value = "line1\nline2";
        assert_eq!(redact(&[value], &["a line1\nli", "ne2 b line1\nline2"]), "a [REDACTED] b [REDACTED]");
    }

    #[test]
    fn empty_value_is_ignored() {
        assert_eq!(redact(&["", "x"], &["axb"]), "a[REDACTED]b");
    }
}
