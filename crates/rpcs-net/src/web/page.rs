//! The page a browser gets on `GET` of an RPC path: the method list with
//! signatures and documentation, rendered here so it reads without scripts
//! (as Python's DocXMLRPCServer serves it), and a live view fed by the page's
//! own script over the WebSocket JSON-RPC every client uses: the server's
//! totals, and on a master its clients, stacks and storages.
//!
//! The page loads nothing from elsewhere. Its policy allows only its own
//! script and style (by hash) and connections back to this server, so a
//! stack or client name that looks like markup stays text: the script writes
//! names with `textContent` only, and the policy would stop an injected script
//! anyway.

use rpcs_core::{Method, MethodTable};
use std::fmt::Write as _;
use std::sync::LazyLock;

const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");

/// The page's Content-Security-Policy: its own script and style, by hash, and
/// connections to where it came from; nothing else, and no framing.
pub(crate) static POLICY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; script-src '{}'; style-src '{}'; connect-src 'self'; \
         img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        csp_hash(SCRIPT),
        csp_hash(STYLE)
    )
});

/// `sha256-BASE64`, as a policy names an inline script or style.
fn csp_hash(text: &str) -> String {
    use base64::Engine as _;
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    format!("sha256-{b64}")
}

/// What the page says about the server beyond its methods.
pub(crate) struct PageInfo<'a> {
    /// The service name (zerorpc's `_zerorpc_name`).
    pub service: &'a str,
    /// Whether callers need a token: the live view then authenticates.
    pub tokens: bool,
}

/// The page for a server with `table`.
pub(crate) fn render(table: &MethodTable, info: &PageInfo<'_>) -> String {
    let is_master = table.get("stack.getAllNames").is_some();
    let title = if is_master {
        format!("{} master", info.service)
    } else {
        info.service.to_owned()
    };
    let methods = listed(table);
    let mut html = String::with_capacity(16 * 1024 + methods.len() * 256);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head>\n\
         <body data-master=\"{is_master}\" data-tokens=\"{tokens}\">\n\
         <header><h1>{title}</h1><p class=\"sub\">rpcs {version} &middot; XML-RPC and JSON-RPC \
         over HTTP POST, JSON-RPC over WebSocket, on this address</p></header>\n",
        title = escape(&title),
        tokens = info.tokens,
        version = env!("CARGO_PKG_VERSION"),
    );
    html.push_str(LIVE);
    methods_section(&mut html, &methods);
    let _ = write!(html, "<script>{SCRIPT}</script>\n</body></html>\n");
    html
}

/// The live view's skeleton; the script fills it in and shows it.
const LIVE: &str = r#"<section id="live" hidden>
<h2>Live <span id="state" class="state">connecting</span></h2>
<form id="login" hidden><p>This server needs a token for the live view.</p>
<label>Name <input id="login-name" autocomplete="username" required></label>
<label>Secret <input id="login-secret" type="password" autocomplete="current-password" required></label>
<button type="submit">Connect</button></form>
<div id="totals" class="totals"></div>
<div id="master" hidden>
<h3>Clients <span id="clients-count" class="count"></span></h3>
<table id="clients"><thead><tr><th>Name</th><th>Host</th><th>Status</th><th>URL</th><th>Last visit</th><th>Leases</th><th>Pages</th><th>Errors</th><th>Messages</th></tr></thead><tbody></tbody></table>
<h3>Stacks <span id="stacks-count" class="count"></span></h3>
<table id="stacks"><thead><tr><th>Name</th><th>Items</th><th>Leased</th><th>In/s</th><th>Out/s</th><th>Change/s</th></tr></thead><tbody></tbody></table>
<h3>Storages <span id="storages-count" class="count"></span></h3>
<table id="storages"><thead><tr><th>Name</th><th>Parameters</th></tr></thead><tbody></tbody></table>
</div>
</section>
"#;

/// The methods worth listing: the table's, less the underscore aliases of
/// dotted names (`stack_push` beside `stack.push`), as `rpcs methods` shows them.
fn listed(table: &MethodTable) -> Vec<&Method> {
    table
        .methods()
        .filter(|m| {
            let dotted = m.name().replacen('_', ".", 1);
            dotted == m.name() || table.get(&dotted).is_none()
        })
        .collect()
}

fn methods_section(html: &mut String, methods: &[&Method]) {
    let _ = write!(
        html,
        "<section id=\"methods\"><h2>Methods <span class=\"count\">{}</span></h2>\n<nav>",
        methods.len()
    );
    for m in methods {
        let name = escape(m.name());
        let _ = write!(html, "<a href=\"#{}\">{name}</a> ", anchor(m.name()));
    }
    html.push_str("</nav>\n<dl>\n");
    for m in methods {
        let _ = write!(
            html,
            "<dt id=\"{}\" data-name=\"{}\"><code>{}</code>{}</dt><dd>",
            anchor(m.name()),
            escape(m.name()),
            escape(&m.synopsis()),
            if m.is_stream() {
                " <span class=\"tag\">stream</span>"
            } else {
                ""
            },
        );
        if m.doc().is_empty() {
            html.push_str("<p class=\"none\">No documentation.</p>");
        } else {
            let _ = write!(html, "<pre>{}</pre>", escape(m.doc()));
        }
        html.push_str("</dd>\n");
    }
    html.push_str("</dl></section>\n");
}

/// An element id for a method: its name with anything but letters, digits,
/// `-`, `_` and `.` made `-`, after a prefix so it cannot clash with the page's own.
fn anchor(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("m-{safe}")
}

/// Text made safe for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> MethodTable {
        let mut t = MethodTable::new();
        t.register("add", "Adds two <numbers> & more.", |a: i64, b: i64| a + b)
            .params(&["a", "b"]);
        t.register("stack.push", "Pushes.", |_: String| 0i64);
        t.register("stack_push", "Pushes.", |_: String| 0i64);
        t.register("odd\"name<x>", "", || 0i64);
        t
    }

    fn page(t: &MethodTable) -> String {
        render(
            t,
            &PageInfo {
                service: "svc",
                tokens: false,
            },
        )
    }

    #[test]
    fn lists_methods_with_synopsis_and_escaped_docs() {
        let html = page(&table());
        assert!(html.contains("<code>add(a: int, b: int) -&gt; int</code>"));
        assert!(html.contains("<pre>Adds two &lt;numbers&gt; &amp; more.</pre>"));
        assert!(html.contains("data-master=\"false\""));
    }

    #[test]
    fn hides_underscore_aliases_of_dotted_names() {
        let html = page(&table());
        assert!(html.contains("data-name=\"stack.push\""));
        assert!(!html.contains("data-name=\"stack_push\""));
    }

    #[test]
    fn a_name_with_markup_stays_text_and_its_anchor_is_plain() {
        let html = page(&table());
        assert!(html.contains("data-name=\"odd&quot;name&lt;x&gt;\""));
        assert!(html.contains("id=\"m-odd-name-x-\""));
        assert!(!html.contains("name<x>"));
    }

    #[test]
    fn policy_names_the_script_and_style_by_hash() {
        assert!(POLICY.contains(&format!("script-src '{}'", csp_hash(SCRIPT))));
        assert!(POLICY.contains(&format!("style-src '{}'", csp_hash(STYLE))));
        assert!(csp_hash("").starts_with("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="));
    }

    #[test]
    fn a_master_table_is_titled_master() {
        let mut t = table();
        t.register("stack.getAllNames", "", Vec::<String>::new);
        let html = page(&t);
        assert!(html.contains("<title>svc master</title>"));
        assert!(html.contains("data-master=\"true\""));
    }
}
