//! The egress gate: every outgoing request Tandem makes on a user's behalf goes only to public
//! addresses, unless the operator allows private ones.
//!
//! The check is made on the address actually connected to: names are resolved by
//! [`PublicOnlyResolver`], which drops loopback, private, link-local and reserved addresses
//! (so a name that resolves to `127.0.0.1`, or is re-pointed there after the webhook was saved,
//! is refused), and address literals — which are never resolved — are checked by
//! [`check_url`] before sending. Redirects are not followed, so a public server cannot bounce a
//! request inward.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tandem_core::webhook::is_public;

/// A destination the gate refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub host: String,
    pub reason: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} refused: {}", self.host, self.reason)
    }
}

impl std::error::Error for Refused {}

/// Which destinations are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Egress {
    /// Loopback, private and link-local destinations too (tests, single-network installs).
    pub allow_private: bool,
}

impl Egress {
    fn allows(self, ip: IpAddr) -> bool {
        self.allow_private || is_public(ip)
    }

    /// Refuses a URL whose host is an address literal the gate does not allow (names are
    /// checked when they are resolved).
    pub fn check_url(self, url: &reqwest::Url) -> Result<(), Refused> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(_)) => return Ok(()),
            None => {
                return Err(Refused { host: url.to_string(), reason: "the URL names no host".into() });
            }
        };
        if self.allows(ip) { Ok(()) } else { Err(Refused { host: ip.to_string(), reason: not_public(ip) }) }
    }

    /// The resolver to build HTTP clients with.
    pub fn resolver(self) -> Arc<PublicOnlyResolver> {
        Arc::new(PublicOnlyResolver { egress: self })
    }
}

fn not_public(ip: IpAddr) -> String {
    format!(
        "{ip} is a loopback, private or reserved address, and this server only sends to public addresses \
         (the operator can allow private ones with --allow-private-webhooks)"
    )
}

/// Resolves names with the system resolver and keeps only the addresses the gate allows.
#[derive(Debug, Clone)]
pub struct PublicOnlyResolver {
    egress: Egress,
}

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let egress = self.egress;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found.iter().copied().filter(|a| egress.allows(a.ip())).collect();
            if allowed.is_empty() {
                let reason = match found.first() {
                    Some(addr) => not_public(addr.ip()),
                    None => "the name resolves to no address".to_string(),
                };
                return Err(Box::new(Refused { host, reason }) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The gate's refusal somewhere in an error's chain of causes.
pub fn refusal<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused);
        }
        cause = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_checked() {
        let table = [
            ("https://93.184.215.14/hook", false, true),
            ("http://127.0.0.1:9000/hook", false, false),
            ("http://127.0.0.1:9000/hook", true, true),
            ("http://[fe80::1]/hook", false, false),
            ("http://0x7f.1/hook", false, false),
            ("https://hooks.example.org/hook", false, true),
        ];
        for (url, allow_private, ok) in table {
            let url = reqwest::Url::parse(url).unwrap();
            let got = Egress { allow_private }.check_url(&url);
            assert_eq!(got.is_ok(), ok, "{url} {allow_private}: {got:?}");
        }
    }

    #[tokio::test]
    async fn names_resolving_inward_are_refused() {
        let refused = Egress::default().resolver().resolve("localhost".parse().unwrap()).await;
        let err = refused.err().expect("localhost is refused");
        let refusal = refusal(err.as_ref()).expect("a refusal");
        assert_eq!(refusal.host, "localhost");
        assert!(refusal.reason.contains("loopback"), "{}", refusal.reason);

        let allowed = Egress { allow_private: true }.resolver().resolve("localhost".parse().unwrap()).await;
        assert!(allowed.unwrap().all(|a| a.ip().is_loopback()));
    }
}
