//! Authentication on the server's side: the token file, the credentials each
//! transport carries (an HTTP `Authorization` header, a first `auth` call on a
//! stream, a zerorpc event header) and the count of failures.
//!
//! A token file is TOML, one `[[token]]` table per token:
//!
//! ```toml
//! [[token]]
//! name = "crawler"
//! sha256 = "…64 hex digits: the SHA-256 of the secret…"
//! access = "write"          # read, write or admin
//! prefix = "crawl/"         # optional: the token's namespace
//! ```
//!
//! Only hashes are stored; `rpcs token new` prints a fresh secret and its table.
//! Failures are logged by the token name claimed (if any) and the peer, never
//! with the secret.

use base64::Engine;
use rpcs_core::auth::{parse_digest, Token, Tokens};
use rpcs_core::{Access, Fault, Principal};
use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tracing::{debug, warn};

/// The method a stream client calls first to authenticate: `auth(secret)` or
/// `auth(name, secret)` (as Redis's AUTH); `rpc.auth` is the same, for
/// WebSocket clients that follow JSON-RPC's naming of built-ins.
pub const AUTH_METHODS: [&str; 2] = ["auth", "rpc.auth"];

/// The key of a zerorpc event header that carries a token's secret.
pub const ZERORPC_HEADER_KEY: &str = "auth";

/// A token file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("invalid token file: {0}")]
    Syntax(#[from] toml::de::Error),
    /// A token is wrong in itself.
    #[error("token {name:?}: {problem}")]
    Token {
        /// The token's name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// The file has no tokens, so nobody could ever authenticate.
    #[error("the token file has no [[token]] entries")]
    Empty,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    token: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    sha256: String,
    access: String,
    #[serde(default)]
    prefix: Option<String>,
}

/// Checks credentials against the server's tokens and counts the failures.
pub struct Authenticator {
    tokens: Tokens,
    failures: AtomicU64,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("tokens", &self.tokens.len())
            .field("failures", &self.failures())
            .finish()
    }
}

/// Who is authenticating, for the log lines.
#[derive(Clone, Copy)]
pub struct Attempt<'a> {
    /// The peer's address (or another description of it).
    pub peer: &'a dyn fmt::Display,
    /// The protocol the credentials came on.
    pub protocol: &'a str,
}

impl Authenticator {
    /// An authenticator over `tokens`.
    pub fn new(tokens: Tokens) -> Authenticator {
        Authenticator {
            tokens,
            failures: AtomicU64::new(0),
        }
    }

    /// Reads a token file.
    pub fn load(path: &Path) -> Result<Authenticator, AuthFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Authenticator::parse(&text)
    }

    /// Parses a token file's text.
    pub fn parse(text: &str) -> Result<Authenticator, AuthFileError> {
        let file: File = toml::from_str(text)?;
        if file.token.is_empty() {
            return Err(AuthFileError::Empty);
        }
        let mut names = HashSet::new();
        let mut tokens = Vec::with_capacity(file.token.len());
        for entry in file.token {
            let problem = |problem: &str| AuthFileError::Token {
                name: entry.name.clone(),
                problem: problem.to_owned(),
            };
            if entry.name.is_empty() || entry.name.contains(':') {
                return Err(problem("a name must be non-empty and have no ':'"));
            }
            if !names.insert(entry.name.clone()) {
                return Err(problem("the name is used twice"));
            }
            let digest = parse_digest(&entry.sha256)
                .ok_or_else(|| problem("sha256 must be 64 hex digits (see `rpcs token new`)"))?;
            let access: Access = entry.access.parse().map_err(|e| problem(&format!("{e}")))?;
            if entry.prefix.as_deref() == Some("") {
                return Err(problem("an empty prefix is no namespace; leave it out"));
            }
            let principal = Principal {
                name: entry.name.as_str().into(),
                access,
                prefix: entry.prefix.map(Into::into),
            };
            tokens.push(Token {
                principal: Arc::new(principal),
                digest,
            });
        }
        Ok(Authenticator::new(Tokens::new(tokens)))
    }

    /// How many authentications have failed since the server started.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Checks a secret (with the token name, when the client sent one).
    pub fn check(
        &self,
        name: Option<&str>,
        secret: &str,
        attempt: Attempt<'_>,
    ) -> Result<Arc<Principal>, Fault> {
        match self.tokens.authenticate(name, secret) {
            Some(principal) => {
                debug!(token = %principal.name, peer = %attempt.peer, protocol = attempt.protocol, "authenticated");
                Ok(principal)
            }
            None => {
                let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                warn!(
                    token = name.unwrap_or("(none given)"),
                    peer = %attempt.peer,
                    protocol = attempt.protocol,
                    failures,
                    "authentication failed"
                );
                Err(bad_credentials())
            }
        }
    }

    /// Checks an HTTP `Authorization` header: `Bearer SECRET` or `Basic
    /// base64(NAME:SECRET)` (what a `http://NAME:SECRET@host/` URL makes
    /// Python's xmlrpc.client send).
    pub fn check_header(
        &self,
        header: &str,
        attempt: Attempt<'_>,
    ) -> Result<Arc<Principal>, Fault> {
        let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return self.check(None, rest, attempt);
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            if let Some((name, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
                // An empty user name (`http://:SECRET@host/`) means "any token".
                let name = (!name.is_empty()).then_some(name);
                return self.check(name, secret, attempt);
            }
        }
        self.failures.fetch_add(1, Ordering::Relaxed);
        warn!(peer = %attempt.peer, protocol = attempt.protocol, "unreadable Authorization header");
        Err(bad_credentials())
    }

    /// Checks the parameters of an `auth` call: `[secret]`, `[name, secret]`,
    /// or named `{secret}` / `{name, secret}`.
    pub fn check_call(
        &self,
        params: &[rpcs_core::Value],
        attempt: Attempt<'_>,
    ) -> Result<Arc<Principal>, Fault> {
        let text = rpcs_core::Value::as_str;
        match params {
            [secret] => match text(secret) {
                Some(secret) => self.check(None, secret, attempt),
                None => Err(auth_usage()),
            },
            [name, secret] => match (text(name), text(secret)) {
                (Some(name), Some(secret)) => self.check(Some(name), secret, attempt),
                _ => Err(auth_usage()),
            },
            _ => Err(auth_usage()),
        }
    }
}

