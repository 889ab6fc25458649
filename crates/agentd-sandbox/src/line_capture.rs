//! Reading the program's stdout, stderr and events pipes: split into lines (over-long lines
//! are cut so that no line exceeds `max_line_bytes`), delivered in order per stream, and
//! counted against `max_output_bytes` across all three streams.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use crate::spec::{OutputLine, Stream};

const READ_CHUNK: usize = 64 * 1024;

/// The run wrote more than `max_output_bytes`.
#[derive(Debug)]
pub(crate) struct OutputLimitExceeded;

/// Shared by the three pumps of one run.
pub(crate) struct LineCapture {
    lines: mpsc::Sender<OutputLine>,
    max_bytes: u64,
    max_line: usize,
    total: AtomicU64,
    receiver_gone: AtomicBool,
}

impl LineCapture {
    pub(crate) fn new(lines: mpsc::Sender<OutputLine>, max_bytes: u64, max_line: usize) -> Self {
        LineCapture { lines, max_bytes, max_line, total: AtomicU64::new(0), receiver_gone: AtomicBool::new(false) }
    }

    /// Bytes read so far from all streams.
    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Reads `reader` to EOF, delivering its lines. Stops early when the run's output
    /// exceeds the cap (the bytes within the cap are still delivered).
    pub(crate) async fn pump(
        &self,
        stream: Stream,
        mut reader: impl AsyncRead + Unpin,
    ) -> Result<(), OutputLimitExceeded> {
        let mut splitter = LineSplitter::new(self.max_line);
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            let n = match reader.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!(?stream, error = %e, "reading program output failed");
                    break;
                }
            };
            let before = self.total.fetch_add(n as u64, Ordering::Relaxed);
            let allowed = self.max_bytes.saturating_sub(before).min(n as u64) as usize;
            for line in splitter.push(&chunk[..allowed]) {
                self.deliver(stream, line).await;
            }
            if allowed < n {
                return Err(OutputLimitExceeded);
            }
        }
        for line in splitter.finish() {
            self.deliver(stream, line).await;
        }
        Ok(())
    }

    async fn deliver(&self, stream: Stream, line: String) {
        if self.receiver_gone.load(Ordering::Relaxed) {
            return;
        }
        if self.lines.send(OutputLine { stream, line }).await.is_err() {
            // Nobody reads the lines any more; keep draining so the program is not blocked.
            self.receiver_gone.store(true, Ordering::Relaxed);
        }
    }
}

/// Turns a byte stream into lines of at most `max` bytes of UTF-8.
pub(crate) struct LineSplitter {
    pending: Vec<u8>,
    max: usize,
}

impl LineSplitter {
    pub(crate) fn new(max: usize) -> Self {
        LineSplitter { pending: Vec::new(), max: max.max(4) }
    }

    /// Adds bytes; returns the lines completed (or cut) by them.
    pub(crate) fn push(&mut self, data: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(data);
        let mut lines = Vec::new();
        let mut start = 0;
        loop {
            let rest = &self.pending[start..];
            if let Some(newline) = rest.iter().position(|b| *b == b'\n') {
                self.cut(&rest[..newline], &mut lines);
                start += newline + 1;
            } else if rest.len() > self.max {
                let at = utf8_cut(rest, self.max);
                self.cut(&rest[..at], &mut lines);
                start += at;
            } else {
                break;
            }
        }
        self.pending.drain(..start);
        lines
    }

    /// The last line (possibly cut) if the stream did not end with a newline.
    pub(crate) fn finish(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.cut(&rest, &mut lines);
        }
        lines
    }

    /// Converts one line (lossily) and splits it at char boundaries into pieces ≤ `max`.
    /// Invalid bytes become U+FFFD (3 bytes), so a piece may need a further split.
    fn cut(&self, bytes: &[u8], out: &mut Vec<String>) {
        let text = String::from_utf8_lossy(bytes);
        let mut rest: &str = &text;
        while rest.len() > self.max {
            let mut at = self.max;
            while !rest.is_char_boundary(at) {
                at -= 1;
            }
            out.push(rest[..at].to_string());
            rest = &rest[at..];
        }
        out.push(rest.to_string());
    }
}

/// A cut position ≤ `max` that does not split a UTF-8 sequence (when it can avoid it).
fn utf8_cut(bytes: &[u8], max: usize) -> usize {
    let is_continuation = |b: u8| b & 0xC0 == 0x80;
    let mut at = max;
    while at > max.saturating_sub(3) && at > 0 && is_continuation(bytes[at]) {
        at -= 1;
    }
    if at == 0 { max } else { at }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_on_newlines_and_the_tail_is_flushed() {
        let mut s = LineSplitter::new(100);
        assert_eq!(s.push(b"a\nbb\ncc"), vec!["a", "bb"]);
        assert_eq!(s.push(b"c\n\n"), vec!["ccc", ""]);
        assert_eq!(s.push(b"tail"), Vec::<String>::new());
        assert_eq!(s.finish(), vec!["tail"]);
        assert!(s.finish().is_empty());
    }

    #[test]
    fn long_lines_are_cut_into_pieces_no_longer_than_the_maximum() {
        let mut s = LineSplitter::new(4);
        assert_eq!(s.push(b"abcdefghij\n"), vec!["abcd", "efgh", "ij"]);
    }

    #[test]
    fn cuts_do_not_split_multibyte_characters() {
        let mut s = LineSplitter::new(5);
        let lines = s.push("ééé\n".as_bytes()); // 6 bytes
        assert_eq!(lines, vec!["éé", "é"]);
        let mut s = LineSplitter::new(5);
        let lines = s.push("ééé".as_bytes());
        assert_eq!(lines, vec!["éé"]);
        assert_eq!(s.finish(), vec!["é"]);
    }

    #[test]
    fn invalid_utf8_is_replaced_and_still_within_the_maximum() {
        let mut s = LineSplitter::new(4);
        let lines = s.push(b"\xff\xff\xff\n");
        assert!(lines.iter().all(|l| l.len() <= 4), "{lines:?}");
        assert_eq!(lines.concat(), "\u{fffd}\u{fffd}\u{fffd}");
    }
}
