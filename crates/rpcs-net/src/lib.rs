//! Transports, servers and clients for rpcs.
//!
//! # Layout
//!
//! - [`server`]: [`Server`] runs one dispatcher on any set of [`Listener`]s, with a
//!   connection cap, per-request limits and graceful shutdown.
//! - `http`: the HTTP transport (XML-RPC and JSON-RPC on POST `/` and `/RPC2`).
//! - `msgpack_rpc`: MessagePack-RPC over TCP, Unix sockets and stdio.
//! - `session`: what stream connections share: the write queue, calls to the
//!   peer awaiting answers, and calls in flight.
//! - `zerorpc`: zerorpc over ZeroMQ, server (ROUTER) and client (DEALER).
//! - [`client`]: [`Client`] (async) and [`BlockingClient`]; the URL picks the protocol.
//! - [`compress`]: gzip for HTTP bodies with a bound on the inflated size.

pub mod client;
pub mod compress;
pub(crate) mod http;
mod msgpack_rpc;
pub mod server;
mod session;
mod zerorpc;

pub use client::{BlockingClient, Client, ClientConfig, ClientError, MethodInfo};
pub use server::{Listener, Server, ServerConfig};
