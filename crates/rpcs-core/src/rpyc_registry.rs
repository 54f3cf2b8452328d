//! RPyC's registry protocol: requests `("RPYC", COMMAND, args)` and their
//! answers, in [`brine`](crate::brine).
//!
//! As RPyC's own registry server reads them: the magic is the string `"RPYC"`,
//! the command is matched without regard to case, and a request that is not
//! exactly one of the four commands with its arguments is malformed (the
//! server then answers nothing). Service names are upper-cased, as RPyC does.
//! Answers are cut to what RPyC's clients read in one datagram.

use crate::brine::{self, Brine, BrineError};
use std::fmt;

/// The registry's port, UDP and TCP alike.
pub const DEFAULT_PORT: u16 = 18811;

/// The most bytes RPyC's clients read for a `QUERY` answer (and for any
/// request the server reads).
pub const MAX_DATAGRAM: usize = 1500;

/// The most bytes RPyC's client reads for a `LIST` answer.
pub const MAX_LIST_ANSWER: usize = 10 * MAX_DATAGRAM;

/// One registry request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A server announces (or keeps alive) the names it serves on `port` of the
    /// sender's address.
    Register {
        /// Service names, upper-cased.
        aliases: Vec<String>,
        /// The server's port.
        port: u16,
    },
    /// A server leaves: every name on `port` of the sender's address.
    Unregister {
        /// The server's port.
        port: u16,
    },
    /// Who serves `name` (upper-cased)?
    Query {
        /// The service name.
        name: String,
    },
    /// Which names are registered, optionally only those on one host?
    List {
        /// Only names served from this address.
        filter_host: Option<String>,
    },
}

/// Why a datagram is not a registry request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// Not brine.
    Brine(BrineError),
    /// Brine, but not `("RPYC", COMMAND, args)`.
    NotARequest,
    /// A command the registry does not have.
    UnknownCommand(String),
    /// The command's arguments are not what it takes.
    BadArguments(&'static str),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Brine(e) => write!(f, "{e}"),
            RequestError::NotARequest => write!(f, "not an (\"RPYC\", command, args) tuple"),
            RequestError::UnknownCommand(c) => write!(f, "unknown registry command {c:?}"),
            RequestError::BadArguments(c) => write!(f, "bad arguments for {c}"),
        }
    }
}

impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RequestError::Brine(e) => Some(e),
            _ => None,
        }
    }
}

/// Reads one request.
pub fn parse_request(bytes: &[u8]) -> Result<Request, RequestError> {
    let value = brine::decode(bytes).map_err(RequestError::Brine)?;
    let Some([magic, command, args]) = value
        .as_tuple()
        .and_then(|t| <&[Brine; 3]>::try_from(t).ok())
    else {
        return Err(RequestError::NotARequest);
    };
    if magic.as_str() != Some("RPYC") {
        return Err(RequestError::NotARequest);
    }
    let command = command.as_str().ok_or(RequestError::NotARequest)?;
    let args = args.as_tuple().ok_or(RequestError::NotARequest)?;
    match command.to_ascii_uppercase().as_str() {
        "REGISTER" => register(args),
        "UNREGISTER" => match args {
            [port] => Ok(Request::Unregister {
                port: port_of(port).ok_or(RequestError::BadArguments("UNREGISTER"))?,
            }),
            _ => Err(RequestError::BadArguments("UNREGISTER")),
        },
        "QUERY" => match args {
            [Brine::Str(name)] => Ok(Request::Query {
                name: name.to_uppercase(),
            }),
            _ => Err(RequestError::BadArguments("QUERY")),
        },
        "LIST" => list(args),
        _ => Err(RequestError::UnknownCommand(command.to_owned())),
    }
}

fn register(args: &[Brine]) -> Result<Request, RequestError> {
    let bad = RequestError::BadArguments("REGISTER");
    let [Brine::Tuple(names), port] = args else {
        return Err(bad);
    };
    let aliases = names
        .iter()
        .map(|n| n.as_str().map(str::to_uppercase))
        .collect::<Option<Vec<_>>>()
        .ok_or(bad.clone())?;
    let port = port_of(port).ok_or(bad)?;
    Ok(Request::Register { aliases, port })
}

fn list(args: &[Brine]) -> Result<Request, RequestError> {
    let bad = RequestError::BadArguments("LIST");
    let [Brine::Tuple(filter)] = args else {
        return Err(bad);
    };
    match filter.as_slice() {
        [Brine::None] => Ok(Request::List { filter_host: None }),
        [Brine::Str(host)] if host.is_empty() => Ok(Request::List { filter_host: None }),
        [Brine::Str(host)] => Ok(Request::List {
            filter_host: Some(host.clone()),
        }),
        _ => Err(bad),
    }
}

fn port_of(value: &Brine) -> Option<u16> {
    let port = u16::try_from(value.as_int()?).ok()?;
    (port != 0).then_some(port)
}

/// Writes a request as RPyC's clients do.
pub fn encode_request(request: &Request) -> Vec<u8> {
    let (command, args) = match request {
        Request::Register { aliases, port } => (
            "REGISTER",
            vec![
                Brine::Tuple(aliases.iter().map(Brine::str).collect()),
                Brine::Int((*port).into()),
            ],
        ),
        Request::Unregister { port } => ("UNREGISTER", vec![Brine::Int((*port).into())]),
        Request::Query { name } => ("QUERY", vec![Brine::str(name.as_str())]),
        Request::List { filter_host } => {
            let host = filter_host.as_deref().map_or(Brine::None, Brine::str);
            ("LIST", vec![Brine::Tuple(vec![host])])
        }
    };
    brine::encode(&Brine::Tuple(vec![
        Brine::str("RPYC"),
        Brine::str(command),
        Brine::Tuple(args),
    ]))
}

