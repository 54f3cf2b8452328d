//! The XML-RPC codec: requests, responses and faults, in both directions.
//!
//! Reading accepts everything Python's `xmlrpc` accepts (`<i1>`, `<i2>`, `<i8>`,
//! `<biginteger>`, `<nil/>`, bare-text strings, CDATA, base64 split over lines) and
//! refuses what would be unsafe: any DOCTYPE (so no entity can be defined or expanded),
//! input over the size limit, and nesting deeper than the depth limit. Writing uses
//! `<int>` for 32-bit integers and `<i8>` only beyond, as Python does.

use crate::fault::Fault;
use crate::value::{DateTime, Map, Value};
use crate::xml::{Token, Tokenizer};
use base64::Engine as _;
use std::borrow::Cow;
use std::fmt::Write as _;

/// A decoded call: the method name and its positional parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The method name.
    pub method: String,
    /// The positional parameters.
    pub params: Vec<Value>,
}

/// Bounds applied while decoding.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest document accepted, in bytes.
    pub max_size: usize,
    /// The deepest nesting of arrays and structs accepted.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_size: 16 << 20,
            max_depth: 64,
        }
    }
}

/// Why a document could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not well-formed XML (or not UTF-8).
    #[error("malformed XML: {0}")]
    Syntax(String),
    /// Well-formed XML that is not a valid XML-RPC document.
    #[error("invalid XML-RPC: {0}")]
    Invalid(String),
    /// A DOCTYPE was present; entity definitions are never processed.
    #[error("DOCTYPE declarations are not accepted")]
    Doctype,
    /// The document is larger than the size limit.
    #[error("document of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// The document's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Arrays and structs are nested deeper than the depth limit.
    #[error("values are nested deeper than the limit of {0}")]
    TooDeep(usize),
}

impl From<DecodeError> for Fault {
    fn from(e: DecodeError) -> Fault {
        match e {
            DecodeError::Invalid(_) => Fault::invalid_request(e.to_string()),
            DecodeError::TooLarge { .. } | DecodeError::TooDeep(_) => {
                Fault::new(Fault::LIMIT_EXCEEDED, e.to_string())
            }
            DecodeError::Syntax(_) | DecodeError::Doctype => Fault::parse_error(e.to_string()),
        }
    }
}

fn invalid(msg: impl Into<String>) -> DecodeError {
    DecodeError::Invalid(msg.into())
}

fn syntax(e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Syntax(e.to_string())
}

/// Decodes a `<methodCall>`.
pub fn decode_request(xml: &[u8], limits: &Limits) -> Result<Request, DecodeError> {
    check_size(xml, limits)?;
    let xml = to_utf8(xml)?;
    let mut p = Parser::new(&xml, limits);
    p.open_root("methodCall")?;
    p.expect_start("methodName")?;
    let method = p.text_until_end("methodName")?.trim().to_owned();
    if method.is_empty() {
        return Err(invalid("empty methodName"));
    }
    let mut params = Vec::new();
    match p.next_tag()? {
        Token::Start("params") => params = p.param_list()?,
        Token::Empty("params") => {}
        Token::End("methodCall") => return p.finish(Request { method, params }),
        other => return Err(other.unexpected("<params>")),
    }
    p.expect_end("methodCall")?;
    p.finish(Request { method, params })
}

/// Decodes a `<methodResponse>` into the returned value or the fault.
pub fn decode_response(xml: &[u8], limits: &Limits) -> Result<Result<Value, Fault>, DecodeError> {
    check_size(xml, limits)?;
    let xml = to_utf8(xml)?;
    let mut p = Parser::new(&xml, limits);
    p.open_root("methodResponse")?;
    let outcome = match p.next_tag()? {
        Token::Start("params") => {
            let mut params = p.param_list()?;
            if params.len() != 1 {
                return Err(invalid(format!(
                    "a response carries one value, not {}",
                    params.len()
                )));
            }
            Ok(params.pop().unwrap_or_default())
        }
        Token::Start("fault") => {
            let value = p.value_element()?;
            p.expect_end("fault")?;
            Err(fault_from_value(value)?)
        }
        other => return Err(other.unexpected("<params> or <fault>")),
    };
    p.expect_end("methodResponse")?;
    p.finish(outcome)
}

