//! ZeroMQ connections (ZMTP 3, NULL mechanism) over TCP and Unix sockets, on
//! either side: the handshake, and messages read within limits.
//!
//! The wire format is [`rpcs_core::zmtp`]; this module adds the I/O. Every frame
//! header is checked against the limit before the frame's bytes are awaited or
//! any room is reserved for them, the number of frames and the bytes of one
//! message are bounded, and the handshake has a deadline, so no peer can make a
//! process allocate what it announces or wait forever for a greeting.

pub(crate) mod dealer;
pub(crate) mod endpoint;

use bytes::{Buf, Bytes, BytesMut};
use rpcs_core::zmtp::{self, Command, ZmtpError};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The most frames one message may have (zerorpc uses two or three: routing
/// identities, an empty delimiter, the event).
pub(crate) const MAX_FRAMES: usize = 64;

/// Bounds on one ZMTP connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The largest message, all frames together.
    pub max_message: usize,
    /// Time allowed for the greeting and handshake.
    pub handshake: Duration,
    /// Time allowed for the rest of a message once it started.
    pub message: Duration,
}

/// Why a connection failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    /// The socket failed or closed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer broke the protocol.
    #[error("{0}")]
    Protocol(#[from] ZmtpError),
    /// The peer refused us with an ERROR command.
    #[error("the peer refused the connection: {0}")]
    Refused(String),
    /// The peer's socket type cannot talk to ours.
    #[error("a {ours} socket cannot talk to a {peer} socket")]
    Incompatible {
        /// Our socket type.
        ours: &'static str,
        /// The peer's.
        peer: String,
    },
    /// A message has too many frames or bytes.
    #[error("message over the limit ({0})")]
    TooLarge(String),
    /// The handshake or a message did not arrive in time.
    #[error("the peer was too slow ({0})")]
    Timeout(&'static str),
}

/// What arrived on a connection.
pub(crate) enum Incoming {
    /// A whole message, its frames in order.
    Message(Vec<Bytes>),
    /// A heartbeat to answer (the PONG is ready to write).
    Ping(Vec<u8>),
}

/// The reading side of a connection: a buffer and the limits.
pub(crate) struct Reader<R> {
    io: R,
    buf: BytesMut,
    limits: Limits,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    /// A reader over `io`.
    pub(crate) fn new(io: R, limits: Limits) -> Reader<R> {
        Reader {
            io,
            buf: BytesMut::new(),
            limits,
        }
    }

    /// Reads more bytes; an end of stream is an error here.
    async fn fill(&mut self, want: usize) -> Result<(), ConnError> {
        // Room for what is known to be needed, never for what a header claims
        // beyond the limit (frame_header refused that already). A buffer that
        // grew for a big message is let go once it is empty.
        if self.buf.is_empty() && self.buf.capacity() > 64 * 1024 {
            self.buf = BytesMut::new();
        }
        self.buf.reserve(
            want.saturating_sub(self.buf.len())
                .clamp(4 * 1024, 256 * 1024),
        );
        if self.io.read_buf(&mut self.buf).await? == 0 {
            return Err(ConnError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(())
    }

    /// Reads exactly `n` bytes (for the greeting).
    async fn exact(&mut self, n: usize) -> Result<Bytes, ConnError> {
        while self.buf.len() < n {
            if self.buf.len() >= 10 {
                zmtp::check_signature(&self.buf)?;
            }
            self.fill(n).await?;
        }
        Ok(self.buf.split_to(n).freeze())
    }

    /// The next frame: its header and body.
    async fn frame(&mut self, max: usize) -> Result<(zmtp::FrameHeader, Bytes), ConnError> {
        loop {
            if let Some(h) = zmtp::frame_header(&self.buf, max)? {
                let total = h.header_len + h.len;
                while self.buf.len() < total {
                    self.fill(total).await?;
                }
                self.buf.advance(h.header_len);
                return Ok((h, self.buf.split_to(h.len).freeze()));
            }
            self.fill(zmtp::MAX_HEADER_LEN).await?;
        }
    }

    /// Waits until some bytes are buffered; cancel-safe (nothing is consumed),
    /// so it can race a timeout.
    pub(crate) async fn wait_data(&mut self) -> Result<(), ConnError> {
        if self.buf.is_empty() {
            self.fill(zmtp::MAX_HEADER_LEN).await?;
        }
        Ok(())
    }

    /// Whether no part of a message is waiting in the buffer.
    pub(crate) fn between_messages(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next message or heartbeat; other commands are skipped. Once a message
    /// has begun, the rest must come within the message timeout.
    pub(crate) async fn next(&mut self) -> Result<Incoming, ConnError> {
        if self.buf.is_empty() {
            self.fill(zmtp::MAX_HEADER_LEN).await?;
        }
        let limit = self.limits.message;
        match tokio::time::timeout(limit, self.message()).await {
            Ok(m) => m,
            Err(_) => Err(ConnError::Timeout("a message")),
        }
    }

    async fn message(&mut self) -> Result<Incoming, ConnError> {
        let mut frames = Vec::new();
        let mut total = 0usize;
        loop {
            let left = self.limits.max_message - total;
            let (h, body) = match self.frame(left).await {
                Err(ConnError::Protocol(ZmtpError::TooLarge { size, .. })) => {
                    let limit = self.limits.max_message;
                    return Err(ConnError::TooLarge(format!(
                        "a frame of {size} bytes in a message limited to {limit}"
                    )));
                }
                other => other?,
            };
            if h.command {
                if !frames.is_empty() {
                    return Err(ZmtpError::Command("a command inside a message".into()).into());
                }
                match zmtp::parse_command(&body)? {
                    Command::Ping { context, .. } => {
                        return Ok(Incoming::Ping(zmtp::pong(context)))
                    }
                    Command::Error(reason) => return Err(ConnError::Refused(reason.to_owned())),
                    _ => continue,
                }
            }
            total += body.len();
            frames.push(body);
            if !h.more {
                return Ok(Incoming::Message(frames));
            }
            if frames.len() >= MAX_FRAMES {
                return Err(ConnError::TooLarge(format!(
                    "more than {MAX_FRAMES} frames"
                )));
            }
        }
    }
}

/// Runs the handshake on a fresh connection as a socket of type `ours`: both
/// greetings, then both READY commands. Returns the peer's socket type and
/// routing identity.
pub(crate) async fn handshake<R, W>(
    reader: &mut Reader<R>,
    writer: &mut W,
    ours: &'static str,
) -> Result<(String, Vec<u8>), ConnError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let limit = reader.limits.handshake;
    let exchange = async {
        // Our whole greeting goes first: libzmq waits for the peer's signature
        // before it sends the rest of its own.
        writer.write_all(&zmtp::greeting()).await?;
        let mut greeting = [0u8; zmtp::GREETING_LEN];
        greeting.copy_from_slice(&reader.exact(zmtp::GREETING_LEN).await?);
        zmtp::parse_greeting(&greeting)?;
        let mut ready = Vec::new();
        zmtp::write_frame(&mut ready, &zmtp::ready(ours, b""), false, true);
        writer.write_all(&ready).await?;
        writer.flush().await?;
        peer_ready(reader, ours).await
    };
    match tokio::time::timeout(limit, exchange).await {
        Ok(r) => r,
        Err(_) => Err(ConnError::Timeout("the handshake")),
    }
}

/// Reads the peer's READY and checks its socket type against ours.
async fn peer_ready<R: AsyncRead + Unpin>(
    reader: &mut Reader<R>,
    ours: &'static str,
) -> Result<(String, Vec<u8>), ConnError> {
    // A READY is small; nothing near the message limit is needed to read it.
    let (h, body) = reader.frame(64 * 1024).await?;
    if !h.command {
        return Err(ZmtpError::Command("a message before READY".into()).into());
    }
    let props = match zmtp::parse_command(&body)? {
        Command::Ready(props) => props,
        Command::Error(reason) => return Err(ConnError::Refused(reason.to_owned())),
        _ => return Err(ZmtpError::Command("expected READY".into()).into()),
    };
    let peer_type = zmtp::property(&props, "Socket-Type")
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .unwrap_or_default();
    if !zmtp::compatible(ours, &peer_type) {
        return Err(ConnError::Incompatible {
            ours,
            peer: peer_type,
        });
    }
    let identity = zmtp::property(&props, "Identity").unwrap_or_default();
    Ok((peer_type, identity.to_vec()))
}

/// A message's frames encoded for the wire.
pub(crate) fn encode<B: AsRef<[u8]>>(frames: &[B]) -> Vec<u8> {
    let len: usize = frames.iter().map(|f| f.as_ref().len() + 9).sum();
    let mut out = Vec::with_capacity(len);
    zmtp::write_message(&mut out, frames);
    out
}

/// A command frame encoded for the wire (a PONG, an ERROR).
pub(crate) fn command(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 9);
    zmtp::write_frame(&mut out, body, false, true);
    out
}

/// Tells a peer why it is refused, without waiting on it.
pub(crate) async fn refuse<W: AsyncWrite + Unpin>(writer: &mut W, reason: &str) {
    let bytes = command(&zmtp::error(reason));
    let _ = tokio::time::timeout(Duration::from_secs(1), writer.write_all(&bytes)).await;
}
