//! ZeroMQ endpoints as zerorpc users write them: `tcp://HOST:PORT` and
//! `ipc:///path/to/socket`.

use crate::accept::tune_tcp;
use std::io;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// Where to bind or connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// TCP, as `host:port` (a `*` host or port already turned into what the
    /// socket API takes: all interfaces, any port).
    Tcp(String),
    /// A Unix socket.
    Ipc(PathBuf),
}

impl Endpoint {
    /// Parses an endpoint; `bind` allows `*` for the host (all interfaces, an
    /// explicit choice) and the port (any free one).
    pub(crate) fn parse(text: &str, bind: bool) -> io::Result<Endpoint> {
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{text}: {why}"));
        if let Some(path) = text.strip_prefix("ipc://") {
            if path.is_empty() {
                return Err(bad("expected ipc:///path/to/socket"));
            }
            return Ok(Endpoint::Ipc(PathBuf::from(path)));
        }
        let Some(addr) = text.strip_prefix("tcp://") else {
            return Err(bad("expected tcp://HOST:PORT or ipc:///path"));
        };
        let Some((host, port)) = addr.rsplit_once(':') else {
            return Err(bad("expected tcp://HOST:PORT"));
        };
        let host = match host {
            "*" if bind => "0.0.0.0",
            "*" => return Err(bad("cannot connect to *")),
            "" => return Err(bad("no host")),
            h => h,
        };
        let port = match port {
            "*" if bind => "0",
            p if p.parse::<u16>().is_ok() => p,
            _ => return Err(bad("bad port")),
        };
        Ok(Endpoint::Tcp(format!("{host}:{port}")))
    }
}

/// A connection's two halves, whatever the socket kind.
pub(crate) type Halves = (
    Box<dyn AsyncRead + Send + Unpin>,
    Box<dyn AsyncWrite + Send + Unpin>,
);

/// A bound endpoint.
pub(crate) enum Bound {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix-socket listener and its path (removed when dropped).
    Ipc(UnixListener, PathBuf),
}

impl Drop for Bound {
    fn drop(&mut self) {
        if let Bound::Ipc(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Bound {
    /// Binds `endpoint`.
    pub(crate) async fn bind(endpoint: &Endpoint) -> io::Result<Bound> {
        Ok(match endpoint {
            Endpoint::Tcp(addr) => Bound::Tcp(TcpListener::bind(addr).await?),
            Endpoint::Ipc(path) => {
                Bound::Ipc(crate::msgpack_rpc::bind_unix(path).await?, path.clone())
            }
        })
    }

    /// The endpoint as a client would name it (with the port actually bound).
    pub(crate) fn url(&self) -> String {
        match self {
            Bound::Tcp(l) => match l.local_addr() {
                Ok(a) => format!("tcp://{a}"),
                Err(_) => "tcp://?".into(),
            },
            Bound::Ipc(_, path) => format!("ipc://{}", path.display()),
        }
    }

    /// Accepts one connection, set up for long life.
    pub(crate) async fn accept(&self, keepalive: Option<Duration>) -> io::Result<(Halves, String)> {
        Ok(match self {
            Bound::Tcp(l) => {
                let (stream, peer) = l.accept().await?;
                (tcp_halves(stream, keepalive), peer.to_string())
            }
            Bound::Ipc(l, path) => {
                let (stream, _) = l.accept().await?;
                (unix_halves(stream), path.display().to_string())
            }
        })
    }
}

fn tcp_halves(stream: TcpStream, keepalive: Option<Duration>) -> Halves {
    tune_tcp(&stream, keepalive);
    let (r, w) = stream.into_split();
    (Box::new(r), Box::new(w))
}

fn unix_halves(stream: UnixStream) -> Halves {
    let (r, w) = stream.into_split();
    (Box::new(r), Box::new(w))
}

/// Connects to `endpoint`.
pub(crate) async fn connect(
    endpoint: &Endpoint,
    keepalive: Option<Duration>,
) -> io::Result<Halves> {
    Ok(match endpoint {
        Endpoint::Tcp(addr) => tcp_halves(TcpStream::connect(addr).await?, keepalive),
        Endpoint::Ipc(path) => unix_halves(UnixStream::connect(path).await?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let tcp = |s: &str| Endpoint::Tcp(s.into());
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:4242", false).unwrap(),
            tcp("127.0.0.1:4242")
        );
        assert_eq!(
            Endpoint::parse("tcp://*:4242", true).unwrap(),
            tcp("0.0.0.0:4242")
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:*", true).unwrap(),
            tcp("127.0.0.1:0")
        );
        assert_eq!(
            Endpoint::parse("tcp://[::1]:1", false).unwrap(),
            tcp("[::1]:1")
        );
        assert_eq!(
            Endpoint::parse("ipc:///tmp/x.sock", false).unwrap(),
            Endpoint::Ipc("/tmp/x.sock".into())
        );
        for bad in [
            "tcp://*:1",
            "tcp://h",
            "tcp://h:x",
            "udp://h:1",
            "ipc://",
            "tcp://:1",
        ] {
            assert!(Endpoint::parse(bad, false).is_err(), "{bad}");
        }
    }
}