fn fault_from_value(value: Value) -> Result<Fault, DecodeError> {
    let Value::Struct(mut members) = value else {
        return Err(invalid("a fault must be a struct"));
    };
    let code = match members.swap_remove("faultCode") {
        Some(Value::Int(code)) => i32::try_from(code).unwrap_or(Fault::APPLICATION),
        _ => return Err(invalid("a fault needs an integer faultCode")),
    };
    let message = match members.swap_remove("faultString") {
        Some(Value::String(s)) => s,
        _ => return Err(invalid("a fault needs a string faultString")),
    };
    let mut fault = Fault::new(code, message);
    if !members.is_empty() {
        fault.data = Some(Value::Struct(members));
    }
    Ok(fault)
}

impl Token<'_> {
    fn unexpected(&self, wanted: &str) -> DecodeError {
        let found = match self {
            Token::Start(n) | Token::Empty(n) => format!("<{n}>"),
            Token::Text(_) => "text".to_owned(),
            // Wherever the grammar accepts an end tag it is the innermost open
            // element's, so any other end tag is not well-formed XML.
            Token::End(n) => return syntax(format!("end tag </{n}> where {wanted} was expected")),
            // So is a document that ends early.
            Token::Eof => return syntax(format!("document ends where {wanted} was expected")),
        };
        invalid(format!("expected {wanted}, found {found}"))
    }
}

struct Parser<'a> {
    tokens: Tokenizer<'a>,
    depth: usize,
    max_depth: usize,
    in_root: bool,
}

impl<'a> Parser<'a> {
    fn new(xml: &'a str, limits: &Limits) -> Parser<'a> {
        Parser {
            tokens: Tokenizer::new(xml),
            depth: 0,
            max_depth: limits.max_depth,
            in_root: false,
        }
    }

    /// The next token; comments, processing instructions and the XML declaration
    /// are skipped, a DOCTYPE is refused.
    fn raw(&mut self) -> Result<Token<'a>, DecodeError> {
        self.tokens.next_token()
    }

