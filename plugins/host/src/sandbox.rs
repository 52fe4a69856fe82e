//! The rules `http.fetch` enforces: the manifest's host allow-list, the egress gate (no
//! loopback, private or link-local addresses unless the operator allows them), a per-run call
//! budget, a response size cap, a timeout, and credentials the host adds so the plugin never
//! reads them.

use serde::{Deserialize, Serialize};

/// A secret the host adds to requests for one host, e.g. `Authorization: Bearer …`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// The host name the credential is for (exactly, or `*.example.com` for its subdomains).
    pub host: String,
    pub header: String,
    pub value: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("host", &self.host)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

/// Whether `host` matches an allow-list `pattern`: the same name (case-insensitive), or, for
/// `*.example.com`, any name ending in `.example.com` (not `example.com` itself).
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
        None => host == pattern,
    }
}

/// Why a request was refused before it was sent, or `None` when it may go.
pub fn refuse(allowed_hosts: &[String], url: &url::Url) -> Option<String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Some(format!("{url}: only http and https URLs may be fetched"));
    }
    let Some(host) = url.host_str() else {
        return Some(format!("{url}: the URL names no host"));
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if allowed_hosts.iter().any(|p| host_matches(p, host)) {
        return None;
    }
    let list = if allowed_hosts.is_empty() { "none".to_string() } else { allowed_hosts.join(", ") };
    Some(format!("{host} is not among the hosts this plugin may call ({list})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_table() {
        let allowed =
            vec!["api.example.com".to_string(), "*.hooks.example.org".to_string(), "127.0.0.1".into()];
        let table = [
            ("https://api.example.com/x", true),
            ("https://API.example.com./x", true),
            ("https://evil.api.example.com/x", false),
            ("https://a.hooks.example.org/x", true),
            ("https://hooks.example.org/x", false),
            ("https://xhooks.example.org/x", false),
            ("http://127.0.0.1:8080/x", true),
            ("http://[::1]:8080/x", false),
            ("ftp://api.example.com/x", false),
            ("file:///etc/passwd", false),
        ];
        for (url, ok) in table {
            let url = url::Url::parse(url).unwrap();
            assert_eq!(refuse(&allowed, &url).is_none(), ok, "{url}: {:?}", refuse(&allowed, &url));
        }
        let refused = refuse(&[], &url::Url::parse("https://x.test/").unwrap()).unwrap();
        assert!(refused.contains("x.test is not among the hosts this plugin may call (none)"), "{refused}");
    }

    #[test]
    fn credentials_do_not_print_their_value() {
        let c =
            Credential { host: "h".into(), header: "authorization".into(), value: "Bearer s3cret".into() };
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
