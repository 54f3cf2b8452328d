//! Transports, servers and clients for rpcs.
//!
//! # Layout
//!
//! - [`server`]: [`Server`] runs one dispatcher on any set of [`Listener`]s and
//!   knows transports only through the one serve signature they implement;
//!   [`config`]: [`ServerConfig`], every limit.
//! - `accept`: connection accounting, the one accept path of every transport
//!   (a slot per connection for its whole life, per listener and per server).
//! - `session`: what a stream connection carries both ways, on either side:
//!   the outbox with its byte budget, calls in flight, calls to the peer; and
//!   the protocols over it, MessagePack-RPC (`session::msgpack`) and JSON-RPC
//!   (`session::json`) over WebSocket (`session::ws`) or lines (`session::lines`).
//! - Transports, each adding its constructors to [`Listener`]: `web` (HTTP:
//!   XML-RPC and JSON-RPC on POST, WebSocket by upgrade, the page on GET),
//!   `msgpack_rpc` (TCP, Unix sockets) and `zerorpc` (ZeroMQ); `stdio` serves
//!   one session on standard input and output (MessagePack-RPC or JSON-RPC).
//! - `zmtp`: ZeroMQ connections (handshake, messages within limits, a DEALER
//!   socket for clients) over the pure codec in `rpcs_core::zmtp`.
//! - [`client`]: [`Client`] (async) and [`BlockingClient`]; the URL picks the
//!   protocol, or names a service (`rpcs://NAME`) whose instances it balances.
//! - [`discovery`]: looking names up in registries, and [`Registrar`] keeping
//!   a server registered.
//! - `rpyc`: RPyC's registry protocol on UDP and TCP (with MessagePack-RPC
//!   datagrams on the same UDP socket), for a registry server.
//! - [`auth`]: [`Authenticator`], the token file and the credentials each
//!   transport carries.
//! - [`tls`]: TLS on rustls (ring): the server's reloadable certificate,
//!   mutual TLS, and what our clients verify.
//! - [`compress`]: gzip for HTTP bodies with a bound on the inflated size.
//! - [`metrics`]: what a server counts, served as `GET /metrics`.

mod accept;
pub mod auth;
pub mod client;
pub mod compress;
pub mod config;
pub mod discovery;
pub mod metrics;
mod msgpack_rpc;
mod rpyc;
pub mod server;
mod session;
mod stdio;
mod tcp;
pub mod tls;
mod web;
mod zerorpc;
mod zmtp;

pub use auth::Authenticator;
pub use client::{BlockingClient, Client, ClientConfig, ClientError, Credentials, MethodInfo};
pub use config::ServerConfig;
pub use discovery::{Registrar, Registries};
pub use metrics::MetricsSource;
pub use server::{shutdown_signal, Listener, Server};
pub use tls::{ClientTls, Tls, TlsConnector, TlsFiles};
