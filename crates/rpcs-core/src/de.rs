//! Serde deserialization out of [`Value`], and `Deserialize` for the value types.

use crate::ser::{Bytes, ConvertError, DATETIME_TOKEN};
use crate::value::{DateTime, Map, Value};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::Deserialize;
use std::any::Any;
use std::fmt;

/// Converts a [`Value`] into any deserializable Rust type.
///
/// A `Value` target gets the value untouched; an `f64` target accepts integers;
/// a [`DateTime`] or [`Bytes`] target also accepts its string form
/// (ISO 8601, base64), which is how JSON carries them.
pub fn from_value<T: DeserializeOwned + Any>(value: Value) -> Result<T, ConvertError> {
    let mut slot = Some(value);
    if let Some(same) = (&mut slot as &mut dyn Any).downcast_mut::<Option<T>>() {
        if let Some(v) = same.take() {
            return Ok(v);
        }
    }
    match slot {
        Some(value) => T::deserialize(value),
        None => Err(ConvertError("value already taken".into())),
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom(format!("integer {v} does not fit in 64 bits")))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Double(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::with_capacity(access.size_hint().unwrap_or(0).min(4096));
        while let Some(key) = access.next_key::<String>()? {
            if map.is_empty() && key == DATETIME_TOKEN {
                let text: String = access.next_value()?;
                return DateTime::parse(&text)
                    .map(Value::DateTime)
                    .map_err(de::Error::custom);
            }
            let value = access.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Struct(map))
    }
}

impl<'de> Deserialize<'de> for DateTime {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<DateTime, D::Error> {
        d.deserialize_newtype_struct(DATETIME_TOKEN, DateTimeVisitor)
    }
}

struct DateTimeVisitor;

impl<'de> Visitor<'de> for DateTimeVisitor {
    type Value = DateTime;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a dateTime.iso8601 value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<DateTime, E> {
        DateTime::parse(v).map_err(E::custom)
    }
    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<DateTime, D::Error> {
        d.deserialize_str(self)
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut access: A) -> Result<DateTime, A::Error> {
        match access.next_key::<String>()? {
            Some(key) if key == DATETIME_TOKEN => {
                let text: String = access.next_value()?;
                self.visit_str(&text)
            }
            _ => Err(de::Error::custom("expected a dateTime.iso8601 value")),
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Bytes;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes or a base64 string")
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes(v.to_vec()))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
        crate::base64_decode(v).map(Bytes).map_err(E::custom)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
        let mut out = Vec::new();
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(Bytes(out))
    }
}

fn invalid_type(value: &Value, exp: &dyn de::Expected) -> ConvertError {
    let unexp = match value {
        Value::Nil => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Int(i) => de::Unexpected::Signed(*i),
        Value::Double(d) => de::Unexpected::Float(*d),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Bytes(b) => de::Unexpected::Bytes(b),
        Value::DateTime(_) => de::Unexpected::Other("dateTime.iso8601"),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Struct(_) => de::Unexpected::Map,
    };
    de::Error::invalid_type(unexp, exp)
}

