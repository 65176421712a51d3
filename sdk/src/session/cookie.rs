//! The session cookie: the `cookie` object express-session keeps in each
//! stored session, the `Set-Cookie` header it sends, and reading the
//! `Cookie` header back.
//!
//! Formats follow express-session and the `cookie` npm package to the
//! character, so a Node app and a wasmhost app can share sessions.

use std::time::{Duration, SystemTime};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use crate::text::{find_byte, split_byte, split_once_byte};

/// What JavaScript's `encodeURIComponent` leaves alone.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// The session cookie's `SameSite` attribute: whether browsers send the
/// cookie with requests that come from other sites. Set it with
/// [`crate::SessionOptions::same_site`]; without it the attribute is not sent
/// and browsers treat the cookie as `Lax`.
///
/// ```
/// use wasmhost_sdk::{SameSite, SessionOptions};
///
/// let options = SessionOptions::new("a secret").same_site(SameSite::Lax);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Sent only with requests from the cookie's own site.
    Strict,
    /// Also sent when the user follows a link to the site.
    Lax,
    /// Sent with cross-site requests too (browsers then require `Secure`,
    /// see [`crate::SessionOptions::secure`]).
    None,
}

impl SameSite {
    fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "strict",
            SameSite::Lax => "lax",
            SameSite::None => "none",
        }
    }

    fn attribute(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

impl Serialize for SameSite {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// `sameSite` as express accepts it: `true` (strict), `false` or null (not
/// set), or a name in any case.
fn same_site<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<SameSite>, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Null | serde_json::Value::Bool(false) => Ok(None),
        serde_json::Value::Bool(true) => Ok(Some(SameSite::Strict)),
        serde_json::Value::String(name) => match name.to_ascii_lowercase().as_str() {
            "strict" => Ok(Some(SameSite::Strict)),
            "lax" => Ok(Some(SameSite::Lax)),
            "none" => Ok(Some(SameSite::None)),
            _ => Err(de::Error::custom(format!("unknown sameSite {name:?}"))),
        },
        other => Err(de::Error::custom(format!("unknown sameSite {other}"))),
    }
}

/// `originalMaxAge` as JavaScript may leave it: any number (a fraction, or
/// negative once expired), or null.
fn max_age<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?
        .filter(|ms| ms.is_finite())
        .map(|ms| ms.max(0.0).round() as u64))
}

/// The latest date a cookie can carry (HTTP dates end with year 9999).
fn latest_date() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799)
}

/// A session's cookie, as express-session stores it in the session's
/// `cookie` object and sends it in `Set-Cookie`.
///
/// Stored field for field as express-session writes it:
/// `{"originalMaxAge":900000,"expires":"…Z","httpOnly":true,"path":"/"}`.
/// Each session starts with the cookie [`crate::SessionOptions`] describe; a
/// handler reads it with [`Session::cookie`](crate::Session::cookie()) and
/// changes it for one session with [`crate::Session::cookie_mut`] (a longer
/// [`original_max_age`](SessionCookie::original_max_age) for "remember me",
/// say).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use wasmhost_sdk::session::SessionCookie;
///
/// let mut cookie = SessionCookie {
///     original_max_age: Some(60_000),
///     ..SessionCookie::default()
/// };
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
/// cookie.reset_max_age(now);
/// assert_eq!(cookie.remaining(now), Some(Duration::from_secs(60)));
/// assert_eq!(
///     cookie.set_cookie("sid", "s:abc.sig"),
///     "sid=s%3Aabc.sig; Path=/; Expires=Mon, 12 Jan 1970 13:47:40 GMT; HttpOnly"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionCookie {
    /// The max age the cookie started with, in milliseconds; none for a
    /// browser-session cookie.
    #[serde(default, deserialize_with = "max_age")]
    pub original_max_age: Option<u64>,
    /// The `Partitioned` attribute (CHIPS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitioned: Option<bool>,
    /// The `Priority` attribute: `low`, `medium` or `high`, in any case;
    /// anything else is not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// When the cookie (and the stored session) expire; none for a
    /// browser-session cookie. Computed from
    /// [`original_max_age`](SessionCookie::original_max_age) by
    /// [`SessionCookie::reset_max_age`] when the session is saved or touched.
    #[serde(default, with = "iso_date")]
    pub expires: Option<SystemTime>,
    /// The `Secure` attribute: sent only over HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
    /// The `HttpOnly` attribute: hidden from the page's scripts.
    #[serde(default = "yes", deserialize_with = "truthy")]
    pub http_only: bool,
    /// The `Domain` attribute; none: the host that set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The `Path` attribute: the cookie is sent for paths under it.
    #[serde(default = "root")]
    pub path: String,
    /// The `SameSite` attribute.
    #[serde(
        default,
        deserialize_with = "same_site",
        skip_serializing_if = "Option::is_none"
    )]
    pub same_site: Option<SameSite>,
}

