//! MessagePack-RPC (TCP, Unix) and JSON-RPC over WebSocket, keeping up to
//! `pipeline` calls outstanding on each connection.

use super::{Tally, Window};
use anyhow::{bail, Context as _};
use futures_util::{SinkExt, StreamExt};
use rpcs_core::msgpack::{self, FrameLen};
use rpcs_core::msgpack_rpc::{self, RpcMessage};
use rpcs_core::{jsonrpc, Value};
use std::collections::HashMap;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// The id and fault flag of a response `[1, msgid, error, result]`, read from its
/// first bytes without decoding the rest (keeps the generator's own cost low).
fn response_head(frame: &[u8]) -> Option<(u32, bool)> {
    let (msgid, rest) = match frame {
        [0x94, 0x01, id @ 0x00..=0x7f, rest @ ..] => (u32::from(*id), rest),
        [0x94, 0x01, 0xcc, id, rest @ ..] => (u32::from(*id), rest),
        [0x94, 0x01, 0xcd, a, b, rest @ ..] => (u32::from(u16::from_be_bytes([*a, *b])), rest),
        [0x94, 0x01, 0xce, a, b, c, d, rest @ ..] => (u32::from_be_bytes([*a, *b, *c, *d]), rest),
        _ => return None,
    };
    Some((msgid, rest.first()? != &0xc0))
}

#[derive(Clone)]
enum Target {
    Tcp(String),
    /// MessagePack-RPC over TLS: the address, and the connector.
    Tls(String, rpcs_net::TlsConnector),
    Unix(String),
    Ws(String),
    Zerorpc(String),
}

#[derive(Clone)]
pub(super) struct StreamLoad {
    target: Target,
    method: String,
    params: Vec<Value>,
    pipeline: usize,
    /// Presented with a first `auth` call on each connection, before the
    /// measured ones.
    credentials: Option<rpcs_net::Credentials>,
}

impl StreamLoad {
    pub(super) fn new(
        scheme: &str,
        rest: &str,
        method: &str,
        params: &[Value],
        pipeline: usize,
        config: &rpcs_net::ClientConfig,
    ) -> anyhow::Result<StreamLoad> {
        let target = match scheme {
            "msgpack" | "msgpack+tcp" => Target::Tcp(rest.trim_end_matches('/').to_owned()),
            "msgpack+tls" => Target::Tls(
                rest.trim_end_matches('/').to_owned(),
                config.tls.connector().context("the TLS setting")?,
            ),
            "msgpack+unix" => Target::Unix(rest.to_owned()),
            "ws" | "jsonrpc+ws" => Target::Ws(format!("ws://{rest}")),
            "tcp" | "ipc" => Target::Zerorpc(format!("{scheme}://{rest}")),
            other => bail!("rpcs bench does not speak {other}://"),
        };
        Ok(StreamLoad {
            target,
            method: method.to_owned(),
            params: params.to_vec(),
            pipeline,
            credentials: config.credentials.clone(),
        })
    }

    pub(super) async fn drive(self, window: Window) -> anyhow::Result<Tally> {
        match &self.target {
            Target::Tcp(addr) => {
                let s = tokio::net::TcpStream::connect(addr)
                    .await
                    .with_context(|| format!("connecting to {addr}"))?;
                s.set_nodelay(true)?;
                self.drive_msgpack(s, window).await
            }
            Target::Tls(addr, tls) => {
                let s = tokio::net::TcpStream::connect(addr)
                    .await
                    .with_context(|| format!("connecting to {addr}"))?;
                s.set_nodelay(true)?;
                let s = tls.connect(addr, s).await.context("the TLS handshake")?;
                self.drive_msgpack(s, window).await
            }
            Target::Unix(path) => {
                let s = tokio::net::UnixStream::connect(path)
                    .await
                    .with_context(|| format!("connecting to {path}"))?;
                self.drive_msgpack(s, window).await
            }
            Target::Ws(url) => self.drive_ws(url, window).await,
            Target::Zerorpc(url) => self.drive_zerorpc(url, window).await,
        }
    }

    /// zerorpc: one DEALER socket per connection through our client, keeping
    /// `pipeline` calls (channels) open at once.
    async fn drive_zerorpc(&self, url: &str, window: Window) -> anyhow::Result<Tally> {
        let client = rpcs_net::Client::new(url)?;
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..self.pipeline {
            let (client, method, params) =
                (client.clone(), self.method.clone(), self.params.clone());
            calls.spawn(async move {
                let mut tally = Tally::default();
                loop {
                    let sent = Instant::now();
                    if sent >= window.end {
                        return Ok::<_, anyhow::Error>(tally);
                    }
                    let outcome = client.call(&method, params.clone()).await;
                    let fault = match outcome {
                        Ok(_) => false,
                        Err(e) if e.fault().is_some() => true,
                        Err(e) => return Err(e.into()),
                    };
                    tally.record(&window, sent, fault);
                }
            });
        }
        let mut tally = Tally::default();
        while let Some(done) = calls.join_next().await {
            let t = done??;
            tally.latencies.extend(t.latencies);
            tally.faults += t.faults;
        }
        Ok(tally)
    }

