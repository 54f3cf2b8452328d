//! Turning a call's positional parameters into typed handler arguments, and
//! typed client arguments into parameters.

use crate::auth::Principal;
use crate::de::from_value;
use crate::fault::Fault;
use crate::kind::{Kind, RpcType};
use crate::ser::{to_value, ConvertError};
use crate::table::BoxFuture;
use crate::value::Value;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;

/// Calls back into the peer of a connection: on stream transports (WebSocket,
/// MessagePack-RPC) either side may call methods the other registered.
pub trait PeerCall: Send + Sync {
    /// Calls a method the peer offers and waits for its answer.
    fn call(&self, method: &str, params: Vec<Value>) -> BoxFuture<Result<Value, Fault>>;
    /// Sends a notification (no answer).
    fn notify(&self, method: &str, params: Vec<Value>) -> BoxFuture<Result<(), Fault>>;
    /// Whether the connection has ended (calls would fail).
    fn is_closed(&self) -> bool {
        false
    }
    /// Resolves once the connection has ended (never, by default).
    fn closed(&self) -> BoxFuture<()> {
        Box::pin(std::future::pending())
    }
}

/// A handle for calling the peer of a connection.
#[derive(Clone)]
pub struct Peer(pub Arc<dyn PeerCall>);

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Peer")
    }
}

/// What a handler may know about the call it is serving.
///
/// Take it as a handler argument (any position; it consumes no parameter) to learn
/// who is calling, or to call methods back on the caller's side of the connection.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The caller's address, when the transport has one.
    pub peer: Option<SocketAddr>,
    /// A number unique to the caller's connection within this server.
    pub connection_id: u64,
    /// The protocol the call arrived on (`"xmlrpc"`, `"jsonrpc"`, ...).
    pub protocol: &'static str,
    /// Who the caller authenticated as, when the transport authenticated one
    /// (or trusts its peer, as stdio does).
    pub principal: Option<Arc<Principal>>,
    /// The caller's side of the connection, on transports where it can be called.
    pub peer_calls: Option<Peer>,
}

impl Context {
    /// A context for a call that arrived on `protocol` from `peer`.
    pub fn new(protocol: &'static str, peer: Option<SocketAddr>, connection_id: u64) -> Context {
        Context {
            peer,
            connection_id,
            protocol,
            principal: None,
            peer_calls: None,
        }
    }

    /// Checks that the caller's protocol can carry `value` in an answer, so an
    /// operation that hands data over destructively (a pop) can refuse before it
    /// has any effect instead of losing what it took.
    pub fn check_carriable(&self, value: &Value) -> Result<(), Fault> {
        match self.protocol {
            "xmlrpc" => crate::xmlrpc::check_carriable(value).map_err(Fault::from),
            _ => Ok(()),
        }
    }

    /// Calls a method the caller registered on its side of the connection.
    pub async fn call_peer(&self, method: &str, params: impl IntoParams) -> Result<Value, Fault> {
        let params = params
            .into_params()
            .map_err(|e| Fault::invalid_params(e.to_string()))?;
        match &self.peer_calls {
            Some(peer) => peer.0.call(method, params).await,
            None => Err(no_callbacks(self.protocol)),
        }
    }

    /// Whether the caller's connection is gone (or never could be called back).
    pub fn peer_closed(&self) -> bool {
        self.peer_calls.as_ref().is_none_or(|p| p.0.is_closed())
    }

    /// Resolves once the caller's connection has ended; never for a caller that
    /// cannot be watched (an HTTP caller that hangs up drops its call instead).
    /// A call that waits (a blocking pop) selects on it, so a departed caller's
    /// wait ends at once rather than at its timeout.
    pub async fn caller_gone(&self) {
        match &self.peer_calls {
            Some(peer) => peer.0.closed().await,
            None => std::future::pending().await,
        }
    }

    /// Sends a notification to the caller's side of the connection.
    pub async fn notify_peer(&self, method: &str, params: impl IntoParams) -> Result<(), Fault> {
        let params = params
            .into_params()
            .map_err(|e| Fault::invalid_params(e.to_string()))?;
        match &self.peer_calls {
            Some(peer) => peer.0.notify(method, params).await,
            None => Err(no_callbacks(self.protocol)),
        }
    }
}

fn no_callbacks(protocol: &str) -> Fault {
    Fault::named(
        "CallbackError",
        format!(
            "the caller cannot be called back over {protocol}; use WebSocket or MessagePack-RPC"
        ),
    )
}

/// One parameter as introspection describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// The parameter's name (`arg0`, ... unless named at registration).
    pub name: String,
    /// Its wire type.
    pub kind: Kind,
    /// Whether it may be left out (a trailing `Option`).
    pub optional: bool,
    /// Whether it takes all remaining parameters ([`Rest`]).
    pub variadic: bool,
}

/// Checks how many parameters a call carries against a method's signature, so
/// the fault says what the method takes: `takes 3 parameters, got 1`.
pub fn check_arity(specs: &[ParamSpec], got: usize) -> Result<(), Fault> {
    let required = specs.iter().filter(|p| !p.optional).count();
    let max = (!specs.iter().any(|p| p.variadic)).then_some(specs.len());
    if got >= required && max.is_none_or(|m| got <= m) {
        return Ok(());
    }
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let takes = match max {
        Some(m) if m == required => format!("{m} parameter{}", plural(m)),
        Some(m) => format!("{required} to {m} parameters"),
        None => format!("at least {required} parameter{}", plural(required)),
    };
    Err(Fault::invalid_params(format!("takes {takes}, got {got}")))
}

/// The positional parameters of one call, consumed left to right by extractors.
pub struct Params {
    iter: std::vec::IntoIter<Value>,
    taken: usize,
    total: usize,
}

