//! The tenant id, checked once where it enters (a token's claim, the
//! configuration, a job's payload): every key starts with `T#{tenant}#`, so a
//! tenant id may only hold characters that can never be confused with the
//! key separator `#`.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A valid tenant id: 1..=64 characters of `[A-Za-z0-9._-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

/// What a refused tenant id is told.
pub const TENANT_ID_RULE: &str = "1 to 64 characters of A-Z a-z 0-9 . _ -";

impl TenantId {
    pub fn parse(s: &str) -> Option<TenantId> {
        let ok = (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        ok.then(|| TenantId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for TenantId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<&str> for TenantId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl Serialize for TenantId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TenantId::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("tenant {s:?} is invalid: {TENANT_ID_RULE}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_cannot_hold_a_key_separator() {
        for ok in ["acme", "a", "A.b_c-9", &"x".repeat(64)] {
            assert_eq!(TenantId::parse(ok).map(|t| t.to_string()), Some(ok.to_string()));
        }
        for bad in ["", "a#b", "a b", "ä", &"x".repeat(65), "[acme]"] {
            assert!(TenantId::parse(bad).is_none(), "{bad}");
        }
        assert!(serde_json::from_str::<TenantId>("\"a#b\"").is_err());
        assert_eq!(serde_json::to_string(&TenantId::parse("acme").unwrap()).unwrap(), "\"acme\"");
    }
}
