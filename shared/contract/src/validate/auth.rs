//! Kind `auth`: a sign-up, login (failed or not), logout, password reset
//! or token refresh.

use serde::Deserialize;

use super::checker::{Checker, clip};
use super::limits::*;
use crate::event::{AuthEvent, AuthEventType, EventBody};

/// The fields of kind auth, as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Fields {
    event_type: Option<String>,
    success: Option<bool>,
    error_message: Option<String>,
}

pub(super) fn check(w: Fields, c: &mut Checker) -> EventBody {
    let event_type = c.required("event_type", w.event_type, "auth").and_then(|t| {
        let parsed = AuthEventType::parse(&t);
        if parsed.is_none() {
            c.fail(
                "event_type",
                format!("`{}` is not one of signup, login, login_failed, logout, reset_password, token_refresh", clip(&t)),
            );
        }
        parsed
    });
    let success = c.required("success", w.success, "auth");
    EventBody::Auth(AuthEvent {
        event_type: event_type.unwrap_or(AuthEventType::Login),
        success: success.unwrap_or_default(),
        error_message: c.text("error_message", w.error_message, MAX_TEXT_CHARS),
    })
}
