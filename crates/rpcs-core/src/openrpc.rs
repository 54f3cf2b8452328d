//! The OpenRPC document that `rpc.discover` answers, built from a method table.

use crate::json::from_json;
use crate::kind::Kind;
use crate::table::MethodTable;
use crate::value::Value;
use serde_json::{json, Value as Json};

/// The JSON Schema of a wire type, following the project's JSON mapping.
pub fn schema(kind: &Kind) -> Json {
    match kind {
        Kind::Nil => json!({"type": "null"}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Int => json!({"type": "integer"}),
        Kind::Double => json!({"type": "number"}),
        Kind::String => json!({"type": "string"}),
        Kind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
        Kind::DateTime => json!({"type": "string", "format": "date-time"}),
        Kind::Array(inner) => json!({"type": "array", "items": schema(inner)}),
        Kind::Struct(inner) => json!({"type": "object", "additionalProperties": schema(inner)}),
        Kind::Optional(inner) => json!({"oneOf": [schema(inner), {"type": "null"}]}),
        Kind::Any => json!({}),
    }
}

/// The OpenRPC 1.2 document describing every method of `table`.
pub fn document(table: &MethodTable) -> Value {
    let methods: Vec<Json> = table
        .methods()
        .map(|m| {
            let params: Vec<Json> = m
                .params()
                .iter()
                .map(|p| {
                    let mut param =
                        json!({"name": p.name, "required": !p.optional, "schema": schema(&p.kind)});
                    if p.variadic {
                        param["schema"] = json!({"type": "array", "items": schema(&p.kind)});
                        param["description"] = json!("all remaining positional parameters");
                    }
                    param
                })
                .collect();
            json!({
                "name": m.name(),
                "description": m.doc(),
                "params": params,
                "result": {"name": "result", "schema": schema(m.returns())},
                "paramStructure": "either",
                // A specification extension: the token level calling it needs.
                "x-access": m.needed_access().as_str(),
            })
        })
        .collect();
    from_json(json!({
        "openrpc": "1.2.6",
        "info": {"title": "rpcs", "version": env!("CARGO_PKG_VERSION")},
        "methods": methods,
    }))
}