/// express-session's cookie defaults: `Path=/`, `HttpOnly`, no max age
/// (a browser-session cookie) and no other attribute.
///
/// ```
/// use wasmhost_sdk::session::SessionCookie;
///
/// let cookie = SessionCookie { original_max_age: Some(60_000), ..SessionCookie::default() };
/// assert_eq!((cookie.path.as_str(), cookie.http_only), ("/", true));
/// ```
impl Default for SessionCookie {
    fn default() -> Self {
        SessionCookie {
            original_max_age: None,
            partitioned: None,
            priority: None,
            expires: None,
            secure: None,
            http_only: true,
            domain: None,
            path: root(),
            same_site: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// A flag as JavaScript tests it (`if (opt.httpOnly)`): `null`, `0`, `""`
/// and `false` are false, anything else true. Node stores what it was given,
/// so a session another app wrote may hold any of these.
fn truthy<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Null => false,
        serde_json::Value::Bool(flag) => flag,
        serde_json::Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0 && !n.is_nan()),
        serde_json::Value::String(text) => !text.is_empty(),
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => true,
    })
}

fn root() -> String {
    "/".to_owned()
}

impl SessionCookie {
    /// Restarts the max age from `now`, as express-session's `touch` does:
    /// [`expires`](SessionCookie::expires) becomes `now` +
    /// [`original_max_age`](SessionCookie::original_max_age) (none without
    /// one; at most the end of year 9999).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use wasmhost_sdk::session::SessionCookie;
    ///
    /// let mut cookie = SessionCookie::default();
    /// cookie.original_max_age = Some(15 * 60 * 1000);
    /// let now = SystemTime::now();
    /// cookie.reset_max_age(now);
    /// assert_eq!(cookie.expires, Some(now + Duration::from_secs(15 * 60)));
    /// ```
    pub fn reset_max_age(&mut self, now: SystemTime) {
        self.expires = self.original_max_age.map(|ms| {
            let latest = latest_date();
            now.checked_add(Duration::from_millis(ms))
                .map_or(latest, |expires| expires.min(latest))
        });
    }

    /// How long the cookie has left at `now` (zero once it has expired);
    /// none if it has no expiry.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use wasmhost_sdk::session::SessionCookie;
    ///
    /// let mut cookie = SessionCookie::default();
    /// let now = SystemTime::now();
    /// assert_eq!(cookie.remaining(now), None);
    /// cookie.expires = Some(now + Duration::from_secs(90));
    /// assert_eq!(cookie.remaining(now), Some(Duration::from_secs(90)));
    /// assert_eq!(cookie.remaining(now + Duration::from_secs(120)), Some(Duration::ZERO));
    /// ```
    pub fn remaining(&self, now: SystemTime) -> Option<Duration> {
        self.expires
            .map(|expires| expires.duration_since(now).unwrap_or(Duration::ZERO))
    }

