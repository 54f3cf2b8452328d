//! Values, faults, pure codecs, the method table and dispatch for rpcs.
//!
//! This crate does no I/O: it has no sockets, files or async runtime, so every
//! codec can be tested and fuzzed on bytes alone. Transports live in `rpcs-net`.
//!
//! # Layout
//!
//! - [`value`]: [`Value`], the protocol-neutral value model, and [`DateTime`].
//! - [`fault`]: [`Fault`], the error answer, with the shared code numbers.
//! - `ser` / `de`: serde conversion between Rust types and [`Value`]
//!   ([`to_value`], [`from_value`]), plus [`Bytes`].
//! - [`kind`]: [`Kind`] and [`RpcType`], the wire types that signatures report.
//! - [`params`]: extracting typed handler arguments ([`FromParams`], [`Rest`],
//!   [`Context`]) and building call parameters ([`IntoParams`]).
//! - [`table`]: [`MethodTable`], registering plain and async functions.
//! - [`dispatch`]: [`Dispatcher`], running calls with the `system.*` built-ins.
//! - [`xmlrpc`]: the XML-RPC codec; [`zerorpc`]: the zerorpc event codec.
//! - [`json`]: the mapping between [`Value`] and JSON.
//! - [`jsonrpc`]: the JSON-RPC 2.0 codec; [`openrpc`]: the `rpc.discover` document.
//! - [`msgpack`]: MessagePack encoding of [`Value`]; [`msgpack_rpc`]: its RPC messages.
//! - [`zmtp`]: ZeroMQ's ZMTP 3 framing (greeting, handshake commands, frames).
//! - [`metrics`]: the Prometheus text format and lock-free latency histograms.
//! - [`auth`]: access levels ([`Access`]), the [`Principal`] a call runs as, and
//!   token secrets checked against their hashes.
//! - [`brine`]: RPyC's serializer; [`rpyc_registry`]: RPyC's registry requests and answers;
//!   [`registration`]: the record our servers register.
//!
//! # Example
//!
//! ```
//! use rpcs_core::{Context, Dispatcher, MethodTable, Value};
//!
//! let mut table = MethodTable::new();
//! table
//!     .register("add", "Add two integers.", |a: i64, b: i64| a + b)
//!     .params(&["a", "b"]);
//! let dispatcher = Dispatcher::new(table);
//! let ctx = Context::default();
//! let call = dispatcher.call(&ctx, "add", vec![Value::Int(2), Value::Int(3)]);
//! // Plain functions complete on the first poll; any executor will do.
//! let result = futures_lite_block_on(call);
//! assert_eq!(result, Ok(Value::Int(5)));
//! # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     let mut f = std::pin::pin!(f);
//! #     let waker = std::task::Waker::noop();
//! #     let mut cx = std::task::Context::from_waker(&waker);
//! #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
//! # }
//! ```

pub mod auth;
pub mod brine;
mod de;
pub mod dispatch;
pub mod fault;
pub mod json;
pub mod jsonrpc;
pub mod kind;
pub mod metrics;
pub mod msgpack;
pub mod msgpack_rpc;
pub mod openrpc;
pub mod params;
pub mod registration;
pub mod rpyc_registry;
mod ser;
pub mod table;
pub mod value;
#[doc(hidden)]
pub mod xml;
pub mod xmlrpc;
pub mod zerorpc;
pub mod zmtp;

pub use auth::{Access, Principal};
pub use de::from_value;
pub use dispatch::{DispatchLimits, Dispatcher, Reply};
pub use fault::Fault;
pub use kind::{Kind, RpcType};
pub use params::{
    Context, FromParams, IntoParams, IntoResult, ParamSpec, Params, Peer, PeerCall, Rest,
};
pub use ser::{to_value, to_value_ref, Bytes, ConvertError};
pub use table::{
    BoxFuture, CallResult, DuplicateMethod, Method, MethodTable, Namespace, ValueStream,
};
pub use value::{DateTime, DateTimeError, Map, Value};

/// Decodes standard base64, ignoring the line breaks and spaces that
/// encoders such as Python's insert every 76 characters.
pub fn base64_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine as _;
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact)
}