/// The answer to wrong credentials: the same whatever was wrong.
fn bad_credentials() -> Fault {
    Fault::new(
        Fault::NOT_AUTHENTICATED,
        "NOAUTH: invalid credentials (unknown token or wrong secret)",
    )
}

fn auth_usage() -> Fault {
    Fault::invalid_params("auth takes (secret) or (name, secret), as strings")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpcs_core::auth::{digest_hex, hash_secret};

    fn file(entries: &str) -> String {
        entries.to_owned()
    }

    fn one(name: &str, secret: &str, access: &str, prefix: Option<&str>) -> String {
        let prefix = prefix
            .map(|p| format!("prefix = {p:?}\n"))
            .unwrap_or_default();
        format!(
            "[[token]]\nname = {name:?}\nsha256 = {:?}\naccess = {access:?}\n{prefix}",
            digest_hex(&hash_secret(secret))
        )
    }

    fn attempt() -> Attempt<'static> {
        Attempt {
            peer: &"127.0.0.1:9",
            protocol: "test",
        }
    }

    #[test]
    fn a_file_of_tokens_authenticates_each_by_secret_and_counts_failures() {
        let text =
            one("crawler", "sec-a", "write", Some("crawl/")) + &one("ops", "sec-b", "admin", None);
        let auth = Authenticator::parse(&file(&text)).unwrap();
        let p = auth.check(None, "sec-a", attempt()).unwrap();
        assert_eq!(
            (&*p.name, p.access, p.prefix.as_deref()),
            ("crawler", Access::Write, Some("crawl/"))
        );
        assert_eq!(auth.failures(), 0);
        let fault = auth.check(Some("ops"), "sec-a", attempt()).unwrap_err();
        assert_eq!(fault.code, Fault::NOT_AUTHENTICATED);
        assert_eq!(auth.failures(), 1);
    }

    #[test]
    fn headers_carry_bearer_or_basic_credentials() {
        let auth = Authenticator::parse(&one("crawler", "s:e c", "read", None)).unwrap();
        assert!(auth.check_header("Bearer s:e c", attempt()).is_ok());
        let basic = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        assert!(auth
            .check_header(&basic("crawler:s:e c"), attempt())
            .is_ok());
        assert!(auth.check_header(&basic(":s:e c"), attempt()).is_ok());
        assert!(auth.check_header(&basic("other:s:e c"), attempt()).is_err());
        assert!(auth.check_header("Basic !!!", attempt()).is_err());
        assert!(auth.check_header("Digest x", attempt()).is_err());
        assert_eq!(auth.failures(), 3);
    }

    #[test]
    fn auth_calls_take_a_secret_or_a_name_and_secret() {
        let auth = Authenticator::parse(&one("w", "pw", "write", None)).unwrap();
        let s = |x: &str| rpcs_core::Value::from(x);
        assert!(auth.check_call(&[s("pw")], attempt()).is_ok());
        assert!(auth.check_call(&[s("w"), s("pw")], attempt()).is_ok());
        assert_eq!(
            auth.check_call(&[], attempt()).unwrap_err().code,
            Fault::INVALID_PARAMS
        );
        let fault = auth
            .check_call(&[rpcs_core::Value::Int(1)], attempt())
            .unwrap_err();
        assert_eq!(fault.code, Fault::INVALID_PARAMS);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let err = |t: &str| Authenticator::parse(t).unwrap_err().to_string();
        assert!(err("").contains("no [[token]]"));
        assert!(
            err(&(one("a", "x", "read", None) + &one("a", "y", "read", None)))
                .contains("used twice")
        );
        assert!(err(&one("a", "x", "root", None)).contains("unknown access level"));
        assert!(
            err("[[token]]\nname = \"a\"\nsha256 = \"12\"\naccess = \"read\"\n").contains("64 hex")
        );
        // A plain secret where its hash belongs is refused, not silently ignored.
        assert!(
            err("[[token]]\nname = \"a\"\nsecret = \"x\"\naccess = \"read\"\n").contains("secret")
        );
        assert!(err(&one("a", "x", "read", Some(""))).contains("empty prefix"));
    }

    #[test]
    fn debug_output_shows_no_digest() {
        let auth = Authenticator::parse(&one("a", "x", "read", None)).unwrap();
        let shown = format!("{auth:?}");
        assert!(!shown.contains(&digest_hex(&hash_secret("x"))), "{shown}");
    }
}
