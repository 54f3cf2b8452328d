//! Dispatch: running a named call against a method table, with the
//! `system.*` introspection and multicall built-ins.

use crate::fault::Fault;
use crate::kind::Kind;
use crate::params::{Context, ParamSpec};
use crate::table::{Builtin, CallResult, Handler, Method, MethodTable, ValueStream};
use crate::value::{Map, Value};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

/// Bounds the dispatcher enforces on every call.
#[derive(Debug, Clone)]
pub struct DispatchLimits {
    /// The most calls one `system.multicall` may carry.
    pub max_multicall: usize,
    /// The most items a streaming method may return where its result is sent
    /// as one array (protocols that do not stream).
    pub max_collected_items: usize,
    /// Once the answers of one `system.multicall` reach about this many bytes,
    /// its calls left are not run and get a limit fault each. (A call that ran
    /// is always answered in full: it may have taken something.)
    pub max_multicall_bytes: usize,
}

impl Default for DispatchLimits {
    fn default() -> Self {
        DispatchLimits {
            max_multicall: 1000,
            max_collected_items: 100_000,
            max_multicall_bytes: 32 << 20,
        }
    }
}

/// A call's answer where the protocol can stream.
pub enum Reply {
    /// One value.
    Value(Value),
    /// Items, one by one.
    Stream(ValueStream),
}

/// Runs calls against a [`MethodTable`] extended with the built-ins
/// `system.listMethods`, `system.methodHelp`, `system.methodSignature` and
/// `system.multicall`.
///
/// A handler that panics answers an internal-error fault instead of taking the
/// connection down.
pub struct Dispatcher {
    table: MethodTable,
    limits: DispatchLimits,
    /// Whether a call with no principal is refused (the server has tokens).
    require_principal: bool,
}

fn spec(name: &str, kind: Kind) -> ParamSpec {
    ParamSpec {
        name: name.to_owned(),
        kind,
        optional: false,
        variadic: false,
    }
}

fn array_of(kind: Kind) -> Kind {
    Kind::Array(Box::new(kind))
}

impl Dispatcher {
    /// A dispatcher over `table` with default limits.
    pub fn new(table: MethodTable) -> Dispatcher {
        Dispatcher::with_limits(table, DispatchLimits::default())
    }

    /// A dispatcher over `table` with the given limits.
    pub fn with_limits(mut table: MethodTable, limits: DispatchLimits) -> Dispatcher {
        table.register_builtin(
            "system.listMethods",
            "Return the names of all methods this server offers, sorted.",
            (vec![], array_of(Kind::String)),
            Builtin::ListMethods,
        );
        table.register_builtin(
            "system.methodHelp",
            "Return the documentation string of the named method.",
            (vec![spec("method", Kind::String)], Kind::String),
            Builtin::MethodHelp,
        );
        table.register_builtin(
            "system.methodSignature",
            "Return the signatures of the named method: a list of [result, param, ...] type-name lists.",
            (vec![spec("method", Kind::String)], array_of(array_of(Kind::String))),
            Builtin::MethodSignature,
        );
        table.register_builtin(
            "system.multicall",
            "Run several calls in one request: takes a list of {methodName, params} structs and returns, \
             for each, [result] or a {faultCode, faultString} struct.",
            (
                vec![spec("calls", array_of(Kind::Struct(Box::new(Kind::Any))))],
                Kind::Array(Box::new(Kind::Any)),
            ),
            Builtin::Multicall,
        );
        table.register_builtin(
            "rpc.discover",
            "Describe this service as an OpenRPC document.",
            (vec![], Kind::Struct(Box::new(Kind::Any))),
            Builtin::Discover,
        );
        Dispatcher {
            table,
            limits,
            require_principal: false,
        }
    }

    /// From now on, a call whose context carries no principal is refused with
    /// `NOAUTH` (whatever the method, so that the refusal tells an unknown
    /// caller nothing about what exists). A call with a principal is checked
    /// against its access level whether or not this is set.
    pub fn require_authentication(&mut self) {
        self.require_principal = true;
    }

    /// Whether calls need a principal.
    pub fn requires_authentication(&self) -> bool {
        self.require_principal
    }

    /// Refuses a call its caller may not make.
    fn authorize(&self, ctx: &Context, method: &Method) -> Result<(), Fault> {
        match &ctx.principal {
            Some(p) => p.authorize(method.name(), method.needed_access()),
            None if self.require_principal => Err(Fault::not_authenticated()),
            None => Ok(()),
        }
    }

