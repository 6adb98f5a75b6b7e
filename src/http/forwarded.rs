//! The client's address behind trusted proxies: the configured forwarding header read as a chain
//! of hops and walked from the right.
//!
//! Each proxy appends the address it took the request from, so a chain reads
//! `client, proxy1, proxy2` and the TCP peer is the last proxy. An entry is the word of whoever
//! appended it, and only the entries right of every untrusted hop were appended by trusted
//! proxies; so the walk starts at the peer and moves left while the hop it reaches is trusted:
//!
//! - an address that is not a trusted proxy is the client's, and the walk ends there: everything
//!   further left is that client's own say;
//! - an entry that names no address (`unknown`, an obfuscated `_name`, an empty or malformed
//!   entry, a `Forwarded` element without `for=`) also ends the walk, at the trusted hop right of
//!   it (the peer when it is the last entry). A trusted proxy wrote it because it could not or
//!   would not say who connected to it; whoever that was wrote everything further left, so
//!   passing over it would take an address the client may have chosen. The trusted hop is the
//!   nearest address known to be true, as in a chain of trusted proxies only.
//!
//! A client cannot put an unreadable entry where the walk reads it: its proxy appends the
//! client's address right of whatever the client sent, and the walk stops at that address
//! before it reaches the client's junk, which therefore leaves the client on its own address,
//! never on the proxy's. Entries are parsed one at a time, from the right, and only as
//! far as the walk goes.

use std::borrow::Cow;
use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderValue};
use ipnet::IpNet;

use crate::auth::{ForwardedHeader, HttpOptions};

/// The client's address: `peer`, unless `peer` is a trusted proxy and the configured header
/// names the client (see the module's documentation). IPv4-mapped addresses come back as IPv4.
pub(crate) fn client_ip(options: &HttpOptions, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let peer = canonical(peer);
    if !trusts(options, peer) {
        return peer;
    }
    match options.forwarded_header {
        ForwardedHeader::XForwardedFor => walk(
            options,
            peer,
            lines_from_right(headers, "x-forwarded-for")
                .flat_map(|line| line.rsplit(|&byte| byte == b','))
                .map(x_forwarded_for_entry),
        ),
        ForwardedHeader::Forwarded => walk(
            options,
            peer,
            lines_from_right(headers, "forwarded")
                .flat_map(elements_from_right)
                .map(forwarded_element),
        ),
        ForwardedHeader::None => peer,
    }
}

/// Walks `hops` (last first, `None` for an entry that names no address) from the trusted
/// `peer`: the first untrusted address, else the last trusted hop reached.
fn walk(options: &HttpOptions, peer: IpAddr, hops: impl Iterator<Item = Option<IpAddr>>) -> IpAddr {
    let mut client = peer;
    for hop in hops {
        match hop.map(canonical) {
            Some(ip) if trusts(options, ip) => client = ip,
            Some(ip) => return ip,
            // Written by the trusted `client`, about a party nobody vouches for: stop here.
            None => break,
        }
    }
    client
}

/// Whether `ip` (canonical) is in one of the trusted proxies' ranges.
fn trusts(options: &HttpOptions, ip: IpAddr) -> bool {
    options
        .trusted_proxies
        .iter()
        .any(|range| canonical_range(*range).contains(&ip))
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address, since a dual-stack
/// socket reports IPv4 peers that way.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// A range inside `::ffff:0:0/96` as the IPv4 range it maps, so that it holds the canonical
/// addresses.
fn canonical_range(range: IpNet) -> IpNet {
    match (range, canonical(range.network())) {
        (IpNet::V6(v6), IpAddr::V4(v4)) if v6.prefix_len() >= 96 => {
            IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).unwrap_or(range)
        }
        _ => range,
    }
}

/// The values of header `name`, last first. Bytes, not text: a client's non-ASCII bytes make
/// its own entries unreadable, not the line its proxy appended to.
fn lines_from_right<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> impl Iterator<Item = &'a [u8]> {
    headers
        .get_all(name)
        .iter()
        .rev()
        .map(HeaderValue::as_bytes)
}

/// The address of one `X-Forwarded-For` entry.
fn x_forwarded_for_entry(entry: &[u8]) -> Option<IpAddr> {
    address(std::str::from_utf8(entry).ok()?.trim_matches(OWS))
}

