//! JSON-RPC over a byte stream, one document per line (newline-delimited, as
//! language servers' stdio peers and many tools speak it), on standard input
//! and output. The session itself is [`super::json`].
//!
//! A line is one call, notification, batch or answer; blank lines are
//! skipped and a `\r` before the newline is dropped. Answers go out one per
//! line: the encoder escapes every control character inside strings, so a
//! document never holds a raw newline. A line longer than the frame limit is
//! answered with an error (null id) and skipped up to its end; the session
//! goes on.

use super::json::{self, Documents, Peer};
use super::{Calls, FrameSink, Session, StreamLimits};
use rpcs_core::Fault;
use std::sync::Arc;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The protocol's name in metrics and logs: JSON-RPC, as over HTTP.
const PROTOCOL: &str = "jsonrpc";

/// Frames written as lines.
struct LineSink<W>(W);

impl<W: AsyncWrite + Unpin + Send + 'static> FrameSink for LineSink<W> {
    async fn write_batch(&mut self, frames: Vec<Vec<u8>>) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(frames.iter().map(|f| f.len() + 1).sum());
        for frame in frames {
            out.extend_from_slice(&frame);
            out.push(b'\n');
        }
        self.0.write_all(&out).await?;
        self.0.flush().await
    }

    async fn close(&mut self) {
        let _ = self.0.shutdown().await;
    }
}

/// Lines of a byte stream, each at most `max` bytes.
struct LineDocuments<R> {
    reader: R,
    max: usize,
}

/// What reading one line came to.
enum Line {
    Document(Vec<u8>),
    TooLong,
    End,
}

impl<R: AsyncBufRead + Unpin + Send + 'static> LineDocuments<R> {
    /// Reads up to the next newline, keeping at most `max` bytes: a longer
    /// line is read to its end and dropped, never held whole.
    async fn line(&mut self) -> std::io::Result<Line> {
        let mut line = Vec::new();
        let mut too_long = false;
        loop {
            let buf = self.reader.fill_buf().await?;
            if buf.is_empty() {
                // The input ended; a last line without a newline still counts.
                return Ok(match (too_long, line.is_empty()) {
                    (true, _) => Line::TooLong,
                    (false, true) => Line::End,
                    (false, false) => Line::Document(line),
                });
            }
            let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..i], Some(i + 1)),
                None => (buf, None),
            };
            if !too_long && line.len() + chunk.len() <= self.max {
                line.extend_from_slice(chunk);
            } else {
                too_long = true;
                line = Vec::new();
            }
            let used = done.unwrap_or(buf.len());
            self.reader.consume(used);
            if done.is_some() {
                return Ok(if too_long {
                    Line::TooLong
                } else {
                    Line::Document(line)
                });
            }
        }
    }
}

impl<R: AsyncBufRead + Unpin + Send + 'static> Documents for LineDocuments<R> {
    async fn next(&mut self) -> Option<Result<Vec<u8>, Fault>> {
        loop {
            match self.line().await {
                Err(_) | Ok(Line::End) => return None,
                Ok(Line::TooLong) => {
                    return Some(Err(Fault::new(
                        Fault::LIMIT_EXCEEDED,
                        format!("line over the limit of {} bytes, skipped", self.max),
                    )))
                }
                Ok(Line::Document(mut line)) => {
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    return Some(Ok(line));
                }
            }
        }
    }

    fn auth_timed_out(&mut self) {}
}

/// Starts a JSON-RPC session reading lines from `reader` and writing them to
/// `writer`; see [`json::start`].
pub(crate) fn start<R, W>(
    calls: Calls,
    (reader, writer): (R, W),
    limits: StreamLimits,
    peer: Peer,
    stop: watch::Receiver<bool>,
) -> (Arc<Session>, JoinHandle<()>)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let documents = LineDocuments {
        reader: BufReader::new(reader),
        max: limits.max_frame,
    };
    json::start(calls, LineSink(writer), documents, limits, peer, stop)
}

/// The protocol a line session names itself by.
pub(crate) fn peer(principal: Option<Arc<rpcs_core::Principal>>, conn_id: u64) -> Peer {
    Peer {
        protocol: PROTOCOL,
        addr: None,
        conn_id,
        principal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Option<Result<Vec<u8>, String>>> {
        let mut docs = LineDocuments {
            reader: BufReader::with_capacity(4, std::io::Cursor::new(input.to_vec())),
            max,
        };
        let mut out = Vec::new();
        loop {
            let next = docs.next().await;
            let end = next.is_none();
            out.push(next.map(|r| r.map_err(|f| f.message)));
            if end {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn one_document_per_line_blank_lines_and_carriage_returns_dropped() {
        let got = lines(b"{\"a\":1}\r\n\n  \n[1,2]\n{\"last\":true}", 64).await;
        assert_eq!(
            got,
            [
                Some(Ok(b"{\"a\":1}".to_vec())),
                Some(Ok(b"[1,2]".to_vec())),
                Some(Ok(b"{\"last\":true}".to_vec())),
                None
            ]
        );
    }

    #[tokio::test]
    async fn a_line_over_the_limit_is_an_error_and_the_next_one_is_read() {
        let got = lines(b"0123456789abcdef\n{}\n", 8).await;
        assert!(matches!(&got[0], Some(Err(m)) if m.contains("over the limit of 8")));
        assert_eq!(got[1], Some(Ok(b"{}".to_vec())));
        assert_eq!(got[2], None);
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_limit_is_read() {
        let got = lines(b"12345678\n", 8).await;
        assert_eq!(got[0], Some(Ok(b"12345678".to_vec())));
    }
}