    /// Looks `method` up for a caller: a caller who must authenticate first
    /// learns nothing (not even whether the method exists).
    fn lookup(&self, ctx: &Context, method: &str) -> Result<&Method, Fault> {
        if ctx.principal.is_none() && self.require_principal {
            return Err(Fault::not_authenticated());
        }
        let m = self
            .table
            .get(method)
            .ok_or_else(|| Fault::method_not_found(method))?;
        self.authorize(ctx, m)?;
        Ok(m)
    }

    /// The table being served, built-ins included.
    pub fn table(&self) -> &MethodTable {
        &self.table
    }

    /// The table, to add methods to (a server adds its own, such as
    /// `rpc.stats`).
    pub fn table_mut(&mut self) -> &mut MethodTable {
        &mut self.table
    }

    /// Runs one call. Multicall expands into one dispatch per inner call.
    pub async fn call(&self, ctx: &Context, method: &str, params: Vec<Value>) -> CallResult {
        let m = self.lookup(ctx, method)?;
        if matches!(m.handler, Handler::Builtin(Builtin::Multicall)) {
            return self.multicall(ctx, params).await;
        }
        self.run(m, ctx, params).await
    }

    /// Runs one call whose parameters are named (as JSON-RPC allows): names map to
    /// the method's registered parameter names; a missing optional parameter is nil,
    /// a missing required one or an unknown name is an invalid-params fault.
    pub async fn call_named(&self, ctx: &Context, method: &str, named: Map) -> CallResult {
        let m = self.lookup(ctx, method)?;
        let params = m.positional(named)?;
        self.call(ctx, method, params).await
    }

    /// Runs one call, keeping a streaming method's items as a stream.
    pub async fn call_streaming(
        &self,
        ctx: &Context,
        method: &str,
        params: Vec<Value>,
    ) -> Result<Reply, Fault> {
        let m = self.lookup(ctx, method)?;
        if let Some(prefix) = confined(ctx) {
            check_names(m, prefix, &params)?;
        }
        match &m.handler {
            Handler::Stream(f) => catch_unwind(AssertUnwindSafe(|| f(ctx, params)))
                .unwrap_or_else(|_| Err(panicked(method)))
                .map(|stream| Reply::Stream(guard(stream, method))),
            _ => self.call(ctx, method, params).await.map(Reply::Value),
        }
    }

    /// Runs one call that is not a multicall.
    async fn call_single(&self, ctx: &Context, method: &str, params: Vec<Value>) -> CallResult {
        let m = self.lookup(ctx, method)?;
        if matches!(m.handler, Handler::Builtin(Builtin::Multicall)) {
            return Err(Fault::invalid_request(
                "system.multicall cannot be nested in system.multicall",
            ));
        }
        self.run(m, ctx, params).await
    }

    async fn run(&self, method: &Method, ctx: &Context, params: Vec<Value>) -> CallResult {
        let prefix = confined(ctx);
        if let Some(prefix) = prefix {
            check_names(method, prefix, &params)?;
        }
        let result = self.run_unchecked(method, ctx, params).await;
        match prefix {
            Some(prefix) if method.namespace().lists_names => result.map(|v| only_under(prefix, v)),
            _ => result,
        }
    }

    async fn run_unchecked(
        &self,
        method: &Method,
        ctx: &Context,
        params: Vec<Value>,
    ) -> CallResult {
        match &method.handler {
            Handler::Sync(f) => catch_unwind(AssertUnwindSafe(|| f(ctx, params)))
                .unwrap_or_else(|_| Err(panicked(method.name()))),
            Handler::Async(f) => {
                let fut = catch_unwind(AssertUnwindSafe(|| f(ctx, params)))
                    .map_err(|_| panicked(method.name()))?;
                CatchPanic(fut)
                    .await
                    .unwrap_or_else(|| Err(panicked(method.name())))
            }
            Handler::Stream(f) => {
                let stream = catch_unwind(AssertUnwindSafe(|| f(ctx, params)))
                    .unwrap_or_else(|_| Err(panicked(method.name())))?;
                self.collect(guard(stream, method.name())).await
            }
            Handler::Builtin(b) => self.builtin(*b, params),
        }
    }

