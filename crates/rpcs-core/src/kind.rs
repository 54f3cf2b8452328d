//! Type descriptions for method signatures, derived from Rust parameter types.

use crate::ser::Bytes;
use crate::value::{DateTime, Value};
use std::collections::{BTreeMap, HashMap};

/// The wire type of a parameter or result, as introspection reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// No value (a method that returns nothing).
    Nil,
    /// A boolean.
    Bool,
    /// An integer.
    Int,
    /// A double.
    Double,
    /// A string.
    String,
    /// Raw bytes.
    Bytes,
    /// A date-time.
    DateTime,
    /// An array of elements of the given kind.
    Array(Box<Kind>),
    /// A struct; for maps, members of the given kind.
    Struct(Box<Kind>),
    /// A value that may also be nil.
    Optional(Box<Kind>),
    /// Any value.
    Any,
}

impl Kind {
    /// The XML-RPC introspection name (`int`, `string`, `dateTime.iso8601`, ...);
    /// `any` where every type is accepted.
    pub fn xmlrpc_name(&self) -> &'static str {
        match self {
            Kind::Nil => "nil",
            Kind::Bool => "boolean",
            Kind::Int => "int",
            Kind::Double => "double",
            Kind::String => "string",
            Kind::Bytes => "base64",
            Kind::DateTime => "dateTime.iso8601",
            Kind::Array(_) => "array",
            Kind::Struct(_) => "struct",
            Kind::Optional(inner) => inner.xmlrpc_name(),
            Kind::Any => "any",
        }
    }
}

/// A Rust type that can appear as a parameter or result, with the wire type it maps to.
///
/// Implemented for the primitive types, strings, [`Value`], [`Bytes`], [`DateTime`],
/// sequences, string-keyed maps and tuples. For your own serde types, implement it with
/// [`rpc_type!`](crate::rpc_type), e.g. `rpc_type!(Person => Struct)`.
pub trait RpcType {
    /// The wire type.
    fn kind() -> Kind;
}

/// Implements [`RpcType`] for your own types: `rpc_type!(Person => Struct, Color => String)`.
///
/// The right-hand side is one of the [`Kind`] names without payload (`Struct` means a
/// struct of any members, `Array` an array of any elements).
#[macro_export]
macro_rules! rpc_type {
    ($($t:ty => $kind:ident),* $(,)?) => {$(
        impl $crate::RpcType for $t {
            fn kind() -> $crate::Kind { $crate::rpc_type!(@kind $kind) }
        }
    )*};
    (@kind Struct) => { $crate::Kind::Struct(::std::boxed::Box::new($crate::Kind::Any)) };
    (@kind Array) => { $crate::Kind::Array(::std::boxed::Box::new($crate::Kind::Any)) };
    (@kind $kind:ident) => { $crate::Kind::$kind };
}

macro_rules! kinds {
    ($($kind:ident: $($t:ty),*;)*) => {$($(
        impl RpcType for $t {
            fn kind() -> Kind { Kind::$kind }
        }
    )*)*};
}

kinds! {
    Nil: ();
    Bool: bool;
    Int: i8, i16, i32, i64, u8, u16, u32, u64, isize, usize;
    Double: f32, f64;
    String: String, &'static str, char, Box<str>, std::sync::Arc<str>;
    Bytes: Bytes;
    DateTime: DateTime;
    Any: Value;
}

impl<T: RpcType> RpcType for Option<T> {
    fn kind() -> Kind {
        Kind::Optional(Box::new(T::kind()))
    }
}

impl<T: RpcType> RpcType for Vec<T> {
    fn kind() -> Kind {
        Kind::Array(Box::new(T::kind()))
    }
}

impl<T: RpcType> RpcType for Box<T> {
    fn kind() -> Kind {
        T::kind()
    }
}

impl<T: RpcType, S> RpcType for HashMap<String, T, S> {
    fn kind() -> Kind {
        Kind::Struct(Box::new(T::kind()))
    }
}

impl<T: RpcType> RpcType for BTreeMap<String, T> {
    fn kind() -> Kind {
        Kind::Struct(Box::new(T::kind()))
    }
}

impl<T: RpcType, S> RpcType for indexmap::IndexMap<String, T, S> {
    fn kind() -> Kind {
        Kind::Struct(Box::new(T::kind()))
    }
}

macro_rules! tuple_kinds {
    ($($t:ident),+) => {
        impl<$($t: RpcType),+> RpcType for ($($t,)+) {
            fn kind() -> Kind { Kind::Array(Box::new(Kind::Any)) }
        }
    };
}
tuple_kinds!(A);
tuple_kinds!(A, B);
tuple_kinds!(A, B, C);
tuple_kinds!(A, B, C, D);
tuple_kinds!(A, B, C, D, E);
tuple_kinds!(A, B, C, D, E, F);
