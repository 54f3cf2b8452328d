//! Typed parameter extraction: `from_value::<T>` for many `T` from arbitrary
//! values, `DateTime::parse` and `base64_decode` on arbitrary text, and calls of
//! typed methods through the `Dispatcher`. Never a panic; a conversion that
//! succeeds is stable (converting its `to_value` again gives the same), and a
//! value made by `to_value` converts back to what made it.

use crate::{gen, mapping, ready};
use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use rpcs_core::{
    base64_decode, from_value, rpc_type, to_value_ref, Bytes, Context, DateTime, Dispatcher,
    MethodTable, Rest, Value,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::OnceLock;

/// A struct with a field of each kind a handler may take.
#[derive(Debug, Serialize, Deserialize)]
pub struct Record {
    name: String,
    age: u8,
    tags: Vec<String>,
    nick: Option<String>,
    born: DateTime,
    photo: Bytes,
    score: f64,
}

/// An enum with every variant shape serde has.
#[derive(Debug, Serialize, Deserialize)]
pub enum Shape {
    /// A unit variant.
    Dot,
    /// A newtype variant.
    Circle(f64),
    /// A struct variant.
    Rect {
        /// Width.
        w: i32,
        /// Height.
        h: i32,
    },
    /// A tuple variant.
    Pair(i64, String),
}

rpc_type!(Record => Struct, Shape => Struct);

fn record(u: &mut Unstructured) -> arbitrary::Result<Record> {
    Ok(Record {
        name: gen::string(u)?,
        age: u.arbitrary()?,
        tags: (0..u.int_in_range(0..=3)?)
            .map(|_| gen::string(u))
            .collect::<Result<_, _>>()?,
        nick: if u.arbitrary()? { Some(gen::string(u)?) } else { None },
        born: gen::datetime(u)?,
        photo: Bytes(gen::bytes(u)?),
        score: gen::double(u)?,
    })
}

fn shape(u: &mut Unstructured) -> arbitrary::Result<Shape> {
    Ok(match u.int_in_range(0..=3)? {
        0 => Shape::Dot,
        1 => Shape::Circle(gen::double(u)?),
        2 => Shape::Rect {
            w: u.arbitrary()?,
            h: u.arbitrary()?,
        },
        _ => Shape::Pair(gen::int(u)?, gen::string(u)?),
    })
}

/// Runs the target on one input.
pub fn check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = conversions(&mut u);
    let _ = texts(&mut u);
    let _ = calls(&mut u);
}

/// A conversion that must be stable: `t` from any value, then `t` through
/// `to_value` and back gives the same value again.
fn stable<T: Serialize + DeserializeOwned + Any + Debug>(value: Value) {
    let Ok(t) = from_value::<T>(value.clone()) else {
        return;
    };
    let first = to_value_ref(&t).unwrap_or_else(|e| panic!("{t:?} from {value:?}: {e}"));
    // What an array converts to holds every element (a tuple no fewer).
    if let (Value::Array(given), Value::Array(kept)) = (&value, &first) {
        assert_eq!(given.len(), kept.len(), "{value:?} converted to {t:?}");
    }
    comes_back::<T>(&t, first);
}

/// `to_value` of `t` is `value`, which converts back to a `T` with the same value.
fn comes_back<T: Serialize + DeserializeOwned + Any + Debug>(t: &T, value: Value) {
    let again = from_value::<T>(value.clone())
        .unwrap_or_else(|e| panic!("{value:?}, made from {t:?}, does not convert back: {e}"));
    let second = to_value_ref(&again).expect("it converted before");
    // A HashMap keeps no order, so members are compared sorted.
    assert!(
        mapping::same(&sorted(&second), &sorted(&value)),
        "{t:?} became {value:?}, then {again:?}"
    );
}

/// The value with every struct's members sorted by name.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        Value::Struct(members) => {
            let mut members: Vec<_> = members.iter().map(|(k, v)| (k.clone(), sorted(v))).collect();
            members.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Struct(members.into_iter().collect())
        }
        other => other.clone(),
    }
}

/// Both directions for one type: any value in, and a generated `T` out and back.
fn both<T: Serialize + DeserializeOwned + Any + Debug>(
    u: &mut Unstructured,
    make: impl FnOnce(&mut Unstructured) -> arbitrary::Result<T>,
) -> arbitrary::Result<()> {
    stable::<T>(gen::value(u, 3)?);
    let t = make(u)?;
    // Only a u64 beyond i64::MAX has no value.
    if let Ok(value) = to_value_ref(&t) {
        comes_back(&t, value);
    }
    Ok(())
}

fn any<T: for<'a> Arbitrary<'a>>(u: &mut Unstructured) -> arbitrary::Result<T> {
    u.arbitrary()
}

