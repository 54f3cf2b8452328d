//! A generated web site to try a crawl on and to measure crawlers against:
//! interlinked pages spread over several hosts (one listener per address),
//! with what real sites put in a crawler's way: a robots.txt exclusion and a
//! Crawl-delay, a redirect chain and a redirect loop, a broken link, a page
//! that fails once and then recovers, a non-HTML file with markup inside, a
//! `nofollow` link, links that differ only by a fragment or dot segments,
//! and a crawl trap (a relative link that nests itself forever). Every
//! request is logged with its time, so that a test can tell what a crawl
//! fetched, how often, and how far apart.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use std::collections::HashSet;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::TcpListener;

/// One host of the site.
#[derive(Debug, Clone)]
pub struct HostPlan {
    /// The address it listens on (port chosen by the system unless `port`).
    pub ip: IpAddr,
    /// The port, 0 for any free one.
    pub port: u16,
    /// How many numbered pages (`/p/N.html`) it has.
    pub pages: usize,
    /// The Crawl-delay its robots.txt gives, if any.
    pub crawl_delay: Option<u32>,
    /// Whether its robots.txt disallows `/private/`.
    pub disallow_private: bool,
    /// Whether it has the special pages (redirects, broken link, ...).
    pub specials: bool,
}

/// One request the site answered.
#[derive(Debug, Clone)]
pub struct Logged {
    /// `ip:port` of the host it reached.
    pub host: String,
    /// The path and query.
    pub path: String,
    /// When it arrived.
    pub at: Instant,
}

/// A running site.
pub struct Site {
    /// Each host's root URL, in plan order.
    pub roots: Vec<String>,
    log: Arc<Mutex<Vec<Logged>>>,
}

impl Site {
    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Logged> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

struct Host {
    index: usize,
    plan: HostPlan,
    /// `ip:port` of every host.
    all: Vec<String>,
    plans: Vec<HostPlan>,
    log: Arc<Mutex<Vec<Logged>>>,
    /// Paths that failed once already (the page that recovers).
    failed: Mutex<HashSet<String>>,
}

/// Binds every host and serves them until the runtime ends.
pub async fn serve(plans: &[HostPlan]) -> io::Result<Site> {
    let mut listeners = Vec::new();
    for plan in plans {
        listeners.push(TcpListener::bind(SocketAddr::new(plan.ip, plan.port)).await?);
    }
    let all: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.to_string()))
        .collect::<io::Result<_>>()?;
    let log = Arc::new(Mutex::new(Vec::new()));
    for (index, listener) in listeners.into_iter().enumerate() {
        let host = Arc::new(Host {
            index,
            plan: plans[index].clone(),
            all: all.clone(),
            plans: plans.to_vec(),
            log: log.clone(),
            failed: Mutex::new(HashSet::new()),
        });
        tokio::spawn(accept(listener, host));
    }
    Ok(Site {
        roots: all.iter().map(|a| format!("http://{a}/")).collect(),
        log,
    })
}

async fn accept(listener: TcpListener, host: Arc<Host>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let host = host.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let host = host.clone();
                async move { Ok::<_, Infallible>(host.answer(&req)) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

fn html(body: String) -> Response<Full<Bytes>> {
    respond(200, "text/html; charset=utf-8", body.into_bytes())
}

fn respond(status: u16, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

fn redirect(status: u16, to: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("location", to)
        .body(Full::new(Bytes::new()))
        .expect("a valid response")
}

fn page(title: &str, links: &[String]) -> String {
    let items: String = links.iter().map(|l| format!("<li>{l}</li>\n")).collect();
    format!(
        "<!doctype html><html><head><title>{title}</title></head><body>\
         <h1>{title}</h1><ul>\n{items}</ul></body></html>"
    )
}

fn a(href: &str) -> String {
    format!("<a href=\"{href}\">{href}</a>")
}

impl Host {
    fn answer<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        let path = req
            .uri()
            .path_and_query()
            .map_or("/".to_owned(), |p| p.as_str().to_owned());
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Logged {
                host: self.all[self.index].clone(),
                path: path.clone(),
                at: Instant::now(),
            });
        self.route(&path)
            .unwrap_or_else(|| respond(404, "text/html", b"<h1>not found</h1>".to_vec()))
    }

    fn route(&self, path: &str) -> Option<Response<Full<Bytes>>> {
        if path == "/robots.txt" {
            return self.robots();
        }
        if path == "/" {
            return Some(html(page("home", &self.home_links())));
        }
        if let Some(n) = path
            .strip_prefix("/p/")
            .and_then(|p| p.strip_suffix(".html"))
            .and_then(|n| n.parse::<usize>().ok())
        {
            return (n < self.plan.pages).then(|| html(page(path, &self.page_links(n))));
        }
        if path.starts_with("/trap/") && self.plan.specials {
            return Some(html(page("trap", &[a("x/")])));
        }
        self.special(path)
    }

    fn robots(&self) -> Option<Response<Full<Bytes>>> {
        let mut text = String::new();
        if self.plan.disallow_private {
            text.push_str("User-agent: *\nDisallow: /private/\n");
        }
        if let Some(d) = self.plan.crawl_delay {
            if text.is_empty() {
                text.push_str("User-agent: *\n");
            }
            text.push_str(&format!("Crawl-delay: {d}\n"));
        }
        (!text.is_empty()).then(|| respond(200, "text/plain", text.into_bytes()))
    }

    fn home_links(&self) -> Vec<String> {
        let mut links = vec![a("p/0.html"), a("/p/0.html#top"), a("./p/../p/0.html")];
        if self.plan.specials {
            for href in [
                "/private/secret.html",
                "/r/1",
                "/loop/a",
                "/missing.html",
                "/flaky.html",
                "/data.bin",
                "/trap/x/",
                "mailto:someone@example.com",
                "javascript:void(0)",
                "http://outside.invalid/",
            ] {
                links.push(a(href));
            }
            links.push("<a rel=\"nofollow\" href=\"/nofollow.html\">no</a>".into());
        }
        links
    }

    fn page_links(&self, n: usize) -> Vec<String> {
        let pages = self.plan.pages;
        let mut links = vec![
            a(&format!("../p/{}.html", (n + 1) % pages)),
            a(&format!("/p/{}.html#s", (n * 7 + 3) % pages)),
            a("/"),
        ];
        // Every tenth page links on to the next host, and the last host
        // back to the first.
        let next = (self.index + 1) % self.all.len();
        if n.is_multiple_of(10) && next != self.index {
            let m = n % self.plans[next].pages.max(1);
            links.push(a(&format!("http://{}/p/{m}.html", self.all[next])));
        }
        links
    }

    fn special(&self, path: &str) -> Option<Response<Full<Bytes>>> {
        if !self.plan.specials {
            return None;
        }
        let me = &self.all[self.index];
        Some(match path {
            "/r/1" => redirect(301, "/r/2"),
            "/r/2" => redirect(302, &format!("http://{me}/r/3")),
            "/r/3" => html(page("redirected", &[a("/")])),
            "/loop/a" => redirect(301, "/loop/b"),
            "/loop/b" => redirect(301, "/loop/a"),
            "/flaky.html" => {
                let first = self
                    .failed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(path.to_owned());
                if first {
                    respond(500, "text/html", b"<h1>try again</h1>".to_vec())
                } else {
                    html(page("recovered", &[a("/")]))
                }
            }
            "/data.bin" => respond(
                200,
                "application/octet-stream",
                b"\x00\x01<a href=\"/never.html\">not a link</a>".to_vec(),
            ),
            _ => return None,
        })
    }
}
