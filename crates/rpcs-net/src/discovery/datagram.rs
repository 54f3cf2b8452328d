//! One MessagePack-RPC call over UDP to one registry address: resent with
//! growing pauses until an answer arrives or time runs out; to a broadcast
//! address, every answer that arrives within the time.

use rpcs_core::msgpack::{self, DEFAULT_MAX_DEPTH};
use rpcs_core::msgpack_rpc::{self, RpcMessage};
use rpcs_core::{Fault, Value};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// The first pause before a request is sent again; it doubles each time.
const FIRST_RESEND: Duration = Duration::from_millis(200);

/// The largest answer read.
const MAX_ANSWER: usize = 65_507;

/// What one address answered.
pub(crate) type Answers = Vec<(SocketAddr, Result<Value, Fault>)>;

/// Calls `method` at `target` over UDP within `timeout`. A unicast target's
/// first answer ends it; a broadcast target collects answers until the time
/// is up. An unreachable target answers nothing.
pub(crate) async fn call(
    target: SocketAddr,
    broadcast: bool,
    method: &str,
    params: &[Value],
    timeout: Duration,
) -> io::Result<Answers> {
    let local: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse().expect("an address")
    } else {
        "[::]:0".parse().expect("an address")
    };
    let socket = UdpSocket::bind(local).await?;
    if broadcast {
        socket.set_broadcast(true)?;
    }
    let msgid = fastrand::u32(..);
    let mut request = Vec::new();
    msgpack_rpc::write_request(&mut request, msgid, method, params);
    let deadline = Instant::now() + timeout;
    let mut answers = Vec::new();
    let mut pause = FIRST_RESEND;
    let mut buf = vec![0u8; MAX_ANSWER];
    'send: loop {
        socket.send_to(&request, target).await?;
        // Broadcasts are sent once and answered by whoever hears them.
        let resend = if broadcast {
            deadline
        } else {
            (Instant::now() + pause).min(deadline)
        };
        pause *= 2;
        loop {
            let received = tokio::time::timeout_at(resend, socket.recv_from(&mut buf)).await;
            match received {
                Ok(Ok((n, from))) => {
                    if let Some(outcome) = read_answer(&buf[..n], msgid) {
                        answers.push((from, outcome));
                        if !broadcast {
                            break 'send;
                        }
                    }
                }
                // An ICMP "port unreachable" for an earlier send: nobody there.
                Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => break 'send,
                Ok(Err(e)) => return Err(e),
                Err(_) if Instant::now() >= deadline => break 'send,
                Err(_) => continue 'send,
            }
        }
    }
    Ok(answers)
}

/// The outcome in an answer to request `msgid`; `None` for anything else.
fn read_answer(bytes: &[u8], msgid: u32) -> Option<Result<Value, Fault>> {
    let value = msgpack::decode(bytes, DEFAULT_MAX_DEPTH).ok()?;
    match msgpack_rpc::parse(value).ok()? {
        RpcMessage::Response { msgid: id, outcome } if id == msgid => Some(outcome),
        _ => None,
    }
}