fn conversions(u: &mut Unstructured) -> arbitrary::Result<()> {
    match u.int_in_range(0..=17)? {
        0 => both::<i64>(u, gen::int),
        1 => both::<i32>(u, any),
        2 => both::<u8>(u, any),
        3 => both::<u64>(u, any),
        4 => both::<f64>(u, gen::double),
        5 => both::<bool>(u, any),
        6 => both::<String>(u, gen::string),
        7 => both::<char>(u, any),
        8 => both::<DateTime>(u, gen::datetime),
        9 => both::<Bytes>(u, |u| gen::bytes(u).map(Bytes)),
        10 => both::<Option<i64>>(u, any),
        11 => both::<Vec<String>>(u, any),
        12 => both::<HashMap<String, i64>>(u, any),
        13 => both::<(i64, String)>(u, any),
        14 => both::<(bool, f64, Option<String>)>(u, any),
        15 => both::<Record>(u, record),
        16 => both::<Shape>(u, shape),
        _ => both::<Vec<Option<DateTime>>>(u, |u| {
            (0..u.int_in_range(0..=3)?)
                .map(|_| Ok(u.arbitrary::<bool>()?.then_some(gen::datetime(u)?)))
                .collect()
        }),
    }
}

/// `DateTime::parse` and `base64_decode` on arbitrary text.
fn texts(u: &mut Unstructured) -> arbitrary::Result<()> {
    let text: &str = u.arbitrary()?;
    if let Ok(d) = DateTime::parse(text) {
        assert_eq!(DateTime::parse(&d.to_iso8601()), Ok(d), "{text:?}");
        assert_eq!(DateTime::parse(&d.to_string()), Ok(d.whole_seconds()));
    }
    if let Ok(bytes) = base64_decode(text) {
        let canonical = base64::engine::general_purpose::STANDARD.encode(&bytes);
        assert_eq!(base64_decode(&canonical), Ok(bytes), "{text:?}");
    }
    Ok(())
}

/// Every typed method echoes its arguments as an array, so its answer, passed
/// back as the parameters, must be answered with itself.
fn dispatcher() -> &'static Dispatcher {
    static DISPATCHER: OnceLock<Dispatcher> = OnceLock::new();
    DISPATCHER.get_or_init(|| {
        let mut t = MethodTable::new();
        t.register("i64", "", |a: i64| (a,));
        t.register("i32", "", |a: i32| (a,));
        t.register("u8", "", |a: u8| (a,));
        t.register("u64", "", |a: u64| (a,));
        t.register("f64", "", |a: f64| (a,));
        t.register("char", "", |a: char| (a,));
        t.register("datetime", "", |a: DateTime| (a,));
        t.register("bytes", "", |a: Bytes| (a,));
        t.register("map", "", |a: HashMap<String, i64>| (a,));
        t.register("record", "", |a: Record| (a,));
        t.register("shape", "", |a: Shape| (a,));
        t.register("pair", "", |a: i64, b: String| (a, b));
        t.register("optional", "", |a: bool, b: Option<String>| (a, b));
        t.register("context", "", |_: Context, a: Vec<String>| (a,));
        t.register("rest", "", |a: String, rest: Rest<f64>| {
            std::iter::once(Value::from(a))
                .chain(rest.0.into_iter().map(Value::from))
                .collect::<Vec<Value>>()
        });
        Dispatcher::new(t)
    })
}

fn calls(u: &mut Unstructured) -> arbitrary::Result<()> {
    let d = dispatcher();
    let names: Vec<&str> = d.table().method_names().collect();
    let name = *u.choose(&names)?;
    let params = gen::values(u, 2)?;
    let ctx = Context::default();
    let Ok(Value::Array(answer)) = ready(d.call(&ctx, name, params.clone())) else {
        return Ok(());
    };
    if name.starts_with("system.") || name == "rpc.discover" {
        return Ok(());
    }
    let again = ready(d.call(&ctx, name, answer.clone()))
        .unwrap_or_else(|f| panic!("{name}{params:?} answered {answer:?}, which fails: {f}"));
    let mut want = Value::Array(answer.clone());
    let mut got = again.clone();
    if name == "map" {
        // A HashMap keeps no order: its members come back in any order.
        want = members_sorted(want);
        got = members_sorted(got);
    }
    assert!(
        mapping::same(&got, &want),
        "{name}{params:?} answered {answer:?}, then {again:?}"
    );
    Ok(())
}

/// `value` with every struct's members sorted by name.
fn members_sorted(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(members_sorted).collect()),
        Value::Struct(map) => {
            let mut members: Vec<(String, Value)> =
                map.into_iter().map(|(k, v)| (k, members_sorted(v))).collect();
            members.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Struct(members.into_iter().collect())
        }
        other => other,
    }
}
