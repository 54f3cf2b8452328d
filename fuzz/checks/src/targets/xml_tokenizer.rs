//! Our XML tokenizer against `quick-xml` as an oracle: on every document both
//! read to the end without an error, they report the same elements and the same
//! character data.
//!
//! The oracle is run in its strict settings (end names matched, comments checked,
//! attributes parsed) and completed where XML 1.0 asks more than it does: every
//! element closed, no DOCTYPE (which we refuse by design), references limited to
//! the five predefined entities and character references, line ends normalised
//! (quick-xml does that only when asked, through `xml10_content`). Comments,
//! processing instructions and the XML declaration carry no data for either.
//! Text is compared as one string per run between tags, since the two split it
//! differently around references, comments and CDATA sections.

use quick_xml::events::Event;
use quick_xml::Reader;
use rpcs_core::xml::{Token, Tokenizer};

/// What both readers report: tags and merged runs of text.
#[derive(Debug, PartialEq)]
pub enum Item {
    /// A start tag's name.
    Start(String),
    /// An empty-element tag's name.
    Empty(String),
    /// An end tag's name.
    End(String),
    /// The character data between two tags (never empty).
    Text(String),
}

/// Runs the target on one input.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Our XML-RPC reader strips the byte-order mark before tokenizing; quick-xml
    // strips it itself (only one: a second U+FEFF is a character).
    let stripped = text.strip_prefix('\u{feff}').unwrap_or(text);
    match (ours(stripped), oracle(text)) {
        (Some(ours), Some(oracle)) => {
            assert_eq!(ours, oracle, "the tokenizers disagree on {text:?}")
        }
        (None, Some(_)) if !well_formed_beyond_oracle(text) => {}
        (None, Some(_)) => panic!("a well-formed document was refused: {text:?}"),
        _ => {}
    }
}

/// Whether a document quick-xml accepts is also well-formed where quick-xml
/// does not look (so that our refusing it is a bug): no CDATA section outside
/// the root element (XML allows character data only inside it).
fn well_formed_beyond_oracle(text: &str) -> bool {
    let mut reader = Reader::from_str(text);
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(_)) => depth += 1,
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::CData(_)) if depth == 0 => return false,
            Ok(Event::Eof) | Err(_) => return true,
            Ok(_) => {}
        }
    }
}

fn push_text(items: &mut Vec<Item>, text: &str) {
    if text.is_empty() {
        return;
    }
    match items.last_mut() {
        Some(Item::Text(run)) => run.push_str(text),
        _ => items.push(Item::Text(text.to_owned())),
    }
}

/// Our tokenizer's items, or `None` if it refuses the document.
pub fn ours(text: &str) -> Option<Vec<Item>> {
    let mut tokens = Tokenizer::new(text);
    let mut items = Vec::new();
    loop {
        match tokens.next_token().ok()? {
            Token::Start(n) => items.push(Item::Start(n.to_owned())),
            Token::Empty(n) => items.push(Item::Empty(n.to_owned())),
            Token::End(n) => items.push(Item::End(n.to_owned())),
            Token::Text(t) => push_text(&mut items, &t),
            Token::Eof => return Some(items),
        }
    }
}

/// quick-xml's items, or `None` if the document is not well-formed to it (or
/// uses what XML 1.0 allows but XML-RPC readers never accept: a DOCTYPE, and
/// with it any entity beyond the predefined five).
pub fn oracle(text: &str) -> Option<Vec<Item>> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().enable_all_checks(true);
    let mut open = Vec::new();
    let mut items = Vec::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                check_attributes(&e)?;
                let name = tag_name(e.name())?;
                open.push(name.clone());
                items.push(Item::Start(name));
            }
            Event::Empty(e) => {
                check_attributes(&e)?;
                let name = tag_name(e.name())?;
                items.push(Item::Empty(name));
            }
            Event::End(e) => {
                open.pop()?;
                let name = tag_name(e.name())?;
                items.push(Item::End(name));
            }
            Event::Text(t) => push_text(&mut items, &t.xml10_content()),
            Event::CData(c) => push_text(&mut items, &c.xml10_content()),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().ok()? {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_xml_entity(&r.xml10_content())?.to_owned(),
                };
                push_text(&mut items, &resolved);
            }
            Event::DocType(_) => return None,
            Event::Comment(_) | Event::PI(_) | Event::Decl(_) => {}
            Event::Eof => return open.is_empty().then_some(items),
        }
    }
}

/// Attributes as XML 1.0 has them (quick-xml checks their quoting and
/// uniqueness; names and the `<` that values may not hold are checked here).
fn check_attributes(e: &quick_xml::events::BytesStart) -> Option<()> {
    for attr in e.attributes().with_checks(true) {
        let attr = attr.ok()?;
        tag_name(attr.key)?;
        if attr.value.contains('<') {
            return None;
        }
    }
    Some(())
}

/// The name of a tag or attribute, if it is an XML `Name` (quick-xml takes
/// whatever stands before the first space, `/` or `>`).
fn tag_name(name: quick_xml::name::QName) -> Option<String> {
    let name: &str = name.as_ref();
    let mut chars = name.chars();
    let first = chars.next()?;
    (is_name_start(first) && chars.all(is_name_char)).then(|| name.to_owned())
}

/// XML 1.0's `NameStartChar`.
fn is_name_start(c: char) -> bool {
    matches!(c,
        ':' | 'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0's `NameChar`.
fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}
