//! The example functions of the classic XML-RPC server, with the behaviour its
//! Python original shows from `xmlrpc.client`.

use crate::wheel;
use rpcs_core::{Context, Fault, MethodTable, Rest, Value};

/// Every example method: the classic functions plus the roulette wheel.
pub fn table() -> MethodTable {
    let mut t = MethodTable::new();
    t.register(
        "add",
        "Add two numbers (or join two strings or arrays).",
        add,
    )
    .params(&["a", "b"]);
    t.register(
        "addtogether",
        "Add together everything in the list `things`.",
        |things: Rest<Value>| addtogether(things.0),
    )
    .params(&["things"]);
    t.register(
        "quadratic",
        "Determine `x` values satisfying: `a` * x*x + `b` * x + c == 0",
        quadratic,
    )
    .params(&["a", "b", "c"]);
    t.register(
        "remote_repr",
        "Return the `repr()` rendering of the supplied `arg`.",
        |arg: Value| arg,
    )
    .params(&["arg"]);
    t.register_async(
        "line_counter",
        "Count the lines of `text`, calling the caller's method `callback` (default \"noisy\") \
         once per line: a server-to-client call, over WebSocket or MessagePack-RPC.",
        |ctx: Context, text: String, callback: Option<String>| async move {
            let callback = callback.unwrap_or_else(|| "noisy".into());
            let mut lines = 0;
            for line in text.split_inclusive('\n') {
                ctx.call_peer(&callback, (line.to_owned(),)).await?;
                lines += 1;
            }
            Ok::<_, Fault>(lines)
        },
    )
    .params(&["text", "callback"]);
    t.register_stream(
        "spinStream",
        "Spin the wheel `spins` times, streaming each result as it comes (item by item over zerorpc).",
        |spins: i64| SpinStream(spins.clamp(0, wheel::MAX_SPINS)),
    )
    .params(&["spins"]);
    wheel::register(&mut t);
    t
}

/// Spins, one per item.
struct SpinStream(i64);

impl futures_core::Stream for SpinStream {
    type Item = wheel::Spin;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<wheel::Spin>> {
        if self.0 <= 0 {
            return std::task::Poll::Ready(None);
        }
        self.0 -= 1;
        std::task::Poll::Ready(Some(wheel::spin()))
    }
}

fn type_error(a: &Value, b: &Value) -> Fault {
    Fault::named(
        "TypeError",
        format!(
            "unsupported operand types for +: {} and {}",
            a.type_name(),
            b.type_name()
        ),
    )
}

/// `a + b` with Python's meaning for numbers, strings and arrays.
pub fn add(a: Value, b: Value) -> Result<Value, Fault> {
    Ok(match (&a, &b) {
        (Value::Int(x), Value::Int(y)) => Value::Int(
            x.checked_add(*y)
                .ok_or_else(|| Fault::named("OverflowError", "integer sum out of 64-bit range"))?,
        ),
        (Value::Int(_) | Value::Double(_), Value::Int(_) | Value::Double(_)) => {
            Value::Double(a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0))
        }
        (Value::String(x), Value::String(y)) => Value::String(format!("{x}{y}")),
        (Value::Array(x), Value::Array(y)) => Value::Array(x.iter().chain(y).cloned().collect()),
        _ => return Err(type_error(&a, &b)),
    })
}

/// Folds `add` over the arguments, left to right.
pub fn addtogether(things: Vec<Value>) -> Result<Value, Fault> {
    let mut things = things.into_iter();
    let first = things.next().ok_or_else(|| {
        Fault::named(
            "TypeError",
            "reduce() of empty iterable with no initial value",
        )
    })?;
    things.try_fold(first, add)
}

/// The roots of `a*x*x + b*x + c`, computed exactly as the original example does:
/// `(-b ± sqrt(b*b - 4*a*c)) / 2.0 * a`, distinct values in ascending order.
///
/// Note the original's precedence: it multiplies by `a` rather than dividing by
/// `2a`, so the result equals the true roots only when `a` is 1. It is kept so the
/// example answers exactly what the classic server answers.
pub fn quadratic(a: f64, b: f64, c: f64) -> Result<Vec<f64>, Fault> {
    let discriminant = b * b - 4.0 * a * c;
    if discriminant < 0.0 || discriminant.is_nan() {
        return Err(Fault::named("ValueError", "math domain error"));
    }
    let root = discriminant.sqrt();
    let mut xs = vec![(-b - root) / 2.0 * a, (-b + root) / 2.0 * a];
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    Ok(xs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_outputs() {
        let s = |x: &str| Value::String(x.into());
        assert_eq!(addtogether(vec![s("x"), s("ÿ"), s("z")]), Ok(s("xÿz")));
        let ints = [20, 30, 4, 1].map(Value::Int).to_vec();
        assert_eq!(addtogether(ints), Ok(Value::Int(55)));
        assert_eq!(quadratic(2.0, -4.0, 0.0), Ok(vec![0.0, 8.0]));
        assert_eq!(quadratic(1.0, 2.0, 1.0), Ok(vec![-1.0]));
        let err = quadratic(1.0, 0.0, 1.0).unwrap_err();
        assert_eq!(err.message, "ValueError: math domain error");
        assert!(addtogether(vec![]).is_err());
        assert!(add(Value::Int(1), s("x")).is_err());
        assert_eq!(
            add(Value::Int(1), Value::Double(0.5)),
            Ok(Value::Double(1.5))
        );
        assert!(add(Value::Int(i64::MAX), Value::Int(1)).is_err());
    }
}
