//! ZMTP 3 framing, ZeroMQ's wire protocol, with the NULL security mechanism:
//! the greeting, the commands of the handshake and message frames.
//!
//! A connection starts with a 64-byte greeting each way (signature, version,
//! mechanism), then each side sends a `READY` command naming its socket type, then
//! messages flow: each is one or more frames, every frame but the last flagged
//! MORE. A frame's length comes first (1 byte, or 8 for long frames), so
//! [`frame_header`] checks it against the caller's limit before anything is
//! allocated. Only the NULL mechanism is spoken: ZeroMQ's security mechanisms are
//! not available here (the project authenticates on top of the RPC instead).

/// The length of a greeting.
pub const GREETING_LEN: usize = 64;

/// The longest frame header: a flags byte and an 8-byte length.
pub const MAX_HEADER_LEN: usize = 9;

const FLAG_MORE: u8 = 0x01;
const FLAG_LONG: u8 = 0x02;
const FLAG_COMMAND: u8 = 0x04;

/// Why bytes are not valid ZMTP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZmtpError {
    /// The peer does not speak ZMTP (the signature is wrong).
    #[error("not a ZMTP peer (bad greeting signature)")]
    Signature,
    /// The peer speaks a ZMTP older than 3.0.
    #[error("ZMTP {0}.x is not supported (3.0 or later is)")]
    Version(u8),
    /// The peer wants a security mechanism other than NULL.
    #[error("security mechanism {0:?} is not supported (only NULL is)")]
    Mechanism(String),
    /// A frame uses flag bits the protocol reserves.
    #[error("frame flags {0:#04x} use reserved bits")]
    Flags(u8),
    /// A frame is longer than the limit.
    #[error("frame of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// The length the frame header announced.
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// A command is malformed.
    #[error("malformed ZMTP command: {0}")]
    Command(String),
}

/// What a greeting announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// The major protocol version (3 or more).
    pub major: u8,
    /// The minor protocol version.
    pub minor: u8,
    /// Whether the peer acts as the mechanism's server (always false for NULL).
    pub as_server: bool,
}

/// Our greeting: ZMTP 3.1, mechanism NULL. The signature's padding carries a
/// length of 1, as libzmq sends it, so that ZMTP 1.0 peers read it as a frame.
pub fn greeting() -> [u8; GREETING_LEN] {
    let mut g = [0u8; GREETING_LEN];
    g[0] = 0xFF;
    g[8] = 0x01;
    g[9] = 0x7F;
    g[10] = 3;
    g[11] = 1;
    g[12..16].copy_from_slice(b"NULL");
    g
}

/// Checks the signature (the first 10 bytes) as soon as it has arrived, so a
/// peer that does not speak ZMTP is refused before the rest is awaited.
pub fn check_signature(prefix: &[u8]) -> Result<(), ZmtpError> {
    let bad = prefix.first().is_some_and(|&b| b != 0xFF)
        || prefix.get(9).is_some_and(|&b| b & 0x01 != 0x01);
    if bad {
        return Err(ZmtpError::Signature);
    }
    Ok(())
}

/// Reads a peer's greeting.
pub fn parse_greeting(g: &[u8; GREETING_LEN]) -> Result<Greeting, ZmtpError> {
    check_signature(g)?;
    let major = g[10];
    if major < 3 {
        return Err(ZmtpError::Version(major));
    }
    let mechanism = &g[12..32];
    let name_len = mechanism.iter().position(|&b| b == 0).unwrap_or(20);
    if &mechanism[..name_len] != b"NULL" || mechanism[name_len..].iter().any(|&b| b != 0) {
        let name = String::from_utf8_lossy(&mechanism[..name_len]).into_owned();
        return Err(ZmtpError::Mechanism(name));
    }
    Ok(Greeting {
        major,
        minor: g[11],
        as_server: g[32] == 1,
    })
}

