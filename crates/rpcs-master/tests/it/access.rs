//! Every method the master and the registry serve carries an access level, so
//! a token's level decides what it may call (none falls back to admin); a token
//! confined to a prefix reaches nothing outside it.

use crate::registry::Reg;
use crate::{i, s};
use rpcs_core::{Access, Context, Dispatcher, Fault, Principal, Value};
use rpcs_master::services::registry::{MemoryRegistry, RegistryConfig};
use std::sync::Arc;

fn levels(dispatcher: &Dispatcher) -> Vec<(String, Option<Access>)> {
    let table = dispatcher.table();
    table
        .method_names()
        .map(|name| (name.to_owned(), table.get(name).and_then(|m| m.access())))
        .collect()
}

/// The master's methods on the memory backend, called directly.
async fn master_dispatcher() -> Dispatcher {
    let backend = rpcs_master::BackendConfig::Memory;
    let env = crate::env_with("memory", backend, None, crate::config()).await;
    Dispatcher::new(env.master.table())
}

fn assert_all_have_a_level(levels: &[(String, Option<Access>)]) {
    let missing: Vec<&String> = levels
        .iter()
        .filter(|(_, a)| a.is_none())
        .map(|(n, _)| n)
        .collect();
    assert!(
        missing.is_empty(),
        "methods without an access level: {missing:?}"
    );
}

#[tokio::test]
async fn every_master_method_has_an_access_level() {
    let dispatcher = master_dispatcher().await;
    let levels = levels(&dispatcher);
    assert_all_have_a_level(&levels);
    let level = |name: &str| levels.iter().find(|(n, _)| n == name).and_then(|(_, a)| *a);
    // Looking needs read, changing needs write, on dotted names and the
    // original underscore aliases alike.
    for name in [
        "stack.getSize",
        "stack_getSize",
        "storage.getParameter",
        "provider.getAllClients",
        "ping",
        "system.listMethods",
    ] {
        assert_eq!(level(name), Some(Access::Read), "{name}");
    }
    for name in [
        "stack.push",
        "stack_pop",
        "stack.take",
        "storage.setParameter",
        "provider.login",
        "provider.sendMessage",
    ] {
        assert_eq!(level(name), Some(Access::Write), "{name}");
    }
    assert_eq!(level("provider.cleanUp"), Some(Access::Admin));
}

#[tokio::test]
async fn every_registry_method_has_an_access_level() {
    let reg = Reg::with_store(Arc::new(MemoryRegistry::new()), RegistryConfig::default());
    let levels = levels(reg.dispatcher());
    assert_all_have_a_level(&levels);
}

/// A context for a caller with `access`, confined to `prefix` when given.
fn as_token(access: Access, prefix: Option<&str>) -> Context {
    let mut ctx = Context::new("test", None, 7);
    ctx.principal = Some(Arc::new(Principal {
        name: "t".into(),
        access,
        prefix: prefix.map(Into::into),
    }));
    ctx
}

struct Ns {
    dispatcher: Dispatcher,
    admin: Context,
    a: Context,
}

impl Ns {
    async fn new() -> Ns {
        let mut dispatcher = master_dispatcher().await;
        dispatcher.require_authentication();
        Ns {
            dispatcher,
            admin: as_token(Access::Admin, None),
            a: as_token(Access::Admin, Some("a/")),
        }
    }

    async fn call(&self, ctx: &Context, method: &str, params: Vec<Value>) -> Result<Value, Fault> {
        self.dispatcher.call(ctx, method, params).await
    }
}

fn forbidden(r: Result<Value, Fault>) -> bool {
    matches!(r, Err(f) if f.code == Fault::FORBIDDEN)
}

