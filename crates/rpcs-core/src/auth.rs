//! Who may call what: access levels, the principal a call runs as, and token
//! secrets checked against their stored hashes.
//!
//! Secrets are never kept: a token is stored as the SHA-256 digest of its secret,
//! and a presented secret is hashed and compared with every token's digest in
//! constant time, so neither the secret's length nor how much of it matched
//! shows in the time an answer takes.

use crate::fault::Fault;
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// What a method does, and so what a token needs to call it. Ordered: a token of
/// one level may call the methods of that level and every level below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    /// Looks without changing anything (sizes, listings, reads, introspection).
    Read,
    /// Changes data (push, pop, set, log in, send a message).
    Write,
    /// Changes what others rely on or see past a namespace (delete everything,
    /// log other clients out, server settings).
    Admin,
}

impl Access {
    /// The level's name as written in token files: `read`, `write` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Admin => "admin",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an access level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown access level {0:?} (use read, write or admin)")]
pub struct UnknownAccess(pub String);

impl FromStr for Access {
    type Err = UnknownAccess;
    fn from_str(s: &str) -> Result<Access, UnknownAccess> {
        match s {
            "read" => Ok(Access::Read),
            "write" => Ok(Access::Write),
            "admin" => Ok(Access::Admin),
            other => Err(UnknownAccess(other.to_owned())),
        }
    }
}

/// Who a call runs as: a token's name, its level and its namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name (never its secret).
    pub name: Arc<str>,
    /// The most the token may do.
    pub access: Access,
    /// When set, the token sees and touches only names starting with it.
    pub prefix: Option<Arc<str>>,
}

impl Principal {
    /// A principal trusted with everything, for transports whose peer is trusted
    /// already (stdio: the parent process).
    pub fn trusted(name: &str) -> Principal {
        Principal {
            name: name.into(),
            access: Access::Admin,
            prefix: None,
        }
    }

    /// Whether this principal may call a method needing `needed`; a refusal
    /// is a `NOPERM` fault naming the method and the level it needs.
    pub fn authorize(&self, method: &str, needed: Access) -> Result<(), Fault> {
        if self.access >= needed {
            return Ok(());
        }
        Err(Fault::forbidden(format!(
            "token {:?} has {} access; {method} needs {needed}",
            self.name, self.access
        )))
    }

    /// Whether `name` (a stack, storage or client name) is inside this
    /// principal's namespace; always true without a prefix.
    pub fn owns(&self, name: &str) -> bool {
        self.prefix.as_deref().is_none_or(|p| name.starts_with(p))
    }
}

/// The SHA-256 digest of a secret, as token files store it.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A digest as lower-case hex, as token files write it.
pub fn digest_hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a hex digest (64 hex digits, either case).
pub fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// Compares two digests in time that does not depend on where they differ.
pub fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimizer from turning the fold back into an early exit.
    std::hint::black_box(diff) == 0
}

/// One token: a name, the hash of its secret, its level and its namespace.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The principal the token makes a caller.
    pub principal: Arc<Principal>,
    /// SHA-256 of the secret.
    pub digest: [u8; 32],
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

/// The tokens a server accepts.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    tokens: Vec<Token>,
}