/// The elements of one `Forwarded` line, last first: split at the commas outside quoted
/// strings. Counting quotes from the right, a comma is outside them when the text right of it
/// holds an even number of unescaped quotes; reading from the right keeps a client's unclosed
/// quote on the left from swallowing the elements its proxies appended.
fn elements_from_right(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut end = Some(line.len());
    std::iter::from_fn(move || {
        let stop = end?;
        // Whether an odd number of unescaped quotes lies right of here.
        let mut quoted = false;
        for (at, &byte) in line[..stop].iter().enumerate().rev() {
            match byte {
                b'"' if !escaped(&line[..at]) => quoted = !quoted,
                b',' if !quoted => {
                    end = Some(at);
                    return Some(&line[at + 1..stop]);
                }
                _ => {}
            }
        }
        end = None;
        Some(&line[..stop])
    })
}

/// Whether the byte after `before` is escaped: `before` ends in an odd run of backslashes.
fn escaped(before: &[u8]) -> bool {
    before
        .iter()
        .rev()
        .take_while(|&&byte| byte == b'\\')
        .count()
        % 2
        == 1
}

/// The address in the `for=` of one `Forwarded` element (RFC 7239): `None` unless the element
/// is well-formed and has exactly one `for` (the RFC allows no more), naming an address.
fn forwarded_element(element: &[u8]) -> Option<IpAddr> {
    let mut rest = std::str::from_utf8(element).ok()?;
    let mut node = None;
    loop {
        rest = rest.trim_start_matches(OWS);
        if let Some(after) = rest.strip_prefix(';') {
            rest = after;
            continue;
        }
        if rest.is_empty() {
            break;
        }
        let (name, after) = rest.split_once('=')?;
        if name.is_empty() || !name.chars().all(is_tchar) {
            return None;
        }
        let (value, after) = parameter_value(after)?;
        if name.eq_ignore_ascii_case("for") && node.replace(value).is_some() {
            return None;
        }
        rest = after.trim_start_matches(OWS);
        if !rest.is_empty() && !rest.starts_with(';') {
            return None;
        }
    }
    address(&node?)
}

/// A parameter's value at the start of `text` (a token, or a quoted string with its escapes
/// undone), and the text after it.
fn parameter_value(text: &str) -> Option<(Cow<'_, str>, &str)> {
    let Some(quoted) = text.strip_prefix('"') else {
        let end = text.find(|c| !is_tchar(c)).unwrap_or(text.len());
        let (token, after) = text.split_at(end);
        return (!token.is_empty()).then_some((Cow::Borrowed(token), after));
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((Cow::Owned(value), &quoted[at + 1..])),
            '\\' => value.push(chars.next()?.1),
            c => value.push(c),
        }
    }
    None
}

/// An address as proxies write it: bare (`192.0.2.1`, `2001:db8::1`), `[2001:db8::1]`, or with
/// a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`), which RFC 7239 lets a proxy obfuscate
/// (`_p1`). `unknown`, an obfuscated name (`_hidden`) and anything else name no address.
fn address(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    let (ip, rest) = match text.strip_prefix('[') {
        Some(bracketed) => {
            let (v6, rest) = bracketed.split_once(']')?;
            (IpAddr::V6(v6.parse().ok()?), rest)
        }
        None => {
            let (v4, rest) = text.split_at(text.find(':')?);
            (IpAddr::V4(v4.parse().ok()?), rest)
        }
    };
    (rest.is_empty() || rest.strip_prefix(':').is_some_and(port)).then_some(ip)
}

/// A port as RFC 7239 writes it: up to five digits, or `_` and an obfuscated identifier.
fn port(text: &str) -> bool {
    match text.strip_prefix('_') {
        Some(obfuscated) => {
            !obfuscated.is_empty()
                && obfuscated
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(&byte))
        }
        None => {
            text.len() <= 5
                && text.bytes().all(|byte| byte.is_ascii_digit())
                && text.parse::<u16>().is_ok()
        }
    }
}

/// A character of an HTTP token (RFC 9110's `tchar`).
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// HTTP's optional whitespace.
const OWS: &[char] = &[' ', '\t'];

#[cfg(test)]
mod tests;