impl Params {
    /// Wraps a call's parameters.
    pub fn new(values: Vec<Value>) -> Params {
        let total = values.len();
        Params {
            iter: values.into_iter(),
            taken: 0,
            total,
        }
    }

    /// Takes the next parameter, if any.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Value> {
        let v = self.iter.next()?;
        self.taken += 1;
        Some(v)
    }

    /// The 1-based position of the next parameter, for error messages.
    pub fn position(&self) -> usize {
        self.taken + 1
    }

    /// Takes every remaining parameter.
    pub fn rest(&mut self) -> Vec<Value> {
        let rest: Vec<Value> = self.iter.by_ref().collect();
        self.taken += rest.len();
        rest
    }

    /// Fails when parameters are left over after every argument was extracted.
    pub fn finish(&self) -> Result<(), Fault> {
        if self.taken == self.total {
            return Ok(());
        }
        Err(Fault::invalid_params(format!(
            "too many parameters: takes {}, got {}",
            self.taken, self.total
        )))
    }
}

/// A handler argument that can be extracted from the call: a typed parameter,
/// [`Rest`] for all remaining parameters, or the [`Context`].
pub trait FromParams: Sized {
    /// Extracts the argument, consuming the parameters it needs.
    fn from_params(ctx: &Context, params: &mut Params) -> Result<Self, Fault>;
    /// Appends the parameters it consumes to a signature.
    fn describe(specs: &mut Vec<ParamSpec>);
}

fn convert<T: DeserializeOwned + Any>(value: Value, position: usize) -> Result<T, Fault> {
    from_value(value).map_err(|e| Fault::invalid_params(format!("parameter {position}: {e}")))
}

impl<T: RpcType + DeserializeOwned + Any> FromParams for T {
    fn from_params(_: &Context, params: &mut Params) -> Result<T, Fault> {
        let position = params.position();
        match params.next() {
            Some(v) => convert(v, position),
            None if matches!(T::kind(), Kind::Optional(_)) => convert(Value::Nil, position),
            None => Err(Fault::invalid_params(format!(
                "missing parameter {position}: takes at least {position}, got {}",
                position - 1
            ))),
        }
    }
    fn describe(specs: &mut Vec<ParamSpec>) {
        let kind = T::kind();
        specs.push(ParamSpec {
            name: format!("arg{}", specs.len()),
            optional: matches!(kind, Kind::Optional(_)),
            kind,
            variadic: false,
        });
    }
}

/// All remaining parameters, each converted to `T`: the Rust form of Python's `*args`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rest<T>(pub Vec<T>);

impl<T: RpcType + DeserializeOwned + Any> FromParams for Rest<T> {
    fn from_params(_: &Context, params: &mut Params) -> Result<Rest<T>, Fault> {
        let first = params.position();
        let values = params.rest();
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| convert(v, first + i))
            .collect::<Result<Vec<T>, Fault>>()
            .map(Rest)
    }
    fn describe(specs: &mut Vec<ParamSpec>) {
        specs.push(ParamSpec {
            name: "args".to_owned(),
            kind: T::kind(),
            optional: true,
            variadic: true,
        });
    }
}

impl FromParams for Context {
    fn from_params(ctx: &Context, _: &mut Params) -> Result<Context, Fault> {
        Ok(ctx.clone())
    }
    fn describe(_: &mut Vec<ParamSpec>) {}
}

/// What a handler returns: a value, or a `Result` whose error becomes a [`Fault`].
pub trait IntoResult {
    /// Converts to the call's outcome.
    fn into_result(self) -> Result<Value, Fault>;
    /// The wire type of the success value.
    fn kind() -> Kind;
}

impl<T: RpcType + Serialize + Any> IntoResult for T {
    fn into_result(self) -> Result<Value, Fault> {
        to_value(self).map_err(|e| Fault::internal(format!("result could not be encoded: {e}")))
    }
    fn kind() -> Kind {
        T::kind()
    }
}

impl<T: RpcType + Serialize + Any, E: Into<Fault>> IntoResult for Result<T, E> {
    fn into_result(self) -> Result<Value, Fault> {
        self.map_err(Into::into).and_then(IntoResult::into_result)
    }
    fn kind() -> Kind {
        T::kind()
    }
}

/// Arguments for an outgoing call: a `Vec<Value>`, `()` or a tuple of serializable values.
pub trait IntoParams {
    /// Converts to positional parameters.
    fn into_params(self) -> Result<Vec<Value>, ConvertError>;
}

impl IntoParams for Vec<Value> {
    fn into_params(self) -> Result<Vec<Value>, ConvertError> {
        Ok(self)
    }
}

impl IntoParams for &[Value] {
    fn into_params(self) -> Result<Vec<Value>, ConvertError> {
        Ok(self.to_vec())
    }
}

impl IntoParams for () {
    fn into_params(self) -> Result<Vec<Value>, ConvertError> {
        Ok(Vec::new())
    }
}

macro_rules! tuple_params {
    ($($t:ident),+) => {
        impl<$($t: Serialize + Any),+> IntoParams for ($($t,)+) {
            #[allow(non_snake_case)]
            fn into_params(self) -> Result<Vec<Value>, ConvertError> {
                let ($($t,)+) = self;
                Ok(vec![$(to_value($t)?),+])
            }
        }
    };
}
tuple_params!(A);
tuple_params!(A, B);
tuple_params!(A, B, C);
tuple_params!(A, B, C, D);
tuple_params!(A, B, C, D, E);
tuple_params!(A, B, C, D, E, F);
tuple_params!(A, B, C, D, E, F, G);
tuple_params!(A, B, C, D, E, F, G, H);