    /// The next tag, skipping whitespace; other text is an error (a syntax
    /// error outside the root element, where XML allows no text at all).
    fn next_tag(&mut self) -> Result<Token<'a>, DecodeError> {
        loop {
            match self.raw()? {
                Token::Text(t) if t.trim().is_empty() => continue,
                Token::Text(_) if !self.in_root => {
                    return Err(syntax("text outside the root element"))
                }
                Token::Text(_) => return Err(invalid("unexpected text between elements")),
                tag => return Ok(tag),
            }
        }
    }

    /// Reads the root element's start tag.
    fn open_root(&mut self, name: &str) -> Result<(), DecodeError> {
        self.expect_start(name)?;
        self.in_root = true;
        Ok(())
    }

    fn expect_start(&mut self, name: &str) -> Result<(), DecodeError> {
        match self.next_tag()? {
            Token::Start(n) if n == name => Ok(()),
            other => Err(other.unexpected(&format!("<{name}>"))),
        }
    }

    fn expect_end(&mut self, name: &str) -> Result<(), DecodeError> {
        match self.next_tag()? {
            Token::End(n) if n == name => Ok(()),
            other => Err(other.unexpected(&format!("</{name}>"))),
        }
    }

    /// Checks that nothing but comments and whitespace follows the root element.
    fn finish<T>(&mut self, result: T) -> Result<T, DecodeError> {
        self.in_root = false;
        match self.next_tag()? {
            Token::Eof => Ok(result),
            _ => Err(syntax("content after the root element")),
        }
    }

    /// All text up to the closing tag `name`; an element inside is an error.
    fn text_until_end(&mut self, name: &str) -> Result<Cow<'a, str>, DecodeError> {
        let mut text = Cow::Borrowed("");
        loop {
            match self.raw()? {
                Token::Text(t) if text.is_empty() => text = t,
                Token::Text(t) => text.to_mut().push_str(&t),
                Token::End(n) if n == name => return Ok(text),
                other => return Err(other.unexpected(&format!("text or </{name}>"))),
            }
        }
    }

    /// `<param><value>...</value></param>` repeated, up to `</params>`.
    fn param_list(&mut self) -> Result<Vec<Value>, DecodeError> {
        let mut params = Vec::new();
        loop {
            match self.next_tag()? {
                Token::Start("param") => {
                    params.push(self.value_element()?);
                    self.expect_end("param")?;
                }
                Token::End("params") => return Ok(params),
                other => return Err(other.unexpected("<param> or </params>")),
            }
        }
    }

    /// A whole `<value>` element (`<value/>` is the empty string).
    fn value_element(&mut self) -> Result<Value, DecodeError> {
        match self.next_tag()? {
            Token::Start("value") => self.value(),
            Token::Empty("value") => Ok(Value::String(String::new())),
            other => Err(other.unexpected("<value>")),
        }
    }

    /// The content of a `<value>` whose start tag was just read, through `</value>`.
    fn value(&mut self) -> Result<Value, DecodeError> {
        let mut text = String::new();
        loop {
            match self.raw()? {
                Token::Text(t) => text.push_str(&t),
                Token::End("value") => return Ok(Value::String(text)),
                Token::Start(n) => {
                    if !text.trim().is_empty() {
                        return Err(invalid("text mixed with a typed value"));
                    }
                    let value = self.typed(n)?;
                    self.expect_end("value")?;
                    return Ok(value);
                }
                Token::Empty(n) => {
                    let value = empty_typed(n)?;
                    self.expect_end("value")?;
                    return Ok(value);
                }
                other => return Err(other.unexpected("a value or </value>")),
            }
        }
    }

    /// A typed value whose start tag `<tag>` was just read, through its end tag.
    fn typed(&mut self, tag: &str) -> Result<Value, DecodeError> {
        let scalar = |p: &mut Self| p.text_until_end(tag);
        Ok(match tag {
            "string" => Value::String(scalar(self)?.into_owned()),
            "int" | "i4" | "i8" | "i1" | "i2" | "biginteger" | "ex:i8" | "ex:i1" | "ex:i2"
            | "ex:biginteger" => Value::Int(parse_int(&scalar(self)?)?),
            "boolean" => Value::Bool(parse_bool(&scalar(self)?)?),
            "double" | "float" | "ex:float" => Value::Double(parse_double(&scalar(self)?)?),
            "dateTime.iso8601" | "ex:dateTime" => Value::DateTime(
                DateTime::parse(&scalar(self)?).map_err(|e| invalid(e.to_string()))?,
            ),
            "base64" => Value::Bytes(
                crate::base64_decode(&scalar(self)?).map_err(|e| invalid(e.to_string()))?,
            ),
            "nil" | "ex:nil" => {
                self.expect_end(tag)?;
                Value::Nil
            }
            "array" => self.nested(Self::array)?,
            "struct" => self.nested(Self::structure)?,
            other => return Err(invalid(format!("unknown value type <{other}>"))),
        })
    }

    fn nested(
        &mut self,
        f: fn(&mut Self) -> Result<Value, DecodeError>,
    ) -> Result<Value, DecodeError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(DecodeError::TooDeep(self.max_depth));
        }
        let value = f(self)?;
        self.depth -= 1;
        Ok(value)
    }

    /// `<data>` values `</data></array>`.
    fn array(&mut self) -> Result<Value, DecodeError> {
        let mut items = Vec::new();
        match self.next_tag()? {
            Token::Start("data") => loop {
                match self.next_tag()? {
                    Token::Start("value") => items.push(self.value()?),
                    Token::Empty("value") => items.push(Value::String(String::new())),
                    Token::End("data") => break,
                    other => return Err(other.unexpected("<value> or </data>")),
                }
            },
            Token::Empty("data") => {}
            Token::End("array") => return Ok(Value::Array(items)),
            other => return Err(other.unexpected("<data>")),
        }
        self.expect_end("array")?;
        Ok(Value::Array(items))
    }

    /// `<member><name>..</name><value>..</value></member>`... `</struct>`.
    fn structure(&mut self) -> Result<Value, DecodeError> {
        let mut members = Map::new();
        loop {
            match self.next_tag()? {
                Token::Start("member") => {
                    self.expect_start("name")?;
                    let name = self.text_until_end("name")?.into_owned();
                    let value = self.value_element()?;
                    self.expect_end("member")?;
                    members.insert(name, value);
                }
                Token::End("struct") => return Ok(Value::Struct(members)),
                other => return Err(other.unexpected("<member> or </struct>")),
            }
        }
    }
}