impl<'de> de::Deserializer<'de> for Value {
    type Error = ConvertError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConvertError> {
        match self {
            Value::Nil => v.visit_unit(),
            Value::Bool(b) => v.visit_bool(b),
            Value::Int(i) => v.visit_i64(i),
            Value::Double(d) => v.visit_f64(d),
            Value::String(s) => v.visit_string(s),
            Value::Bytes(b) => v.visit_byte_buf(b),
            Value::DateTime(d) => v.visit_map(DateTimeAccess(Some(d))),
            Value::Array(items) => {
                let total = items.len();
                let mut seq = SeqAccess {
                    iter: items.into_iter(),
                };
                let value = v.visit_seq(&mut seq)?;
                // A tuple takes only its own elements; more is a wrong value,
                // not something to drop silently.
                match seq.iter.len() {
                    0 => Ok(value),
                    left => Err(ConvertError(format!(
                        "an array of {total} elements where {} were expected",
                        total - left
                    ))),
                }
            }
            Value::Struct(map) => v.visit_map(MapAccess {
                iter: map.into_iter(),
                value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConvertError> {
        match self {
            Value::Nil => v.visit_none(),
            other => v.visit_some(other),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, ConvertError> {
        match self {
            Value::DateTime(d) if name == DATETIME_TOKEN => v.visit_string(d.to_iso8601()),
            Value::String(s) if name == DATETIME_TOKEN => v.visit_string(s),
            other if name == DATETIME_TOKEN => Err(invalid_type(&other, &v)),
            other => v.visit_newtype_struct(other),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConvertError> {
        match self {
            Value::Nil => v.visit_unit(),
            other => Err(invalid_type(&other, &v)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ConvertError> {
        match self {
            Value::String(s) => v.visit_enum(s.into_deserializer()),
            Value::Struct(map) if map.len() == 1 => {
                let (variant, content) = map.into_iter().next().expect("one member");
                v.visit_enum(EnumAccess { variant, content })
            }
            other => Err(invalid_type(&other, &v)),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConvertError> {
        match self {
            // JSON carries non-finite doubles as these strings.
            Value::String(s) => match crate::json::non_finite(&s) {
                Some(d) => v.visit_f64(d),
                None => Value::String(s).deserialize_any(v),
            },
            other => other.deserialize_any(v),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConvertError> {
        self.deserialize_f64(v)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 char str string
        bytes byte_buf unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

impl IntoDeserializer<'_, ConvertError> for Value {
    type Deserializer = Value;
    fn into_deserializer(self) -> Value {
        self
    }
}

struct SeqAccess {
    iter: std::vec::IntoIter<Value>,
}

impl<'de> de::SeqAccess<'de> for SeqAccess {
    type Error = ConvertError;
    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ConvertError> {
        self.iter.next().map(|v| seed.deserialize(v)).transpose()
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct MapAccess {
    iter: indexmap::map::IntoIter<String, Value>,
    value: Option<Value>,
}

impl<'de> de::MapAccess<'de> for MapAccess {
    type Error = ConvertError;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ConvertError> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(Value::String(k)).map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ConvertError> {
        let value = self
            .value
            .take()
            .ok_or_else(|| ConvertError("map value without a key".into()))?;
        seed.deserialize(value)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// Presents a date-time to a generic visitor as the one-entry marker map that
/// [`ValueVisitor`] turns back into a date-time.
struct DateTimeAccess(Option<DateTime>);

impl<'de> de::MapAccess<'de> for DateTimeAccess {
    type Error = ConvertError;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ConvertError> {
        if self.0.is_none() {
            return Ok(None);
        }
        seed.deserialize(Value::String(DATETIME_TOKEN.to_owned()))
            .map(Some)
    }
    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ConvertError> {
        let d = self
            .0
            .take()
            .ok_or_else(|| ConvertError("date-time read twice".into()))?;
        seed.deserialize(Value::String(d.to_iso8601()))
    }
}

struct EnumAccess {
    variant: String,
    content: Value,
}

impl<'de> de::EnumAccess<'de> for EnumAccess {
    type Error = ConvertError;
    type Variant = Value;
    fn variant_seed<V: de::DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Value), ConvertError> {
        let variant = seed.deserialize(Value::String(self.variant))?;
        Ok((variant, self.content))
    }
}

impl<'de> de::VariantAccess<'de> for Value {
    type Error = ConvertError;
    fn unit_variant(self) -> Result<(), ConvertError> {
        match self {
            Value::Nil => Ok(()),
            other => Err(invalid_type(&other, &"a unit variant")),
        }
    }
    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, ConvertError> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, ConvertError> {
        de::Deserializer::deserialize_seq(self, v)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ConvertError> {
        de::Deserializer::deserialize_map(self, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ser::{to_value, to_value_ref};
    use serde::Serialize;
    use std::collections::BTreeMap;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Person {
        name: String,
        age: u8,
        tags: Vec<String>,
        nick: Option<String>,
        born: DateTime,
        photo: Bytes,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Dot,
        Circle(f64),
        Rect { w: i32, h: i32 },
        Pair(i32, i32),
    }

    fn person() -> Person {
        Person {
            name: "Arthur".into(),
            age: 42,
            tags: vec!["a".into(), "b".into()],
            nick: None,
            born: DateTime::new(1979, 10, 12, 1, 2, 3).unwrap(),
            photo: Bytes(vec![0, 255, 7]),
        }
    }

    #[test]
    fn struct_round_trip_keeps_field_order_and_types() {
        let v = to_value(person()).unwrap();
        let map = v.as_struct().unwrap();
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(keys, ["name", "age", "tags", "nick", "born", "photo"]);
        assert_eq!(map["born"], Value::DateTime(person().born));
        assert_eq!(map["photo"], Value::Bytes(vec![0, 255, 7]));
        assert_eq!(map["nick"], Value::Nil);
        assert_eq!(from_value::<Person>(v).unwrap(), person());
    }

    #[test]
    fn enums_round_trip() {
        for shape in [
            Shape::Dot,
            Shape::Circle(1.5),
            Shape::Rect { w: 2, h: 3 },
            Shape::Pair(4, 5),
        ] {
            let v = to_value_ref(&shape).unwrap();
            assert_eq!(from_value::<Shape>(v).unwrap(), shape);
        }
        assert_eq!(to_value(Shape::Dot).unwrap(), Value::String("Dot".into()));
    }

    #[test]
    fn value_passes_through_and_round_trips_via_serde() {
        let mut m = Map::new();
        m.insert("z".into(), Value::DateTime(person().born));
        m.insert("a".into(), Value::Bytes(vec![1]));
        let v = Value::Array(vec![Value::Struct(m), Value::Nil, Value::Double(2.5)]);
        assert_eq!(from_value::<Value>(v.clone()).unwrap(), v);
        assert_eq!(to_value(v.clone()).unwrap(), v);
        // Through the generic serde path too (not the pass-through).
        let again = Value::deserialize(to_value_ref(&v).unwrap()).unwrap();
        assert_eq!(again, v);
    }

    #[test]
    fn conversions_and_refusals() {
        assert_eq!(from_value::<f64>(Value::Int(3)).unwrap(), 3.0);
        assert!(from_value::<i64>(Value::String("3".into())).is_err());
        assert!(from_value::<u8>(Value::Int(300)).is_err());
        assert!(to_value(u64::MAX).is_err());
        assert_eq!(from_value::<Option<i32>>(Value::Nil).unwrap(), None::<i32>);
        // Found by fuzzing: a tuple took the first elements of a longer array.
        let three = Value::Array(vec![Value::Int(1), Value::Int(2), Value::Int(3)]);
        assert!(from_value::<(i64, i64)>(three.clone()).is_err());
        assert_eq!(from_value::<(i64, i64, i64)>(three).unwrap(), (1, 2, 3));
        let dt: DateTime = from_value(Value::String("2026-11-21T05:17:00".into())).unwrap();
        assert_eq!(dt.hour, 5);
        let b: Bytes = from_value(Value::String("AP8H".into())).unwrap();
        assert_eq!(b.0, vec![0, 255, 7]);
        let mut keyed = BTreeMap::new();
        keyed.insert(1, "x");
        assert!(to_value(keyed).is_ok());
        let mut bad = BTreeMap::new();
        bad.insert(vec![1], "x");
        assert!(to_value(bad).is_err());
    }
}
