//! The method table: named handlers with their docs and signatures.

use crate::auth::Access;
use crate::fault::Fault;
use crate::kind::Kind;
use crate::params::{check_arity, Context, FromParams, IntoResult, ParamSpec, Params};
use crate::value::{Map, Value};
use futures_core::Stream;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The outcome of one call.
pub type CallResult = Result<Value, Fault>;

/// A boxed, sendable future, as async handlers return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A stream of results, as streaming methods return.
pub type ValueStream = Pin<Box<dyn Stream<Item = Result<Value, Fault>> + Send + 'static>>;

type SyncFn = dyn Fn(&Context, Vec<Value>) -> CallResult + Send + Sync;
type AsyncFn = dyn Fn(&Context, Vec<Value>) -> BoxFuture<CallResult> + Send + Sync;
type StreamFn = dyn Fn(&Context, Vec<Value>) -> Result<ValueStream, Fault> + Send + Sync;

/// The built-in `system.*` methods, which the dispatcher answers itself because
/// they need the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    ListMethods,
    MethodHelp,
    MethodSignature,
    Multicall,
    Discover,
}

#[derive(Clone)]
pub(crate) enum Handler {
    Sync(Arc<SyncFn>),
    Async(Arc<AsyncFn>),
    Stream(Arc<StreamFn>),
    Builtin(Builtin),
}

/// A raw call's parameters checked against `specs`, with left-out optional
/// ones filled in as nil (unless a variadic parameter takes the rest).
fn padded(specs: &[ParamSpec], mut values: Vec<Value>) -> Result<Vec<Value>, Fault> {
    check_arity(specs, values.len())?;
    if !specs.iter().any(|p| p.variadic) {
        values.resize(specs.len(), Value::Nil);
    }
    Ok(values)
}

/// A function returning a stream, usable as a streaming method: any `Fn` of up to
/// eight [`FromParams`] arguments returning a `Stream` of [`IntoResult`] items.
pub trait StreamHandler<Args>: Send + Sync + 'static {
    /// Wraps the function so it takes raw parameters.
    fn into_fn(self) -> Arc<StreamFn>;
    /// The parameters and item type.
    fn describe() -> (Vec<ParamSpec>, Kind);
}

/// Maps a stream's items to results.
struct IntoResults<S>(S);

impl<S: Stream + Unpin> Stream for IntoResults<S>
where
    S::Item: IntoResult,
{
    type Item = Result<Value, Fault>;
    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        Pin::new(&mut self.0)
            .poll_next(cx)
            .map(|item| item.map(IntoResult::into_result))
    }
}

/// A plain Rust function usable as a method: any `Fn` of up to eight
/// [`FromParams`] arguments returning an [`IntoResult`].
pub trait SyncHandler<Args>: Send + Sync + 'static {
    /// Wraps the function so it takes raw parameters.
    fn into_fn(self) -> Arc<SyncFn>;
    /// The parameters and result type.
    fn describe() -> (Vec<ParamSpec>, Kind);
}

/// An async Rust function usable as a method: any `Fn` of up to eight
/// [`FromParams`] arguments returning a future of an [`IntoResult`].
pub trait AsyncHandler<Args>: Send + Sync + 'static {
    /// Wraps the function so it takes raw parameters.
    fn into_fn(self) -> Arc<AsyncFn>;
    /// The parameters and result type.
    fn describe() -> (Vec<ParamSpec>, Kind);
}