fn check_size(xml: &[u8], limits: &Limits) -> Result<(), DecodeError> {
    if xml.len() > limits.max_size {
        return Err(DecodeError::TooLarge {
            size: xml.len(),
            limit: limits.max_size,
        });
    }
    Ok(())
}

/// The document as UTF-8. Like Python's parser (expat with Python's codecs), this
/// reads UTF-8, US-ASCII, ISO-8859-1 and every other single-byte encoding a
/// document may declare (windows-1252, ISO-8859-15, KOI8-R, ...), and UTF-16 by
/// its byte-order mark. Multi-byte legacy encodings are refused, as expat does.
fn to_utf8(xml: &[u8]) -> Result<Cow<'_, str>, DecodeError> {
    if let Some(rest) = xml.strip_prefix(b"\xEF\xBB\xBF") {
        return utf8(rest).map(Cow::Borrowed);
    }
    if let Some(units) = utf16_units(xml) {
        let text = char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|_| syntax("invalid UTF-16"))?;
        return Ok(Cow::Owned(text));
    }
    match declared_encoding(xml).as_deref() {
        None | Some("utf-8" | "utf8" | "us-ascii" | "ascii") => utf8(xml).map(Cow::Borrowed),
        // Latin-1 proper: the WHATWG tables below would read it as windows-1252.
        Some("iso-8859-1" | "iso8859-1" | "latin-1" | "latin1" | "l1") => {
            Ok(Cow::Owned(xml.iter().map(|&b| char::from(b)).collect()))
        }
        Some(other) => single_byte(xml, other),
    }
}

/// Decodes a document in a declared single-byte encoding.
fn single_byte<'a>(xml: &'a [u8], label: &str) -> Result<Cow<'a, str>, DecodeError> {
    let refused = || syntax(format!("unsupported encoding {label:.40?}"));
    // Python's names for what the WHATWG tables call windows-125x and macintosh.
    let label = match label {
        "mac-roman" | "mac_roman" | "macroman" => Cow::Borrowed("macintosh"),
        _ => match label.strip_prefix("cp") {
            Some(n) => Cow::Owned(format!("windows-{n}")),
            None => Cow::Borrowed(label),
        },
    };
    let encoding = encoding_rs::Encoding::for_label(label.as_bytes())
        .filter(|e| e.is_single_byte())
        .ok_or_else(refused)?;
    encoding
        .decode_without_bom_handling_and_without_replacement(xml)
        .ok_or_else(|| syntax(format!("not valid {}", encoding.name())))
}

fn utf8(bytes: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(bytes).map_err(|e| syntax(format!("not UTF-8: {e}")))
}

/// UTF-16 code units, if the document starts with a byte-order mark or (as XML
/// allows without one) with `<?` in UTF-16.
fn utf16_units(xml: &[u8]) -> Option<Vec<u16>> {
    let (body, big_endian) = match xml {
        [0xFF, 0xFE, rest @ ..] => (rest, false),
        [0xFE, 0xFF, rest @ ..] => (rest, true),
        [b'<', 0, b'?', 0, ..] => (xml, false),
        [0, b'<', 0, b'?', ..] => (xml, true),
        _ => return None,
    };
    let pair = |c: &[u8]| {
        let b = [c[0], c[1]];
        if big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    };
    Some(body.chunks_exact(2).map(pair).collect())
}

