//! A small pull tokenizer for the XML that RPC documents use (public only for
//! the fuzz targets, which compare it with another parser).
//!
//! It reads elements, text, CDATA, comments and processing instructions over an
//! already-validated UTF-8 string, resolving the five predefined entities and
//! character references. Any `<!DOCTYPE` (indeed any `<!` other than a comment or
//! CDATA) is refused, so no entity can ever be defined, expanded or fetched.
//! Names and plain text are borrowed from the input; only text with references or
//! carriage returns is copied. Errors are the XML-RPC codec's own
//! ([`DecodeError::Doctype`], [`DecodeError::Syntax`]) so tokens pass through it
//! without conversion.

use crate::xmlrpc::DecodeError;
use std::borrow::Cow;

/// One token.
#[derive(Debug, PartialEq)]
pub enum Token<'a> {
    /// `<name ...>`
    Start(&'a str),
    /// `<name .../>`
    Empty(&'a str),
    /// `</name>`
    End(&'a str),
    /// Character data, with references resolved and line ends normalised.
    Text(Cow<'a, str>),
    /// The end of the input.
    Eof,
}

/// The tokenizer state: input, position and nesting depth.
///
/// End-tag names are not matched against their start tags here: the caller's
/// grammar expects exactly the innermost element's end tag wherever one may
/// appear, so it treats any other end tag as not well-formed.
pub struct Tokenizer<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
}

impl<'a> Tokenizer<'a> {
    pub fn new(src: &'a str) -> Tokenizer<'a> {
        Tokenizer {
            src,
            pos: 0,
            depth: 0,
        }
    }

    fn fail<T>(&self, what: &str) -> Result<T, DecodeError> {
        Err(DecodeError::Syntax(format!("{what} at byte {}", self.pos)))
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    /// Skips to just after `end`, failing with `what` if it never comes.
    fn skip_past(&mut self, end: &str, what: &str) -> Result<&'a str, DecodeError> {
        match self.rest().find(end) {
            Some(i) => {
                let body = &self.rest()[..i];
                self.pos += i + end.len();
                Ok(body)
            }
            None => self.fail(what),
        }
    }

    /// The next token. Comments, processing instructions and the XML
    /// declaration are skipped.
    pub fn next_token(&mut self) -> Result<Token<'a>, DecodeError> {
        loop {
            let rest = self.rest();
            let bytes = rest.as_bytes();
            match bytes {
                [] if self.depth == 0 => return Ok(Token::Eof),
                [] => return self.fail("document ends inside an element"),
                [b'<', b'/', ..] => return self.end_tag(),
                [b'<', b'?', ..] => {
                    self.skip_past("?>", "unterminated processing instruction")?;
                }
                [b'<', b'!', b'-', b'-', ..] => {
                    self.pos += 4;
                    self.skip_past("-->", "unterminated comment")?;
                }
                [b'<', b'!', b'[', b'C', b'D', b'A', b'T', b'A', b'[', ..] => return self.cdata(),
                [b'<', b'!', ..] => return Err(DecodeError::Doctype),
                [b'<', ..] => return self.start_tag(),
                _ => {
                    let end = find_byte(bytes, b'<').unwrap_or(bytes.len());
                    let raw = &rest[..end];
                    self.pos += end;
                    return text(raw, true)
                        .map(Token::Text)
                        .map_err(|e| DecodeError::Syntax(format!("{e} at byte {}", self.pos)));
                }
            }
        }
    }

    fn cdata(&mut self) -> Result<Token<'a>, DecodeError> {
        if self.depth == 0 {
            return self.fail("CDATA outside the root element");
        }
        self.pos += 9;
        let body = self.skip_past("]]>", "unterminated CDATA section")?;
        text(body, false)
            .map(Token::Text)
            .map_err(|e| DecodeError::Syntax(format!("{e} at byte {}", self.pos)))
    }

    fn end_tag(&mut self) -> Result<Token<'a>, DecodeError> {
        self.pos += 2;
        let rest = self.rest();
        let Some(close) = find_byte(rest.as_bytes(), b'>') else {
            return self.fail("unterminated end tag");
        };
        let body = &rest[..close];
        self.pos += close + 1;
        let name = body.trim_end_matches(is_space);
        if self.depth == 0 {
            return self.fail("end tag without an open element");
        }
        self.depth -= 1;
        Ok(Token::End(name))
    }

    fn start_tag(&mut self) -> Result<Token<'a>, DecodeError> {
        self.pos += 1;
        let rest = self.rest();
        let name_len = rest
            .bytes()
            .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>'))
            .unwrap_or(rest.len());
        let name = &rest[..name_len];
        if !is_name(name) {
            return self.fail("bad element name");
        }
        self.pos += name_len;
        self.skip_attributes()?;
        if self.rest().starts_with("/>") {
            self.pos += 2;
            return Ok(Token::Empty(name));
        }
        // skip_attributes stops only at '>' or "/>".
        self.pos += 1;
        self.depth += 1;
        Ok(Token::Start(name))
    }

    /// Skips `name="value"` pairs up to the tag's `>` or `/>`.
    fn skip_attributes(&mut self) -> Result<(), DecodeError> {
        let bytes = self.src.as_bytes();
        loop {
            match bytes.get(self.pos) {
                None => return self.fail("unterminated start tag"),
                Some(b'>') => return Ok(()),
                Some(b'/') if bytes.get(self.pos + 1) == Some(&b'>') => return Ok(()),
                Some(q @ (b'"' | b'\'')) => {
                    let quote = if *q == b'"' { "\"" } else { "'" };
                    self.pos += 1;
                    let value = self.skip_past(quote, "unterminated attribute value")?;
                    if value.contains('<') {
                        return self.fail("'<' in an attribute value");
                    }
                }
                Some(b'<') => return self.fail("'<' inside a tag"),
                Some(_) => self.pos += 1,
            }
        }
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// A plausible XML name: not empty, no markup characters, not starting with a digit,
/// '-' or '.'.
fn is_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let Some(first) = bytes.first() else {
        return false;
    };
    let bad = |b: &u8| {
        matches!(
            b,
            b' ' | b'\t'
                | b'\r'
                | b'\n'
                | b'<'
                | b'>'
                | b'/'
                | b'&'
                | b'"'
                | b'\''
                | b'='
                | b'!'
                | b'?'
                | b';'
        )
    };
    !(first.is_ascii_digit() || matches!(first, b'-' | b'.') || bytes.iter().any(bad))
}

