//! Faults: the error a method call answers with, on every protocol.

use crate::value::Value;
use std::fmt;

/// An error answer to a call: a numeric code, a message and optional data.
///
/// Codes follow the XML-RPC fault interoperability convention, which JSON-RPC 2.0
/// adopted unchanged, so the same number means the same thing on every protocol.
/// Application errors use [`Fault::APPLICATION`] (1, as Python's servers do) and a
/// message that starts with a stable error name, e.g. `StackIndexError: pop from empty stack`,
/// so clients can map it to an exception class.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// The numeric code.
    pub code: i32,
    /// A human-readable message; for application errors it starts with the error name.
    pub message: String,
    /// Extra structured data, where the protocol can carry it.
    pub data: Option<Value>,
}

impl Fault {
    /// The request was not well-formed (bad XML, bad JSON, bad msgpack).
    pub const PARSE_ERROR: i32 = -32700;
    /// The request was well-formed but not a valid call.
    pub const INVALID_REQUEST: i32 = -32600;
    /// No method of that name.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// Wrong number or types of parameters.
    pub const INVALID_PARAMS: i32 = -32602;
    /// The server failed while handling the call.
    pub const INTERNAL_ERROR: i32 = -32603;
    /// A limit of the server was reached (size, count, time).
    pub const LIMIT_EXCEEDED: i32 = -32000;
    /// The call needs an authenticated caller and this one is not
    /// (message `NOAUTH: ...`, as Redis answers).
    pub const NOT_AUTHENTICATED: i32 = -32001;
    /// The caller's token does not allow the call (message `NOPERM: ...`).
    pub const FORBIDDEN: i32 = -32003;
    /// An error raised by the method itself.
    pub const APPLICATION: i32 = 1;

    /// A fault with a code and message.
    pub fn new(code: i32, message: impl Into<String>) -> Fault {
        Fault {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// An application fault whose message starts with an error name, as
    /// `Name: detail`; clients map the name to an exception class.
    pub fn named(name: &str, detail: impl fmt::Display) -> Fault {
        Fault::new(Fault::APPLICATION, format!("{name}: {detail}"))
    }

    /// The error name of a [`Fault::named`] fault: the message up to the first `:`,
    /// when that is a plain identifier.
    pub fn name(&self) -> Option<&str> {
        let (name, _) = self.message.split_once(':')?;
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        plain.then_some(name)
    }

    /// The fault for a call from a caller who has not authenticated.
    pub fn not_authenticated() -> Fault {
        Fault::new(
            Fault::NOT_AUTHENTICATED,
            "NOAUTH: authentication required; send a token's secret first",
        )
    }

    /// The fault for a call the caller's token does not allow.
    pub fn forbidden(detail: impl fmt::Display) -> Fault {
        Fault::new(Fault::FORBIDDEN, format!("NOPERM: {detail}"))
    }

    /// A parse-error fault.
    pub fn parse_error(message: impl Into<String>) -> Fault {
        Fault::new(Fault::PARSE_ERROR, message)
    }

    /// An invalid-request fault.
    pub fn invalid_request(message: impl Into<String>) -> Fault {
        Fault::new(Fault::INVALID_REQUEST, message)
    }

    /// A method-not-found fault naming the method.
    pub fn method_not_found(method: &str) -> Fault {
        Fault::new(
            Fault::METHOD_NOT_FOUND,
            format!("method {method:?} is not supported"),
        )
    }

    /// An invalid-params fault.
    pub fn invalid_params(message: impl Into<String>) -> Fault {
        Fault::new(Fault::INVALID_PARAMS, message)
    }

    /// An internal-error fault.
    pub fn internal(message: impl Into<String>) -> Fault {
        Fault::new(Fault::INTERNAL_ERROR, message)
    }

    /// Attaches structured data.
    pub fn with_data(mut self, data: Value) -> Fault {
        self.data = Some(data);
        self
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fault {}: {}", self.code, self.message)
    }
}

impl std::error::Error for Fault {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_faults_expose_their_name() {
        let f = Fault::named("StackIndexError", "pop from empty stack");
        assert_eq!(f.code, 1);
        assert_eq!(f.message, "StackIndexError: pop from empty stack");
        assert_eq!(f.name(), Some("StackIndexError"));
        assert_eq!(Fault::new(1, "no name here").name(), None);
        assert_eq!(Fault::new(1, "two words: x").name(), None);
    }
}
