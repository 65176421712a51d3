//! The request's authority, as RFC 9112 §3.2 has a server take it: an
//! HTTP/1.1 request names exactly one valid `Host`, and a request in
//! absolute form (`GET http://example.com/ HTTP/1.1`) names its authority in
//! the target, which then wins over `Host`. A guest that routes or builds
//! links by host must not be handed two hosts, none, or one with spaces in
//! it; a proxy in front and the guest must agree on which host a request is
//! for.

use hyper::Version;
use hyper::header::{HOST, HeaderValue};
use hyper::http::request::Parts;

/// Why a request's authority is refused (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadHost {
    Missing,
    Several,
    Invalid,
}

impl BadHost {
    /// The body of the 400 answer.
    pub fn message(self) -> &'static str {
        match self {
            BadHost::Missing => "missing Host header",
            BadHost::Several => "more than one Host header",
            BadHost::Invalid => "invalid Host header",
        }
    }
}

/// Checks the request's `Host` and, for a target in absolute form, sets
/// `Host` to the target's authority, so the guest sees the one the request
/// is for.
pub fn check(parts: &mut Parts) -> Result<(), BadHost> {
    // A walk over the few headers a request has costs less than a lookup.
    let mut hosts = parts
        .headers
        .iter()
        .filter_map(|(name, value)| (name == HOST).then_some(value));
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => return Err(BadHost::Several),
        (Some(host), None) if !is_valid(host.as_bytes()) => return Err(BadHost::Invalid),
        // Even with the authority in the target: RFC 9112 §3.2.
        (None, _) if parts.version == Version::HTTP_11 => return Err(BadHost::Missing),
        _ => {}
    }
    if let Some(authority) = parts.uri.authority() {
        // hyper parsed it already; a userinfo (`user@host`) is no host.
        let authority = authority.as_str();
        if !is_valid(authority.as_bytes()) {
            return Err(BadHost::Invalid);
        }
        let value = HeaderValue::from_str(authority).map_err(|_| BadHost::Invalid)?;
        parts.headers.insert(HOST, value);
    }
    Ok(())
}

/// Whether `value` is a valid `Host` value: `uri-host [ ":" port ]` of RFC
/// 3986 (a registered name, an IPv4 address or an IP literal in brackets),
/// without userinfo, or empty (a target without an authority).
pub fn is_valid(value: &[u8]) -> bool {
    let (host_ok, rest) = match value.first() {
        Some(b'[') => match value.iter().position(|&b| b == b']') {
            Some(end) => (
                end > 1
                    && value[1..end]
                        .iter()
                        .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.'),
                &value[end + 1..],
            ),
            None => return false,
        },
        _ => {
            let end = value.iter().position(|&b| b == b':').unwrap_or(value.len());
            (
                value[..end].iter().all(|&b| is_reg_name_byte(b)),
                &value[end..],
            )
        }
    };
    host_ok
        && match rest {
            [] => true,
            [b':', port @ ..] => port.len() <= 5 && port.iter().all(u8::is_ascii_digit),
            _ => false,
        }
}

/// `unreserved / pct-encoded / sub-delims` of RFC 3986's `reg-name`: a
/// table, since every request's `Host` goes through it byte by byte.
fn is_reg_name_byte(b: u8) -> bool {
    REG_NAME[usize::from(b)]
}

const REG_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::Request;

    fn parts(version: Version, target: &str, hosts: &[&str]) -> Parts {
        let mut request = Request::builder().version(version).uri(target);
        for host in hosts {
            request = request.header(HOST, *host);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn hosts_are_valid_as_rfc_3986_spells_them() {
        for good in [
            "example.com",
            "example.com:8080",
            "127.0.0.1:80",
            "[::1]:8080",
            "[2001:db8::1]",
            "xn--bcher-kva.example",
            "",
        ] {
            assert!(is_valid(good.as_bytes()), "{good}");
        }
        for bad in [
            "a b",
            "user@example.com",
            "example.com/path",
            "example.com:80:80",
            "example.com:http",
            "[::1",
            "[]",
            "[::1]x",
            "example.com:123456",
            "exa\tmple",
        ] {
            assert!(!is_valid(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn http_1_1_needs_exactly_one_valid_host() {
        let v11 = Version::HTTP_11;
        assert_eq!(check(&mut parts(v11, "/", &[])), Err(BadHost::Missing));
        assert_eq!(
            check(&mut parts(v11, "/", &["a", "b"])),
            Err(BadHost::Several)
        );
        assert_eq!(check(&mut parts(v11, "/", &["a b"])), Err(BadHost::Invalid));
        assert_eq!(check(&mut parts(v11, "/", &["a:80"])), Ok(()));
        assert_eq!(check(&mut parts(Version::HTTP_10, "/", &[])), Ok(()));
    }

    #[test]
    fn an_absolute_target_s_authority_wins_over_host() {
        let mut request = parts(Version::HTTP_11, "http://real.example:81/x", &["other"]);
        assert_eq!(check(&mut request), Ok(()));
        assert_eq!(request.headers[HOST], "real.example:81");
        assert_eq!(request.headers.get_all(HOST).iter().count(), 1);
        let mut without = parts(Version::HTTP_11, "http://real.example/x", &[]);
        assert_eq!(check(&mut without), Err(BadHost::Missing));
    }
}
