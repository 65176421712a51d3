//! The stored form of a session: the JSON express-session writes (its
//! fields plus a `cookie` object), read back in one pass into [`Fields`] and
//! a cookie, written out again field by field, and the three-way merge of
//! fields that [`crate::SessionOptions::merge_concurrent_writes`] saves with.
//!
//! Below [`super::handle`]: it reads the store through the options (for the
//! key) and reports in [`super::error`]'s terms, and knows nothing of a
//! request's session, so the format can be read (and fuzzed, through
//! `crate::__fuzz`) on its own.

use std::fmt;

use serde_json::Value;
use serde_json::value::RawValue;

use super::cookie::SessionCookie;
use super::error::SessionError;
use super::options::SessionOptions;
use crate::store::{self, StoreError};

/// A session's fields, in the order they were stored or first set (as a
/// JavaScript object keeps them), each as its JSON text.
///
/// Kept as text, not as parsed values: a request reads a field or two and
/// writes the session back (with `resave`), so parsing every field into a
/// tree and printing it again was most of a session's cost in a guest.
/// Sessions hold few fields, so a list beats a map.
#[derive(Debug, Default)]
pub(super) struct Fields(Vec<(String, Box<RawValue>)>);

impl Fields {
    pub(super) fn get(&self, key: &str) -> Option<&RawValue> {
        self.0
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| &**value)
    }

    /// Sets `key` to `value`; whether that changed anything.
    pub(super) fn insert(&mut self, key: &str, value: Box<RawValue>) -> bool {
        match self.0.iter_mut().find(|(name, _)| name == key) {
            Some((_, old)) if old.get() == value.get() => false,
            Some((_, old)) => {
                *old = value;
                true
            }
            None => {
                self.0.push((key.to_owned(), value));
                true
            }
        }
    }

    pub(super) fn remove(&mut self, key: &str) -> Option<Box<RawValue>> {
        let at = self.0.iter().position(|(name, _)| name == key)?;
        Some(self.0.remove(at).1)
    }

    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, &RawValue)> {
        self.0.iter().map(|(name, value)| (name.as_str(), &**value))
    }
}

impl PartialEq for Fields {
    /// The same fields in the same order with the same JSON text: what
    /// express-session's hash of the session compares.
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|((a, x), (b, y))| a == b && x.get() == y.get())
    }
}

/// Three-way merge of a session's fields: `theirs` (stored by another
/// request since `base` was read) with `ours` changed in `changed` fields.
/// A changed field that they changed too is a conflict, even to the same
/// value: two requests that both counted 0 + 1 would otherwise save one
/// increment for two.
pub(super) fn merge_fields(
    base: &Fields,
    mut theirs: Fields,
    ours: &Fields,
    changed: &[String],
) -> Result<Fields, SessionError> {
    fn text<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
        fields.get(name).map(RawValue::get)
    }
    for name in changed {
        if text(&theirs, name) != text(base, name) {
            return Err(SessionError::Conflict(format!(
                "field {name:?} was changed by another request"
            )));
        }
        match ours.get(name) {
            Some(value) => {
                theirs.insert(name, value.to_owned());
            }
            None => {
                theirs.remove(name);
            }
        }
    }
    Ok(theirs)
}

/// A session as read back from the store.
pub(super) struct Stored {
    pub(super) data: Fields,
    pub(super) cookie: SessionCookie,
}

/// Reads session `id`: its fields and cookie and the stored JSON, or none if
/// it is missing or unreadable.
///
/// Expiry is the store's TTL, not the stored `expires`: a Node app that only
/// touches a session renews the TTL and leaves `expires` behind.
pub(super) fn read(
    options: &SessionOptions,
    id: &str,
) -> Result<Option<(Stored, String)>, ReadError> {
    let Some(text) = store::get(&options.key(id)).map_err(ReadError::Store)? else {
        return Ok(None);
    };
    match serde_json::from_str::<Stored>(&text) {
        Ok(stored) => Ok(Some((stored, text))),
        Err(error) => {
            // What Node cannot load either (not JSON, or no `cookie`
            // object) is an error there: 500. What only the SDK's reading
            // refuses becomes a new session, and the log says why.
            let node_refuses = serde_json::from_str::<Value>(&text).map_or(true, |json| {
                !json.get("cookie").is_some_and(Value::is_object)
            });
            if node_refuses {
                Err(ReadError::Unreadable(error.to_string()))
            } else {
                eprintln!("wasmhost-sdk: stored session not read, a new one is made: {error}");
                Ok(None)
            }
        }
    }
}

/// Why a stored session could not be read.
pub(super) enum ReadError {
    Store(StoreError),
    /// It is not a session Node could load either.
    Unreadable(String),
}

impl From<ReadError> for SessionError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Store(error) => SessionError::Store(error),
            ReadError::Unreadable(reason) => SessionError::Decode {
                field: "cookie".to_owned(),
                reason,
            },
        }
    }
}

