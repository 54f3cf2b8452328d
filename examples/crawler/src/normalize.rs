//! One URL per page: the canonical form a link is deduplicated under, and the
//! guards against crawl traps.
//!
//! Parsing (the `url` crate, WHATWG) already lowercases the scheme and host,
//! drops a default port and resolves `.` and `..` segments. On top of that a
//! canonical URL has no fragment (the same page), no empty query, percent
//! escapes in upper case with unreserved characters decoded (RFC 3986,
//! 6.2.2), and, when asked, its query parameters sorted.

use url::Url;

/// Why a link is not crawled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// It does not parse as a URL (against its page).
    Unparsable(String),
    /// Not http or https (mailto:, javascript:, ftp:, ...).
    Scheme(String),
    /// Longer than the limit.
    TooLong(usize),
    /// A path segment repeats more often than the limit allows (a calendar or
    /// a relative link that keeps nesting itself).
    RepeatedSegment(String),
    /// More path segments than the limit.
    TooDeep(usize),
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejected::Unparsable(why) => write!(f, "not a URL: {why}"),
            Rejected::Scheme(s) => write!(f, "scheme {s:?} is not crawled"),
            Rejected::TooLong(n) => write!(f, "{n} characters is over the URL length limit"),
            Rejected::RepeatedSegment(s) => write!(f, "path segment {s:?} repeats: a crawl trap"),
            Rejected::TooDeep(n) => write!(f, "{n} path segments is over the limit"),
        }
    }
}

impl std::error::Error for Rejected {}

/// How links are made canonical and which are refused as traps.
#[derive(Debug, Clone)]
pub struct Normalizer {
    /// Sort query parameters by name (stable for equal names), for sites
    /// that write them in any order.
    pub sort_query: bool,
    /// The longest URL crawled, in bytes.
    pub max_length: usize,
    /// How often one path segment may appear in a URL's path.
    pub max_repeats: usize,
    /// The most path segments.
    pub max_segments: usize,
}

impl Default for Normalizer {
    fn default() -> Self {
        Normalizer {
            sort_query: false,
            max_length: 2048,
            max_repeats: 3,
            max_segments: 32,
        }
    }
}

impl Normalizer {
    /// The canonical form of `href` as found on the page at `base` (or an
    /// absolute URL without one), or why it is not crawled.
    pub fn link(&self, base: Option<&Url>, href: &str) -> Result<Url, Rejected> {
        let parsed = match base {
            Some(base) => base.join(href.trim()),
            None => Url::parse(href.trim()),
        };
        let mut url = parsed.map_err(|e| Rejected::Unparsable(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Rejected::Scheme(url.scheme().to_owned()));
        }
        url.set_fragment(None);
        let path = canonical_escapes(url.path());
        url.set_path(&path);
        match url.query() {
            Some("") => url.set_query(None),
            Some(query) => {
                let query = canonical_escapes(query);
                let query = if self.sort_query {
                    sorted_query(&query)
                } else {
                    query
                };
                url.set_query(Some(&query));
            }
            None => {}
        }
        self.check_traps(&url)?;
        Ok(url)
    }

    fn check_traps(&self, url: &Url) -> Result<(), Rejected> {
        let length = url.as_str().len();
        if length > self.max_length {
            return Err(Rejected::TooLong(length));
        }
        let segments: Vec<&str> = url
            .path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        if segments.len() > self.max_segments {
            return Err(Rejected::TooDeep(segments.len()));
        }
        for (i, segment) in segments.iter().enumerate() {
            let seen = segments[..i].iter().filter(|s| *s == segment).count();
            if seen >= self.max_repeats {
                return Err(Rejected::RepeatedSegment((*segment).to_owned()));
            }
        }
        Ok(())
    }
}

/// Characters a percent escape stands for needlessly (RFC 3986 unreserved).
fn unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// `text` with each percent escape in upper case, or decoded when it stands
/// for an unreserved character.
fn canonical_escapes(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            // Two hex digits exactly (from_str_radix alone takes "+1").
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            Some(byte) if unreserved(byte) => {
                out.push(byte as char);
                i += 3;
            }
            Some(byte) => {
                out.push_str(&format!("%{byte:02X}"));
                i += 3;
            }
            None => {
                let c = text[i..]
                    .chars()
                    .next()
                    .expect("i is on a character boundary");
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    out
}

/// A query's `&`-separated parameters sorted by name, equal names keeping
/// their order (their order may matter to the site).
fn sorted_query(query: &str) -> String {
    let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    params.sort_by_key(|p| p.split('=').next().unwrap_or_default());
    params.join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(href: &str) -> String {
        Normalizer::default().link(None, href).unwrap().to_string()
    }

    #[test]
    fn case_default_ports_fragments_and_dot_segments_go() {
        assert_eq!(
            canon("HTTP://Example.COM:80/a/./b/../c#top"),
            "http://example.com/a/c"
        );
        assert_eq!(canon("https://example.com:443/?"), "https://example.com/");
        assert_eq!(
            canon("http://example.com:8080/x"),
            "http://example.com:8080/x"
        );
        assert_eq!(canon("http://example.com"), "http://example.com/");
    }

    #[test]
    fn percent_escapes_are_upper_case_and_unreserved_ones_decoded() {
        assert_eq!(
            canon("http://h/%7euser/a%2fb?q=%41%3d"),
            "http://h/~user/a%2Fb?q=A%3D"
        );
        // A stray percent sign is left as it is.
        assert_eq!(canon("http://h/100%"), "http://h/100%");
        assert_eq!(canon("http://h/a%+1b"), "http://h/a%+1b");
    }

    #[test]
    fn links_resolve_against_their_page() {
        let page = Url::parse("http://h/dir/page.html").unwrap();
        let n = Normalizer::default();
        let link = |href| n.link(Some(&page), href).unwrap().to_string();
        assert_eq!(link("other.html"), "http://h/dir/other.html");
        assert_eq!(link("../up#x"), "http://h/up");
        assert_eq!(link("  //cdn.h/img  "), "http://cdn.h/img");
        assert_eq!(
            n.link(Some(&page), "mailto:a@h"),
            Err(Rejected::Scheme("mailto".into()))
        );
        assert!(matches!(
            n.link(Some(&page), "http://[::1"),
            Err(Rejected::Unparsable(_))
        ));
    }

    #[test]
    fn query_order_is_kept_unless_sorting_is_asked_for() {
        assert_eq!(canon("http://h/?b=2&a=1"), "http://h/?b=2&a=1");
        let sorting = Normalizer {
            sort_query: true,
            ..Normalizer::default()
        };
        let url = sorting.link(None, "http://h/?b=2&a=1&b=1&&").unwrap();
        assert_eq!(url.as_str(), "http://h/?a=1&b=2&b=1");
    }

    #[test]
    fn crawl_traps_are_refused() {
        let n = Normalizer::default();
        let long = format!("http://h/{}", "x".repeat(3000));
        assert!(matches!(n.link(None, &long), Err(Rejected::TooLong(_))));
        assert_eq!(
            n.link(None, "http://h/a/b/a/b/a/b/a/"),
            Err(Rejected::RepeatedSegment("a".into()))
        );
        assert!(n.link(None, "http://h/a/b/a/b/a/b/").is_ok());
        let deep = format!(
            "http://h/{}",
            (0..40).map(|i| format!("d{i}/")).collect::<String>()
        );
        assert_eq!(n.link(None, &deep), Err(Rejected::TooDeep(40)));
    }
}