    /// A stream's items as one array, for protocols that do not stream.
    async fn collect(&self, mut stream: ValueStream) -> CallResult {
        let mut items = Vec::new();
        while let Some(item) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
            if items.len() >= self.limits.max_collected_items {
                return Err(Fault::new(
                    Fault::LIMIT_EXCEEDED,
                    format!(
                        "the stream has more than {} items; read it over zerorpc",
                        self.limits.max_collected_items
                    ),
                ));
            }
            items.push(item?);
        }
        Ok(Value::Array(items))
    }

    fn builtin(&self, builtin: Builtin, params: Vec<Value>) -> CallResult {
        match builtin {
            Builtin::ListMethods => {
                expect_params(&params, 0)?;
                Ok(Value::Array(
                    self.table.method_names().map(Value::from).collect(),
                ))
            }
            Builtin::MethodHelp => {
                let method = self.named_method(&params)?;
                Ok(Value::String(method.doc().to_owned()))
            }
            Builtin::MethodSignature => {
                let method = self.named_method(&params)?;
                let sigs = method
                    .signatures()
                    .into_iter()
                    .map(|sig| Value::Array(sig.into_iter().map(Value::from).collect()))
                    .collect();
                Ok(Value::Array(sigs))
            }
            Builtin::Discover => {
                expect_params(&params, 0)?;
                Ok(crate::openrpc::document(&self.table))
            }
            Builtin::Multicall => Err(Fault::internal("multicall dispatched as a plain call")),
        }
    }

    fn named_method(&self, params: &[Value]) -> Result<&Method, Fault> {
        expect_params(params, 1)?;
        let name = params[0]
            .as_str()
            .ok_or_else(|| Fault::invalid_params("parameter 1: expected a method name string"))?;
        self.table
            .get(name)
            .ok_or_else(|| Fault::invalid_params(format!("no method named {name:?}")))
    }

    async fn multicall(&self, ctx: &Context, params: Vec<Value>) -> CallResult {
        expect_params(&params, 1)?;
        let Some(Value::Array(calls)) = params.into_iter().next() else {
            return Err(Fault::invalid_params(
                "parameter 1: expected an array of {methodName, params} structs",
            ));
        };
        if calls.len() > self.limits.max_multicall {
            return Err(Fault::new(
                Fault::LIMIT_EXCEEDED,
                format!(
                    "system.multicall carries {} calls; the limit is {}",
                    calls.len(),
                    self.limits.max_multicall
                ),
            ));
        }
        let mut results = Vec::with_capacity(calls.len());
        let mut size = 0usize;
        for call in calls {
            let outcome = if size >= self.limits.max_multicall_bytes {
                Err(Fault::new(
                    Fault::LIMIT_EXCEEDED,
                    format!(
                        "not run: the multicall's answers exceed the limit of {} bytes",
                        self.limits.max_multicall_bytes
                    ),
                ))
            } else {
                match split_call(call) {
                    Ok((name, params)) => self.call_single(ctx, &name, params).await,
                    Err(fault) => Err(fault),
                }
            };
            if let Ok(value) = &outcome {
                size = size.saturating_add(approx_len(value));
            }
            results.push(match outcome {
                Ok(value) => Value::Array(vec![value]),
                Err(fault) => fault_struct(&fault),
            });
        }
        Ok(Value::Array(results))
    }
}

/// The prefix the caller is confined to, if any.
fn confined(ctx: &Context) -> Option<&str> {
    ctx.principal.as_ref()?.prefix.as_deref()
}

/// Refuses a call by a caller confined to `prefix` that names something
/// outside it, or that acts on the whole server. A name parameter that is not
/// a string is refused too: it could not be checked.
fn check_names(method: &Method, prefix: &str, params: &[Value]) -> Result<(), Fault> {
    let ns = method.namespace();
    if ns.whole_server {
        return Err(Fault::forbidden(format!(
            "{} acts beyond the namespace {prefix:?}",
            method.name()
        )));
    }
    for &i in &ns.name_params {
        match params.get(i) {
            None | Some(Value::Nil) => {}
            Some(Value::String(name)) if name.starts_with(prefix) => {}
            Some(_) => {
                let param = method.params().get(i).map_or("name", |p| p.name.as_str());
                return Err(Fault::forbidden(format!(
                    "{}: {param} must start with {prefix:?}",
                    method.name()
                )));
            }
        }
    }
    Ok(())
}

/// A listing reduced to the names under `prefix`: an array of names, or a
/// struct keyed by them.
fn only_under(prefix: &str, listing: Value) -> Value {
    match listing {
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .filter(|v| v.as_str().is_some_and(|n| n.starts_with(prefix)))
                .collect(),
        ),
        Value::Struct(members) => Value::Struct(
            members
                .into_iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .collect(),
        ),
        other => other,
    }
}