impl Tokens {
    /// A set of tokens.
    pub fn new(tokens: Vec<Token>) -> Tokens {
        Tokens { tokens }
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether there are none (then nobody can authenticate).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The principal whose secret is `secret` (and, when `name` is given, whose
    /// name is `name`, as HTTP Basic sends both). Every token is compared, so the
    /// time taken says nothing about which one matched.
    pub fn authenticate(&self, name: Option<&str>, secret: &str) -> Option<Arc<Principal>> {
        let digest = hash_secret(secret);
        let mut found = None;
        for token in &self.tokens {
            let same_secret = digests_equal(&token.digest, &digest);
            let same_name = name.is_none_or(|n| *token.principal.name == *n);
            if same_secret && same_name && found.is_none() {
                found = Some(token.principal.clone());
            }
        }
        found
    }
}

/// Splits the user part off what follows a URL's `://`: `NAME:SECRET@host:port/path`
/// gives `NAME:SECRET` and `host:port/path` (an `@` in the path is not one).
pub fn split_userinfo(rest: &str) -> (Option<&str>, &str) {
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    }
}

/// `url` with any credentials (`user:secret@`) replaced by `***`, fit for
/// messages and logs; a comma-separated list of URLs (a Redis Cluster's nodes)
/// has each redacted.
pub fn redacted(url: &str) -> String {
    let one = |url: &str| {
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.to_owned();
        };
        match split_userinfo(rest) {
            (Some(_), host) => format!("{scheme}://***@{host}"),
            (None, _) => url.to_owned(),
        }
    };
    url.split(',').map(one).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, secret: &str, access: Access, prefix: Option<&str>) -> Token {
        Token {
            principal: Arc::new(Principal {
                name: name.into(),
                access,
                prefix: prefix.map(Into::into),
            }),
            digest: hash_secret(secret),
        }
    }

    #[test]
    fn redacted_hides_every_credential_and_nothing_else() {
        assert_eq!(redacted("msgpack://a:s3cret@h:1"), "msgpack://***@h:1");
        assert_eq!(redacted("http://h:1/x@y"), "http://h:1/x@y");
        assert_eq!(
            redacted("redis://:p1@a:7000,redis://u:p2@b:7000"),
            "redis://***@a:7000,redis://***@b:7000"
        );
        assert_eq!(redacted("tcp://h:1"), "tcp://h:1");
    }

    #[test]
    fn access_levels_are_ordered_and_named() {
        assert!(Access::Read < Access::Write && Access::Write < Access::Admin);
        for a in [Access::Read, Access::Write, Access::Admin] {
            assert_eq!(a.as_str().parse::<Access>().unwrap(), a);
        }
        assert!("root".parse::<Access>().is_err());
    }

    #[test]
    fn authenticate_finds_the_token_by_secret_and_optional_name() {
        let tokens = Tokens::new(vec![
            token("crawler", "s3cret-a", Access::Write, Some("crawl/")),
            token("viewer", "s3cret-b", Access::Read, None),
        ]);
        assert_eq!(
            &*tokens.authenticate(None, "s3cret-a").unwrap().name,
            "crawler"
        );
        assert_eq!(
            &*tokens
                .authenticate(Some("viewer"), "s3cret-b")
                .unwrap()
                .name,
            "viewer"
        );
        assert!(tokens.authenticate(Some("crawler"), "s3cret-b").is_none());
        assert!(tokens.authenticate(None, "s3cret-").is_none());
        assert!(tokens.authenticate(None, "").is_none());
    }

    #[test]
    fn authorize_allows_the_level_and_below_and_names_the_refusal() {
        let p = Principal {
            name: "w".into(),
            access: Access::Write,
            prefix: None,
        };
        assert!(p.authorize("stack.getSize", Access::Read).is_ok());
        assert!(p.authorize("stack.push", Access::Write).is_ok());
        let fault = p.authorize("stack.deleteAll", Access::Admin).unwrap_err();
        assert_eq!(fault.code, Fault::FORBIDDEN);
        assert_eq!(fault.name(), Some("NOPERM"));
        assert!(fault.message.contains("stack.deleteAll needs admin"));
    }

    #[test]
    fn owns_checks_the_prefix() {
        let p = token("a", "x", Access::Write, Some("a/")).principal;
        assert!(p.owns("a/jobs") && !p.owns("b/jobs") && !p.owns("a"));
        assert!(Principal::trusted("stdio").owns("anything"));
    }

    #[test]
    fn digests_round_trip_through_hex_and_compare() {
        let d = hash_secret("abc");
        assert_eq!(
            digest_hex(&d),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(parse_digest(&digest_hex(&d).to_uppercase()), Some(d));
        assert_eq!(parse_digest("ba78"), None);
        assert_eq!(parse_digest(&"zz".repeat(32)), None);
        let mut other = d;
        other[31] ^= 1;
        assert!(digests_equal(&d, &d) && !digests_equal(&d, &other));
    }
}
