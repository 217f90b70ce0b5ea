//! Automatic activity tracking: a table from method and route to action,
//! read by [`AnalyticsLayer`](crate::AnalyticsLayer) on every 2xx answer to
//! a signed-in user. The same table, with the same matching rules, as the
//! Python client's Django middleware (`clients/python`).
//!
//! An entry's route is matched against the request's route template (axum's
//! `MatchedPath`, API Gateway's route key, else the path):
//! - any `{...}` in the entry matches any parameter of the template
//!   (`/reports/{}` matches `/reports/{id}` and `/reports/{report_id}`);
//! - `*` matches any run of characters (`*/reports` matches `/reports`,
//!   `/api/reports` and `/clients/{client_id}/reports`);
//! - a trailing slash is ignored on both sides.
//!
//! The first entry that matches wins. Its ids come from the path: the
//! template's `{client_id}` and `{report_id}` parameters (renamable per
//! entry), and `{id}` or `{pk}` fill the field the entry names with
//! [`ActivityRoute::id_is`].

use analytics_contract::event::Activity;
use analytics_contract::validate::is_valid_id;
use http::Method;

/// Which id a route's `{id}` (or `{pk}`) parameter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdField {
    Client,
    Report,
}

/// One entry of an [`ActivityTable`].
#[derive(Debug, Clone)]
pub struct ActivityRoute {
    methods: Vec<Method>,
    route: String,
    action: String,
    client_param: String,
    report_param: String,
    id: Option<IdField>,
}

impl ActivityRoute {
    /// Requests of any of `methods` whose route matches `route` record `action`.
    pub fn new(methods: &[Method], route: &str, action: &str) -> Self {
        ActivityRoute {
            methods: methods.to_vec(),
            route: shape(route),
            action: action.to_owned(),
            client_param: "client_id".into(),
            report_param: "report_id".into(),
            id: None,
        }
    }

    /// The route's `{id}` or `{pk}` parameter is this id.
    pub fn id_is(mut self, field: IdField) -> Self {
        self.id = Some(field);
        self
    }

    /// The path parameters read as `client_id` and `report_id`.
    pub fn params(mut self, client_id: &str, report_id: &str) -> Self {
        self.client_param = client_id.into();
        self.report_param = report_id.into();
        self
    }

    fn matches(&self, method: &Method, template: &str) -> bool {
        self.methods.contains(method) && glob(&self.route, &shape(template))
    }

    fn activity(&self, template: &str, path: &str) -> Activity {
        let params = path_params(template, path);
        let get = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
        let id = get("id").or_else(|| get("pk"));
        let mut client_id = get(&self.client_param);
        let mut report_id = get(&self.report_param);
        match self.id {
            Some(IdField::Client) => client_id = client_id.or(id),
            Some(IdField::Report) => report_id = report_id.or(id),
            None => {}
        }
        Activity { action: self.action.clone(), custom: false, description: None, client_id, report_id, report: None }
    }
}

/// The table the layer looks requests up in; empty by default (no activity
/// is recorded until a table is given).
#[derive(Debug, Clone, Default)]
pub struct ActivityTable(Vec<ActivityRoute>);

impl ActivityTable {
    /// The actions the backend knows, on the routes a reporting app
    /// usually gives them (the first seed's middleware table).
    pub fn standard() -> Self {
        use IdField::{Client, Report};
        let (get, post, delete) = (&[Method::GET][..], &[Method::POST][..], &[Method::DELETE][..]);
        ActivityTable(vec![
            ActivityRoute::new(post, "*/reports", "generate_report"),
            ActivityRoute::new(get, "*/reports/{}/download", "download_report").id_is(Report),
            ActivityRoute::new(post, "*/reports/{}/share", "share_report").id_is(Report),
            ActivityRoute::new(delete, "*/reports/{}", "delete_report").id_is(Report),
            ActivityRoute::new(post, "*/clients", "create_client"),
            ActivityRoute::new(&[Method::PUT, Method::PATCH], "*/clients/{}", "update_client").id_is(Client),
            ActivityRoute::new(delete, "*/clients/{}", "delete_client").id_is(Client),
            ActivityRoute::new(post, "*/upload", "upload_csv").id_is(Client),
            ActivityRoute::new(get, "*/dashboard", "view_dashboard"),
        ])
    }

    /// This table with `entry` added after the others.
    pub fn with(mut self, entry: ActivityRoute) -> Self {
        self.0.push(entry);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The activity of a request, when an entry matches it.
    pub fn lookup(&self, method: &Method, template: &str, path: &str) -> Option<Activity> {
        self.0.iter().find(|e| e.matches(method, template)).map(|e| e.activity(template, path))
    }
}

/// A route with every parameter written `{}` and no trailing slash.
fn shape(route: &str) -> String {
    let mut out = String::with_capacity(route.len());
    let mut depth = 0;
    for c in route.chars() {
        match c {
            '{' => {
                if depth == 0 {
                    out.push_str("{}");
                }
                depth += 1;
            }
            '}' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            _ => out.push(c),
        }
    }
    let trimmed = out.trim_end_matches('/');
    if trimmed.is_empty() { "/".into() } else { trimmed.to_owned() }
}

/// `pattern` (where `*` is any run of characters) matches all of `text`.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            // Let the last `*` take one more character.
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The parameters of `template` (`/clients/{client_id}`) read off `path`
/// (`/clients/c-1`), segment by segment; none when the two do not align.
/// A value that is not an id by the validator's rule (blank, too long,
/// control characters) is left out rather than sent to be refused.
fn path_params<'t>(template: &'t str, path: &str) -> Vec<(&'t str, String)> {
    let (ts, ps): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    if ts.len() != ps.len() {
        return Vec::new();
    }
    ts.iter()
        .zip(&ps)
        .filter_map(|(t, p)| {
            let name = t.strip_prefix('{')?.strip_suffix('}')?;
            let value = percent_decode(p);
            (!name.starts_with('*') && is_valid_id(&value)).then_some((name, value))
        })
        .collect()
}