macro_rules! handlers {
    ($($a:ident),*) => {
        impl<F, R, $($a,)*> SyncHandler<($($a,)*)> for F
        where
            F: Fn($($a),*) -> R + Send + Sync + 'static,
            R: IntoResult,
            $($a: FromParams,)*
        {
            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn into_fn(self) -> Arc<SyncFn> {
                let (specs, _) = <Self as SyncHandler<($($a,)*)>>::describe();
                Arc::new(move |ctx: &Context, values: Vec<Value>| {
                    check_arity(&specs, values.len())?;
                    let mut params = Params::new(values);
                    $(let $a = $a::from_params(ctx, &mut params)?;)*
                    params.finish()?;
                    (self)($($a),*).into_result()
                })
            }
            #[allow(unused_mut)]
            fn describe() -> (Vec<ParamSpec>, Kind) {
                let mut specs = Vec::new();
                $($a::describe(&mut specs);)*
                (specs, R::kind())
            }
        }

        impl<F, Fut, R, $($a,)*> AsyncHandler<($($a,)*)> for F
        where
            F: Fn($($a),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoResult,
            $($a: FromParams,)*
        {
            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn into_fn(self) -> Arc<AsyncFn> {
                let (specs, _) = <Self as AsyncHandler<($($a,)*)>>::describe();
                Arc::new(move |ctx: &Context, values: Vec<Value>| -> BoxFuture<CallResult> {
                    let n = values.len();
                    let mut params = Params::new(values);
                    let args = (|| -> Result<_, Fault> {
                        check_arity(&specs, n)?;
                        $(let $a = $a::from_params(ctx, &mut params)?;)*
                        params.finish()?;
                        Ok(($($a,)*))
                    })();
                    match args {
                        Ok(($($a,)*)) => {
                            let fut = (self)($($a),*);
                            Box::pin(async move { fut.await.into_result() })
                        }
                        Err(fault) => Box::pin(std::future::ready(Err(fault))),
                    }
                })
            }
            #[allow(unused_mut)]
            fn describe() -> (Vec<ParamSpec>, Kind) {
                let mut specs = Vec::new();
                $($a::describe(&mut specs);)*
                (specs, R::kind())
            }
        }
    };
}

macro_rules! stream_handlers {
    ($($a:ident),*) => {
        impl<F, St, $($a,)*> StreamHandler<($($a,)*)> for F
        where
            F: Fn($($a),*) -> St + Send + Sync + 'static,
            St: Stream + Send + 'static,
            St::Item: IntoResult,
            $($a: FromParams,)*
        {
            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn into_fn(self) -> Arc<StreamFn> {
                let (specs, _) = <Self as StreamHandler<($($a,)*)>>::describe();
                Arc::new(move |ctx: &Context, values: Vec<Value>| -> Result<ValueStream, Fault> {
                    check_arity(&specs, values.len())?;
                    let mut params = Params::new(values);
                    $(let $a = $a::from_params(ctx, &mut params)?;)*
                    params.finish()?;
                    let stream = (self)($($a),*);
                    Ok(Box::pin(IntoResults(Box::pin(stream))))
                })
            }
            #[allow(unused_mut)]
            fn describe() -> (Vec<ParamSpec>, Kind) {
                let mut specs = Vec::new();
                $($a::describe(&mut specs);)*
                (specs, Kind::Array(Box::new(<St::Item as IntoResult>::kind())))
            }
        }
    };
}

stream_handlers!();
stream_handlers!(A1);
stream_handlers!(A1, A2);
stream_handlers!(A1, A2, A3);
stream_handlers!(A1, A2, A3, A4);

handlers!();
handlers!(A1);
handlers!(A1, A2);
handlers!(A1, A2, A3);
handlers!(A1, A2, A3, A4);
handlers!(A1, A2, A3, A4, A5);
handlers!(A1, A2, A3, A4, A5, A6);
handlers!(A1, A2, A3, A4, A5, A6, A7);
handlers!(A1, A2, A3, A4, A5, A6, A7, A8);

/// One registered method: its name, documentation, signature and handler.
#[derive(Clone)]
pub struct Method {
    name: String,
    doc: String,
    params: Vec<ParamSpec>,
    returns: Kind,
    access: Option<Access>,
    namespace: Namespace,
    pub(crate) handler: Handler,
}

/// How a method meets namespaces: what a principal confined to a prefix may
/// pass it and see from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespace {
    /// The positions of the parameters that name something (a stack, a
    /// storage, a client): each must be under the caller's prefix.
    pub name_params: Vec<usize>,
    /// The result lists names (an array of them, or a struct keyed by them):
    /// the caller sees only those under its prefix.
    pub lists_names: bool,
    /// The method acts on the whole server (beyond any namespace): a
    /// confined caller may not call it.
    pub whole_server: bool,
}

impl Method {
    /// The full dotted name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The documentation string.
    pub fn doc(&self) -> &str {
        &self.doc
    }

