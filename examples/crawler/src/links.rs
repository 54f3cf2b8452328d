//! The links of an HTML page, read as it streams (lol_html, no DOM): `a` and
//! `area` hrefs, `frame` and `iframe` sources, resolved against the page's
//! `<base href>` when it has one. Links marked `rel="nofollow"` are left
//! out, and a `<meta name="robots" content="nofollow">` leaves out all.

use lol_html::{element, HtmlRewriter, MemorySettings, Settings};
use std::cell::RefCell;
use url::Url;

/// How much memory the parser may buffer for one page (a tag split across
/// reads is buffered whole).
const PARSER_MEMORY: usize = 16 << 20;

/// What a page links to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Links {
    /// The links as written, in page order.
    pub hrefs: Vec<String>,
    /// The page's `<base href>`, resolved against its own URL.
    pub base: Option<Url>,
}

#[derive(Default)]
struct Found {
    hrefs: Vec<String>,
    base: Option<String>,
    nofollow: bool,
}

/// The links of `html`, fetched from `page`.
pub fn extract(html: &[u8], page: &Url) -> Links {
    let found = RefCell::new(Found::default());
    let link = |attribute: &'static str| {
        let found = &found;
        move |el: &mut lol_html::html_content::Element| {
            let rel = el
                .get_attribute("rel")
                .unwrap_or_default()
                .to_ascii_lowercase();
            if rel.split_ascii_whitespace().any(|r| r == "nofollow") {
                return Ok(());
            }
            if let Some(href) = el.get_attribute(attribute) {
                found.borrow_mut().hrefs.push(href);
            }
            Ok(())
        }
    };
    let settings = Settings {
        element_content_handlers: vec![
            element!("a[href], area[href]", link("href")),
            element!("frame[src], iframe[src]", link("src")),
            element!("base[href]", |el| {
                let mut f = found.borrow_mut();
                if f.base.is_none() {
                    f.base = el.get_attribute("href");
                }
                Ok(())
            }),
            element!("meta[name]", |el| {
                let name = el.get_attribute("name").unwrap_or_default();
                let content = el.get_attribute("content").unwrap_or_default();
                if name.eq_ignore_ascii_case("robots")
                    && content.to_ascii_lowercase().contains("nofollow")
                {
                    found.borrow_mut().nofollow = true;
                }
                Ok(())
            }),
        ],
        memory_settings: MemorySettings {
            max_allowed_memory_usage: PARSER_MEMORY,
            ..MemorySettings::default()
        },
        // Markup the streaming parser cannot be sure of is read as well as
        // it can rather than given up on.
        strict: false,
        ..Settings::new()
    };
    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    // A page the parser gives up on (over its memory) keeps what was found.
    let _ = rewriter.write(html).and_then(|()| rewriter.end());
    let found = found.into_inner();
    if found.nofollow {
        return Links::default();
    }
    Links {
        base: found.base.and_then(|b| page.join(b.trim()).ok()),
        hrefs: found.hrefs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Url {
        Url::parse("http://h/dir/page.html").unwrap()
    }

    #[test]
    fn anchors_areas_and_frames_in_page_order() {
        let html = br#"<html><body><a href="a.html">A</a><p><a name="x">no href</a>
<area href="/map"><iframe src="inner.html"></iframe><A HREF='B.html'>b</A></body></html>"#;
        let links = extract(html, &page());
        assert_eq!(links.hrefs, ["a.html", "/map", "inner.html", "B.html"]);
        assert_eq!(links.base, None);
    }

    #[test]
    fn nofollow_links_and_pages_are_left_out() {
        let html = br#"<a href="keep">k</a><a rel="external NoFollow" href="drop">d</a>"#;
        assert_eq!(extract(html, &page()).hrefs, ["keep"]);
        let html =
            br#"<head><meta name="ROBOTS" content="noindex, nofollow"></head><a href="x">x</a>"#;
        assert!(extract(html, &page()).hrefs.is_empty());
    }

    #[test]
    fn the_first_base_href_counts() {
        let html = br#"<head><base href="/other/"><base href="/ignored/"></head><a href="x">x</a>"#;
        let links = extract(html, &page());
        assert_eq!(links.base.unwrap().as_str(), "http://h/other/");
    }

    #[test]
    fn broken_markup_still_yields_what_it_can() {
        let html = b"<a href=\"one\">1<a href=two>2</a><div<<<<a href='three'";
        let links = extract(html, &page());
        assert!(
            links
                .hrefs
                .starts_with(&["one".to_owned(), "two".to_owned()]),
            "{links:?}"
        );
    }
}
