//! Every method the master and the registry serve carries an access level, so
//! a token's level decides what it may call (none falls back to admin).

use crate::registry::Reg;
use rpcs_core::{Access, Dispatcher};
use rpcs_master::services::registry::{MemoryRegistry, RegistryConfig};
use std::sync::Arc;

fn levels(dispatcher: &Dispatcher) -> Vec<(String, Option<Access>)> {
    let table = dispatcher.table();
    table
        .method_names()
        .map(|name| (name.to_owned(), table.get(name).and_then(|m| m.access())))
        .collect()
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
    let env = crate::env_with(
        "memory",
        rpcs_master::BackendConfig::Memory,
        None,
        crate::config(),
    )
    .await;
    let dispatcher = Dispatcher::new(env.master.table());
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