/// The answer to `REGISTER` and `UNREGISTER`.
pub fn ok_answer() -> Vec<u8> {
    brine::encode(&Brine::str("OK"))
}

/// The answer to `QUERY`: `(ip, port)` pairs in the order given (RPyC's is
/// oldest first), as many as fit in [`MAX_DATAGRAM`] bytes.
pub fn query_answer(servers: &[(String, u16)]) -> Vec<u8> {
    let items = servers
        .iter()
        .map(|(ip, port)| Brine::Tuple(vec![Brine::str(ip.as_str()), Brine::Int((*port).into())]));
    fitting_tuple(items, MAX_DATAGRAM)
}

/// The answer to `LIST`: `None` when listing is off, else the names, as many
/// as fit in [`MAX_LIST_ANSWER`] bytes.
pub fn list_answer(names: Option<&[String]>) -> Vec<u8> {
    match names {
        None => brine::encode(&Brine::None),
        Some(names) => fitting_tuple(names.iter().map(Brine::str), MAX_LIST_ANSWER),
    }
}

/// A tuple of the first `items` whose encoding stays within `limit` bytes
/// (the tuple's own header, at most five bytes, included).
fn fitting_tuple(items: impl Iterator<Item = Brine>, limit: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut size = 5;
    for item in items {
        let n = brine::encode(&item).len();
        if size + n > limit {
            break;
        }
        size += n;
        kept.push(item);
    }
    brine::encode(&Brine::Tuple(kept))
}

/// Reads a `QUERY` answer: the `(ip, port)` pairs (an unreadable answer is an
/// error, a malformed pair is skipped).
pub fn parse_query_answer(bytes: &[u8]) -> Result<Vec<(String, u16)>, RequestError> {
    let value = brine::decode(bytes).map_err(RequestError::Brine)?;
    let pairs = value.as_tuple().ok_or(RequestError::NotARequest)?;
    Ok(pairs
        .iter()
        .filter_map(|pair| match pair.as_tuple()? {
            [Brine::Str(ip), port] => Some((ip.clone(), port_of(port)?)),
            _ => None,
        })
        .collect())
}

/// Reads a `LIST` answer: `None` when the registry does not allow listing.
pub fn parse_list_answer(bytes: &[u8]) -> Result<Option<Vec<String>>, RequestError> {
    match brine::decode(bytes).map_err(RequestError::Brine)? {
        Brine::None => Ok(None),
        Brine::Tuple(names) => Ok(Some(
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect(),
        )),
        _ => Err(RequestError::NotARequest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_round_trips() {
        for request in [
            Request::Register {
                aliases: vec!["SLAVE".into(), "CLASSIC".into()],
                port: 18812,
            },
            Request::Unregister { port: 18812 },
            Request::Query {
                name: "SLAVE".into(),
            },
            Request::List { filter_host: None },
            Request::List {
                filter_host: Some("10.0.0.1".into()),
            },
        ] {
            assert_eq!(parse_request(&encode_request(&request)), Ok(request));
        }
    }

    #[test]
    fn names_are_upper_cased_and_commands_match_any_case() {
        let bytes = brine::encode(&Brine::Tuple(vec![
            Brine::str("RPYC"),
            Brine::str("query"),
            Brine::Tuple(vec![Brine::str("slave")]),
        ]));
        assert_eq!(
            parse_request(&bytes),
            Ok(Request::Query {
                name: "SLAVE".into()
            })
        );
    }

    #[test]
    fn a_wrong_magic_or_shape_is_not_a_request() {
        let with = |magic: Brine, args: Brine| {
            brine::encode(&Brine::Tuple(vec![magic, Brine::str("QUERY"), args]))
        };
        let one = Brine::Tuple(vec![Brine::str("X")]);
        assert_eq!(
            parse_request(&with(Brine::Bytes(b"RPYC".to_vec()), one.clone())),
            Err(RequestError::NotARequest)
        );
        assert_eq!(
            parse_request(&with(Brine::str("RPYC"), Brine::Tuple(vec![]))),
            Err(RequestError::BadArguments("QUERY"))
        );
        for port in [0i128, -1, 65536] {
            let bytes = brine::encode(&Brine::Tuple(vec![
                Brine::str("RPYC"),
                Brine::str("REGISTER"),
                Brine::Tuple(vec![Brine::Tuple(vec![Brine::str("A")]), Brine::Int(port)]),
            ]));
            assert_eq!(
                parse_request(&bytes),
                Err(RequestError::BadArguments("REGISTER")),
                "port {port}"
            );
        }
        assert_eq!(
            parse_request(&brine::encode(&Brine::Tuple(vec![
                Brine::str("RPYC"),
                Brine::str("SHUTDOWN"),
                Brine::Tuple(vec![]),
            ]))),
            Err(RequestError::UnknownCommand("SHUTDOWN".into()))
        );
    }

    #[test]
    fn a_query_answer_fits_one_datagram() {
        let servers: Vec<_> = (0..500u16)
            .map(|i| (format!("10.0.{}.{}", i / 256, i % 256), 18812))
            .collect();
        let answer = query_answer(&servers);
        assert!(answer.len() <= MAX_DATAGRAM, "{} bytes", answer.len());
        let back = parse_query_answer(&answer).unwrap();
        assert!(back.len() > 40, "only {} kept", back.len());
        assert_eq!(back[..], servers[..back.len()]);
    }

    #[test]
    fn list_answers_are_none_when_listing_is_off() {
        assert_eq!(parse_list_answer(&list_answer(None)), Ok(None));
        let names = vec!["A".to_owned(), "B".to_owned()];
        assert_eq!(
            parse_list_answer(&list_answer(Some(&names))),
            Ok(Some(names))
        );
    }
}
