//! XML-RPC and JSON-RPC over raw HTTP/1.1 keep-alive (reconnecting when the
//! server closes after each answer, as Python's HTTP/1.0 server does).

use super::{find, Tally, Window};
use anyhow::{bail, Context as _};
use rpcs_core::{jsonrpc, xmlrpc, Value};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone)]
pub(super) struct HttpLoad {
    addr: String,
    request: Vec<u8>,
    /// Bytes whose presence in an answer marks a fault.
    fault_marker: &'static [u8],
}

impl HttpLoad {
    /// `scheme` is `http`, `xmlrpc+http` or `jsonrpc+http`; `rest` is what follows `://`.
    pub(super) fn new(
        scheme: &str,
        rest: &str,
        method: &str,
        params: &[Value],
        credentials: Option<&rpcs_net::Credentials>,
    ) -> anyhow::Result<HttpLoad> {
        let json = match scheme {
            "http" | "xmlrpc+http" => false,
            "jsonrpc+http" => true,
            other => bail!("rpcs bench does not speak {other}://"),
        };
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None if json => (rest, "/"),
            None => (rest, "/RPC2"),
        };
        let addr = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        let (body, content_type, fault_marker): (Vec<u8>, _, &'static [u8]) = if json {
            let body = jsonrpc::encode_request(Some(&jsonrpc::Id::number(1)), method, params);
            (body, "application/json", b"\"error\":{")
        } else {
            (
                xmlrpc::encode_request(method, params)?,
                "text/xml",
                b"<fault>",
            )
        };
        let auth = credentials
            .map(|c| format!("Authorization: Bearer {}\r\n", c.secret))
            .unwrap_or_default();
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        Ok(HttpLoad {
            addr,
            request,
            fault_marker,
        })
    }

    /// One connection's loop.
    pub(super) async fn drive(self, window: Window) -> anyhow::Result<Tally> {
        let mut conn: Option<TcpStream> = None;
        let mut buf = Vec::with_capacity(16 * 1024);
        let mut tally = Tally::default();
        loop {
            let sent = Instant::now();
            if sent >= window.end {
                return Ok(tally);
            }
            let stream = match conn.as_mut() {
                Some(s) => s,
                None => {
                    let s = TcpStream::connect(&self.addr)
                        .await
                        .with_context(|| format!("connecting to {}", self.addr))?;
                    s.set_nodelay(true)?;
                    conn.insert(s)
                }
            };
            stream.write_all(&self.request).await?;
            let (keep, body_at) = read_response(stream, &mut buf).await?;
            let fault = find(&buf[body_at..], self.fault_marker).is_some();
            tally.record(&window, sent, fault);
            if !keep {
                conn = None;
            }
        }
    }
}

/// Reads one HTTP response into `buf`; returns whether the connection stays
/// open and where the body starts.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<(bool, usize)> {
    buf.clear();
    let header_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        if read_more(stream, buf).await? == 0 {
            bail!("server closed the connection mid-response");
        }
    };
    let head = std::str::from_utf8(&buf[..header_end]).context("non-UTF-8 response head")?;
    let status_ok = head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200");
    if !status_ok {
        bail!("server answered {}", head.lines().next().unwrap_or(""));
    }
    let mut length = None;
    let mut keep = head.starts_with("HTTP/1.1");
    for line in head.lines().skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().context("bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("connection") {
            keep = value.eq_ignore_ascii_case("keep-alive");
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("chunked responses are not supported by the benchmark");
        }
    }
    match length {
        Some(n) => {
            while buf.len() < header_end + n {
                if read_more(stream, buf).await? == 0 {
                    bail!("server closed the connection mid-body");
                }
            }
        }
        // No length: the body runs to the end of the connection.
        None => while read_more(stream, buf).await? != 0 {},
    }
    Ok((keep && length.is_some(), header_end))
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    buf.reserve(8192);
    stream.read_buf(buf).await
}
