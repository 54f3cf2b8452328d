//! The URLs of a sitemap (sitemaps.org): the `<loc>` of each `<url>`, or, in a
//! sitemap index, of each `<sitemap>` to read in turn. Read with a pattern,
//! not a parser: a sitemap is a flat list, and no entity is expanded beyond
//! the five XML predefines.

use regex::Regex;
use std::sync::OnceLock;

/// What a sitemap lists.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sitemap {
    /// Page URLs.
    pub urls: Vec<String>,
    /// Further sitemaps (from a sitemap index).
    pub sitemaps: Vec<String>,
}

fn loc() -> &'static Regex {
    static LOC: OnceLock<Regex> = OnceLock::new();
    LOC.get_or_init(|| Regex::new(r"(?s)<loc>\s*(.*?)\s*</loc>").expect("a valid pattern"))
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Reads a sitemap or a sitemap index.
pub fn parse(xml: &str) -> Sitemap {
    let found = loc()
        .captures_iter(xml)
        .map(|c| unescape(&c[1]))
        .filter(|u| !u.is_empty());
    if xml.contains("<sitemapindex") {
        Sitemap {
            urls: Vec::new(),
            sitemaps: found.collect(),
        }
    } else {
        Sitemap {
            urls: found.collect(),
            sitemaps: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sitemap_lists_pages_and_an_index_lists_sitemaps() {
        let map = r#"<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
            <url><loc> http://a.test/x?a=1&amp;b=2 </loc><lastmod>2020-01-01</lastmod></url>
            <url><loc>http://a.test/y</loc></url></urlset>"#;
        assert_eq!(
            parse(map).urls,
            vec!["http://a.test/x?a=1&b=2", "http://a.test/y"]
        );
        let index =
            r#"<sitemapindex><sitemap><loc>http://a.test/s1.xml</loc></sitemap></sitemapindex>"#;
        let read = parse(index);
        assert_eq!(read.sitemaps, vec!["http://a.test/s1.xml"]);
        assert!(read.urls.is_empty());
    }
}