    /// The parameters, in order.
    pub fn params(&self) -> &[ParamSpec] {
        &self.params
    }

    /// The result type.
    pub fn returns(&self) -> &Kind {
        &self.returns
    }

    /// The access level calling it needs, as registered; `None` for a method
    /// registered without one.
    pub fn access(&self) -> Option<Access> {
        self.access
    }

    /// How the method meets namespaces.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The access level enforced: a method registered without one needs admin,
    /// so a forgotten category fails closed.
    pub fn needed_access(&self) -> Access {
        self.access.unwrap_or(Access::Admin)
    }

    /// Whether this method is run by the dispatcher as a future.
    pub fn is_async(&self) -> bool {
        matches!(
            self.handler,
            Handler::Async(_) | Handler::Stream(_) | Handler::Builtin(Builtin::Multicall)
        )
    }

    /// Whether this method streams its result (item by item where the protocol
    /// can, as zerorpc does; as one array elsewhere).
    pub fn is_stream(&self) -> bool {
        matches!(self.handler, Handler::Stream(_))
    }

    /// The XML-RPC introspection signatures: one `[result, param, ...]` list per
    /// accepted arity (optional parameters give several; a variadic tail is shown once).
    pub fn signatures(&self) -> Vec<Vec<&'static str>> {
        let required: Vec<&ParamSpec> = self.params.iter().filter(|p| !p.optional).collect();
        let optional: Vec<&ParamSpec> = self.params.iter().filter(|p| p.optional).collect();
        let ret = self.returns.xmlrpc_name();
        (0..=optional.len())
            .map(|n| {
                std::iter::once(ret)
                    .chain(required.iter().map(|p| p.kind.xmlrpc_name()))
                    .chain(optional[..n].iter().map(|p| p.kind.xmlrpc_name()))
                    .collect()
            })
            .collect()
    }

    /// Orders named parameters (as JSON-RPC sends them) by the method's
    /// parameter names: a missing optional one is nil, a missing required one
    /// or an unknown name is an invalid-params fault.
    pub fn positional(&self, mut named: Map) -> Result<Vec<Value>, Fault> {
        let method = self;
        let mut params = Vec::with_capacity(method.params().len());
        for spec in method.params() {
            match named.swap_remove(&spec.name) {
                Some(Value::Array(rest)) if spec.variadic => params.extend(rest),
                Some(v) if spec.variadic => params.push(v),
                Some(v) => params.push(v),
                None if spec.optional => params.push(Value::Nil),
                None => {
                    return Err(Fault::invalid_params(format!(
                        "missing parameter {:?}",
                        spec.name
                    )))
                }
            }
        }
        if let Some(unknown) = named.keys().next() {
            return Err(Fault::invalid_params(format!(
                "unknown parameter {unknown:?} (takes {})",
                method
                    .params()
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        // Trailing nils stand for left-out optional parameters: drop them, so a
        // variadic or optional tail sees no extra arguments.
        let required = method.params().iter().filter(|p| !p.optional).count();
        while params.len() > required && params.last() == Some(&Value::Nil) {
            params.pop();
        }
        Ok(params)
    }

    /// A one-line rendering like `quadratic(a: double, b: double, c: double) -> array`.
    pub fn synopsis(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| {
                let stars = if p.variadic { "*" } else { "" };
                let opt = if p.optional && !p.variadic { "?" } else { "" };
                format!("{stars}{}{opt}: {}", p.name, p.kind.xmlrpc_name())
            })
            .collect();
        format!(
            "{}({}) -> {}",
            self.name,
            params.join(", "),
            self.returns.xmlrpc_name()
        )
    }
}

/// Names the parameters of a just-registered method.
pub struct MethodBuilder<'a> {
    method: &'a mut Method,
}

impl MethodBuilder<'_> {
    /// Gives the parameters names, in order (used by introspection and by
    /// protocols with named parameters). Extra names are ignored.
    pub fn params(self, names: &[&str]) -> Self {
        for (spec, name) in self.method.params.iter_mut().zip(names) {
            spec.name = (*name).to_owned();
        }
        self
    }

    /// Sets the access level a token needs to call the method (see [`Access`]).
    /// Every method should have one; one without is treated as admin.
    pub fn access(self, access: Access) -> Self {
        self.method.access = Some(access);
        self
    }
}

