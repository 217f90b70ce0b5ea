//! The rules for what callers send (limits, validation, sanitizing,
//! redaction, clock-skew correction) are the contract's, so the ingest
//! function, the seeder and the senders apply the same code:
//! [`analytics_contract::validate`], re-exported here under its old path.

pub use analytics_contract::validate::*;