    async fn drive_msgpack<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut s: S,
        window: Window,
    ) -> anyhow::Result<Tally> {
        self.authenticate(&mut s).await?;
        let mut tally = Tally::default();
        let mut sent: HashMap<u32, Instant> = HashMap::with_capacity(self.pipeline * 2);
        let mut next_id = 0u32;
        let mut out = Vec::with_capacity(4096);
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut fill = |out: &mut Vec<u8>, sent: &mut HashMap<u32, Instant>, n: usize| {
            let now = Instant::now();
            for _ in 0..n {
                if now >= window.end {
                    break;
                }
                next_id = next_id.wrapping_add(1);
                msgpack_rpc::write_request(out, next_id, &self.method, &self.params);
                sent.insert(next_id, now);
            }
        };
        fill(&mut out, &mut sent, self.pipeline);
        loop {
            if !out.is_empty() {
                s.write_all(&out).await?;
                out.clear();
            }
            if sent.is_empty() {
                return Ok(tally);
            }
            if s.read_buf(&mut buf).await? == 0 {
                bail!("the server closed the connection");
            }
            let mut answered = 0;
            let mut at = 0;
            while let Ok(FrameLen::Complete(n)) = msgpack::frame_len(&buf[at..], 64) {
                let frame = &buf[at..at + n];
                at += n;
                let (msgid, fault) = match response_head(frame) {
                    Some(head) => head,
                    None => match msgpack_rpc::parse(
                        msgpack::decode(frame, 64).context("undecodable answer")?,
                    ) {
                        Ok(RpcMessage::Response { msgid, outcome }) => (msgid, outcome.is_err()),
                        _ => continue,
                    },
                };
                if let Some(t) = sent.remove(&msgid) {
                    tally.record(&window, t, fault);
                    answered += 1;
                }
            }
            buf.drain(..at);
            fill(&mut out, &mut sent, answered);
        }
    }

    /// The `auth` call before the measured ones, when there are credentials.
    async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        s: &mut S,
    ) -> anyhow::Result<()> {
        let Some(c) = &self.credentials else {
            return Ok(());
        };
        let mut params: Vec<Value> = c.name.iter().map(|n| Value::from(n.as_str())).collect();
        params.push(Value::from(c.secret.as_str()));
        let mut out = Vec::new();
        msgpack_rpc::write_request(&mut out, 0, "auth", &params);
        s.write_all(&out).await?;
        let mut buf = Vec::with_capacity(256);
        loop {
            if let Ok(FrameLen::Complete(n)) = msgpack::frame_len(&buf, 64) {
                let answer = msgpack_rpc::parse(msgpack::decode(&buf[..n], 64)?);
                return match answer {
                    Ok(RpcMessage::Response { outcome: Ok(_), .. }) => Ok(()),
                    _ => bail!("the server refused the credentials"),
                };
            }
            if s.read_buf(&mut buf).await? == 0 {
                bail!("the server closed the connection while authenticating");
            }
        }
    }

    async fn drive_ws(&self, url: &str, window: Window) -> anyhow::Result<Tally> {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let (mut sink, mut stream) = ws.split();
        let mut tally = Tally::default();
        let mut sent: HashMap<u64, Instant> = HashMap::with_capacity(self.pipeline * 2);
        let mut next_id = 0u64;
        let mut send = async |sent: &mut HashMap<u64, Instant>, n: usize| -> anyhow::Result<()> {
            for _ in 0..n {
                let now = Instant::now();
                if now >= window.end {
                    break;
                }
                next_id += 1;
                let text =
                    jsonrpc::encode_request(Some(&next_id.into()), &self.method, &self.params);
                sink.feed(Message::Text(String::from_utf8(text)?)).await?;
                sent.insert(next_id, now);
            }
            sink.flush().await?;
            Ok(())
        };
        send(&mut sent, self.pipeline).await?;
        while !sent.is_empty() {
            let Some(msg) = stream.next().await else {
                bail!("the server closed the connection");
            };
            let Message::Text(text) = msg? else { continue };
            if let jsonrpc::Incoming::Single(jsonrpc::Message::Response { id, outcome }) =
                jsonrpc::decode(text.as_bytes())
            {
                if let Some(t) = id.as_u64().and_then(|i| sent.remove(&i)) {
                    tally.record(&window, t, outcome.is_err());
                    send(&mut sent, 1).await?;
                }
            }
        }
        Ok(tally)
    }
}
