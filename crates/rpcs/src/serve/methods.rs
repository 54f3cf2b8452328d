//! The served methods on a method table: each call checks its parameters,
//! builds the argument vector, takes a concurrency slot and runs the program.

use super::config::MethodDef;
use super::limit::{Global, Slots};
use super::param::{Arg, Param};
use super::{run, stream};
use rpcs_core::{Context, Fault, Kind, MethodTable, Value};
use std::sync::Arc;
use tracing::debug;

/// A table with one method per definition, all within `global`.
pub fn table(defs: Vec<MethodDef>, global: &Global) -> MethodTable {
    let mut table = MethodTable::new();
    for def in defs {
        let def = Arc::new(def);
        let slots = global.method(def.max_concurrent);
        let specs = def.params.iter().map(Param::spec).collect();
        let access = def.access;
        let (name, doc) = (def.name.clone(), def.doc.clone());
        if def.stream {
            table
                .register_raw_stream(&name, &doc, specs, Kind::String, move |ctx, values| {
                    let (argv, input) = prepare(&def, ctx, values)?;
                    let slot = slots.take(&def.name)?;
                    stream::start(def.clone(), &argv, input, slot)
                })
                .access(access);
        } else {
            let returns = Kind::Struct(Box::new(Kind::Any));
            table
                .register_raw(&name, &doc, specs, returns, move |ctx, values| {
                    let call = call(def.clone(), slots.clone(), ctx, values);
                    async move { call?.await }
                })
                .access(access);
        }
    }
    table
}

/// Checks a call and takes its slot at once (so a refusal does not wait);
/// the future then runs the program.
fn call(
    def: Arc<MethodDef>,
    slots: Slots,
    ctx: &Context,
    values: Vec<Value>,
) -> Result<impl std::future::Future<Output = Result<Value, Fault>>, Fault> {
    let (argv, input) = prepare(&def, ctx, values)?;
    let slot = slots.take(&def.name)?;
    Ok(async move {
        let finished = run::run(&def, &argv, input).await;
        drop(slot);
        let finished = finished?;
        if def.fail_on_exit && finished.ended.code != 0 {
            return Err(run::program_failed(&def, finished));
        }
        Ok(finished.value())
    })
}

/// The argument vector and standard input of a call.
fn prepare(
    def: &MethodDef,
    ctx: &Context,
    values: Vec<Value>,
) -> Result<(Vec<String>, Vec<u8>), Fault> {
    let args = (def.params.iter().zip(values))
        .map(|(param, value)| param.accept(value))
        .collect::<Result<Vec<Option<Arg>>, Fault>>()?;
    let argv = def.template.build(&def.params, &args)?;
    let input = match def.stdin.and_then(|i| args[i].clone()) {
        Some(Arg::Text(text)) => text.into_bytes(),
        Some(Arg::Bytes(bytes)) => bytes,
        _ => Vec::new(),
    };
    debug!(method = %def.name, protocol = ctx.protocol, peer = ?ctx.peer, args = argv.len(), "running");
    Ok((argv, input))
}
