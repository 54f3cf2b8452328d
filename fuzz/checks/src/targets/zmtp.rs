//! ZMTP 3 framing on arbitrary bytes: the greeting, frame headers and commands
//! never panic; a frame header never lets a length past the limit through (the
//! check that stops a peer from making us allocate what it announces); every
//! frame read re-encodes to a header that reads the same; and commands and
//! messages built from the same bytes round trip.

use crate::gen;
use arbitrary::Unstructured;
use rpcs_core::zmtp::{
    check_signature, error, frame_header, parse_command, parse_greeting, pong, ready,
    write_frame, write_message, Command, ZmtpError, GREETING_LEN, MAX_HEADER_LEN,
};

/// Runs the target on one input.
pub fn check(data: &[u8]) {
    greeting(data);
    // The limit comes from the input too, so small and large ones are both tried.
    let limit = data.first().map_or(64, |&b| usize::from(b) * 16);
    frames(data, limit);
    if data.len() > GREETING_LEN {
        frames(&data[GREETING_LEN..], limit);
    }
    let _ = built(&mut Unstructured::new(data));
}

/// A greeting is refused unless its signature is; one that is accepted speaks
/// ZMTP 3 or later.
fn greeting(data: &[u8]) {
    let Some(first) = data.get(..GREETING_LEN) else {
        let _ = check_signature(data);
        return;
    };
    let mut g = [0u8; GREETING_LEN];
    g.copy_from_slice(first);
    let parsed = parse_greeting(&g);
    if check_signature(&g).is_err() {
        assert!(parsed.is_err(), "a bad signature passed: {g:02x?}");
    }
    if let Ok(greeting) = parsed {
        assert!(greeting.major >= 3);
    }
}

/// Reads frames one after the other, checking each header against the limit.
fn frames(mut buf: &[u8], limit: usize) {
    loop {
        match frame_header(buf, limit) {
            Err(ZmtpError::TooLarge { size, limit: l }) => {
                assert!(size > l as u64 && l == limit);
                return;
            }
            Err(_) => return,
            Ok(None) => {
                assert!(buf.len() < MAX_HEADER_LEN, "a whole header went unread");
                return;
            }
            Ok(Some(h)) => {
                assert!(h.len <= limit, "a frame of {} bytes passed a limit of {limit}", h.len);
                assert!(h.header_len == 2 || h.header_len == 9);
                let Some(body) = buf.get(h.header_len..h.header_len + h.len) else {
                    return;
                };
                let mut again = Vec::new();
                write_frame(&mut again, body, h.more, h.command);
                let back = frame_header(&again, limit).unwrap().unwrap();
                assert_eq!((back.more, back.command, back.len), (h.more, h.command, h.len));
                assert_eq!(&again[back.header_len..], body);
                if h.command {
                    command(body);
                }
                buf = &buf[h.header_len + h.len..];
            }
        }
    }
}

/// Any command body reads without panicking, within its own bounds.
fn command(body: &[u8]) {
    match parse_command(body) {
        Ok(Command::Ping { context, .. }) => {
            assert!(context.len() <= 16);
            assert_eq!(parse_command(&pong(context)), Ok(Command::Pong(context)));
        }
        Ok(Command::Ready(props)) => {
            for (name, value) in props {
                assert!(name.len() <= 255 && value.len() <= body.len());
            }
        }
        _ => {}
    }
}

/// READY, ERROR and whole messages built from fuzz bytes round trip.
fn built(u: &mut Unstructured) -> arbitrary::Result<()> {
    let socket_type: String = gen::string(u)?.chars().take(64).collect();
    let identity = gen::bytes(u)?;
    let r = ready(&socket_type, &identity);
    match parse_command(&r) {
        Ok(Command::Ready(props)) => {
            let get = |n: &str| rpcs_core::zmtp::property(&props, n);
            assert_eq!(get("Socket-Type"), Some(socket_type.as_bytes()));
            assert_eq!(get("Identity"), Some(identity.as_slice()));
        }
        other => panic!("READY came back as {other:?}"),
    }
    let reason = gen::string(u)?;
    match parse_command(&error(&reason)) {
        Ok(Command::Error(back)) => assert!(reason.starts_with(back) && back.len() <= 255),
        other => panic!("ERROR came back as {other:?}"),
    }
    let count = u.int_in_range(0..=8)?;
    let parts: Vec<Vec<u8>> = (0..count).map(|_| gen::bytes(u)).collect::<Result<_, _>>()?;
    let mut wire = Vec::new();
    write_message(&mut wire, &parts);
    let mut at = 0;
    for (i, part) in parts.iter().enumerate() {
        let h = frame_header(&wire[at..], usize::MAX).unwrap().unwrap();
        assert_eq!(h.more, i + 1 < parts.len());
        assert!(!h.command);
        assert_eq!(&wire[at + h.header_len..at + h.header_len + h.len], part.as_slice());
        at += h.header_len + h.len;
    }
    assert_eq!(at, wire.len());
    Ok(())
}
