//! A host's robots.txt as RFC 9309 reads it, from the answer to
//! `GET /robots.txt`: a successful answer is parsed (the first 500 KiB); any
//! other 4xx (404 most of all) allows everything; a 5xx, a 429 or no answer
//! at all (the host is unreachable) disallows everything for now, to be
//! fetched again later. The `Crawl-delay` it gives for this crawler's agent
//! is a floor under the crawl's own politeness delay.

use texting_robots::Robot;
use url::Url;

/// How much of a robots.txt is parsed (RFC 9309 asks for at least 500 KiB).
pub const MAX_BYTES: usize = 500 * 1024;

/// What a host's robots.txt lets this crawler do.
pub struct Robots {
    rules: Rules,
}

enum Rules {
    AllowAll,
    /// The host could not say (5xx, 429, unreachable): nothing until asked
    /// again.
    Unavailable,
    Parsed(Box<Robot>),
}

impl Robots {
    /// From the status and body of the answer to `/robots.txt`, for `agent`
    /// (the product token of this crawler's User-Agent). Redirects are the
    /// fetcher's to follow (five at most); what is left of a 3xx after them
    /// counts as a 4xx.
    pub fn from_answer(status: u16, body: &[u8], agent: &str) -> Robots {
        let rules = match status {
            200..=299 => {
                let body = &body[..body.len().min(MAX_BYTES)];
                match Robot::new(agent, body) {
                    Ok(robot) => Rules::Parsed(Box::new(robot)),
                    // What cannot be read says nothing against crawling.
                    Err(_) => Rules::AllowAll,
                }
            }
            429 | 500..=599 => Rules::Unavailable,
            _ => Rules::AllowAll,
        };
        Robots { rules }
    }

    /// For a host that did not answer at all.
    pub fn unreachable() -> Robots {
        Robots {
            rules: Rules::Unavailable,
        }
    }

    /// Whether `url` may be fetched. The robots.txt itself always may.
    pub fn allowed(&self, url: &Url) -> bool {
        if url.path() == "/robots.txt" {
            return true;
        }
        match &self.rules {
            Rules::AllowAll => true,
            Rules::Unavailable => false,
            Rules::Parsed(robot) => robot.allowed(url.as_str()),
        }
    }

    /// Whether the host could not say, so that everything is disallowed only
    /// until the robots.txt is fetched again.
    pub fn is_unavailable(&self) -> bool {
        matches!(self.rules, Rules::Unavailable)
    }

    /// The `Crawl-delay` for this agent, in seconds, if the file gives one.
    pub fn crawl_delay(&self) -> Option<f64> {
        match &self.rules {
            Rules::Parsed(robot) => robot
                .delay
                .map(f64::from)
                .filter(|d| d.is_finite() && *d >= 0.0),
            _ => None,
        }
    }

    /// The sitemaps the file names.
    pub fn sitemaps(&self) -> &[String] {
        match &self.rules {
            Rules::Parsed(robot) => &robot.sitemaps,
            _ => &[],
        }
    }
}

/// Where a page's host keeps its robots.txt.
pub fn robots_url(page: &Url) -> Option<Url> {
    let mut url = page.clone();
    url.set_path("/robots.txt");
    url.set_query(None);
    url.set_fragment(None);
    url.has_host().then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    const TXT: &[u8] =
        b"User-agent: rpcs-crawler\nDisallow: /private\nAllow: /private/ok\nCrawl-delay: 2\n\n\
User-agent: *\nDisallow: /\n\nSitemap: http://h/sitemap.xml\n";

    #[test]
    fn a_parsed_file_applies_to_our_agent_with_the_longest_match_winning() {
        let robots = Robots::from_answer(200, TXT, "rpcs-crawler");
        assert!(robots.allowed(&url("http://h/public")));
        assert!(!robots.allowed(&url("http://h/private/x")));
        assert!(robots.allowed(&url("http://h/private/ok/y")));
        assert_eq!(robots.crawl_delay(), Some(2.0));
        assert_eq!(robots.sitemaps(), ["http://h/sitemap.xml".to_owned()]);
        // Another agent falls under `*`.
        let other = Robots::from_answer(200, TXT, "otherbot");
        assert!(!other.allowed(&url("http://h/public")));
        assert!(other.allowed(&url("http://h/robots.txt")));
    }

    #[test]
    fn client_errors_allow_everything_and_server_errors_nothing_for_now() {
        for status in [400, 401, 403, 404, 410, 301] {
            let robots = Robots::from_answer(status, b"Disallow: /", "a");
            assert!(robots.allowed(&url("http://h/x")), "{status}");
            assert!(!robots.is_unavailable());
        }
        for status in [429, 500, 503] {
            let robots = Robots::from_answer(status, b"", "a");
            assert!(!robots.allowed(&url("http://h/x")), "{status}");
            assert!(robots.is_unavailable());
        }
        assert!(!Robots::unreachable().allowed(&url("http://h/x")));
    }

    #[test]
    fn only_the_first_500_kib_is_read() {
        let mut body = vec![b'#'; MAX_BYTES];
        body.extend_from_slice(b"\nUser-agent: *\nDisallow: /\n");
        let robots = Robots::from_answer(200, &body, "a");
        assert!(robots.allowed(&url("http://h/x")));
    }

    #[test]
    fn the_file_lives_at_the_hosts_root() {
        let page = url("https://h:8443/a/b?q=1#f");
        assert_eq!(
            robots_url(&page).unwrap().as_str(),
            "https://h:8443/robots.txt"
        );
    }
}