/// Two tables both define a method.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("method {0:?} is defined twice")]
pub struct DuplicateMethod(pub String);

/// A set of named methods; the unit that servers serve.
///
/// Register plain functions with [`register`](Self::register) and async ones with
/// [`register_async`](Self::register_async); names are dotted (`stack.push`).
#[derive(Clone, Default)]
pub struct MethodTable {
    methods: BTreeMap<String, Method>,
}

impl MethodTable {
    /// An empty table.
    pub fn new() -> MethodTable {
        MethodTable::default()
    }

    fn insert(
        &mut self,
        name: &str,
        doc: &str,
        (params, returns): (Vec<ParamSpec>, Kind),
        handler: Handler,
    ) -> MethodBuilder<'_> {
        let method = Method {
            name: name.to_owned(),
            doc: doc.to_owned(),
            params,
            returns,
            access: None,
            namespace: Namespace::default(),
            handler,
        };
        self.methods.insert(name.to_owned(), method);
        MethodBuilder {
            method: self.methods.get_mut(name).expect("just inserted"),
        }
    }

    /// Registers a plain function under `name`, replacing any method of that name.
    ///
    /// The function runs on the transport's task, so it should not block for long;
    /// use [`register_async`](Self::register_async) for work that waits.
    pub fn register<Args, H: SyncHandler<Args>>(
        &mut self,
        name: &str,
        doc: &str,
        handler: H,
    ) -> MethodBuilder<'_> {
        let f = handler.into_fn();
        self.insert(name, doc, H::describe(), Handler::Sync(f))
    }

    /// Registers an async function under `name`, replacing any method of that name.
    pub fn register_async<Args, H: AsyncHandler<Args>>(
        &mut self,
        name: &str,
        doc: &str,
        handler: H,
    ) -> MethodBuilder<'_> {
        let f = handler.into_fn();
        self.insert(name, doc, H::describe(), Handler::Async(f))
    }

    /// Registers a streaming function under `name`: its items go out one by one
    /// on protocols that stream (zerorpc), and as one array on the others.
    pub fn register_stream<Args, H: StreamHandler<Args>>(
        &mut self,
        name: &str,
        doc: &str,
        handler: H,
    ) -> MethodBuilder<'_> {
        let f = handler.into_fn();
        self.insert(name, doc, H::describe(), Handler::Stream(f))
    }

    /// Registers a method known only at run time (read from a config file, say):
    /// its parameters and result type are given rather than derived from Rust
    /// types, and `handler` takes the raw positional parameters.
    ///
    /// The call's parameters are checked against `params` before the handler
    /// runs (a wrong count is an invalid-params fault naming what the method
    /// takes), and left-out optional parameters are passed as [`Value::Nil`],
    /// so without a variadic parameter the handler always gets exactly
    /// `params.len()` values. Named parameters (JSON-RPC) map to the names in
    /// `params`. Checking each value's type is the handler's job.
    pub fn register_raw<F, Fut>(
        &mut self,
        name: &str,
        doc: &str,
        params: Vec<ParamSpec>,
        returns: Kind,
        handler: F,
    ) -> MethodBuilder<'_>
    where
        F: Fn(&Context, Vec<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CallResult> + Send + 'static,
    {
        let specs = params.clone();
        let f = move |ctx: &Context, values: Vec<Value>| -> BoxFuture<CallResult> {
            match padded(&specs, values) {
                Ok(values) => Box::pin(handler(ctx, values)),
                Err(fault) => Box::pin(std::future::ready(Err(fault))),
            }
        };
        self.insert(name, doc, (params, returns), Handler::Async(Arc::new(f)))
    }

    /// Registers a streaming method known only at run time, as
    /// [`register_raw`](Self::register_raw) does a plain one: `item` is the
    /// type of each item (introspection reports an array of them), and
    /// `handler` returns the stream, or a fault before the first item.
    pub fn register_raw_stream<F>(
        &mut self,
        name: &str,
        doc: &str,
        params: Vec<ParamSpec>,
        item: Kind,
        handler: F,
    ) -> MethodBuilder<'_>
    where
        F: Fn(&Context, Vec<Value>) -> Result<ValueStream, Fault> + Send + Sync + 'static,
    {
        let specs = params.clone();
        let f = move |ctx: &Context, values: Vec<Value>| handler(ctx, padded(&specs, values)?);
        let returns = Kind::Array(Box::new(item));
        self.insert(name, doc, (params, returns), Handler::Stream(Arc::new(f)))
    }

    pub(crate) fn register_builtin(
        &mut self,
        name: &str,
        doc: &str,
        sig: (Vec<ParamSpec>, Kind),
        builtin: Builtin,
    ) {
        if !self.methods.contains_key(name) {
            // Introspection and multicall (whose inner calls are checked one by one).
            self.insert(name, doc, sig, Handler::Builtin(builtin))
                .access(Access::Read);
        }
    }

    /// Marks, in every method, the parameters called one of `names` (by their
    /// registered names) as naming things in a namespace.
    pub fn namespace_params(&mut self, names: &[&str]) {
        for method in self.methods.values_mut() {
            method.namespace.name_params = (method.params.iter().enumerate())
                .filter(|(_, p)| names.contains(&p.name.as_str()))
                .map(|(i, _)| i)
                .collect();
        }
    }

    /// Marks the methods whose results list names, so that a confined caller
    /// sees only its own; false if one is unknown.
    pub fn namespace_listings(&mut self, methods: &[&str]) -> bool {
        self.mark(methods, |ns| ns.lists_names = true)
    }

    /// Marks the methods that act beyond any namespace, refused to a confined
    /// caller; false if one is unknown.
    pub fn whole_server(&mut self, methods: &[&str]) -> bool {
        self.mark(methods, |ns| ns.whole_server = true)
    }

    fn mark(&mut self, methods: &[&str], set: impl Fn(&mut Namespace)) -> bool {
        let mut all = true;
        for name in methods {
            match self.methods.get_mut(*name) {
                Some(m) => set(&mut m.namespace),
                None => all = false,
            }
        }
        all
    }

    /// Makes `alias` answer exactly as `target` does; false if `target` is unknown.
    pub fn alias(&mut self, alias: &str, target: &str) -> bool {
        let Some(method) = self.methods.get(target) else {
            return false;
        };
        let mut copy = method.clone();
        copy.name = alias.to_owned();
        self.methods.insert(alias.to_owned(), copy);
        true
    }

    /// Moves every method of `other` into this table; fails (changing nothing)
    /// if a name is in both.
    pub fn merge(&mut self, other: MethodTable) -> Result<(), DuplicateMethod> {
        if let Some(name) = other.methods.keys().find(|n| self.methods.contains_key(*n)) {
            return Err(DuplicateMethod(name.clone()));
        }
        self.methods.extend(other.methods);
        Ok(())
    }

    /// Merges `other` with every name prefixed by `prefix.`.
    pub fn nest(&mut self, prefix: &str, other: MethodTable) -> Result<(), DuplicateMethod> {
        let renamed = other
            .methods
            .into_values()
            .map(|mut m| {
                m.name = format!("{prefix}.{}", m.name);
                (m.name.clone(), m)
            })
            .collect();
        self.merge(MethodTable { methods: renamed })
    }

    /// The method of that name.
    pub fn get(&self, name: &str) -> Option<&Method> {
        self.methods.get(name)
    }

    /// All method names, sorted.
    pub fn method_names(&self) -> impl Iterator<Item = &str> {
        self.methods.keys().map(String::as_str)
    }

    /// All methods, sorted by name.
    pub fn methods(&self) -> impl Iterator<Item = &Method> {
        self.methods.values()
    }

    /// How many methods there are.
    pub fn len(&self) -> usize {
        self.methods.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.methods.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{Dispatcher, Reply};

    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    fn spec(name: &str, kind: Kind, optional: bool) -> ParamSpec {
        ParamSpec {
            name: name.to_owned(),
            kind,
            optional,
            variadic: false,
        }
    }

    /// A table with one raw method that echoes its parameters, and a raw
    /// stream that yields them one by one.
    fn raw_table() -> MethodTable {
        let mut table = MethodTable::new();
        let params = vec![
            spec("text", Kind::String, false),
            spec("count", Kind::Optional(Box::new(Kind::Int)), true),
        ];
        table
            .register_raw(
                "echo",
                "Answers its parameters.",
                params.clone(),
                Kind::Array(Box::new(Kind::Any)),
                |_ctx: &Context, values: Vec<Value>| async move { Ok(Value::Array(values)) },
            )
            .access(Access::Read);
        table.register_raw_stream(
            "each",
            "Streams its parameters.",
            params,
            Kind::Any,
            |_ctx: &Context, values: Vec<Value>| {
                let items: Vec<CallResult> = values.into_iter().map(Ok).collect();
                Ok(Box::pin(Iter(items.into_iter())) as ValueStream)
            },
        );
        table
    }

    struct Iter(std::vec::IntoIter<CallResult>);

    impl Stream for Iter {
        type Item = CallResult;
        fn poll_next(
            mut self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<CallResult>> {
            std::task::Poll::Ready(self.0.next())
        }
    }

    #[test]
    fn raw_methods_describe_what_they_were_given() {
        let table = raw_table();
        let echo = table.get("echo").unwrap();
        assert_eq!(echo.doc(), "Answers its parameters.");
        assert_eq!(echo.access(), Some(Access::Read));
        assert!(echo.is_async() && !echo.is_stream());
        assert_eq!(
            echo.signatures(),
            vec![vec!["array", "string"], vec!["array", "string", "int"]]
        );
        assert_eq!(echo.synopsis(), "echo(text: string, count?: int) -> array");
        let each = table.get("each").unwrap();
        assert!(each.is_stream());
        assert_eq!(each.returns(), &Kind::Array(Box::new(Kind::Any)));
    }

    #[test]
    fn raw_calls_are_checked_and_padded() {
        let d = Dispatcher::new(raw_table());
        let ctx = Context::default();
        let s = |t: &str| Value::String(t.into());
        assert_eq!(
            block_on(d.call(&ctx, "echo", vec![s("a")])),
            Ok(Value::Array(vec![s("a"), Value::Nil]))
        );
        assert_eq!(
            block_on(d.call(&ctx, "echo", vec![s("a"), Value::Int(2)])),
            Ok(Value::Array(vec![s("a"), Value::Int(2)]))
        );
        let none = block_on(d.call(&ctx, "echo", vec![])).unwrap_err();
        assert_eq!(none.code, Fault::INVALID_PARAMS);
        assert!(
            none.message.contains("takes 1 to 2 parameters, got 0"),
            "{none}"
        );
        let many = vec![s("a"), Value::Int(1), Value::Int(2)];
        assert_eq!(
            block_on(d.call(&ctx, "echo", many)).unwrap_err().code,
            Fault::INVALID_PARAMS
        );
        let mut named = Map::new();
        named.insert("count".into(), Value::Int(3));
        named.insert("text".into(), s("b"));
        assert_eq!(
            block_on(d.call_named(&ctx, "echo", named)),
            Ok(Value::Array(vec![s("b"), Value::Int(3)]))
        );
        let mut unknown = Map::new();
        unknown.insert("text".into(), s("b"));
        unknown.insert("colour".into(), s("red"));
        assert!(block_on(d.call_named(&ctx, "echo", unknown))
            .unwrap_err()
            .message
            .contains("unknown parameter \"colour\""));
    }

    #[test]
    fn raw_streams_stream_or_collect() {
        let d = Dispatcher::new(raw_table());
        let ctx = Context::default();
        let params = vec![Value::String("x".into())];
        assert_eq!(
            block_on(d.call(&ctx, "each", params.clone())),
            Ok(Value::Array(vec![Value::String("x".into()), Value::Nil]))
        );
        let Ok(Reply::Stream(mut stream)) = block_on(d.call_streaming(&ctx, "each", params)) else {
            panic!("expected a stream");
        };
        let first = block_on(std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)));
        assert_eq!(first, Some(Ok(Value::String("x".into()))));
        let refused = block_on(d.call_streaming(&ctx, "each", vec![]));
        assert!(matches!(refused, Err(f) if f.code == Fault::INVALID_PARAMS));
    }
}
