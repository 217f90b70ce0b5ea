//! What the repository says about itself is true: the README's variable
//! tables are the variable tables of the code, and `rust-version` is what
//! the code and its locked dependencies need.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).unwrap()
}

/// The README holds the table rendered from `vars`, row for row, so a
/// variable added, renamed, re-defaulted or re-described in the code
/// fails here until the README says the same.
fn assert_readme_lists(what: &str, vars: &[analytics_shared::config::Var]) {
    let table = analytics_shared::config::Var::markdown_table(vars);
    assert!(readme().contains(&table), "README.md's {what} table differs from the code's; it should read:\n\n{table}");
}

#[test]
fn the_readme_lists_the_functions_variables() {
    assert_readme_lists("Configuration", analytics_shared::config::VARIABLES);
}

#[test]
fn the_readme_lists_the_clients_variables() {
    assert_readme_lists("client", analytics_client::config::VARIABLES);
}

/// The oldest compiler the code itself needs: let-chains (`if let ... &&`)
/// are stable since 1.88.
const CODE_NEEDS: (u64, u64, u64) = (1, 88, 0);

fn version(v: &str) -> (u64, u64, u64) {
    let mut parts = v.split('.').map(|p| p.parse::<u64>().unwrap_or_else(|_| panic!("{v:?} is not a version")));
    (parts.next().unwrap(), parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// `rust-version` is the highest of what the code needs and what every
/// locked dependency declares, not lower (a user with that compiler could
/// not build) and not higher (it would refuse compilers that work).
#[test]
fn rust_version_is_what_the_code_and_the_locked_dependencies_need() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--manifest-path"])
        .arg(root().join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let members: Vec<&str> = meta["workspace_members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    let mut needed = (CODE_NEEDS, "the code (let-chains)".to_string());
    let mut stated = Vec::new();
    for p in meta["packages"].as_array().unwrap() {
        let Some(rv) = p["rust_version"].as_str() else { continue };
        if members.contains(&p["id"].as_str().unwrap()) {
            stated.push((p["name"].as_str().unwrap().to_owned(), version(rv)));
        } else if version(rv) > needed.0 {
            needed = (version(rv), format!("{} {}", p["name"].as_str().unwrap(), p["version"].as_str().unwrap()));
        }
    }
    assert_eq!(stated.len(), members.len(), "every workspace member states rust-version (rust-version.workspace = true)");
    for (name, v) in stated {
        assert_eq!(v, needed.0, "{name} states rust-version {v:?}, but {} needs {:?}", needed.1, needed.0);
    }
}

/// The Python client redacts by the backend's words: its list is the
/// backend's, word for word and in order (the rule itself is tested on
/// the same examples on both sides).
#[test]
fn the_python_client_redacts_by_the_backends_words() {
    let py = std::fs::read_to_string(root().join("clients/python/analytics_client/redact.py")).unwrap();
    let start = py.find("SENSITIVE_WORDS = (").expect("the Python list");
    let list = &py[start..start + py[start..].find(')').unwrap()];
    let words: Vec<&str> = list.split('"').skip(1).step_by(2).collect();
    assert_eq!(words, analytics_shared::validate::redact::SENSITIVE_WORDS);
}

/// The sending client stays lean: a service that adopts it compiles the
/// contract, not the backend (no AWS SDK, no AWS config loader, no JWT
/// stack), with any of its features. Read from cargo's own resolution.
#[test]
fn the_rust_client_depends_on_no_aws_sdk_and_no_jwt_crate() {
    for features in [&[][..], &["--all-features"][..], &["--no-default-features"][..]] {
        let out = std::process::Command::new(env!("CARGO"))
            .current_dir(root())
            .args(["tree", "-q", "--offline", "--locked", "-p", "analytics-client", "-e", "normal", "--prefix", "none"])
            .args(features)
            .output()
            .expect("cargo tree");
        assert!(out.status.success(), "cargo tree: {}", String::from_utf8_lossy(&out.stderr));
        let tree = String::from_utf8(out.stdout).unwrap();
        let crates: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
        assert!(crates.contains(&"analytics-contract"), "the client uses the contract crate:\n{tree}");
        let heavy: Vec<&&str> = crates
            .iter()
            .filter(|c| c.starts_with("aws-sdk-") || **c == "aws-config" || **c == "jsonwebtoken" || **c == "analytics-shared")
            .collect();
        assert!(heavy.is_empty(), "{features:?}: the client's tree holds {heavy:?}");
    }
}