/// A frame's header: its flags and the length of its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// More frames of the same message follow.
    pub more: bool,
    /// The frame is a command, not message data.
    pub command: bool,
    /// The length of the body.
    pub len: usize,
    /// The length of the header itself (2 or 9 bytes).
    pub header_len: usize,
}

/// Reads the frame header at the start of `buf`; `Ok(None)` until the whole header
/// has arrived. A body longer than `max_len` is refused here, before the caller
/// reserves room for it.
pub fn frame_header(buf: &[u8], max_len: usize) -> Result<Option<FrameHeader>, ZmtpError> {
    let Some(&flags) = buf.first() else {
        return Ok(None);
    };
    if flags & !(FLAG_MORE | FLAG_LONG | FLAG_COMMAND) != 0 {
        return Err(ZmtpError::Flags(flags));
    }
    let command = flags & FLAG_COMMAND != 0;
    // Commands are never part of a multi-frame message.
    if command && flags & FLAG_MORE != 0 {
        return Err(ZmtpError::Flags(flags));
    }
    let (size, header_len) = if flags & FLAG_LONG != 0 {
        let Some(bytes) = buf.get(1..9) else {
            return Ok(None);
        };
        let mut be = [0u8; 8];
        be.copy_from_slice(bytes);
        (u64::from_be_bytes(be), 9)
    } else {
        let Some(&len) = buf.get(1) else {
            return Ok(None);
        };
        (u64::from(len), 2)
    };
    let len = usize::try_from(size)
        .ok()
        .filter(|&n| n <= max_len)
        .ok_or(ZmtpError::TooLarge {
            size,
            limit: max_len,
        })?;
    Ok(Some(FrameHeader {
        more: flags & FLAG_MORE != 0,
        command,
        len,
        header_len,
    }))
}