    /// What in this cookie, sent as `name`, the `cookie` npm package that
    /// express-session uses would refuse to serialize (it throws, and no
    /// cookie is sent): a name that is not an HTTP token, a domain that is
    /// not a host name, a path with a control character, `;` or `<` (which
    /// could end the attribute and start another), an unknown priority.
    pub(crate) fn invalid(&self, name: &str) -> Option<String> {
        const TOKEN_PUNCTUATION: &[u8] = b"!#$%&'*+-.^_`|~";
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || TOKEN_PUNCTUATION.contains(&b))
        {
            return Some(format!("cookie name {name:?} is not a token"));
        }
        if !self
            .path
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b';' && b != b'<')
        {
            return Some(format!("cookie path {:?} is invalid", self.path));
        }
        if let Some(domain) = &self.domain
            && !valid_domain(domain)
        {
            return Some(format!("cookie domain {domain:?} is invalid"));
        }
        if let Some(priority) = &self.priority
            && !["low", "medium", "high"].contains(&priority.to_ascii_lowercase().as_str())
        {
            return Some(format!("cookie priority {priority:?} is invalid"));
        }
        None
    }

    /// The `Set-Cookie` value for cookie `name` holding `value`, attributes in
    /// the order the `cookie` npm package writes them. The value is
    /// URL-encoded as `encodeURIComponent` does. The session layer sends it
    /// for you; this is for a guest that wants to see or test it.
    ///
    /// ```
    /// use wasmhost_sdk::SameSite;
    /// use wasmhost_sdk::session::SessionCookie;
    ///
    /// let cookie = SessionCookie {
    ///     secure: Some(true),
    ///     domain: Some("example.com".to_owned()),
    ///     same_site: Some(SameSite::Strict),
    ///     ..SessionCookie::default()
    /// };
    /// assert_eq!(
    ///     cookie.set_cookie("connect.sid", "s:id.sig"),
    ///     "connect.sid=s%3Aid.sig; Domain=example.com; Path=/; HttpOnly; Secure; SameSite=Strict"
    /// );
    /// ```
    pub fn set_cookie(&self, name: &str, value: &str) -> String {
        let mut header = format!("{name}={}", utf8_percent_encode(value, URI_COMPONENT));
        if let Some(domain) = &self.domain {
            header.push_str("; Domain=");
            header.push_str(domain);
        }
        header.push_str("; Path=");
        header.push_str(&self.path);
        if let Some(expires) = self.expires {
            header.push_str("; Expires=");
            header.push_str(&httpdate::fmt_http_date(expires.min(latest_date())));
        }
        if self.http_only {
            header.push_str("; HttpOnly");
        }
        if self.secure == Some(true) {
            header.push_str("; Secure");
        }
        if self.partitioned == Some(true) {
            header.push_str("; Partitioned");
        }
        match self
            .priority
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("low") => header.push_str("; Priority=Low"),
            Some("medium") => header.push_str("; Priority=Medium"),
            Some("high") => header.push_str("; Priority=High"),
            _ => {}
        }
        if let Some(same_site) = self.same_site {
            header.push_str("; SameSite=");
            header.push_str(same_site.attribute());
        }
        header
    }
}

/// A domain as the `cookie` package accepts it: dot-separated labels of
/// letters, digits and inner hyphens, at most 63 each, with an optional
/// leading dot.
fn valid_domain(domain: &str) -> bool {
    let domain = domain.strip_prefix('.').unwrap_or(domain);
    !domain.is_empty()
        && domain.split('.').all(|label| {
            let bytes = label.as_bytes();
            (1..=63).contains(&bytes.len())
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                && bytes[0] != b'-'
                && bytes[bytes.len() - 1] != b'-'
        })
}

/// The value of cookie `name` in `Cookie` headers, decoded as the `cookie`
/// npm package does: the first occurrence wins, quotes are dropped and
/// percent-escapes decoded (the value left as it is if they do not decode).
pub fn find<'a>(headers: impl IntoIterator<Item = &'a str>, name: &str) -> Option<String> {
    headers
        .into_iter()
        .flat_map(|header| split_byte(header, b';'))
        .find_map(|pair| {
            let (key, value) = split_once_byte(pair, b'=')?;
            (key.trim() == name).then(|| value.trim())
        })
        .map(|value| {
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            decode_uri_component(value).unwrap_or_else(|| value.to_owned())
        })
}

