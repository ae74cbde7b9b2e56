//! The SSRF guard: a service that POSTs to URLs it is given must not be a way into the
//! network it runs in. A webhook target whose address is loopback, private, link-local,
//! unspecified, multicast, carrier-grade NAT, unique-local or otherwise not globally
//! routable (also when written as an IPv4-mapped or NAT64 IPv6 address) is refused,
//! unless the operator allows private targets (`risk-server --allow-private-webhooks`).
//!
//! The check runs twice:
//! * when a subscription is created ([`Guard::check_url`]): the URL's literal address, or
//!   every address its host name resolves to, must be allowed (422 otherwise);
//! * on every attempt: the dispatcher's HTTP client resolves names through
//!   [`GuardedResolver`], which drops refused addresses (and fails when none is left), so a
//!   name that resolved to a public address at subscription time and to a private one later
//!   (DNS rebinding) is never connected to. Literal addresses skip resolvers, so the
//!   dispatcher checks them itself ([`Guard::check_literal`]); redirects are not followed
//!   and no proxy is used, so the address checked is the address connected to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;

/// Why a webhook URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// Not an absolute URL.
    #[error("`{url}` is not an absolute URL: {reason}")]
    Parse {
        /// The text given (cut to 200 characters).
        url: String,
        /// The parser's reason.
        reason: String,
    },
    /// Not `http` or `https`.
    #[error("the scheme must be https or http, not `{0}`")]
    Scheme(String),
    /// User name or password in the URL.
    #[error("credentials in the URL are not accepted (the signature authenticates the sender)")]
    Credentials,
    /// A fragment (`#...`), which is never sent.
    #[error("a URL fragment (`#...`) is never sent; remove it")]
    Fragment,
    /// Longer than [`MAX_URL_LEN`].
    #[error("the URL is longer than {MAX_URL_LEN} characters")]
    TooLong,
    /// No host.
    #[error("the URL has no host")]
    NoHost,
    /// The address is not a public one.
    #[error("`{host}` is {what} address {addr}; private targets need risk-server --allow-private-webhooks")]
    Refused {
        /// The URL's host.
        host: String,
        /// The refused address.
        addr: IpAddr,
        /// What kind of address (`a loopback`, `a private`, ...).
        what: &'static str,
    },
    /// The host name does not resolve.
    #[error("`{host}` does not resolve: {reason}")]
    Unresolved {
        /// The URL's host.
        host: String,
        /// The resolver's error.
        reason: String,
    },
}

/// The longest URL accepted.
pub const MAX_URL_LEN: usize = 2_048;

/// What kind of non-public address `ip` is (`"a loopback"`, ...), or `None` for an address
/// that is globally routable.
#[must_use]
pub fn refused_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("an unspecified (0.0.0.0/8)")
    } else if ip.is_loopback() {
        Some("a loopback")
    } else if ip.is_private() {
        Some("a private (RFC 1918)")
    } else if ip.is_link_local() {
        Some("a link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a carrier-grade NAT (100.64.0.0/10)")
    } else if ip.is_multicast() {
        Some("a multicast")
    } else if ip.is_broadcast() || a >= 240 {
        Some("a reserved (240.0.0.0/4)")
    } else if ip.is_documentation() {
        Some("a documentation")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("a benchmarking (198.18.0.0/15)")
    } else if a == 192 && b == 0 && c == 0 {
        Some("an IETF protocol (192.0.0.0/24)")
    } else {
        None
    }
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        // ::ffff:a.b.c.d reaches the IPv4 address.
        return refused_v4(v4).map(|_| "an IPv4-mapped non-public");
    }
    if ip.is_unspecified() {
        Some("an unspecified")
    } else if ip.is_loopback() {
        Some("a loopback")
    } else if ip.is_unique_local() {
        Some("a unique-local (fc00::/7)")
    } else if ip.is_unicast_link_local() {
        Some("a link-local")
    } else if ip.is_multicast() {
        Some("a multicast")
    } else if seg[0] & 0xffc0 == 0xfec0 {
        Some("a site-local (fec0::/10)")
    } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
        Some("a documentation")
    } else if seg[..6] == [0, 0, 0, 0, 0, 0] {
        // The deprecated IPv4-compatible form ::a.b.c.d.
        Some("an IPv4-compatible")
    } else if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
        let v4 = Ipv4Addr::new(
            (seg[6] >> 8) as u8,
            (seg[6] & 0xff) as u8,
            (seg[7] >> 8) as u8,
            (seg[7] & 0xff) as u8,
        );
        refused_v4(v4).map(|_| "a NAT64 non-public")
    } else if seg[0] == 0x2002 {
        // 6to4 (2002::/16) embeds an IPv4 address.
        let v4 = Ipv4Addr::new(
            (seg[1] >> 8) as u8,
            (seg[1] & 0xff) as u8,
            (seg[2] >> 8) as u8,
            (seg[2] & 0xff) as u8,
        );
        refused_v4(v4).map(|_| "a 6to4 non-public")
    } else {
        None
    }
}

/// The policy on target addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Guard {
    /// Private, loopback and link-local targets are allowed (for tests and closed
    /// networks).
    pub allow_private: bool,
}

