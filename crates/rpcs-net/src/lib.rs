//! Transports, servers and clients for rpcs.
//!
//! # Layout
//!
//! - [`server`]: [`Server`] runs one dispatcher on any set of [`Listener`]s, with a
//!   connection cap, per-request limits and graceful shutdown.
//! - `http`: the HTTP transport (XML-RPC on POST `/` and `/RPC2`).
//! - [`client`]: [`Client`] (async) and [`BlockingClient`]; the URL picks the protocol.
//! - [`compress`]: gzip for HTTP bodies with a bound on the inflated size.

pub mod client;
pub mod compress;
mod http;
pub mod server;

pub use client::{BlockingClient, Client, ClientConfig, ClientError, MethodInfo};
pub use server::{Listener, Server, ServerConfig};
