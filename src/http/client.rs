//! Who is asking: the client's address (the TCP peer, or what trusted proxies forward) and user
//! agent, as a sign-in records them.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::auth::{Auth, HttpOptions, RequestContext};

/// The client of a request, for the session it opens.
#[derive(Debug, Clone, Default)]
pub(crate) struct Client {
    pub(crate) ip_address: Option<IpAddr>,
    pub(crate) user_agent: Option<String>,
}

impl Client {
    /// What the engine is told of this client, with `remember_me` for a sign-in.
    pub(crate) fn context(&self, remember_me: bool) -> RequestContext {
        RequestContext::default()
            .remember_me(remember_me)
            .user_agent(self.user_agent.as_deref())
            .ip_address(self.ip_address)
    }
}

impl<S> FromRequestParts<S> for Client
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        let auth = Auth::from_ref(state);
        // Present when the app is served with `into_make_service_with_connect_info`.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(Self {
            ip_address: peer.map(|peer| client_ip(auth.http_options(), peer, &parts.headers)),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
        })
    }
}

/// The client's address: `peer`, unless `peer` is a trusted proxy; then the last address of the
/// forwarding chain (`X-Forwarded-For`, else `Forwarded`) that is not a trusted proxy, reading
/// from the right as each proxy appends what it saw. An unreadable chain counts as none.
pub(crate) fn client_ip(options: &HttpOptions, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let trusted = |ip: &IpAddr| options.trusted_proxies.contains(&canonical(*ip));
    if !trusted(&peer) {
        return peer;
    }
    let mut chain = forwarded_for(headers);
    let mut client = peer;
    while let Some(hop) = chain.pop() {
        client = hop;
        if !trusted(&hop) {
            break;
        }
    }
    client
}

/// An IPv4 address seen as IPv4-mapped IPv6 (`::ffff:a.b.c.d`) compares as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The addresses of `X-Forwarded-For` (every header, in order) or, without it, the `for=` of
/// `Forwarded` (RFC 7239); empty if any entry is not an address.
fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    let values = |name| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
    };
    let parsed: Option<Vec<IpAddr>> = if headers.contains_key("x-forwarded-for") {
        values("x-forwarded-for").into_iter().map(address).collect()
    } else {
        values("forwarded")
            .into_iter()
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(key, _)| key.eq_ignore_ascii_case("for"))
                    .and_then(|(_, value)| address(value.trim_matches('"')))
            })
            .collect()
    };
    parsed
        .map(|chain| chain.into_iter().map(canonical).collect())
        .unwrap_or_default()
}

/// An address as proxies write it: bare, `[v6]`, `[v6]:port` or `v4:port`.
fn address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    text.rsplit_once(':')
        .and_then(|(ip, port)| port.parse::<u16>().ok().and(ip.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn forwarding_headers_count_only_from_a_trusted_peer() {
        let options = HttpOptions::default().trusted_proxies([ip("10.0.0.1"), ip("10.0.0.2")]);
        let spoofed = headers(&[("x-forwarded-for", "6.6.6.6")]);
        // Not from a trusted proxy: the header is the client's own word, ignored.
        assert_eq!(
            client_ip(&HttpOptions::default(), ip("203.0.113.9"), &spoofed),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(&options, ip("203.0.113.9"), &spoofed),
            ip("203.0.113.9")
        );
        // Through two trusted proxies: the last untrusted hop, whatever the client prepended.
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(
            client_ip(&options, ip("10.0.0.1"), &chain),
            ip("198.51.100.7")
        );
        let forwarded = headers(&[(
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.2",
        )]);
        assert_eq!(
            client_ip(&options, ip("10.0.0.1"), &forwarded),
            ip("2001:db8::7")
        );
        // A mapped peer address still matches; garbage in the chain leaves the peer.
        assert_eq!(
            client_ip(
                &options,
                ip("::ffff:10.0.0.1"),
                &headers(&[("x-forwarded-for", "1.2.3.4:80")])
            ),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_ip(
                &options,
                ip("10.0.0.1"),
                &headers(&[("x-forwarded-for", "not an ip")])
            ),
            ip("10.0.0.1")
        );
    }
}
