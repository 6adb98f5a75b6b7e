//! The rules of the walk, one test each, and properties over generated chains.

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

mod properties {
    //! Chains of trusted hops, untrusted hops and junk, spelled in either header (over one line or
    //! several), against the rules: the answer is the peer or a hop; nothing left of the first
    //! untrusted hop from the right counts, whatever the client wrote there; trusted hops only
    //! answer the leftmost; with no header or an untrusted peer the answer is the peer; an
    //! entry naming no address stops the walk at the trusted hop right of it.

    use proptest::prelude::*;

    use super::*;

    /// One hop of a generated chain; the numbers pick a spelling.
    #[derive(Debug, Clone)]
    enum Hop {
        Trusted(IpAddr, usize),
        Untrusted(IpAddr, usize),
        Junk(usize),
    }

    /// Entries that name no address, none with a comma or an unclosed quote (a proxy's own
    /// entries are well-formed; a client's arbitrary text is `prefix()`).
    const XFF_JUNK: &[&str] = &[
        "unknown",
        "_hidden",
        "",
        "not an ip",
        "1.2.3",
        "198.51.100.7:",
        "[2001:db8::1",
        "198.51.100.7:99999",
        "10.0.0.0/8",
        "\u{e9}",
    ];
    const FORWARDED_JUNK: &[&str] = &[
        "for=unknown",
        "for=_hidden",
        "for=\"_hidden:4711\"",
        "",
        "proto=https",
        "for=2001:db8::1",
        "for=198.51.100.1;for=198.51.100.2",
        "for=\"[2001:db8::1\"",
        "for=\"198.51.100.1:\"",
        "for=10.0.0.1:80",
        "for",
    ];

    fn trusted(ip: IpAddr) -> bool {
        TRUSTED
            .iter()
            .any(|range| range.parse::<IpNet>().unwrap().contains(&canonical(ip)))
    }

