//! One HTTP GET: no redirect is followed here (the crawl queues a redirect's
//! target like a link, so that it is deduplicated, scoped and spaced like
//! one), the body is read up to a size cap and no further, and the whole
//! exchange is bounded by a timeout.

use std::time::Duration;
use url::Url;

/// How pages are fetched.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// The User-Agent header; its first word is the robots.txt product token.
    pub user_agent: String,
    /// The most one request may take, connection and body included.
    pub timeout: Duration,
    /// The most body bytes kept; the rest is not read.
    pub max_bytes: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            user_agent: format!("rpcs-crawler/{}", env!("CARGO_PKG_VERSION")),
            timeout: Duration::from_secs(30),
            max_bytes: 10 << 20,
        }
    }
}

impl FetchConfig {
    /// The product token robots.txt groups are matched against.
    pub fn agent_token(&self) -> &str {
        let first = self.user_agent.split_whitespace().next().unwrap_or("");
        first.split('/').next().unwrap_or(first)
    }
}

/// What a server answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The Content-Type header.
    pub content_type: Option<String>,
    /// The Location header (redirects).
    pub location: Option<String>,
    /// Retry-After in seconds, when the server gave a number.
    pub retry_after: Option<Duration>,
    /// Every header as received (names as the server cased them, values
    /// that are not text dropped), for WARC records.
    pub headers: Vec<(String, String)>,
    /// The body, up to the cap.
    pub body: Vec<u8>,
    /// Whether the body went on past the cap.
    pub truncated: bool,
}

impl Answer {
    /// Whether trying again later may succeed (RFC 9110: 429, 502, 503, 504,
    /// and any other server error).
    pub fn is_transient(&self) -> bool {
        self.status == 429 || (500..=599).contains(&self.status)
    }

    /// Whether the body is an HTML document whose links are followed.
    pub fn is_html(&self) -> bool {
        match &self.content_type {
            Some(ct) => {
                let mime = ct.split(';').next().unwrap_or("").trim();
                mime.eq_ignore_ascii_case("text/html")
                    || mime.eq_ignore_ascii_case("application/xhtml+xml")
            }
            // No type given: sniff for markup, as browsers do.
            None => {
                let head = &self.body[..self.body.len().min(512)];
                String::from_utf8_lossy(head)
                    .to_ascii_lowercase()
                    .contains("<html")
            }
        }
    }
}

/// Why no answer came.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The client could not be built (TLS setup).
    #[error("HTTP client: {0}")]
    Setup(#[source] reqwest::Error),
    /// No connection, a timeout, a reset: worth another try.
    #[error("{0}")]
    Network(#[source] reqwest::Error),
    /// Anything else (an invalid URL for HTTP, say): not worth another.
    #[error("{0}")]
    Request(#[source] reqwest::Error),
}

impl FetchError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, FetchError::Network(_))
    }
}

fn classify(e: reqwest::Error) -> FetchError {
    if e.is_timeout() || e.is_connect() || e.is_body() || e.is_request() {
        FetchError::Network(e)
    } else {
        FetchError::Request(e)
    }
}

/// An HTTP client sharing connections across all of a crawler's tasks.
#[derive(Clone)]
pub struct Fetcher {
    http: reqwest::Client,
    max_bytes: usize,
}

impl Fetcher {
    /// A fetcher with `config`.
    pub fn new(config: &FetchConfig) -> Result<Fetcher, FetchError> {
        // reqwest brings rustls without a crypto provider; ring is ours. A
        // second install (another Fetcher) finds it there already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(FetchError::Setup)?;
        Ok(Fetcher {
            http,
            max_bytes: config.max_bytes,
        })
    }

    /// GETs `url`.
    pub async fn get(&self, url: &Url) -> Result<Answer, FetchError> {
        let mut response = self.http.get(url.as_str()).send().await.map_err(classify)?;
        let header = |name: reqwest::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let location = header(reqwest::header::LOCATION);
        let retry_after = header(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            let room = self.max_bytes - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            content_type,
            location,
            retry_after,
            headers,
            body,
            truncated,
        })
    }
}
