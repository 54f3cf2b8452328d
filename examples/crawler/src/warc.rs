//! WARC output (ISO 28500, WARC/1.1), as web archives keep crawls: each
//! crawler process appends to a file of its own, `CRAWLER-START.warc.gz` under
//! the WARC directory (so crawlers on one disk never share a file), a
//! `warcinfo` record first, then a `request` and a `response` record per page
//! fetched, each its own gzip member (so any record can be read alone), and
//! the file synced before the page is acknowledged to the master.
//!
//! The HTTP client decodes `Content-Encoding` itself, so a response record
//! holds the decoded body with headers that say so: `Content-Encoding`,
//! `Transfer-Encoding` and `Content-Length` are replaced by the decoded
//! length. A body cut at the size cap is marked `WARC-Truncated: length`.
//! Each record carries `WARC-Payload-Digest` and `WARC-Block-Digest` (SHA-1,
//! base32), which readers such as warcio check.

use crate::fetch::Answer;
use flate2::write::GzEncoder;
use flate2::Compression;
use sha1::{Digest, Sha1};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use url::Url;

/// A crawler's WARC file, appended to one page at a time.
pub struct WarcWriter {
    path: PathBuf,
    file: Mutex<File>,
}

impl WarcWriter {
    /// Creates `DIR/CRAWLER-START.warc.gz` and writes its `warcinfo` record.
    pub fn create(
        dir: &Path,
        crawler: &str,
        now_ms: i64,
        software: &str,
    ) -> io::Result<WarcWriter> {
        std::fs::create_dir_all(dir)?;
        let safe = crate::save::file_safe(crawler);
        let path = dir.join(format!("{safe}-{now_ms}.warc.gz"));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        let writer = WarcWriter {
            path,
            file: Mutex::new(file),
        };
        let info = format!("software: {software}\r\nformat: WARC File Format 1.1\r\n");
        let date = warc_date(now_ms);
        let filename = writer
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let record = Record {
            kind: "warcinfo",
            date: &date,
            target: None,
            content_type: "application/warc-fields",
            extra: vec![("WARC-Filename", filename)],
            block: info.into_bytes(),
            payload_at: None,
        };
        writer.append(&[record])?;
        Ok(writer)
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the request and response records of one fetch, and syncs.
    pub fn page(&self, url: &Url, answer: &Answer, fetched_ms: i64, agent: &str) -> io::Result<()> {
        let date = warc_date(fetched_ms);
        let request = request_block(url, agent);
        let (response, payload_at) = response_block(answer);
        let response_id = record_id();
        let mut extra = Vec::new();
        if answer.truncated {
            extra.push(("WARC-Truncated", "length".to_owned()));
        }
        let records = [
            Record {
                kind: "response",
                date: &date,
                target: Some(url.as_str()),
                content_type: "application/http;msgtype=response",
                extra: [vec![("WARC-Record-ID", response_id.clone())], extra].concat(),
                block: response,
                payload_at: Some(payload_at),
            },
            Record {
                kind: "request",
                date: &date,
                target: Some(url.as_str()),
                content_type: "application/http;msgtype=request",
                extra: vec![("WARC-Concurrent-To", response_id)],
                block: request,
                payload_at: None,
            },
        ];
        self.append(&records)
    }

    fn append(&self, records: &[Record]) -> io::Result<()> {
        let mut bytes = Vec::new();
        for r in records {
            bytes.extend(gzip(&r.encode())?);
        }
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&bytes)?;
        file.sync_data()
    }
}

/// One record before encoding.
struct Record<'a> {
    kind: &'static str,
    date: &'a str,
    target: Option<&'a str>,
    content_type: &'static str,
    /// Headers beyond the usual; a `WARC-Record-ID` here replaces the fresh one.
    extra: Vec<(&'static str, String)>,
    block: Vec<u8>,
    /// Where the payload starts in the block (after the HTTP head), if it has one.
    payload_at: Option<usize>,
}

impl Record<'_> {
    fn encode(&self) -> Vec<u8> {
        let mut head = String::from("WARC/1.1\r\n");
        let mut line = |name: &str, value: &str| {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        };
        line("WARC-Type", self.kind);
        if !self.extra.iter().any(|(n, _)| *n == "WARC-Record-ID") {
            line("WARC-Record-ID", &record_id());
        }
        line("WARC-Date", self.date);
        if let Some(t) = self.target {
            line("WARC-Target-URI", t);
        }
        for (name, value) in &self.extra {
            line(name, value);
        }
        line("Content-Type", self.content_type);
        line("WARC-Block-Digest", &sha1_base32(&self.block));
        if let Some(at) = self.payload_at {
            line("WARC-Payload-Digest", &sha1_base32(&self.block[at..]));
        }
        line("Content-Length", &self.block.len().to_string());
        let mut out = head.into_bytes();
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.block);
        out.extend_from_slice(b"\r\n\r\n");
        out
    }
}