#[tokio::test]
async fn a_namespace_token_touches_only_names_under_its_prefix() {
    let ns = Ns::new().await;
    for name in ["a/jobs", "b/jobs"] {
        ns.call(&ns.admin, "stack.push", vec![s(name), s("x")])
            .await
            .unwrap();
        ns.call(
            &ns.admin,
            "storage.setParameter",
            vec![s(name), s("k"), i(1)],
        )
        .await
        .unwrap();
    }
    let a = &ns.a;
    assert_eq!(
        ns.call(a, "stack.push", vec![s("a/jobs"), s("y")]).await,
        Ok(i(2))
    );
    for (method, params) in [
        ("stack.push", vec![s("b/jobs"), s("y")]),
        ("stack_pop", vec![s("b/jobs")]),
        ("stack.getSize", vec![s("b/jobs")]),
        ("stack.remove", vec![s("b/jobs")]),
        (
            "stack.take",
            vec![s("a/jobs"), Value::Nil, Value::Nil, s("b/worker")],
        ),
        ("storage.getParameter", vec![s("b/jobs"), s("k")]),
        ("storage.increment", vec![s("b/jobs"), s("k")]),
        ("stack.push", vec![Value::Bytes(b"b/jobs".to_vec()), s("y")]),
    ] {
        assert!(
            forbidden(ns.call(a, method, params.clone()).await),
            "{method} {params:?}"
        );
    }
    // Listings show only the namespace.
    let names = ns.call(a, "stack.getAllNames", vec![]).await.unwrap();
    assert_eq!(names, Value::Array(vec![s("a/jobs")]));
    let names = ns.call(a, "storage_getAllNames", vec![]).await.unwrap();
    assert_eq!(names, Value::Array(vec![s("a/jobs")]));
    // Named parameters are checked as positional ones are.
    let mut named = rpcs_core::Map::new();
    named.insert("name".into(), s("b/jobs"));
    let r = ns.dispatcher.call_named(a, "stack.getSize", named).await;
    assert!(matches!(r, Err(f) if f.code == Fault::FORBIDDEN));
    // Every inner call of a multicall on its own.
    let entry = |method: &str, name: &str| {
        let mut m = rpcs_core::Map::new();
        m.insert("methodName".into(), s(method));
        m.insert("params".into(), Value::Array(vec![s(name)]));
        Value::Struct(m)
    };
    let calls = Value::Array(vec![
        entry("stack.getSize", "a/jobs"),
        entry("stack.getSize", "b/jobs"),
    ]);
    let Value::Array(out) = ns.call(a, "system.multicall", vec![calls]).await.unwrap() else {
        panic!("not an array")
    };
    assert_eq!(out[0], Value::Array(vec![i(2)]));
    assert!(out[1]
        .as_struct()
        .is_some_and(|f| f["faultCode"] == i(Fault::FORBIDDEN.into())));
    // Nothing of b/ changed.
    assert_eq!(
        ns.call(&ns.admin, "stack.getSize", vec![s("b/jobs")]).await,
        Ok(i(1))
    );
}

#[tokio::test]
async fn a_namespace_token_sees_and_messages_only_its_clients() {
    let ns = Ns::new().await;
    let a = &ns.a;
    ns.call(&ns.admin, "provider.login", vec![s("b/c")])
        .await
        .unwrap();
    ns.call(a, "provider.login", vec![s("a/c")]).await.unwrap();
    assert!(forbidden(
        ns.call(a, "provider.login", vec![s("b/d")]).await
    ));
    assert!(forbidden(
        ns.call(a, "provider.sendMessage", vec![s("b/c"), s("hi")])
            .await
    ));
    assert!(forbidden(
        ns.call(a, "provider.getClient", vec![s("b/c")]).await
    ));
    assert!(forbidden(
        ns.call(a, "provider.logout", vec![s("b/c")]).await
    ));
    assert!(forbidden(
        ns.call(a, "provider.subscribe", vec![s("b/c")]).await
    ));
    assert!(forbidden(ns.call(a, "provider.cleanUp", vec![]).await));
    let names = ns
        .call(a, "provider.getAllClientNames", vec![])
        .await
        .unwrap();
    assert_eq!(names, Value::Array(vec![s("a/c")]));
    let all = ns.call(a, "provider.getAllClients", vec![]).await.unwrap();
    assert_eq!(
        all.as_struct()
            .map(|m| m.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["a/c".to_owned()])
    );
    // A broadcast from the namespace reaches its clients only.
    assert_eq!(
        ns.call(a, "provider.broadcast", vec![s("news")]).await,
        Ok(i(1))
    );
    assert_eq!(
        ns.call(a, "provider.visit", vec![s("a/c")]).await,
        Ok(s("news"))
    );
    assert_eq!(
        ns.call(&ns.admin, "provider.visit", vec![s("b/c")]).await,
        Ok(Value::Nil)
    );
    // An unconfined token still reaches everyone.
    assert_eq!(
        ns.call(&ns.admin, "provider.broadcast", vec![s("all")])
            .await,
        Ok(i(2))
    );
}