/// Appends one frame.
pub fn write_frame(out: &mut Vec<u8>, body: &[u8], more: bool, command: bool) {
    let mut flags = 0;
    if more {
        flags |= FLAG_MORE;
    }
    if command {
        flags |= FLAG_COMMAND;
    }
    match u8::try_from(body.len()) {
        Ok(len) => out.extend_from_slice(&[flags, len]),
        Err(_) => {
            out.push(flags | FLAG_LONG);
            out.extend_from_slice(&(body.len() as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(body);
}

/// Appends a whole message: its frames, every one but the last flagged MORE.
pub fn write_message<B: AsRef<[u8]>>(out: &mut Vec<u8>, frames: &[B]) {
    let last = frames.len().saturating_sub(1);
    for (i, frame) in frames.iter().enumerate() {
        write_frame(out, frame.as_ref(), i < last, false);
    }
}

/// A command, as the handshake and the connection's upkeep use them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// The end of the NULL handshake, with the sender's properties
    /// (`Socket-Type`, `Identity`, ...).
    Ready(Vec<(&'a str, &'a [u8])>),
    /// The peer refuses the connection, and says why.
    Error(&'a str),
    /// A heartbeat (ZMTP 3.1): answer with a `PONG` carrying the context.
    Ping {
        /// How long the peer may go silent, in tenths of a second.
        ttl: u16,
        /// Up to 16 bytes to echo back.
        context: &'a [u8],
    },
    /// The answer to a `PING`.
    Pong(&'a [u8]),
    /// A command this side does not use (ignored, as the spec asks).
    Other(&'a str),
}

fn bad(msg: &str) -> ZmtpError {
    ZmtpError::Command(msg.to_owned())
}

/// Reads a command frame's body.
pub fn parse_command(body: &[u8]) -> Result<Command<'_>, ZmtpError> {
    let (&name_len, rest) = body.split_first().ok_or_else(|| bad("empty command"))?;
    let name_len = usize::from(name_len);
    if name_len == 0 || rest.len() < name_len {
        return Err(bad("bad command name length"));
    }
    let (name, data) = rest.split_at(name_len);
    let name = std::str::from_utf8(name).map_err(|_| bad("command name is not ASCII"))?;
    Ok(match name {
        "READY" => Command::Ready(properties(data)?),
        "ERROR" => {
            let (&len, reason) = data
                .split_first()
                .ok_or_else(|| bad("ERROR without a reason"))?;
            let reason = reason
                .get(..usize::from(len))
                .ok_or_else(|| bad("ERROR reason cut short"))?;
            Command::Error(std::str::from_utf8(reason).unwrap_or("(not UTF-8)"))
        }
        "PING" => {
            let ttl = data.get(..2).ok_or_else(|| bad("PING without a TTL"))?;
            let context = &data[2..];
            if context.len() > 16 {
                return Err(bad("PING context longer than 16 bytes"));
            }
            Command::Ping {
                ttl: u16::from_be_bytes([ttl[0], ttl[1]]),
                context,
            }
        }
        "PONG" => Command::Pong(data),
        other => Command::Other(other),
    })
}

/// Reads `READY` properties: a 1-byte name length, the name, a 4-byte value
/// length and the value, repeated.
fn properties(mut data: &[u8]) -> Result<Vec<(&str, &[u8])>, ZmtpError> {
    let mut props = Vec::new();
    while let Some((&name_len, rest)) = data.split_first() {
        let name_len = usize::from(name_len);
        let name = rest
            .get(..name_len)
            .ok_or_else(|| bad("property name cut short"))?;
        let name = std::str::from_utf8(name).map_err(|_| bad("property name is not ASCII"))?;
        let rest = &rest[name_len..];
        let len_bytes = rest
            .get(..4)
            .ok_or_else(|| bad("property length cut short"))?;
        let value_len =
            u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        let rest = &rest[4..];
        let value = usize::try_from(value_len)
            .ok()
            .and_then(|n| rest.get(..n))
            .ok_or_else(|| bad("property value cut short"))?;
        data = &rest[value.len()..];
        props.push((name, value));
    }
    Ok(props)
}

/// The body of a `READY` command for a socket of `socket_type` (`ROUTER`,
/// `DEALER`, ...), with the routing identity it asks peers to use, if any.
pub fn ready(socket_type: &str, identity: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    out.push(5);
    out.extend_from_slice(b"READY");
    push_property(&mut out, "Socket-Type", socket_type.as_bytes());
    push_property(&mut out, "Identity", identity);
    out
}

fn push_property(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value);
}

/// The body of a `PONG` answering a `PING` with `context`.
pub fn pong(context: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + context.len());
    out.push(4);
    out.extend_from_slice(b"PONG");
    out.extend_from_slice(context);
    out
}

/// The body of an `ERROR` command (the reason is cut at 255 bytes).
pub fn error(reason: &str) -> Vec<u8> {
    let mut cut = reason.len().min(255);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = Vec::with_capacity(7 + cut);
    out.push(5);
    out.extend_from_slice(b"ERROR");
    out.push(cut as u8);
    out.extend_from_slice(&reason.as_bytes()[..cut]);
    out
}

/// The value of a property in a `READY` command, matched without regard to case
/// (the spec makes property names case-insensitive).
pub fn property<'a>(props: &[(&str, &'a [u8])], name: &str) -> Option<&'a [u8]> {
    props
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// Whether a socket of type `ours` may talk to a peer of type `peer` (the valid
/// pairs of ZeroMQ's request-reply sockets).
pub fn compatible(ours: &str, peer: &str) -> bool {
    matches!(
        (ours, peer),
        ("ROUTER", "DEALER" | "REQ" | "ROUTER")
            | ("DEALER", "ROUTER" | "REP" | "DEALER")
            | ("REQ", "ROUTER" | "REP")
            | ("REP", "REQ" | "DEALER")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings() {
        let ours = greeting();
        assert_eq!(
            parse_greeting(&ours),
            Ok(Greeting {
                major: 3,
                minor: 1,
                as_server: false
            })
        );
        // libzmq's 3.0 greeting.
        let mut libzmq = [0u8; 64];
        libzmq[..12].copy_from_slice(&[0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0]);
        libzmq[12..16].copy_from_slice(b"NULL");
        assert!(parse_greeting(&libzmq).is_ok());
        let mut old = libzmq;
        old[10] = 2;
        assert_eq!(parse_greeting(&old), Err(ZmtpError::Version(2)));
        let mut curve = libzmq;
        curve[12..17].copy_from_slice(b"CURVE");
        assert!(matches!(
            parse_greeting(&curve),
            Err(ZmtpError::Mechanism(_))
        ));
        assert_eq!(check_signature(b"GET / HTTP"), Err(ZmtpError::Signature));
        assert_eq!(check_signature(&[0xff, 0, 0]), Ok(()));
    }

    #[test]
    fn frame_headers_are_checked_before_allocation() {
        assert_eq!(frame_header(&[], 100), Ok(None));
        assert_eq!(frame_header(&[0x01], 100), Ok(None));
        assert_eq!(
            frame_header(&[0x01, 5], 100),
            Ok(Some(FrameHeader {
                more: true,
                command: false,
                len: 5,
                header_len: 2
            }))
        );
        assert_eq!(frame_header(&[0x02, 0, 0, 0], 100), Ok(None));
        for claim in [1u64 << 62, 1 << 40, 1 << 32, u64::MAX, 101] {
            let mut h = vec![0x02];
            h.extend_from_slice(&claim.to_be_bytes());
            assert_eq!(
                frame_header(&h, 100),
                Err(ZmtpError::TooLarge {
                    size: claim,
                    limit: 100
                })
            );
        }
        assert_eq!(frame_header(&[0x08, 0], 100), Err(ZmtpError::Flags(0x08)));
        assert_eq!(frame_header(&[0x05, 0], 100), Err(ZmtpError::Flags(0x05)));
    }

    #[test]
    fn frames_and_messages_round_trip() {
        let mut out = Vec::new();
        let big = vec![7u8; 300];
        write_message(&mut out, &[&b""[..], &b"abc"[..], &big[..]]);
        let mut at = 0;
        let mut bodies = Vec::new();
        while at < out.len() {
            let h = frame_header(&out[at..], 1000).unwrap().unwrap();
            bodies.push((
                h.more,
                out[at + h.header_len..at + h.header_len + h.len].to_vec(),
            ));
            at += h.header_len + h.len;
        }
        assert_eq!(
            bodies,
            vec![(true, vec![]), (true, b"abc".to_vec()), (false, big)]
        );
    }

    #[test]
    fn commands() {
        let r = ready("ROUTER", b"");
        let Command::Ready(props) = parse_command(&r).unwrap() else {
            panic!()
        };
        assert_eq!(property(&props, "socket-type"), Some(&b"ROUTER"[..]));
        assert_eq!(property(&props, "Identity"), Some(&b""[..]));
        assert_eq!(parse_command(&pong(b"ab")), Ok(Command::Pong(b"ab")));
        assert_eq!(parse_command(&error("nope")), Ok(Command::Error("nope")));
        let ping = [4, b'P', b'I', b'N', b'G', 0, 10, b'x'];
        assert_eq!(
            parse_command(&ping),
            Ok(Command::Ping {
                ttl: 10,
                context: b"x"
            })
        );
        assert_eq!(
            parse_command(b"\x09SUBSCRIBEtopic"),
            Ok(Command::Other("SUBSCRIBE"))
        );
        for bad in [
            &b""[..],
            b"\x00",
            b"\x09READY",
            b"\x05READY\x03abc",
            b"\x05READY\x01a\x00\x00\x00\x05xy",
            b"\x05READY\x01a\xff\xff\xff\xff",
            b"\x04PING\x00",
            b"\x05ERROR\x09short",
        ] {
            assert!(parse_command(bad).is_err(), "{bad:?}");
        }
        assert!(compatible("ROUTER", "DEALER"));
        assert!(!compatible("ROUTER", "PUB"));
    }
}