/// JavaScript's `decodeURIComponent`: none if an escape is malformed or the
/// result is not UTF-8 (where it throws, and the `cookie` package keeps the
/// value as sent). A plain byte loop: in a guest, the iterator adapters of
/// `percent_decode` cost more than the rest of finding the cookie.
pub(crate) fn decode_uri_component(value: &str) -> Option<String> {
    if find_byte(value, b'%').is_none() {
        return Some(value.to_owned());
    }
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let high = hex_digit(*bytes.get(at + 1)?)?;
            let low = hex_digit(*bytes.get(at + 2)?)?;
            decoded.push(high << 4 | low);
            at += 3;
        } else {
            decoded.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// `expires` as JavaScript's `Date.toISOString()` writes it, or null.
mod iso_date {
    use super::*;

    pub fn serialize<S: Serializer>(
        date: &Option<SystemTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match date {
            Some(date) => serializer.serialize_str(&format_iso(*date)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| {
                humantime::parse_rfc3339_weak(&text)
                    .map(whole_millis)
                    .map_err(de::Error::custom)
            })
            .transpose()
    }

    /// `date` to the millisecond, as a JavaScript `Date` holds it and
    /// [`format_iso`] writes it: a stored `expires` with more digits would
    /// otherwise not read back as it was written.
    fn whole_millis(date: SystemTime) -> SystemTime {
        let since_epoch = date
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        SystemTime::UNIX_EPOCH
            + Duration::new(
                since_epoch.as_secs(),
                since_epoch.subsec_millis() * 1_000_000,
            )
    }

    /// `2026-11-25T10:15:00.000Z`, written directly: this runs on every
    /// session save, and going through `fmt` cost more than the rest of it.
    pub(super) fn format_iso(date: SystemTime) -> String {
        let since_epoch = date
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let millis = since_epoch.subsec_millis();
        let seconds = since_epoch.as_secs();
        let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
        let (year, month, day) = civil_from_days(days);
        let fields = [
            (u64::from(year), 4),
            (u64::from(month), 2),
            (u64::from(day), 2),
            (second_of_day / 3600, 2),
            (second_of_day / 60 % 60, 2),
            (second_of_day % 60, 2),
            (u64::from(millis), 3),
        ];
        let separators = ['-', '-', 'T', ':', ':', '.', 'Z'];
        let mut text = String::with_capacity(24);
        for ((value, width), separator) in fields.into_iter().zip(separators) {
            push_digits(&mut text, value, width);
            text.push(separator);
        }
        text
    }

    fn push_digits(text: &mut String, value: u64, width: u32) {
        for place in (0..width).rev() {
            let digit = (value / 10u64.pow(place) % 10) as u8;
            text.push(char::from(b'0' + digit));
        }
    }

    /// Year, month and day of a day count since 1970-01-01 (Howard
    /// Hinnant's `civil_from_days`, for dates on or after the epoch).
    fn civil_from_days(days: u64) -> (u32, u32, u32) {
        let z = days + 719_468;
        let era = z / 146_097;
        let day_of_era = z % 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let mp = (5 * day_of_year + 2) / 153;
        let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (year_of_era + era * 400 + u64::from(month <= 2)) as u32;
        (year, month, day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_paths_domains_and_priorities_the_cookie_package_refuses() {
        let mut cookie = express_default(at(0));
        assert_eq!(cookie.invalid("connect.sid"), None);
        assert!(cookie.invalid("").is_some());
        assert!(cookie.invalid("a b").is_some());
        assert!(cookie.invalid("a;b").is_some());
        assert!(cookie.invalid("a=b").is_some());
        for bad in ["/; Domain=evil.example", "/a\nb", "/<x", "/é"] {
            cookie.path = bad.to_owned();
            assert!(cookie.invalid("sid").is_some(), "{bad:?} accepted");
        }
        cookie.path = "/a:b=c~d".to_owned();
        assert_eq!(cookie.invalid("sid"), None);
        for (domain, valid) in [
            ("example.com", true),
            (".example.com", true),
            ("a-b.example", true),
            ("-a.example", false),
            ("a..b", false),
            ("evil.example; Secure", false),
            ("", false),
        ] {
            cookie.domain = Some(domain.to_owned());
            assert_eq!(cookie.invalid("sid").is_none(), valid, "{domain:?}");
        }
        cookie.domain = None;
        cookie.priority = Some("HIGH".to_owned());
        assert_eq!(cookie.invalid("sid"), None);
        cookie.priority = Some("urgent".to_owned());
        assert!(cookie.invalid("sid").is_some());
    }

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn express_default(now: SystemTime) -> SessionCookie {
        let mut cookie = SessionCookie {
            original_max_age: Some(900_000),
            ..SessionCookie::default()
        };
        cookie.reset_max_age(now);
        cookie
    }

    #[test]
    fn stored_json_is_express_sessions() {
        // 2026-11-25T10:00:00Z
        let cookie = express_default(at(1_795_600_800));
        assert_eq!(
            serde_json::to_string(&cookie).unwrap(),
            r#"{"originalMaxAge":900000,"expires":"2026-11-25T10:15:00.000Z","httpOnly":true,"path":"/"}"#
        );
        let back: SessionCookie =
            serde_json::from_str(&serde_json::to_string(&cookie).unwrap()).unwrap();
        assert_eq!(back, cookie);
    }

    #[test]
    fn a_browser_session_cookie_stores_nulls() {
        let cookie = SessionCookie {
            original_max_age: None,
            ..express_default(at(0))
        };
        let mut cookie = cookie;
        cookie.reset_max_age(at(0));
        assert_eq!(
            serde_json::to_string(&cookie).unwrap(),
            r#"{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"}"#
        );
    }

    #[test]
    fn reads_what_node_wrote() {
        let json = r#"{"originalMaxAge":60000,"partitioned":false,"expires":"2026-11-25T10:01:00.000Z","secure":false,"httpOnly":false,"domain":"example.com","path":"/app","sameSite":true}"#;
        let cookie: SessionCookie = serde_json::from_str(json).unwrap();
        assert_eq!(cookie.original_max_age, Some(60_000));
        assert_eq!(cookie.expires, Some(at(1_795_600_860)));
        assert!(!cookie.http_only);
        assert_eq!(cookie.same_site, Some(SameSite::Strict));

        let json = r#"{"originalMaxAge":-12.5,"expires":"2026-11-25T10:01:00.000Z","httpOnly":true,"path":"/","sameSite":false,"priority":"high"}"#;
        let cookie: SessionCookie = serde_json::from_str(json).unwrap();
        assert_eq!(cookie.original_max_age, Some(0));
        assert_eq!(cookie.same_site, None);
        assert!(
            cookie
                .set_cookie("sid", "v")
                .ends_with("; HttpOnly; Priority=High")
        );
        let json = r#"{"originalMaxAge":null,"httpOnly":true,"path":"/"}"#;
        let cookie: SessionCookie = serde_json::from_str(json).unwrap();
        assert_eq!(cookie.expires, None);
    }

    #[test]
    fn expires_is_read_to_the_millisecond_as_javascript_does() {
        let json = r#"{"originalMaxAge":1,"expires":"2026-11-25T10:00:00.0019Z","httpOnly":true,"path":"/"}"#;
        let cookie: SessionCookie = serde_json::from_str(json).unwrap();
        assert_eq!(
            cookie.expires,
            Some(at(1_795_600_800) + Duration::from_millis(1))
        );
        let written = serde_json::to_string(&cookie).unwrap();
        assert!(written.contains(r#""expires":"2026-11-25T10:00:00.001Z""#));
        assert_eq!(
            serde_json::from_str::<SessionCookie>(&written).unwrap(),
            cookie
        );
    }

    #[test]
    fn iso_dates_match_humantime() {
        for seconds in [
            0,
            951_782_400,
            1_795_600_800,
            4_107_542_400,
            253_402_300_799,
        ] {
            for millis in [0, 7, 999] {
                let date = at(seconds) + Duration::from_millis(millis);
                assert_eq!(
                    iso_date::format_iso(date),
                    humantime::format_rfc3339_millis(date).to_string()
                );
            }
        }
    }

    #[test]
    fn a_huge_max_age_is_capped_at_year_9999() {
        let mut cookie = SessionCookie {
            original_max_age: Some(u64::MAX),
            ..express_default(at(0))
        };
        cookie.reset_max_age(at(1_795_600_800));
        assert!(
            cookie
                .set_cookie("sid", "v")
                .contains("Expires=Fri, 31 Dec 9999 23:59:59 GMT")
        );
        assert!(
            serde_json::to_string(&cookie)
                .unwrap()
                .contains("9999-12-31T23:59:59.000Z")
        );
    }

    #[test]
    fn set_cookie_is_what_express_sends() {
        let cookie = express_default(at(1_795_600_800));
        assert_eq!(
            cookie.set_cookie("connect.sid", "s:abc-_.x+y/z"),
            "connect.sid=s%3Aabc-_.x%2By%2Fz; Path=/; Expires=Wed, 25 Nov 2026 10:15:00 GMT; HttpOnly"
        );
        let all = SessionCookie {
            secure: Some(true),
            domain: Some("example.com".into()),
            same_site: Some(SameSite::Lax),
            ..cookie
        };
        assert_eq!(
            all.set_cookie("sid", "v"),
            "sid=v; Domain=example.com; Path=/; Expires=Wed, 25 Nov 2026 10:15:00 GMT; HttpOnly; Secure; SameSite=Lax"
        );
    }

    #[test]
    fn finds_cookies_like_the_cookie_package() {
        let headers = [
            "a=1; connect.sid=s%3Aid.sig; connect.sid=second",
            "b=\"q%20\"",
        ];
        assert_eq!(find(headers, "connect.sid").as_deref(), Some("s:id.sig"));
        assert_eq!(find(headers, "b").as_deref(), Some("q "));
        assert_eq!(find(["x=%E0%A4%A"], "x").as_deref(), Some("%E0%A4%A"));
        // decodeURIComponent throws on any malformed escape: all kept as sent.
        assert_eq!(find(["x=a%zz%41"], "x").as_deref(), Some("a%zz%41"));
        assert_eq!(find(["x=%FF"], "x").as_deref(), Some("%FF"));
        assert_eq!(find(["x=s%3Aid%2e%C3%A9"], "x").as_deref(), Some("s:id.é"));
        assert_eq!(find(headers, "missing"), None);
    }
}
