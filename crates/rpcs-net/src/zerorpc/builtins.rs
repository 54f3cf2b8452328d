//! The `_zerorpc_*` built-in methods, answered from the method table.

use super::server::ZerorpcConfig;
use rpcs_core::{Dispatcher, Fault, Map, Value};

/// The `_zerorpc_*` built-ins, answered from the method table.
pub(crate) fn builtin(
    dispatcher: &Dispatcher,
    config: &ZerorpcConfig,
    name: &str,
    params: &[Value],
) -> Option<Result<Value, Fault>> {
    let table = dispatcher.table();
    let method_arg = || {
        let name = params.first().and_then(Value::as_str).unwrap_or("");
        table
            .get(name)
            .ok_or_else(|| Fault::named("NameError", format!("no method {name:?}")))
    };
    let args_of = |m: &rpcs_core::Method| -> Vec<Value> {
        m.params()
            .iter()
            .map(|p| {
                let mut a = Map::new();
                a.insert("name".into(), Value::String(p.name.clone()));
                Value::Struct(a)
            })
            .collect()
    };
    Some(match name {
        "_zerorpc_list" => Ok(Value::Array(
            table.method_names().map(Value::from).collect(),
        )),
        "_zerorpc_name" => Ok(Value::String(config.name.clone())),
        "_zerorpc_ping" => Ok(Value::Array(vec![
            "pong".into(),
            Value::String(config.name.clone()),
        ])),
        "_zerorpc_help" => method_arg().map(|m| {
            if m.doc().is_empty() {
                Value::Nil
            } else {
                Value::String(m.doc().to_owned())
            }
        }),
        "_zerorpc_args" => method_arg().map(|m| {
            Value::Array(
                m.params()
                    .iter()
                    .map(|p| Value::String(p.name.clone()))
                    .collect(),
            )
        }),
        "_zerorpc_inspect" => {
            let mut methods = Map::new();
            for m in table.methods() {
                let mut info = Map::new();
                info.insert("args".into(), Value::Array(args_of(m)));
                info.insert("doc".into(), Value::String(m.doc().to_owned()));
                methods.insert(m.name().to_owned(), Value::Struct(info));
            }
            let mut doc = Map::new();
            doc.insert("name".into(), Value::String(config.name.clone()));
            doc.insert("methods".into(), Value::Struct(methods));
            Ok(Value::Struct(doc))
        }
        _ => return None,
    })
}