/// The position of the first `needle` byte.
fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// Character data: line ends normalised to `\n` (as XML requires of raw text), and
/// references resolved when `escaped` (CDATA has none).
fn text(raw: &str, escaped: bool) -> Result<Cow<'_, str>, String> {
    let has_cr = raw.contains('\r');
    let has_ref = escaped && raw.contains('&');
    if !has_cr && !has_ref {
        return Ok(Cow::Borrowed(raw));
    }
    let normalised = if has_cr {
        Cow::Owned(raw.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(raw)
    };
    if !has_ref {
        return Ok(normalised);
    }
    unescape(&normalised).map(Cow::Owned)
}

/// Resolves the predefined entities and character references.
fn unescape(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        // No length bound: `&#0000000000065;` is a well-formed reference.
        let semi = after
            .find(';')
            .ok_or_else(|| "unterminated reference".to_owned())?;
        out.push(resolve(&after[..semi])?);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn resolve(name: &str) -> Result<char, String> {
    let code = match name {
        "lt" => return Ok('<'),
        "gt" => return Ok('>'),
        "amp" => return Ok('&'),
        "quot" => return Ok('"'),
        "apos" => return Ok('\''),
        _ => match name.strip_prefix("#x") {
            Some(hex) => digits(hex, 16),
            None => match name.strip_prefix('#') {
                Some(dec) => digits(dec, 10),
                None => return Err(format!("undefined entity &{name:.40};")),
            },
        },
    };
    code.filter(|&c| c != 0)
        .and_then(char::from_u32)
        .ok_or_else(|| format!("bad character reference &{name:.40};"))
}

/// The number a character reference spells: digits only, as XML's `CharRef`
/// production has them (Rust's parsers would also take a sign).
fn digits(text: &str, radix: u32) -> Option<u32> {
    let plain = !text.is_empty() && text.chars().all(|c| c.is_digit(radix));
    plain.then(|| u32::from_str_radix(text, radix).ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(src: &str) -> Result<Vec<Token<'_>>, DecodeError> {
        let mut t = Tokenizer::new(src);
        let mut out = Vec::new();
        loop {
            let tok = t.next_token()?;
            if tok == Token::Eof {
                return Ok(out);
            }
            out.push(tok);
        }
    }

    #[test]
    fn elements_text_and_skipped_markup() {
        let src = "<?xml version='1.0'?><!-- c --><a x=\"1 > 2\" y='z'>t&amp;&#65;&#x42;<b/><![CDATA[<&>]]></a >";
        assert_eq!(
            tokens(src).unwrap(),
            vec![
                Token::Start("a"),
                Token::Text(Cow::Owned("t&AB".into())),
                Token::Empty("b"),
                Token::Text(Cow::Borrowed("<&>")),
                Token::End("a"),
            ]
        );
    }

    #[test]
    fn character_references_follow_the_grammar() {
        // Found by comparing with quick-xml: a sign was taken as part of the
        // number, and a long (zero-padded) reference was refused.
        let toks = tokens("<a>&#0000000000065;&#x00000000042;</a>").unwrap();
        assert_eq!(toks[1], Token::Text(Cow::Owned("AB".into())));
    }

    #[test]
    fn line_ends_are_normalised() {
        let toks = tokens("<a>x\r\ny\rz&#13;</a>").unwrap();
        assert_eq!(toks[1], Token::Text(Cow::Owned("x\ny\nz\r".into())));
    }

    #[test]
    fn refusals() {
        assert_eq!(tokens("<!DOCTYPE a><a/>"), Err(DecodeError::Doctype));
        assert_eq!(tokens("<a><!ENTITY x 'y'></a>"), Err(DecodeError::Doctype));
        for bad in [
            "<a>",
            "</a>",
            "<a",
            "<a x='1></a>",
            "<1a/>",
            "<a>&foo;</a>",
            "<a>&#0;</a>",
            "<a>&#xD800;</a>",
            "<a>&amp</a>",
            "<a><!-- x</a>",
            "<a><![CDATA[x</a>",
            "<?xml",
            "< a/>",
            "<a x='<'/>",
            "<a>&#+65;</a>",
            "<a>&#x+41;</a>",
            "<a>&#-1;</a>",
            "<a>&#;</a>",
            "<a>&#99999999999;</a>",
        ] {
            assert!(matches!(tokens(bad), Err(DecodeError::Syntax(_))), "{bad}");
        }
    }
}