/// The lower-cased `encoding` of the XML declaration, if there is one.
fn declared_encoding(xml: &[u8]) -> Option<String> {
    let decl = xml.strip_prefix(b"<?xml")?;
    let end = decl.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&decl[..end]).ok()?;
    let at = decl.as_bytes().windows(8).position(|w| w == b"encoding")?;
    let after = &decl[at + "encoding".len()..];
    let after = after.trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &after[1..];
    Some(value[..value.find(quote)?].to_ascii_lowercase())
}

/// The value of a self-closing typed element such as `<nil/>` or `<string/>`.
fn empty_typed(tag: &str) -> Result<Value, DecodeError> {
    Ok(match tag {
        "nil" | "ex:nil" => Value::Nil,
        "string" => Value::String(String::new()),
        "base64" => Value::Bytes(Vec::new()),
        "array" => Value::Array(Vec::new()),
        "struct" => Value::Struct(Map::new()),
        other => return Err(invalid(format!("<{other}/> has no value"))),
    })
}

fn parse_int(text: &str) -> Result<i64, DecodeError> {
    let t = text.trim();
    t.strip_prefix('+')
        .unwrap_or(t)
        .parse::<i64>()
        .map_err(|e| match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                invalid(format!("integer {t:.40} does not fit in 64 bits"))
            }
            _ => invalid(format!("{t:.40?} is not an integer")),
        })
}

fn parse_bool(text: &str) -> Result<bool, DecodeError> {
    match text.trim() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        t => Err(invalid(format!("{t:.40?} is not a boolean (0 or 1)"))),
    }
}

fn parse_double(text: &str) -> Result<f64, DecodeError> {
    let t = text.trim();
    t.parse::<f64>()
        .map_err(|_| invalid(format!("{t:.40?} is not a double")))
}

const HEADER: &str = "<?xml version=\"1.0\"?>\n";

/// A value XML-RPC cannot carry at all: a struct member name (or a method name)
/// holding a character XML 1.0 forbids (most control characters, U+FFFE, U+FFFF).
/// Strings with such characters travel as `<base64>` of their UTF-8 instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("XML-RPC cannot carry {0}: it holds a character XML 1.0 forbids")]
pub struct Unrepresentable(pub String);

impl From<Unrepresentable> for Fault {
    fn from(e: Unrepresentable) -> Fault {
        Fault::named("UnrepresentableError", e)
    }
}

/// Checks that XML-RPC can carry `value`: every struct member name is XML text.
/// (Every other value can be written; see [`write_value`].)
pub fn check_carriable(value: &Value) -> Result<(), Unrepresentable> {
    match value {
        Value::Array(items) => items.iter().try_for_each(check_carriable),
        Value::Struct(members) => members.iter().try_for_each(|(name, v)| {
            check_name(name)?;
            check_carriable(v)
        }),
        _ => Ok(()),
    }
}

fn check_name(name: &str) -> Result<(), Unrepresentable> {
    if is_xml_text(name) {
        return Ok(());
    }
    Err(Unrepresentable(format!(
        "the struct member name {:?}",
        name.chars().take(40).collect::<String>()
    )))
}

