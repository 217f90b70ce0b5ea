//! Opaque, tamper-proof page cursors.
//!
//! A cursor is `base64url(json) . base64url(HMAC-SHA256(json))` with a key
//! from configuration (`ANALYTICS_CURSOR_SECRET`). The payload binds it to
//! the tenant, the caller, the route and the query it continues, and carries
//! an expiry: a cursor that was changed, comes from another tenant, caller,
//! route or query, or has expired is refused with a 400.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// How long a cursor stays valid.
pub const CURSOR_TTL_SECONDS: i64 = 3600;

/// Signs and opens cursors with one key.
#[derive(Clone)]
pub struct CursorKey(hmac::Key);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey([secret])")
    }
}

/// What a cursor is bound to.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub tenant: &'a str,
    pub caller: &'a str,
    /// The route's path pattern (`/user-activity`).
    pub route: &'a str,
    /// A digest of the query's normalized parameters (cursor excluded).
    pub query: &'a str,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    t: String,
    c: String,
    r: String,
    q: String,
    /// The position: the sort key of the last item returned.
    p: String,
    /// Expiry, epoch seconds.
    e: i64,
}

impl CursorKey {
    pub fn new(secret: &[u8]) -> Self {
        CursorKey(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// A cursor for `position` under `binding`, valid for [`CURSOR_TTL_SECONDS`].
    pub fn seal(&self, binding: Binding<'_>, position: &str, now: DateTime<Utc>) -> String {
        let payload = Payload {
            t: binding.tenant.to_owned(),
            c: binding.caller.to_owned(),
            r: binding.route.to_owned(),
            q: binding.query.to_owned(),
            p: position.to_owned(),
            e: now.timestamp() + CURSOR_TTL_SECONDS,
        };
        let json = serde_json::to_vec(&payload).expect("a cursor payload serializes");
        let tag = hmac::sign(&self.0, &json);
        format!("{}.{}", B64.encode(&json), B64.encode(tag.as_ref()))
    }

    /// The position a cursor holds, if it is authentic, bound to `binding`
    /// and unexpired.
    pub fn open(&self, cursor: &str, binding: Binding<'_>, now: DateTime<Utc>) -> Result<String, ApiError> {
        let invalid = || ApiError::bad_request("the cursor is not valid for this query; start again without `cursor`");
        let (body, tag) = cursor.split_once('.').ok_or_else(invalid)?;
        let json = B64.decode(body).map_err(|_| invalid())?;
        let tag = B64.decode(tag).map_err(|_| invalid())?;
        hmac::verify(&self.0, &json, &tag).map_err(|_| invalid())?;
        let p: Payload = serde_json::from_slice(&json).map_err(|_| invalid())?;
        if p.t != binding.tenant || p.c != binding.caller || p.r != binding.route || p.q != binding.query {
            return Err(invalid());
        }
        if p.e <= now.timestamp() {
            return Err(ApiError::bad_request("the cursor has expired; start again without `cursor`"));
        }
        Ok(p.p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    const B: Binding<'static> = Binding { tenant: "acme", caller: "u-1", route: "/user-activity", query: "q1" };

    #[test]
    fn a_cursor_opens_only_where_it_belongs() {
        let key = CursorKey::new(b"k");
        let now = at("2026-11-21T10:00:00Z");
        let c = key.seal(B, "1795255445123#e1", now);
        assert_eq!(key.open(&c, B, now).unwrap(), "1795255445123#e1");
        for other in [
            Binding { tenant: "globex", ..B },
            Binding { caller: "u-2", ..B },
            Binding { route: "/reports/weekly", ..B },
            Binding { query: "q2", ..B },
        ] {
            assert_eq!(key.open(&c, other, now).unwrap_err().code, crate::error::ErrorCode::BadRequest);
        }
        assert!(CursorKey::new(b"other").open(&c, B, now).is_err(), "a foreign key");
        let later = now + chrono::Duration::seconds(CURSOR_TTL_SECONDS);
        assert!(key.open(&c, B, later).unwrap_err().message.contains("expired"));
        // Any changed byte breaks it.
        let (body, tag) = c.split_once('.').unwrap();
        let mut json = B64.decode(body).unwrap();
        let pos = json.iter().position(|b| *b == b'1').unwrap();
        json[pos] = b'2';
        assert!(key.open(&format!("{}.{tag}", B64.encode(&json)), B, now).is_err());
        assert!(key.open("garbage", B, now).is_err());
        assert!(key.open("", B, now).is_err());
    }
}
