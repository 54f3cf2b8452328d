//! What each codec is documented to do to a value (README, "Protocols"), written
//! as functions so every round trip compares with an expectation rather than
//! with "whatever came back".

use base64::Engine as _;
use rpcs_core::xmlrpc::is_xml_text;
use rpcs_core::{Fault, Value};

/// Whether two values are equal, doubles bit for bit except that every NaN
/// equals every NaN (text codecs write one `NaN` whatever its payload).
pub fn same(a: &Value, b: &Value) -> bool {
    equal(a, b, &|x, y| {
        x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
    })
}

/// Whether two values are equal with doubles compared bit for bit, NaN payloads
/// included: what a binary codec such as MessagePack must keep.
pub fn exact(a: &Value, b: &Value) -> bool {
    equal(a, b, &|x, y| x.to_bits() == y.to_bits())
}

fn equal(a: &Value, b: &Value, doubles: &dyn Fn(f64, f64) -> bool) -> bool {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => doubles(*x, *y),
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| equal(x, y, doubles))
        }
        (Value::Struct(xs), Value::Struct(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .zip(ys)
                    .all(|((kx, x), (ky, y))| kx == ky && equal(x, y, doubles))
        }
        _ => a == b,
    }
}

/// [`same`] over two lists.
pub fn same_list(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
}

/// [`same`] over two faults (their data compared the same way).
pub fn same_fault(a: &Fault, b: &Fault) -> bool {
    a.code == b.code
        && a.message == b.message
        && match (&a.data, &b.data) {
            (Some(x), Some(y)) => same(x, y),
            (x, y) => x.is_none() && y.is_none(),
        }
}

/// [`same`] over two call outcomes.
pub fn same_outcome(a: &Result<Value, Fault>, b: &Result<Value, Fault>) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => same(x, y),
        (Err(x), Err(y)) => same_fault(x, y),
        _ => false,
    }
}

/// A value after an XML-RPC round trip, or `None` where XML-RPC cannot carry it
/// (a struct member name with a character XML 1.0 forbids). A string with such a
/// character travels as `<base64>` of its UTF-8 and comes back as bytes;
/// date-times travel in whole seconds.
pub fn xmlrpc(value: &Value) -> Option<Value> {
    Some(match value {
        Value::String(s) if !is_xml_text(s) => Value::Bytes(s.as_bytes().to_vec()),
        Value::DateTime(d) => Value::DateTime(d.whole_seconds()),
        Value::Array(items) => Value::Array(items.iter().map(xmlrpc).collect::<Option<_>>()?),
        Value::Struct(members) => Value::Struct(
            members
                .iter()
                .map(|(k, v)| is_xml_text(k).then(|| Some((k.clone(), xmlrpc(v)?)))?)
                .collect::<Option<_>>()?,
        ),
        other => other.clone(),
    })
}

/// A fault after an XML-RPC round trip: `faultCode` and `faultString` only (the
/// fault struct has no slot for data), with each character XML cannot carry
/// spelled `\u{..}` in the message.
pub fn xmlrpc_fault(fault: &Fault) -> Fault {
    let message = fault
        .message
        .chars()
        .map(|c| {
            if is_xml_text(c.encode_utf8(&mut [0; 4])) {
                c.to_string()
            } else {
                c.escape_unicode().to_string()
            }
        })
        .collect::<String>();
    Fault::new(fault.code, message)
}

/// A value after a JSON round trip: bytes become base64 strings, date-times ISO
/// 8601 strings (with their fraction), non-finite doubles the strings `NaN`,
/// `Infinity` and `-Infinity`; everything else is kept (doubles exactly).
pub fn json(value: &Value) -> Value {
    match value {
        Value::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::DateTime(d) => Value::String(d.to_iso8601()),
        Value::Double(d) if d.is_nan() => Value::String("NaN".into()),
        Value::Double(d) if d.is_infinite() && *d > 0.0 => Value::String("Infinity".into()),
        Value::Double(d) if d.is_infinite() => Value::String("-Infinity".into()),
        Value::Array(items) => Value::Array(items.iter().map(json).collect()),
        Value::Struct(members) => {
            Value::Struct(members.iter().map(|(k, v)| (k.clone(), json(v))).collect())
        }
        other => other.clone(),
    }
}

/// A fault after a JSON-RPC round trip: code and message kept, data mapped as
/// [`json`] maps values.
pub fn json_fault(fault: &Fault) -> Fault {
    Fault {
        code: fault.code,
        message: fault.message.clone(),
        data: fault.data.as_ref().map(json),
    }
}

/// A fault after a MessagePack-RPC round trip: the error slot is `[code,
/// message]`, so data is dropped.
pub fn msgpack_rpc_fault(fault: &Fault) -> Fault {
    Fault::new(fault.code, fault.message.clone())
}