impl<'de> serde::Deserialize<'de> for Stored {
    /// One pass over the stored JSON: `cookie` straight into its struct,
    /// every other field into the session's fields.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Stored;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a stored session object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Stored, A::Error> {
                let mut data = Fields::default();
                let mut cookie = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "cookie" {
                        cookie = Some(map.next_value::<SessionCookie>()?);
                    } else if is_reserved(&key) {
                        // Node's Session constructor skips names it already
                        // has (`id`, its methods, Object's), so they do not
                        // survive a load there either.
                        map.next_value::<serde::de::IgnoredAny>()?;
                    } else {
                        let value = map.next_value::<Box<RawValue>>()?;
                        // A repeated name keeps its last value, as JSON.parse does.
                        match data.0.iter_mut().find(|(name, _)| *name == key) {
                            Some((_, old)) => *old = value,
                            None => data.0.push((key, value)),
                        }
                    }
                }
                let cookie = cookie.ok_or_else(|| serde::de::Error::missing_field("cookie"))?;
                Ok(Stored { data, cookie })
            }
        }

        deserializer.deserialize_map(Visitor)
    }
}

/// Names a field cannot have: express-session's own (`cookie`, `id`, `req`
/// and the session's methods) and those every JavaScript object has, which
/// Node's `Session` constructor skips when it loads a session.
const RESERVED: [&str; 21] = [
    "cookie",
    "id",
    "req",
    "regenerate",
    "destroy",
    "reload",
    "save",
    "touch",
    "resetMaxAge",
    "constructor",
    "hasOwnProperty",
    "isPrototypeOf",
    "propertyIsEnumerable",
    "toLocaleString",
    "toString",
    "valueOf",
    "__proto__",
    "__defineGetter__",
    "__defineSetter__",
    "__lookupGetter__",
    "__lookupSetter__",
];

pub(super) fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name)
}

/// The session as express-session stores it: `cookie` first, then the
/// fields, each as its JSON text.
pub(super) fn to_json(cookie: &SessionCookie, data: &Fields) -> String {
    let mut json = Vec::with_capacity(256);
    json.extend_from_slice(b"{\"cookie\":");
    // Writing JSON into a Vec fails only for maps with non-string keys,
    // which these are not.
    let _ = serde_json::to_writer(&mut json, cookie);
    for (key, value) in data.iter() {
        json.push(b',');
        let _ = serde_json::to_writer(&mut json, key);
        json.push(b':');
        json.extend_from_slice(value.get().as_bytes());
    }
    json.push(b'}');
    String::from_utf8(json).unwrap_or_default()
}

/// A stored session's fields (name, JSON text) in order, its cookie, and the
/// JSON written back for it: what [`stored_round_trip`] gives.
pub(crate) type StoredRoundTrip = (Vec<(String, String)>, SessionCookie, String);

/// For the fuzz targets (`crate::__fuzz`): `json` read as
/// [`read`] reads a stored session, as its fields (name, JSON text) in
/// order, its cookie, and the session written back as [`to_json`] writes
/// it for a session (`Session::to_json`).
pub(crate) fn stored_round_trip(json: &str) -> Option<StoredRoundTrip> {
    let Stored { data, cookie } = serde_json::from_str(json).ok()?;
    let fields = data
        .iter()
        .map(|(name, value)| (name.to_owned(), value.get().to_owned()))
        .collect();
    let written = to_json(&cookie, &data);
    Some((fields, cookie, written))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(json: &str) -> Fields {
        let json = format!(r#"{{"cookie":{{"originalMaxAge":null,"path":"/"}}{json}}}"#);
        serde_json::from_str::<Stored>(&json)
            .expect("a stored session")
            .data
    }

    fn names(changed: &[&str]) -> Vec<String> {
        changed.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn a_merge_replays_our_changed_fields_onto_theirs() {
        let base = fields(r#","a":1,"b":2,"gone":0"#);
        let theirs = fields(r#","a":1,"b":3,"gone":0,"t":true"#);
        let ours = fields(r#","a":5,"b":2,"o":"x""#);
        let merged = merge_fields(&base, theirs, &ours, &names(&["a", "o", "gone"]))
            .expect("no field changed by both");
        let merged: Vec<_> = merged
            .iter()
            .map(|(k, v)| format!("{k}={}", v.get()))
            .collect();
        assert_eq!(merged, ["a=5", "b=3", "t=true", "o=\"x\""]);
    }

    #[test]
    fn a_field_both_changed_is_a_conflict_even_to_the_same_value() {
        let base = fields(r#","n":1"#);
        let ours = fields(r#","n":2"#);
        let conflict = merge_fields(&base, fields(r#","n":3"#), &ours, &names(&["n"]));
        assert!(matches!(conflict, Err(SessionError::Conflict(why)) if why.contains("\"n\"")));
        let removed_by_them = merge_fields(&base, fields(""), &ours, &names(&["n"]));
        assert!(matches!(removed_by_them, Err(SessionError::Conflict(_))));
        let same = merge_fields(&base, fields(r#","n":2"#), &ours, &names(&["n"]));
        assert!(matches!(same, Err(SessionError::Conflict(_))));
        let untouched = merge_fields(&base, fields(r#","n":1,"m":0"#), &ours, &names(&["n"]))
            .expect("they changed another field");
        assert_eq!(untouched.get("n").map(RawValue::get), Some("2"));
    }
}
