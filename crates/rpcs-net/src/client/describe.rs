//! Introspection: a server's methods with their signatures and docs, by
//! whatever means the server offers.

use super::{Client, ClientError, MethodInfo, Transport};
use rpcs_core::{Fault, Value};

impl Client {
    /// Lists the server's methods with signatures and docs: through the `system.*`
    /// introspection methods (one multicall when the server has it), or from
    /// `rpc.discover` when the server has no `system.listMethods`.
    pub async fn describe(&self) -> Result<Vec<MethodInfo>, ClientError> {
        if let Transport::Zerorpc(_) = &self.transport {
            return self.describe_zerorpc().await;
        }
        let names: Vec<String> = match self.call_as("system.listMethods", ()).await {
            Ok(names) => names,
            Err(ClientError::Fault(f)) if f.code == Fault::METHOD_NOT_FOUND => {
                return match self.call("rpc.discover", ()).await {
                    Ok(doc) => Ok(from_openrpc(&doc)),
                    Err(_) => Err(ClientError::Fault(f)),
                };
            }
            Err(e) => return Err(e),
        };
        let calls = names
            .iter()
            .flat_map(|n| {
                [
                    (
                        "system.methodSignature".to_owned(),
                        vec![Value::from(n.as_str())],
                    ),
                    (
                        "system.methodHelp".to_owned(),
                        vec![Value::from(n.as_str())],
                    ),
                ]
            })
            .collect::<Vec<_>>();
        let answers = match self.multicall(calls.clone()).await {
            Ok(answers) if answers.len() == calls.len() => answers,
            _ => {
                let mut answers = Vec::with_capacity(calls.len());
                for (method, params) in calls {
                    answers.push(match self.call(&method, params).await {
                        Ok(v) => Ok(v),
                        Err(ClientError::Fault(f)) => Err(f),
                        Err(e) => return Err(e),
                    });
                }
                answers
            }
        };
        let mut answers = answers.into_iter();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let sig = answers.next().and_then(Result::ok);
            let help = answers.next().and_then(Result::ok);
            out.push(MethodInfo {
                name,
                signatures: parse_signatures(sig),
                help: help
                    .and_then(|h| h.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// zerorpc's introspection: `_zerorpc_inspect`, or `_zerorpc_list` and
    /// `_zerorpc_help` where inspect fails (Python servers from 3.11 on).
    async fn describe_zerorpc(&self) -> Result<Vec<MethodInfo>, ClientError> {
        let field = |v: &Value, k: &str| v.as_struct().and_then(|m| m.get(k)).cloned();
        if let Ok(doc) = self.call("_zerorpc_inspect", ()).await {
            if let Some(Value::Struct(methods)) = field(&doc, "methods") {
                return Ok(methods
                    .into_iter()
                    .map(|(name, info)| MethodInfo {
                        signatures: Vec::new(),
                        help: field(&info, "doc")
                            .and_then(|d| d.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        name,
                    })
                    .collect());
            }
        }
        let names: Vec<String> = self.call_as("_zerorpc_list", ()).await?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let help = match self.call("_zerorpc_help", (name.clone(),)).await {
                Ok(Value::String(h)) => h,
                _ => String::new(),
            };
            out.push(MethodInfo {
                name,
                signatures: Vec::new(),
                help,
            });
        }
        Ok(out)
    }
}

/// Reads the methods of an OpenRPC document.
fn from_openrpc(doc: &Value) -> Vec<MethodInfo> {
    let field = |v: &Value, k: &str| v.as_struct().and_then(|m| m.get(k)).cloned();
    let kind = |schema: Option<Value>| -> String {
        let t = schema.as_ref().and_then(|s| field(s, "type"));
        match t.as_ref().and_then(Value::as_str) {
            Some("integer") => "int",
            Some("number") => "double",
            Some("string") => "string",
            Some("boolean") => "boolean",
            Some("array") => "array",
            Some("object") => "struct",
            Some("null") => "nil",
            _ => "any",
        }
        .to_owned()
    };
    let methods = field(doc, "methods");
    let methods = methods
        .as_ref()
        .and_then(Value::as_array)
        .unwrap_or_default();
    methods
        .iter()
        .filter_map(|m| {
            let name = field(m, "name")?.as_str()?.to_owned();
            let help = field(m, "description")
                .and_then(|d| d.as_str().map(str::to_owned))
                .unwrap_or_default();
            let mut sig = vec![kind(field(m, "result").and_then(|r| field(&r, "schema")))];
            let params = field(m, "params");
            for p in params
                .as_ref()
                .and_then(Value::as_array)
                .unwrap_or_default()
            {
                sig.push(kind(field(p, "schema")));
            }
            Some(MethodInfo {
                name,
                signatures: vec![sig],
                help,
            })
        })
        .collect()
}

/// Reads a `system.methodSignature` answer; anything but a list of lists of
/// strings (Python answers the string "signatures not supported") means none.
fn parse_signatures(answer: Option<Value>) -> Vec<Vec<String>> {
    let Some(Value::Array(sigs)) = answer else {
        return Vec::new();
    };
    sigs.iter()
        .filter_map(|sig| {
            sig.as_array().map(|types| {
                types
                    .iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpcs_core::MethodTable;

    #[test]
    fn methods_from_an_openrpc_document() {
        let mut table = MethodTable::new();
        table
            .register("add", "Add.", |a: i64, b: f64| a as f64 + b)
            .params(&["a", "b"]);
        let doc = rpcs_core::openrpc::document(&table);
        let methods = from_openrpc(&doc);
        assert_eq!(
            methods,
            vec![MethodInfo {
                name: "add".into(),
                signatures: vec![vec!["double".into(), "int".into(), "double".into()]],
                help: "Add.".into(),
            }]
        );
        assert!(from_openrpc(&Value::Nil).is_empty());
    }
}
