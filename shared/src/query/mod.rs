//! The read side's rules: who may call what and see whose events, query
//! parameters, periods and their buckets, and the figures of each route.

pub mod answers;
pub mod explore;
pub mod params;
pub mod period;
pub mod planner;
pub mod responses;
pub mod windowed;
pub mod zone;

use crate::auth::Caller;
use crate::error::ApiError;

pub use params::Params;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any authenticated caller (seeing only their own events unless admin
    /// or manager).
    Any,
    /// Admins and managers.
    Managers,
    /// Admins only.
    Admin,
}

impl Caller {
    /// The one check every route goes through.
    pub fn require(&self, access: Access) -> Result<(), ApiError> {
        match access {
            Access::Any => Ok(()),
            Access::Managers if self.sees_all_users() => Ok(()),
            Access::Admin if self.is_admin() => Ok(()),
            Access::Managers => Err(ApiError::forbidden("this route needs the admin or manager role")),
            Access::Admin => Err(ApiError::forbidden("this route needs the admin role")),
        }
    }

    /// Whose events a request reads: `user_id` when given (anyone but an
    /// admin or manager may only give their own), else everyone's for
    /// admins and managers and their own for anyone else.
    pub fn scope(&self, requested_user: Option<&str>) -> Result<Scope, ApiError> {
        match requested_user {
            Some(u) if u != self.user_id && !self.sees_all_users() => {
                Err(ApiError::forbidden("you may only read your own events; leave out `user_id` or give your own"))
            }
            Some(u) => Ok(Scope::User(u.to_owned())),
            None if self.sees_all_users() => Ok(Scope::Tenant),
            None => Ok(Scope::User(self.user_id.clone())),
        }
    }

    /// What a cached answer is shared by: every admin and manager of the
    /// tenant see the same, anyone else only their own.
    pub fn visibility(&self) -> String {
        if self.sees_all_users() { "all".to_owned() } else { format!("user:{}", self.user_id) }
    }
}

/// The key a cached answer is stored under: the route, then a digest of an
/// unambiguous encoding (JSON) of the route, the caller's visibility and
/// every parameter but the cursor, so no parameter value can make one
/// request's key equal another's.
pub fn cache_key(route: &str, visibility: &str, params: &Params) -> String {
    let canonical = serde_json::json!([route, visibility, params.normalized()]).to_string();
    format!("{}#{}", route.trim_start_matches('/'), crate::hash::digest(&canonical))
}

/// The events a request reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Tenant,
    User(String),
}

impl Scope {
    pub fn user(&self) -> Option<&str> {
        match self {
            Scope::Tenant => None,
            Scope::User(u) => Some(u),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(roles: &[&str]) -> Caller {
        Caller {
            tenant: crate::tenant::TenantId::parse("t").unwrap(),
            user_id: "me".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            scopes: vec![],
        }
    }

    #[test]
    fn access_and_scope() {
        let (user, manager, admin) = (caller(&[]), caller(&["manager"]), caller(&["admin"]));
        assert!(user.require(Access::Any).is_ok());
        assert_eq!(user.require(Access::Managers).unwrap_err().code, crate::error::ErrorCode::Forbidden);
        assert!(manager.require(Access::Managers).is_ok());
        assert!(manager.require(Access::Admin).is_err());
        assert!(admin.require(Access::Admin).is_ok());
        assert_eq!(user.scope(None).unwrap(), Scope::User("me".into()));
        assert_eq!(user.scope(Some("me")).unwrap(), Scope::User("me".into()));
        assert_eq!(user.scope(Some("you")).unwrap_err().code, crate::error::ErrorCode::Forbidden);
        assert_eq!(manager.scope(None).unwrap(), Scope::Tenant);
        assert_eq!(admin.scope(Some("you")).unwrap(), Scope::User("you".into()));
        assert_ne!(user.visibility(), admin.visibility());
        assert_eq!(manager.visibility(), admin.visibility());
    }

    #[test]
    fn cache_keys_separate_routes_visibilities_and_parameter_lists() {
        let names = ["endpoint", "status_class"];
        let real = Params::new([("endpoint", "/x"), ("status_class", "5xx")], &names).unwrap();
        let forged = Params::new([("endpoint", "/x&status_class=5xx")], &names).unwrap();
        let k = cache_key("/api-requests", "all", &real);
        assert!(k.starts_with("api-requests#"));
        assert_ne!(k, cache_key("/api-requests", "all", &forged));
        assert_ne!(k, cache_key("/api-requests", "user:u-1", &real));
        assert_ne!(k, cache_key("/auth-events", "all", &real));
        assert_eq!(k, cache_key("/api-requests", "all", &Params::new([("status_class", "5xx"), ("endpoint", "/x")], &names).unwrap()));
    }
}
