//! Which links a crawl follows: the hosts of its seeds by default (or any
//! host), URLs matching an allow pattern if any are given and no deny
//! pattern, no deeper than the depth limit.

use regex::RegexSet;
use std::collections::BTreeSet;
use url::Url;

/// Why a link is left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutOfScope {
    /// Its host (and port) is not one of the crawl's.
    Host(String),
    /// Allow patterns are given and it matches none.
    NotAllowed,
    /// It matches a deny pattern.
    Denied,
    /// It lies deeper than the limit (links followed from a seed).
    TooDeep(u32),
}

impl std::fmt::Display for OutOfScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutOfScope::Host(h) => write!(f, "host {h} is not crawled"),
            OutOfScope::NotAllowed => write!(f, "matches no allow pattern"),
            OutOfScope::Denied => write!(f, "matches a deny pattern"),
            OutOfScope::TooDeep(d) => write!(f, "depth {d} is over the limit"),
        }
    }
}

impl std::error::Error for OutOfScope {}

/// A crawl's scope.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The hosts (`host:port`) crawled; `None` for any.
    hosts: Option<BTreeSet<String>>,
    allow: RegexSet,
    deny: RegexSet,
    max_depth: Option<u32>,
}

/// A URL's host and port (the scheme's default when it names none).
pub fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

impl Scope {
    /// The hosts of `seeds` only, or any host; every URL allowed, no depth
    /// limit.
    pub fn new(seeds: &[Url], any_host: bool) -> Scope {
        let hosts = (!any_host).then(|| seeds.iter().map(authority).collect());
        Scope {
            hosts,
            allow: RegexSet::empty(),
            deny: RegexSet::empty(),
            max_depth: None,
        }
    }

    /// Only URLs matching one of `allow` (when any), and none of `deny`
    /// (regular expressions searched anywhere in the URL).
    pub fn with_patterns(
        mut self,
        allow: &[String],
        deny: &[String],
    ) -> Result<Scope, regex::Error> {
        self.allow = RegexSet::new(allow)?;
        self.deny = RegexSet::new(deny)?;
        Ok(self)
    }

    /// No deeper than `depth` links from a seed.
    pub fn with_max_depth(mut self, depth: Option<u32>) -> Scope {
        self.max_depth = depth;
        self
    }

    /// Replaces the crawled hosts (`host:port`, the seeds' as the master
    /// keeps them); no change when any host is crawled.
    pub fn set_hosts(&mut self, hosts: impl IntoIterator<Item = String>) {
        if let Some(mine) = &mut self.hosts {
            *mine = hosts.into_iter().collect();
        }
    }

    /// Whether a link found at `depth` is crawled.
    pub fn admits(&self, url: &Url, depth: u32) -> Result<(), OutOfScope> {
        if let Some(hosts) = &self.hosts {
            let host = authority(url);
            if !hosts.contains(&host) {
                return Err(OutOfScope::Host(host));
            }
        }
        if self.max_depth.is_some_and(|max| depth > max) {
            return Err(OutOfScope::TooDeep(depth));
        }
        if self.deny.is_match(url.as_str()) {
            return Err(OutOfScope::Denied);
        }
        if !self.allow.is_empty() && !self.allow.is_match(url.as_str()) {
            return Err(OutOfScope::NotAllowed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn only_the_seeds_hosts_by_default() {
        let scope = Scope::new(&[url("http://a.test/"), url("http://b.test:8080/x")], false);
        assert_eq!(scope.admits(&url("http://a.test:80/p"), 1), Ok(()));
        assert_eq!(scope.admits(&url("http://b.test:8080/q"), 1), Ok(()));
        assert_eq!(
            scope.admits(&url("http://b.test/q"), 1),
            Err(OutOfScope::Host("b.test:80".into()))
        );
        assert!(Scope::new(&[], true)
            .admits(&url("http://c.test/"), 1)
            .is_ok());
    }

    #[test]
    fn patterns_and_depth_narrow_it() {
        let allow = vec!["/docs/".to_owned()];
        let deny = vec![r"\.pdf$".to_owned()];
        let scope = Scope::new(&[url("http://a.test/")], false)
            .with_patterns(&allow, &deny)
            .unwrap()
            .with_max_depth(Some(2));
        assert_eq!(scope.admits(&url("http://a.test/docs/x"), 2), Ok(()));
        assert_eq!(
            scope.admits(&url("http://a.test/docs/x.pdf"), 1),
            Err(OutOfScope::Denied)
        );
        assert_eq!(
            scope.admits(&url("http://a.test/blog/"), 1),
            Err(OutOfScope::NotAllowed)
        );
        assert_eq!(
            scope.admits(&url("http://a.test/docs/y"), 3),
            Err(OutOfScope::TooDeep(3))
        );
        let bad = Scope::new(&[], true).with_patterns(&["(".to_owned()], &[]);
        assert!(bad.is_err());
    }
}