/// About how many bytes `value` takes encoded (its MessagePack size; the text
/// protocols take a few times that), counted without recursion.
fn approx_len(value: &Value) -> usize {
    let mut total = 0usize;
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        total += match v {
            Value::Nil | Value::Bool(_) => 1,
            Value::Int(_) | Value::Double(_) => 9,
            Value::DateTime(_) => 15,
            Value::String(s) => s.len() + 5,
            Value::Bytes(b) => b.len() + 5,
            Value::Array(items) => {
                stack.extend(items);
                5
            }
            Value::Struct(members) => {
                total += members.keys().map(|k| k.len() + 5).sum::<usize>();
                stack.extend(members.values());
                5
            }
        };
    }
    total
}

/// Builds the `{faultCode, faultString}` struct every protocol's fault shape uses.
pub fn fault_struct(fault: &Fault) -> Value {
    let mut map = Map::with_capacity(2);
    map.insert("faultCode".into(), Value::Int(fault.code.into()));
    map.insert("faultString".into(), Value::String(fault.message.clone()));
    Value::Struct(map)
}

fn split_call(call: Value) -> Result<(String, Vec<Value>), Fault> {
    let Value::Struct(mut members) = call else {
        return Err(Fault::invalid_request(
            "each multicall entry must be a {methodName, params} struct",
        ));
    };
    let name = match members.swap_remove("methodName") {
        Some(Value::String(name)) => name,
        _ => {
            return Err(Fault::invalid_request(
                "multicall entry lacks a string methodName",
            ))
        }
    };
    let params = match members.swap_remove("params") {
        Some(Value::Array(params)) => params,
        None | Some(Value::Nil) => Vec::new(),
        Some(_) => {
            return Err(Fault::invalid_request(
                "multicall entry params must be an array",
            ))
        }
    };
    Ok((name, params))
}

fn expect_params(params: &[Value], n: usize) -> Result<(), Fault> {
    if params.len() == n {
        return Ok(());
    }
    Err(Fault::invalid_params(format!(
        "takes {n} parameter{}, got {}",
        if n == 1 { "" } else { "s" },
        params.len()
    )))
}

fn panicked(method: &str) -> Fault {
    Fault::internal(format!("method {method:?} failed unexpectedly"))
}

/// Wraps a method's stream so that a panic while producing an item ends the
/// stream with an internal-error fault, as a panicking handler answers one.
fn guard(stream: ValueStream, method: &str) -> ValueStream {
    Box::pin(GuardedStream {
        inner: stream,
        method: method.to_owned(),
        done: false,
    })
}

struct GuardedStream {
    inner: ValueStream,
    method: String,
    done: bool,
}

impl futures_core::Stream for GuardedStream {
    type Item = CallResult;
    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<CallResult>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let inner = &mut this.inner;
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll_next(cx))) {
            Ok(poll) => poll,
            Err(_) => {
                this.done = true;
                Poll::Ready(Some(Err(panicked(&this.method))))
            }
        }
    }
}

/// Polls a future, turning a panic inside it into `None`.
struct CatchPanic<F>(F);

impl<F: Future + Unpin> Future for CatchPanic<F> {
    type Output = Option<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Some(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields 1, then panics.
    struct OneThenPanic(bool);

    impl futures_core::Stream for OneThenPanic {
        type Item = i64;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Option<i64>> {
            if self.0 {
                panic!("the stream broke");
            }
            self.0 = true;
            Poll::Ready(Some(1))
        }
    }

    fn ready<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = TaskContext::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("not ready"),
        }
    }

    #[test]
    fn a_stream_that_panics_answers_an_internal_error() {
        // Found by fuzzing: a panic while collecting a stream's items escaped the
        // dispatcher (only the function that makes the stream was guarded).
        let mut table = MethodTable::new();
        table.register_stream("broken", "Breaks.", || OneThenPanic(false));
        let d = Dispatcher::new(table);
        let ctx = Context::default();
        let fault = ready(d.call(&ctx, "broken", vec![])).unwrap_err();
        assert_eq!(fault.code, Fault::INTERNAL_ERROR);
        let Ok(Reply::Stream(mut stream)) = ready(d.call_streaming(&ctx, "broken", vec![])) else {
            panic!("a stream was expected");
        };
        let mut next = || ready(std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)));
        assert_eq!(next(), Some(Ok(Value::Int(1))));
        assert!(matches!(next(), Some(Err(f)) if f.code == Fault::INTERNAL_ERROR));
        assert_eq!(next(), None);
    }
}