impl Guard {
    /// A guard that refuses non-public addresses unless `allow_private`.
    #[must_use]
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }

    /// Whether `ip` may be connected to.
    #[must_use]
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow_private || refused_kind(ip).is_none()
    }

    fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), GuardError> {
        match refused_kind(ip) {
            Some(what) if !self.allow_private => Err(GuardError::Refused {
                host: host.to_owned(),
                addr: ip,
                what,
            }),
            _ => Ok(()),
        }
    }

    /// Parses a subscription's URL and checks its form and its addresses: a literal
    /// address must be allowed; a host name must resolve, and to allowed addresses only.
    ///
    /// # Errors
    /// [`GuardError`] naming the reason.
    pub async fn check_url(&self, text: &str) -> Result<Url, GuardError> {
        if text.len() > MAX_URL_LEN {
            return Err(GuardError::TooLong);
        }
        let url = Url::parse(text.trim()).map_err(|e| GuardError::Parse {
            url: text.chars().take(200).collect(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(GuardError::Scheme(url.scheme().to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(GuardError::Credentials);
        }
        if url.fragment().is_some() {
            return Err(GuardError::Fragment);
        }
        match url.host() {
            None => Err(GuardError::NoHost),
            Some(url::Host::Ipv4(ip)) => self.check_ip(&ip.to_string(), IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_ip(&ip.to_string(), IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => {
                let port = url.port_or_known_default().unwrap_or(443);
                let addrs = tokio::net::lookup_host((name, port)).await.map_err(|e| {
                    GuardError::Unresolved {
                        host: name.to_owned(),
                        reason: e.to_string(),
                    }
                })?;
                let mut any = false;
                for addr in addrs {
                    any = true;
                    self.check_ip(name, addr.ip())?;
                }
                if any {
                    Ok(())
                } else {
                    Err(GuardError::Unresolved {
                        host: name.to_owned(),
                        reason: "no address".to_owned(),
                    })
                }
            }
        }?;
        Ok(url)
    }

    /// At send time: a URL whose host is a literal address (which no resolver sees) must
    /// name an allowed one.
    ///
    /// # Errors
    /// [`GuardError::Refused`], [`GuardError::NoHost`].
    pub fn check_literal(&self, url: &Url) -> Result<(), GuardError> {
        match url.host() {
            None => Err(GuardError::NoHost),
            Some(url::Host::Ipv4(ip)) => self.check_ip(&ip.to_string(), IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_ip(&ip.to_string(), IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => Ok(()),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The dispatcher's resolver: the system's answer without the addresses the guard refuses;
/// an error when none is left, so the connection is never attempted.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// The policy.
    pub guard: Guard,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.guard;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // The port is replaced by the URL's port by the connector.
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| guard.allows(a.ip()))
                .collect();
            if allowed.is_empty() {
                let refused = found
                    .first()
                    .map(|a| GuardError::Refused {
                        host: host.clone(),
                        addr: a.ip(),
                        what: refused_kind(a.ip()).unwrap_or("a refused"),
                    })
                    .unwrap_or(GuardError::Unresolved {
                        host,
                        reason: "no address".to_owned(),
                    });
                return Err(Box::new(refused) as BoxError);
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok::<_, BoxError>(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Option<&'static str> {
        refused_kind(text.parse().expect("an address"))
    }

    #[test]
    fn non_public_addresses_are_refused() {
        for refused in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "192.0.0.8",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "fec0::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:c0a8:0101::1",
        ] {
            assert!(kind(refused).is_some(), "{refused} must be refused");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "93.184.215.14",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(kind(public), None, "{public} is public");
        }
        assert_eq!(kind("127.0.0.1"), Some("a loopback"));
        assert_eq!(kind("::ffff:127.0.0.1"), Some("an IPv4-mapped non-public"));
    }

    #[tokio::test]
    async fn urls_are_checked_when_subscribing() {
        let strict = Guard::new(false);
        let open = Guard::new(true);
        let e = strict
            .check_url("http://127.0.0.1:9/hook")
            .await
            .expect_err("loopback");
        assert!(e.to_string().contains("--allow-private-webhooks"), "{e}");
        assert!(open.check_url("http://127.0.0.1:9/hook").await.is_ok());
        // Other spellings of loopback and private addresses.
        for url in [
            "http://127.1/",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://localhost/",
            "https://10.0.0.1/x",
            "http://169.254.169.254/latest/meta-data",
        ] {
            assert!(
                matches!(strict.check_url(url).await, Err(GuardError::Refused { .. })),
                "{url}: {:?}",
                strict.check_url(url).await
            );
        }
        assert_eq!(
            strict.check_url("ftp://8.8.8.8/").await,
            Err(GuardError::Scheme("ftp".into()))
        );
        assert_eq!(
            strict.check_url("https://u:p@8.8.8.8/").await,
            Err(GuardError::Credentials)
        );
        assert_eq!(
            strict.check_url("https://8.8.8.8/#x").await,
            Err(GuardError::Fragment)
        );
        assert!(matches!(
            strict.check_url("not a url").await,
            Err(GuardError::Parse { .. })
        ));
        assert!(strict.check_url("https://8.8.8.8/hook").await.is_ok());
        let long = format!("https://8.8.8.8/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(strict.check_url(&long).await, Err(GuardError::TooLong));
    }

    #[test]
    fn literal_addresses_are_checked_at_send_time() {
        let url = Url::parse("http://[::ffff:10.0.0.1]:8080/").expect("url");
        assert!(Guard::new(false).check_literal(&url).is_err());
        assert!(Guard::new(true).check_literal(&url).is_ok());
        let named = Url::parse("https://hooks.example.com/").expect("url");
        assert!(Guard::new(false).check_literal(&named).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses() {
        use reqwest::dns::Resolve as _;
        let name: reqwest::dns::Name = "localhost".parse().expect("name");
        let strict = GuardedResolver {
            guard: Guard::new(false),
        };
        let e = match strict.resolve(name).await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("localhost resolves to loopback only"),
        };
        assert!(e.contains("loopback"), "{e}");
        let open = GuardedResolver {
            guard: Guard::new(true),
        };
        let name: reqwest::dns::Name = "localhost".parse().expect("name");
        let addrs: Vec<SocketAddr> = open.resolve(name).await.expect("resolves").collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }
}