/// `%XX` escapes of a path segment decoded (as axum's `Path` does); an
/// escape that is not UTF-8 is replaced, never refused.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use analytics_contract::validate::limits::MAX_ID_CHARS;

    use super::*;

    fn look(method: Method, template: &str, path: &str) -> Option<(String, Option<String>, Option<String>)> {
        ActivityTable::standard().lookup(&method, template, path).map(|a| (a.action, a.client_id, a.report_id))
    }

    fn some(action: &str, client: Option<&str>, report: Option<&str>) -> Option<(String, Option<String>, Option<String>)> {
        Some((action.into(), client.map(Into::into), report.map(Into::into)))
    }

    #[test]
    fn the_standard_table_names_the_backends_actions() {
        assert_eq!(look(Method::POST, "/reports", "/reports"), some("generate_report", None, None));
        assert_eq!(
            look(Method::POST, "/clients/{client_id}/reports", "/clients/c-1/reports"),
            some("generate_report", Some("c-1"), None),
            "the client id from the path"
        );
        assert_eq!(
            look(Method::GET, "/api/reports/{id}/download", "/api/reports/r-9/download"),
            some("download_report", None, Some("r-9"))
        );
        assert_eq!(look(Method::DELETE, "/reports/{report_id}", "/reports/r%2F1"), some("delete_report", None, Some("r/1")));
        assert_eq!(look(Method::PATCH, "/clients/{id}/", "/clients/c-2/"), some("update_client", Some("c-2"), None));
        assert_eq!(look(Method::POST, "/clients/{client_id}/upload", "/clients/c-3/upload"), some("upload_csv", Some("c-3"), None));
        assert_eq!(look(Method::GET, "/dashboard", "/dashboard"), some("view_dashboard", None, None));
        for known in ["generate_report", "download_report", "share_report", "delete_report", "create_client", "update_client", "upload_csv"]
        {
            assert!(analytics_contract::event::KNOWN_ACTIONS.contains(&known), "{known}");
        }
    }

    #[test]
    fn other_methods_and_routes_record_nothing() {
        assert_eq!(look(Method::GET, "/reports", "/reports"), None, "listing reports is not generating one");
        assert_eq!(look(Method::POST, "/reportsx", "/reportsx"), None);
        assert_eq!(look(Method::GET, "/clients/{id}", "/clients/c-1"), None);
        assert_eq!(look(Method::POST, "/", "/"), None);
    }

    #[test]
    fn custom_entries_rename_parameters_and_come_after_the_standard_ones() {
        let t = ActivityTable::default()
            .with(ActivityRoute::new(&[Method::POST], "/orgs/{}/exports/{}", "export_data").params("org", "export"));
        let a = t.lookup(&Method::POST, "/orgs/{org}/exports/{export}", "/orgs/o-1/exports/e-2").unwrap();
        assert_eq!((a.action.as_str(), a.client_id.as_deref(), a.report_id.as_deref()), ("export_data", Some("o-1"), Some("e-2")));
        assert!(ActivityTable::default().is_empty());
    }

    #[test]
    fn ids_that_cannot_be_ids_are_left_out() {
        let long = "x".repeat(MAX_ID_CHARS + 1);
        assert_eq!(look(Method::DELETE, "/reports/{id}", &format!("/reports/{long}")), some("delete_report", None, None));
        assert_eq!(look(Method::DELETE, "/reports/{id}", "/reports/a/b"), some("delete_report", None, None), "misaligned path");
        assert_eq!(look(Method::DELETE, "/reports/{id}", "/reports/a%00b"), some("delete_report", None, None), "a control character");
        assert_eq!(look(Method::DELETE, "/reports/{id}", "/reports/%20"), some("delete_report", None, None), "blank");
        assert_eq!(percent_decode("a%zz%4"), "a%zz%4", "broken escapes stay as sent");
    }

    proptest::proptest! {
        /// Whatever the route and the path (odd escapes, braces, stars,
        /// non-ASCII, misaligned segments), the lookup never panics, and
        /// every id it takes is one the backend stores.
        #[test]
        fn any_route_and_path_give_storable_ids_or_none(
            template in "(/(\\{[a-z_*]{0,12}\\}|[a-z%0-9é*{}]{0,12})){0,5}/?",
            path in "(/([a-zA-Z0-9%é{}*. -]|%0[0-9a-f]){0,200}){0,5}/?",
            method in proptest::sample::select(vec![Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE]),
        ) {
            let table = ActivityTable::standard().with(ActivityRoute::new(&[Method::POST], "*", "anything").params("a", "b"));
            if let Some(a) = table.lookup(&method, &template, &path) {
                for id in [a.client_id, a.report_id].into_iter().flatten() {
                    proptest::prop_assert!(is_valid_id(&id) && id.chars().count() <= MAX_ID_CHARS, "{id:?}");
                }
            }
        }
    }

    #[test]
    fn glob_stars_take_any_run() {
        assert!(glob("*/reports", "/reports"));
        assert!(glob("*/reports", "/a/b/reports"));
        assert!(!glob("*/reports", "/reports/x"));
        assert!(glob("/a*b*c", "/aXXbYYc"));
        assert!(!glob("/a*b*c", "/aXXbYY"));
        assert!(glob("*", ""));
        assert_eq!(shape("/x/{a}/{b:[0-9]{2}}/"), "/x/{}/{}");
    }
}