/// A GET of `url` as the crawler sent it, give or take the headers its
/// HTTP client adds.
fn request_block(url: &Url, agent: &str) -> Vec<u8> {
    let mut target = url.path().to_owned();
    if let Some(q) = url.query() {
        target.push('?');
        target.push_str(q);
    }
    let host = crate::scope::authority(url);
    format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {agent}\r\nAccept-Encoding: gzip\r\n\r\n"
    )
    .into_bytes()
}

/// The response as an HTTP message with its decoded body, and where the body
/// starts.
fn response_block(answer: &Answer) -> (Vec<u8>, usize) {
    let reason = reqwest::StatusCode::from_u16(answer.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", answer.status);
    for (name, value) in &answer.headers {
        let decoded_away = ["content-encoding", "transfer-encoding", "content-length"];
        if decoded_away.contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", answer.body.len()));
    let at = head.len();
    let mut block = head.into_bytes();
    block.extend_from_slice(&answer.body);
    (block, at)
}

fn gzip(bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(bytes)?;
    gz.finish()
}

/// `<urn:uuid:...>` of a random (version 4) UUID.
fn record_id() -> String {
    let mut b: [u8; 16] = fastrand::u128(..).to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "<urn:uuid:{}-{}-{}-{}-{}>",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `sha1:` and the digest in base32 (RFC 4648), as WARC writers give it.
fn sha1_base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = Sha1::digest(bytes);
    let mut out = String::from("sha1:");
    let mut acc = 0u32;
    let mut bits = 0;
    for &byte in digest.iter() {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// A time as WARC writes it: `YYYY-MM-DDTHH:MM:SSZ`, UTC.
fn warc_date(ms: i64) -> String {
    match rpcs_core::msgpack::from_unix_seconds(ms.div_euclid(1000)) {
        Some(d) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            d.year, d.month, d.day, d.hour, d.minute, d.second
        ),
        None => "1970-01-01T00:00:00Z".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::MultiGzDecoder;
    use std::io::Read;

    fn answer(body: &[u8], truncated: bool) -> Answer {
        Answer {
            status: 200,
            content_type: Some("text/html".into()),
            location: None,
            retry_after: None,
            headers: vec![
                ("Content-Type".into(), "text/html".into()),
                ("Content-Encoding".into(), "gzip".into()),
                ("Content-Length".into(), "999".into()),
            ],
            body: body.to_vec(),
            truncated,
        }
    }

    #[test]
    fn a_digest_is_base32_sha1() {
        // SHA-1 of "" is da39a3ee..., whose base32 every WARC tool knows.
        assert_eq!(sha1_base32(b""), "sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ");
    }

    #[test]
    fn dates_are_utc_with_a_z() {
        assert_eq!(warc_date(0), "1970-01-01T00:00:00Z");
        assert_eq!(warc_date(1_764_763_200_123), "2025-12-03T12:00:00Z");
    }

    #[test]
    fn a_page_becomes_a_response_and_a_request_each_in_its_own_member() {
        let dir = tempfile::tempdir().unwrap();
        let w = WarcWriter::create(dir.path(), "c/1", 0, "rpcs-crawler").unwrap();
        assert!(w
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("c_1-"));
        let url = Url::parse("http://a.test:8080/p?q=1").unwrap();
        w.page(&url, &answer(b"<p>hi</p>", true), 1000, "bot/1")
            .unwrap();
        let raw = std::fs::read(w.path()).unwrap();
        let mut text = Vec::new();
        MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut text)
            .unwrap();
        let text = String::from_utf8(text).unwrap();
        assert_eq!(text.matches("WARC/1.1\r\n").count(), 3, "{text}");
        let response = &text[text.find("WARC-Type: response").unwrap()..];
        let response = &response[..response.find("WARC/1.1").unwrap()];
        assert!(response.contains("WARC-Target-URI: http://a.test:8080/p?q=1\r\n"));
        assert!(response.contains("WARC-Truncated: length\r\n"));
        assert!(response.contains(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 9\r\n\r\n<p>hi</p>"
        ));
        assert!(
            !response.contains("gzip"),
            "the decoded body's headers say so"
        );
        let id = response
            .lines()
            .find_map(|l| l.strip_prefix("WARC-Record-ID: "))
            .unwrap();
        assert!(text.contains(&format!("WARC-Concurrent-To: {id}\r\n")));
        assert!(text.contains("GET /p?q=1 HTTP/1.1\r\nHost: a.test:8080\r\nUser-Agent: bot/1\r\n"));
        // Members: the warcinfo record, then the page's two.
        let members = raw.windows(3).filter(|w| *w == [0x1f, 0x8b, 0x08]).count();
        assert!(members >= 3);
    }
}
