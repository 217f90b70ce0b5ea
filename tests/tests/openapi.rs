//! `infra/openapi.yaml` documents exactly the routes the functions serve,
//! with their methods and query parameters, and every `$ref` resolves.

use std::collections::BTreeSet;

use integration_tests::root;
use yaml_rust2::{Yaml, YamlLoader};

fn spec() -> Yaml {
    let text = std::fs::read_to_string(root().join("infra/openapi.yaml")).expect("infra/openapi.yaml exists");
    YamlLoader::load_from_str(&text).expect("the OpenAPI document is YAML").remove(0)
}

/// The names of an operation's query parameters, `$ref`s followed.
fn parameter_names(doc: &Yaml, op: &Yaml) -> BTreeSet<String> {
    op["parameters"]
        .as_vec()
        .map(|ps| {
            ps.iter()
                .map(|p| match p["$ref"].as_str() {
                    Some(r) => &doc["components"]["parameters"][r.rsplit('/').next().unwrap()],
                    None => p,
                })
                .filter(|p| p["in"].as_str() == Some("query"))
                .map(|p| p["name"].as_str().expect("a parameter has a name").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_route_and_parameter_is_documented_and_nothing_else() {
    let doc = spec();
    assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
    let mut served: BTreeSet<(String, String, BTreeSet<String>)> = query::ROUTES
        .iter()
        .map(|d| (format!("{}{}", query::BASE, d.path), d.method.to_lowercase(), d.params.iter().map(|p| p.to_string()).collect()))
        .collect();
    served.insert((ingest::ROUTE.to_owned(), "post".to_owned(), ["dry_run".to_owned()].into()));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_hash().expect("paths") {
        for (method, op) in item.as_hash().unwrap() {
            documented.insert((path.as_str().unwrap().to_owned(), method.as_str().unwrap().to_owned(), parameter_names(&doc, op)));
            assert!(op["responses"].as_hash().is_some_and(|r| !r.is_empty()), "{path:?} {method:?} has responses");
        }
    }
    assert_eq!(documented, served, "infra/openapi.yaml and the route tables differ (path, method, query parameters)");
}

#[test]
fn every_reference_resolves() {
    let text = std::fs::read_to_string(root().join("infra/openapi.yaml")).unwrap();
    let doc = spec();
    for r in text.split("$ref: \"").skip(1).map(|s| s.split('"').next().unwrap()) {
        let mut node = &doc;
        for part in r.trim_start_matches("#/").split('/') {
            node = &node[part];
        }
        assert!(!node.is_badvalue(), "{r} does not resolve");
    }
}