/// Whether XML 1.0 can carry every character of `text` (its `Char` production;
/// Rust strings hold no surrogates).
pub fn is_xml_text(text: &str) -> bool {
    let bytes = text.as_bytes();
    let controls_ok = bytes
        .iter()
        .all(|&b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r'));
    // U+FFFE and U+FFFF are the only other non-characters; both start with 0xEF.
    controls_ok && (!bytes.contains(&0xEF) || !text.contains(['\u{FFFE}', '\u{FFFF}']))
}

/// Encodes a `<methodCall>`; fails only on a name XML cannot carry.
pub fn encode_request(method: &str, params: &[Value]) -> Result<Vec<u8>, Unrepresentable> {
    if !is_xml_text(method) {
        return Err(Unrepresentable("the method name".into()));
    }
    let mut out = String::with_capacity(128 + method.len());
    out.push_str(HEADER);
    out.push_str("<methodCall><methodName>");
    escape_into(&mut out, method);
    out.push_str("</methodName><params>");
    for param in params {
        out.push_str("<param>");
        write_value(&mut out, param)?;
        out.push_str("</param>");
    }
    out.push_str("</params></methodCall>\n");
    Ok(out.into_bytes())
}

/// Encodes a `<methodResponse>` carrying a value or a fault. A value XML-RPC
/// cannot carry (see [`Unrepresentable`]) is answered with an
/// `UnrepresentableError` fault instead, so the document is always well-formed.
pub fn encode_response(outcome: &Result<Value, Fault>) -> Vec<u8> {
    let mut out = String::with_capacity(128);
    out.push_str(HEADER);
    out.push_str("<methodResponse>");
    let fault = match outcome {
        Ok(value) => {
            out.push_str("<params><param>");
            match write_value(&mut out, value) {
                Ok(()) => {
                    out.push_str("</param></params></methodResponse>\n");
                    return out.into_bytes();
                }
                Err(e) => {
                    out.truncate(HEADER.len() + "<methodResponse>".len());
                    Fault::from(e)
                }
            }
        }
        Err(fault) => fault.clone(),
    };
    out.push_str("<fault>");
    let mut fault = fault;
    fault.message = xml_safe_message(&fault.message);
    // A fault struct has fixed member names, so it always writes.
    let _ = write_value(&mut out, &crate::dispatch::fault_struct(&fault));
    out.push_str("</fault></methodResponse>\n");
    out.into_bytes()
}

/// A fault message with each character XML cannot carry written as `\u{..}`:
/// clients expect faultString to be a string, and a message needs no exactness.
fn xml_safe_message(message: &str) -> String {
    if is_xml_text(message) {
        return message.to_owned();
    }
    message
        .chars()
        .map(|c| {
            let mut one = [0u8; 4];
            if is_xml_text(c.encode_utf8(&mut one)) {
                c.to_string()
            } else {
                c.escape_unicode().to_string()
            }
        })
        .collect()
}

/// Appends one `<value>` element. A string with characters XML cannot carry is
/// written as `<base64>` of its UTF-8 (the one lossless form XML-RPC has); a
/// struct member name with such characters cannot be written at all.
pub fn write_value(out: &mut String, value: &Value) -> Result<(), Unrepresentable> {
    out.push_str("<value>");
    match value {
        Value::Nil => out.push_str("<nil/>"),
        Value::Bool(b) => out.push_str(if *b {
            "<boolean>1</boolean>"
        } else {
            "<boolean>0</boolean>"
        }),
        Value::Int(i) if i32::try_from(*i).is_ok() => {
            let _ = write!(out, "<int>{i}</int>");
        }
        Value::Int(i) => {
            let _ = write!(out, "<i8>{i}</i8>");
        }
        Value::Double(d) => {
            let _ = write!(out, "<double>{d:?}</double>");
        }
        Value::String(s) if is_xml_text(s) => {
            out.push_str("<string>");
            escape_into(out, s);
            out.push_str("</string>");
        }
        Value::String(s) => write_base64(out, s.as_bytes()),
        Value::Bytes(b) => write_base64(out, b),
        Value::DateTime(d) => {
            let _ = write!(out, "<dateTime.iso8601>{d}</dateTime.iso8601>");
        }
        Value::Array(items) => {
            out.push_str("<array><data>");
            for item in items {
                write_value(out, item)?;
            }
            out.push_str("</data></array>");
        }
        Value::Struct(members) => {
            out.push_str("<struct>");
            for (name, v) in members {
                check_name(name)?;
                out.push_str("<member><name>");
                escape_into(out, name);
                out.push_str("</name>");
                write_value(out, v)?;
                out.push_str("</member>");
            }
            out.push_str("</struct>");
        }
    }
    out.push_str("</value>");
    Ok(())
}

fn write_base64(out: &mut String, bytes: &[u8]) {
    out.push_str("<base64>");
    base64::engine::general_purpose::STANDARD.encode_string(bytes, out);
    out.push_str("</base64>");
}

/// Escapes text content. `\r` becomes a character reference because XML
/// parsers would otherwise normalise it to `\n`.
fn escape_into(out: &mut String, text: &str) {
    let mut last = 0;
    for (i, b) in text.bytes().enumerate() {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'\r' => "&#13;",
            _ => continue,
        };
        out.push_str(&text[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&text[last..]);
}
