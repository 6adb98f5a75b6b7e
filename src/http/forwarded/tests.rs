//! The rules of the walk, one test each.

use super::*;

/// Trusted: a private range, an IPv6 range, and one address.
const TRUSTED: [&str; 3] = ["10.0.0.0/8", "2001:db8:ff::/48", "192.0.2.1/32"];

fn options(header: ForwardedHeader) -> HttpOptions {
    HttpOptions::default()
        .trusted_proxies(TRUSTED.map(|range| range.parse::<IpNet>().unwrap()))
        .forwarded_header(header)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_bytes(value.as_bytes()).unwrap());
    }
    map
}

/// The client behind peer 10.0.0.1 (trusted) with `X-Forwarded-For: chain`.
fn behind_xff(chain: &str) -> IpAddr {
    client_ip(
        &options(ForwardedHeader::XForwardedFor),
        ip("10.0.0.1"),
        &headers(&[("x-forwarded-for", chain)]),
    )
}

/// The client behind peer 10.0.0.1 (trusted) with `Forwarded: chain`.
fn behind_forwarded(chain: &str) -> IpAddr {
    client_ip(
        &options(ForwardedHeader::Forwarded),
        ip("10.0.0.1"),
        &headers(&[("forwarded", chain)]),
    )
}

#[test]
fn headers_count_only_from_a_trusted_peer() {
    let spoofed = headers(&[("x-forwarded-for", "6.6.6.6"), ("forwarded", "for=6.6.6.6")]);
    // No trusted proxy (the default): from any peer, even one that would be.
    for peer in ["203.0.113.9", "10.0.0.1"] {
        assert_eq!(
            client_ip(&HttpOptions::default(), ip(peer), &spoofed),
            ip(peer)
        );
    }
    for header in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded] {
        assert_eq!(
            client_ip(&options(header), ip("203.0.113.9"), &spoofed),
            ip("203.0.113.9")
        );
    }
}

#[test]
fn the_first_untrusted_hop_from_the_right_is_the_client() {
    assert_eq!(
        behind_xff("6.6.6.6, 198.51.100.7, 10.0.0.2"),
        ip("198.51.100.7")
    );
    assert_eq!(
        behind_forwarded("for=6.6.6.6, for=198.51.100.7, for=10.0.0.2"),
        ip("198.51.100.7")
    );
    // Header lines are one list, in order: a proxy may add a line rather than extend one.
    let lines = headers(&[
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-for", "198.51.100.7, 192.0.2.1"),
    ]);
    let options = options(ForwardedHeader::XForwardedFor);
    assert_eq!(
        client_ip(&options, ip("10.0.0.1"), &lines),
        ip("198.51.100.7")
    );
    // Without the header, a trusted peer is the client (a health check, say).
    assert_eq!(
        client_ip(&options, ip("10.0.0.1"), &HeaderMap::new()),
        ip("10.0.0.1")
    );
}

#[test]
fn a_chain_of_trusted_proxies_only_answers_its_leftmost_hop() {
    assert_eq!(behind_xff("10.9.9.9, 192.0.2.1, 10.0.0.2"), ip("10.9.9.9"));
    assert_eq!(
        behind_forwarded("for=\"[2001:db8:ff::9]\", for=10.0.0.2"),
        ip("2001:db8:ff::9")
    );
}

#[test]
fn only_the_configured_header_is_read() {
    // A proxy that writes X-Forwarded-For passes a client's `Forwarded` on untouched, and the
    // other way round.
    let both = headers(&[
        ("forwarded", "for=6.6.6.6"),
        ("x-forwarded-for", "198.51.100.7"),
    ]);
    let peer = ip("10.0.0.1");
    let answer = |header| client_ip(&options(header), peer, &both);
    assert_eq!(answer(ForwardedHeader::XForwardedFor), ip("198.51.100.7"));
    let both = headers(&[
        ("x-forwarded-for", "6.6.6.6"),
        ("forwarded", "for=198.51.100.7"),
    ]);
    let answer = |header| client_ip(&options(header), peer, &both);
    assert_eq!(answer(ForwardedHeader::Forwarded), ip("198.51.100.7"));
    assert_eq!(answer(ForwardedHeader::None), peer);
    // The other header alone is not a fallback.
    let other = headers(&[("forwarded", "for=6.6.6.6")]);
    let options = options(ForwardedHeader::XForwardedFor);
    assert_eq!(client_ip(&options, peer, &other), peer);
}

#[test]
fn ranges_and_ipv4_mapped_addresses_are_trusted_as_ipv4() {
    // A mapped peer in a trusted IPv4 range, and a mapped hop, answered as IPv4.
    let chain = headers(&[("x-forwarded-for", "::ffff:198.51.100.7, ::ffff:10.2.3.4")]);
    let options = options(ForwardedHeader::XForwardedFor);
    assert_eq!(
        client_ip(&options, ip("::ffff:10.200.0.1"), &chain),
        ip("198.51.100.7")
    );
    // An untrusted peer comes back as IPv4 too.
    assert_eq!(
        client_ip(&options, ip("::ffff:198.51.100.8"), &chain),
        ip("198.51.100.8")
    );
    // A range written in its mapped form holds the IPv4 addresses.
    let mapped =
        HttpOptions::default().trusted_proxies(["::ffff:10.0.0.0/104".parse::<IpNet>().unwrap()]);
    assert_eq!(
        client_ip(&mapped, ip("10.0.0.1"), &chain),
        ip("198.51.100.7")
    );
    // A plain address still works as a range of one, and its neighbour is not trusted.
    let one = HttpOptions::default().trusted_proxies([ip("10.0.0.1")]);
    assert_eq!(client_ip(&one, ip("10.0.0.1"), &chain), ip("10.2.3.4"));
    assert_eq!(client_ip(&one, ip("10.0.0.2"), &chain), ip("10.0.0.2"));
}

