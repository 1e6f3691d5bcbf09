//! Where a tenant's HTTP sink may post. A job spec is untrusted, and a URL
//! on loopback, a private network or a link-local address would reach Weir
//! itself (its HTTP API), the machine's other services or a cloud metadata
//! endpoint. Unless the installation allows private addresses, an HTTP sink
//! posts only to public unicast addresses: a literal address is checked
//! when the sink is set up, a name at every connection through the client's
//! resolver (so a name that later resolves to a private address is refused
//! too).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether an HTTP sink may connect to `ip` without the private allowance.
pub fn public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                // Shared address space (carrier-grade NAT), 100.64.0.0/10.
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || o[0] == 0)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // Unique local fc00::/7 and link-local fe80::/10.
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// Why an HTTP sink may not post to `url`, if it may not: it must be an
/// `http` or `https` URL, and without `allow_private` its host may not be
/// `localhost` or a non-public address.
pub fn url_problem(url: &str, allow_private: bool) -> Option<String> {
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return Some(format!("not a URL: {e}")),
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return Some(format!("scheme `{}`: only http and https", parsed.scheme()));
    }
    if allow_private {
        return None;
    }
    let Some(host) = parsed.host_str() else {
        return Some("has no host".into());
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return (!public(ip)).then(|| format!("{ip} is not a public address"));
    }
    let lower = host.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return Some("`localhost` is not a public address".into());
    }
    None
}

/// Resolves names, keeping only public addresses.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = all.iter().copied().filter(|a| public(a.ip())).collect();
            if kept.is_empty() {
                let e: Box<dyn std::error::Error + Send + Sync> = format!(
                    "{host} resolves to no public address ({}); HTTP sinks post only to public addresses",
                    all.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>().join(", ")
                )
                .into();
                return Err(e);
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// The client HTTP sinks post with.
pub fn client(allow_private: bool) -> reqwest::Client {
    let builder = reqwest::Client::builder();
    let builder = if allow_private {
        builder
    } else {
        // Names go through the resolver on every connection, redirects
        // included; a redirect to a literal address does not, so it is
        // checked here.
        builder
            .dns_resolver(Arc::new(PublicOnly))
            .redirect(reqwest::redirect::Policy::custom(
                |attempt| match redirect_problem(attempt.url(), attempt.previous().len()) {
                    Some(p) => attempt.error(p),
                    None => attempt.follow(),
                },
            ))
    };
    // Building fails only on a TLS backend that cannot load: fall back to
    // the default client rather than lose the sink.
    builder.build().unwrap_or_default()
}

/// Most redirects an HTTP sink follows.
const MAX_REDIRECTS: usize = 10;

/// Why a redirect to `url` (after `followed` others) is not followed.
fn redirect_problem(url: &reqwest::Url, followed: usize) -> Option<String> {
    if followed >= MAX_REDIRECTS {
        return Some(format!("more than {MAX_REDIRECTS} redirects"));
    }
    let host = url.host_str()?;
    // IPv6 literals come bracketed; a name does not parse as an address.
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    (!public(ip)).then(|| format!("redirect to {url} refused: {ip} is not a public address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_to_private_literals_and_endless_chains_are_refused() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(redirect_problem(&u("http://127.0.0.1:8080/v1"), 0).is_some());
        assert!(redirect_problem(&u("http://169.254.169.254/latest"), 1).is_some());
        assert!(redirect_problem(&u("http://[::1]/"), 0).is_some());
        assert!(redirect_problem(&u("http://10.0.0.5/"), 0).is_some());
        // Names are checked by the resolver when the connection is made.
        assert_eq!(redirect_problem(&u("https://example.com/next"), 0), None);
        assert_eq!(redirect_problem(&u("http://8.8.8.8/"), 0), None);
        assert!(redirect_problem(&u("https://example.com/"), MAX_REDIRECTS).is_some());
    }

    #[test]
    fn only_public_unicast_addresses_are_public() {
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_are_checked_for_scheme_and_host() {
        assert_eq!(url_problem("https://hooks.example.com/x", false), None);
        assert!(url_problem("http://127.0.0.1:8080/v1", false).is_some());
        assert!(url_problem("http://localhost:8080/", false).is_some());
        assert!(url_problem("http://169.254.169.254/latest/meta-data", false).is_some());
        assert!(url_problem("http://[::1]/", false).is_some());
        assert!(url_problem("file:///etc/passwd", true).is_some());
        assert!(url_problem("not a url", true).is_some());
        assert_eq!(url_problem("http://127.0.0.1:8080/v1", true), None);
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_at_connect() {
        let e = client(false)
            .post("http://localhost:9/hook")
            .send()
            .await
            .expect_err("refused");
        let chain = format!("{e:?}");
        assert!(chain.contains("no public address"), "{chain}");
    }
}