    fn trusted_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 3]>().prop_map(|[a, b, c]| IpAddr::from([10, a, b, c])),
            any::<[u16; 5]>()
                .prop_map(|[a, b, c, d, e]| IpAddr::from([0x2001, 0xdb8, 0xff, a, b, c, d, e])),
            Just(IpAddr::from([192, 0, 2, 1])),
        ]
    }

    fn untrusted_ip() -> impl Strategy<Value = IpAddr> {
        any::<IpAddr>().prop_filter("an untrusted address", |ip| !trusted(*ip))
    }

    fn hop() -> impl Strategy<Value = Hop> {
        prop_oneof![
            3 => (trusted_ip(), any::<usize>()).prop_map(|(ip, n)| Hop::Trusted(ip, n)),
            3 => (untrusted_ip(), any::<usize>()).prop_map(|(ip, n)| Hop::Untrusted(ip, n)),
            1 => any::<usize>().prop_map(Hop::Junk),
        ]
    }

    fn trusted_hop() -> impl Strategy<Value = Hop> {
        (trusted_ip(), any::<usize>()).prop_map(|(ip, n)| Hop::Trusted(ip, n))
    }

    /// Whatever a client may send: printable text with quotes, escapes, separators, and bytes
    /// that are not ASCII.
    fn prefix() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                4 => b' '..=b'~',
                2 => proptest::sample::select(b"\",;=\\[]:_".to_vec()),
                1 => 0x80_u8..=0xff,
            ],
            0..40,
        )
    }

    /// How `ip` is written in an entry of `header`, by choice `n`.
    fn spell(header: ForwardedHeader, ip: IpAddr, n: usize) -> String {
        let port = n % 65536;
        let spellings = match (header, ip) {
            (ForwardedHeader::Forwarded, IpAddr::V4(v4)) => vec![
                format!("for={v4}"),
                format!("for=\"{v4}:{port}\""),
                format!("for=\"{v4}:_p{port}\""),
                format!("For=\"[::ffff:{v4}]\""),
            ],
            (ForwardedHeader::Forwarded, IpAddr::V6(v6)) => vec![
                format!("for=\"[{v6}]\""),
                format!("for=\"[{v6}]:{port}\""),
                format!("FOR=\"{v6}\""),
            ],
            (_, IpAddr::V4(v4)) => vec![
                format!("{v4}"),
                format!("{v4}:{port}"),
                format!("::ffff:{v4}"),
                format!("[::ffff:{v4}]:{port}"),
            ],
            (_, IpAddr::V6(v6)) => {
                vec![format!("{v6}"), format!("[{v6}]"), format!("[{v6}]:{port}")]
            }
        };
        let node = spellings[n % spellings.len()].clone();
        if header != ForwardedHeader::Forwarded {
            return node;
        }
        // Other parameters around `for`, one with separators inside its quoted string.
        match (n / 7) % 4 {
            0 => node,
            1 => format!("{node};proto=https"),
            2 => format!("by=\"[2001:db8::1]\"; {node}"),
            _ => format!("host=\"a,b;c=\\\"d\\\"\";{node};proto=http"),
        }
    }

    fn entry(header: ForwardedHeader, hop: &Hop) -> String {
        match (hop, header) {
            (Hop::Trusted(ip, n) | Hop::Untrusted(ip, n), _) => spell(header, *ip, *n),
            (Hop::Junk(n), ForwardedHeader::Forwarded) => {
                FORWARDED_JUNK[n % FORWARDED_JUNK.len()].to_owned()
            }
            (Hop::Junk(n), _) => XFF_JUNK[n % XFF_JUNK.len()].to_owned(),
        }
    }

    /// `chain` in `header`'s syntax, as header lines: a new line before hop `i` where
    /// `breaks[i]`, `prefix` (the client's own text) at the start of the first.
    fn lines(
        header: ForwardedHeader,
        prefix: &[u8],
        chain: &[Hop],
        breaks: &[bool],
    ) -> Vec<Vec<u8>> {
        let mut lines = vec![prefix.to_vec()];
        // Whether the last line holds no entry yet (an empty entry is one).
        let mut fresh = prefix.is_empty();
        for (i, hop) in chain.iter().enumerate() {
            if breaks.get(i).copied().unwrap_or(false) && !fresh {
                lines.push(Vec::new());
                fresh = true;
            }
            let line = lines.last_mut().unwrap();
            if !fresh {
                line.extend_from_slice(b", ");
            }
            line.extend_from_slice(entry(header, hop).as_bytes());
            fresh = false;
        }
        lines
    }

    /// A request whose `header` holds `chain` and whose other header holds `other`.
    fn request(
        header: ForwardedHeader,
        prefix: &[u8],
        chain: &[Hop],
        breaks: &[bool],
        other: &[Hop],
    ) -> HeaderMap {
        let (name, other_name, other_header) = match header {
            ForwardedHeader::Forwarded => (
                "forwarded",
                "x-forwarded-for",
                ForwardedHeader::XForwardedFor,
            ),
            _ => ("x-forwarded-for", "forwarded", ForwardedHeader::Forwarded),
        };
        let mut map = HeaderMap::new();
        for line in lines(header, prefix, chain, breaks) {
            map.append(name, HeaderValue::from_bytes(&line).unwrap());
        }
        for line in lines(other_header, b"", other, &[]) {
            map.append(other_name, HeaderValue::from_bytes(&line).unwrap());
        }
        map
    }

    /// The rule on the model: from a trusted peer, right to left, the first untrusted address,
    /// else the trusted hop right of the first junk entry, else the leftmost hop.
    fn expected(peer: IpAddr, chain: &[Hop]) -> IpAddr {
        if !trusted(peer) {
            return canonical(peer);
        }
        let mut client = canonical(peer);
        for hop in chain.iter().rev() {
            match hop {
                Hop::Trusted(ip, _) => client = canonical(*ip),
                Hop::Untrusted(ip, _) => return canonical(*ip),
                Hop::Junk(_) => break,
            }
        }
        client
    }

    fn addresses(chain: &[Hop]) -> Vec<IpAddr> {
        chain
            .iter()
            .filter_map(|hop| match hop {
                Hop::Trusted(ip, _) | Hop::Untrusted(ip, _) => Some(canonical(*ip)),
                Hop::Junk(_) => None,
            })
            .collect()
    }

    fn header() -> impl Strategy<Value = ForwardedHeader> {
        prop_oneof![
            Just(ForwardedHeader::XForwardedFor),
            Just(ForwardedHeader::Forwarded),
        ]
    }

    fn peer() -> impl Strategy<Value = IpAddr> {
        prop_oneof![trusted_ip(), untrusted_ip()]
    }

    fn chain() -> impl Strategy<Value = Vec<Hop>> {
        proptest::collection::vec(hop(), 0..8)
    }

    fn breaks() -> impl Strategy<Value = Vec<bool>> {
        proptest::collection::vec(proptest::bool::weighted(0.2), 8)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn the_answer_is_the_peer_or_an_address_of_the_chain(
            header in header(), peer in peer(), chain in chain(), breaks in breaks(), other in chain(),
        ) {
            let answer = client_ip(&options(header), peer, &request(header, b"", &chain, &breaks, &other));
            prop_assert!(answer == canonical(peer) || addresses(&chain).contains(&answer), "{:?}", answer);
        }

        #[test]
        fn the_walk_follows_the_rule_in_either_header(
            header in header(), peer in peer(), chain in chain(), breaks in breaks(), other in chain(),
        ) {
            let answer = client_ip(&options(header), peer, &request(header, b"", &chain, &breaks, &other));
            prop_assert_eq!(answer, expected(peer, &chain));
        }

        #[test]
        fn nothing_left_of_the_first_untrusted_hop_from_the_right_counts(
            header in header(),
            peer in trusted_ip(),
            prefix in prefix(),
            left in chain(),
            client in untrusted_ip(),
            n in any::<usize>(),
            proxies in proptest::collection::vec(trusted_hop(), 0..4),
            breaks in breaks(),
        ) {
            // Whatever the client wrote (raw text, hops, junk, trusted addresses), its proxies
            // appended its address and theirs: the answer is its address.
            let mut chain = left;
            chain.push(Hop::Untrusted(client, n));
            chain.extend(proxies);
            let answer = client_ip(&options(header), peer, &request(header, &prefix, &chain, &breaks, &[]));
            prop_assert_eq!(answer, canonical(client));
        }

        #[test]
        fn a_chain_of_trusted_proxies_only_answers_its_leftmost_hop(
            header in header(),
            peer in trusted_ip(),
            chain in proptest::collection::vec(trusted_hop(), 1..8),
            breaks in breaks(),
        ) {
            let answer = client_ip(&options(header), peer, &request(header, b"", &chain, &breaks, &[]));
            prop_assert_eq!(Some(answer), addresses(&chain).first().copied());
        }

        #[test]
        fn with_no_header_or_an_untrusted_peer_the_answer_is_the_peer(
            header in header(), trusted_peer in trusted_ip(), untrusted_peer in untrusted_ip(),
            chain in chain(), breaks in breaks(), other in chain(),
        ) {
            let request = request(header, b"", &chain, &breaks, &other);
            prop_assert_eq!(client_ip(&options(header), untrusted_peer, &request), canonical(untrusted_peer));
            let none = options(ForwardedHeader::None);
            prop_assert_eq!(client_ip(&none, trusted_peer, &request), canonical(trusted_peer));
            prop_assert_eq!(client_ip(&none, untrusted_peer, &request), canonical(untrusted_peer));
        }

        #[test]
        fn junk_never_moves_the_answer_off_an_untrusted_hop_right_of_it(
            header in header(), peer in trusted_ip(), chain in chain(), junk in any::<usize>(),
            position in any::<proptest::sample::Index>(), breaks in breaks(),
        ) {
            let options = options(header);
            let before = client_ip(&options, peer, &request(header, b"", &chain, &breaks, &[]));
            let mut injected = chain.clone();
            let at = position.index(chain.len() + 1);
            injected.insert(at, Hop::Junk(junk));
            let after = client_ip(&options, peer, &request(header, b"", &injected, &breaks, &[]));
            // Where the walk stops right of the junk, the junk is never reached; where it stops
            // at an untrusted hop, that hop is the answer, not a proxy.
            if let Some(stop) = chain[at..].iter().rev().find(|hop| !matches!(hop, Hop::Trusted(..))) {
                prop_assert_eq!(after, before);
                if let Hop::Untrusted(ip, _) = stop {
                    prop_assert_eq!(after, canonical(*ip));
                }
            }
        }
    }
}