#[test]
fn junk_left_of_the_client_is_never_read() {
    // Before, one unreadable entry anywhere discarded the chain: a client could put itself on
    // its proxy's address.
    assert_eq!(behind_xff("not an ip, 198.51.100.7"), ip("198.51.100.7"));
    assert_eq!(
        behind_xff("\u{e9}\u{ff}, 198.51.100.7, 10.0.0.2"),
        ip("198.51.100.7")
    );
    assert_eq!(
        behind_forwarded("for=unknown, for=198.51.100.7"),
        ip("198.51.100.7")
    );
    // An unclosed quote of the client's does not swallow what its proxy appended.
    assert_eq!(
        behind_forwarded("for=\"[2001:db8::1, for=198.51.100.7"),
        ip("198.51.100.7")
    );
    assert_eq!(
        behind_forwarded("for=\"\\\", for=198.51.100.7;host=\"a,b\""),
        ip("198.51.100.7")
    );
}

#[test]
fn an_entry_that_names_no_address_stops_the_walk_at_the_proxy_that_wrote_it() {
    // 10.0.0.2 could not say who reached it; 6.6.6.6 is that party's word.
    for chain in [
        "6.6.6.6, unknown, 10.0.0.2",
        "6.6.6.6, _hidden, 10.0.0.2",
        "6.6.6.6, , 10.0.0.2",
        "6.6.6.6, 1.2.3.4:99999, 10.0.0.2",
    ] {
        assert_eq!(behind_xff(chain), ip("10.0.0.2"), "{chain:?}");
    }
    for chain in [
        "for=6.6.6.6, for=unknown, for=10.0.0.2",
        "for=6.6.6.6, for=\"_hidden:4711\", for=10.0.0.2",
        "for=6.6.6.6, proto=https, for=10.0.0.2",
        "for=6.6.6.6, for=6.6.6.7;for=6.6.6.8, for=10.0.0.2",
    ] {
        assert_eq!(behind_forwarded(chain), ip("10.0.0.2"), "{chain:?}");
    }
    // Written by the peer itself: the peer.
    assert_eq!(behind_xff("6.6.6.6, garbage"), ip("10.0.0.1"));
    assert_eq!(behind_forwarded("for=6.6.6.6, for=_hidden"), ip("10.0.0.1"));
}

#[test]
fn forwarded_elements_are_read_as_rfc_7239_writes_them() {
    for (element, client) in [
        ("for=198.51.100.7", "198.51.100.7"),
        ("For=\"198.51.100.7:4711\"", "198.51.100.7"),
        ("for=\"198.51.100.7:_p1\"", "198.51.100.7"),
        ("for=\"[2001:db8::7]\"", "2001:db8::7"),
        ("for=\"[2001:db8::7]:4711\";proto=https", "2001:db8::7"),
        (
            "by=\"[2001:db8::1]\"; for=198.51.100.7 ;proto=http",
            "198.51.100.7",
        ),
        // Commas, semicolons and escaped quotes inside another parameter's quoted string.
        (
            "for=198.51.100.7;host=\"a,b;for=6.6.6.6\\\",c\"",
            "198.51.100.7",
        ),
        ("host=\"x, for=6.6.6.6\";for=198.51.100.7", "198.51.100.7"),
    ] {
        assert_eq!(behind_forwarded(element), ip(client), "{element:?}");
    }
    // Not RFC 7239 (IPv6 unquoted, a port outside quotes, unclosed), so no address.
    for element in [
        "for=2001:db8::7",
        "for=198.51.100.7:80",
        "for=\"198.51.100.7",
        "for=\"[2001:db8::7]x\"",
        "for",
        "for=",
    ] {
        assert_eq!(behind_forwarded(element), ip("10.0.0.1"), "{element:?}");
    }
}

#[test]
fn x_forwarded_for_entries_may_carry_ports_and_brackets() {
    for (entry, client) in [
        ("198.51.100.7", "198.51.100.7"),
        (" 198.51.100.7:4711\t", "198.51.100.7"),
        ("2001:db8::7", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("[2001:db8::7]:4711", "2001:db8::7"),
    ] {
        assert_eq!(behind_xff(entry), ip(client), "{entry:?}");
    }
    for entry in [
        "198.51.100.7:",
        "198.51.100.7:+80",
        "[2001:db8::7",
        "198.51.100.0/24",
    ] {
        assert_eq!(behind_xff(entry), ip("10.0.0.1"), "{entry:?}");
    }
}
