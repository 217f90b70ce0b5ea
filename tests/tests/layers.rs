//! The dependency rule of ARCHITECTURE.md, checked on the sources: the
//! DynamoDB SDK is used by the store (and the EventBridge SDK by the bus)
//! only; the pure modules and the jobs reach storage only through the
//! `Table`, its repositories and their data types, never through its key
//! layout, item mapping or raw writes; and no file outgrows one subject.

use std::path::{Path, PathBuf};

use integration_tests::root;

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

fn shared(rel: &str) -> PathBuf {
    root().join("shared/src").join(rel)
}

/// Lines that are code (comments and doc comments left out).
fn code(path: &Path) -> Vec<(usize, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l.to_owned()))
        .collect()
}

#[test]
fn only_the_store_and_the_bus_speak_to_aws() {
    let mut offenders = Vec::new();
    for path in sources(&root().join("shared/src")) {
        let rel = path.strip_prefix(root().join("shared/src")).unwrap().to_string_lossy().into_owned();
        if rel.starts_with("store/") || rel == "bus.rs" {
            continue;
        }
        for (n, line) in code(&path) {
            if line.contains("aws_sdk_dynamodb") || line.contains("aws_smithy") || line.contains("aws_sdk_eventbridge") {
                offenders.push(format!("shared/src/{rel}:{n}: {}", line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "outside store/ and bus.rs:\n{}", offenders.join("\n"));
}

/// What of the store a module outside it may name: the table, its error,
/// and the data types the repositories take and give.
const STORE_API: [&str; 20] = [
    "store::Table",
    "store::StoreError",
    "store::{StoreError, Table}",
    "store::events::{EventWrite, PutOutcome, Received, event_write_received, writer_id}",
    "store::hours::HourAsk",
    "store::hours::HourNote",
    "store::rollups::Resolution",
    "store::rollups::StoredRollup",
    "store::rollups::{Resolution, StoredRollup}",
    "store::rollups::{DayPart, StoredRollup}",
    "store::rollups::DayPart",
    "store::rollups::KindState",
    "store::rollups::{Resolution, StoredRollup, new_revision}",
    "store::documents::ReportWrite",
    "store::sweep::{SweepRun, Swept}",
    "store::tenants::TenantEntry",
    "store::explorer::{Cond, Kinds, Value}",
    "store::explorer::index::HourMask",
    "store::windows::StoredWindow",
    "store::windows::{Built, StoredWindow}",
];

#[test]
fn pure_modules_and_jobs_use_storage_only_through_the_table_and_its_repositories() {
    let pure = [
        "model",
        "validate.rs",
        "rollup.rs",
        "query",
        "report.rs",
        "time.rs",
        "hash.rs",
        "backoff.rs",
        "cursor.rs",
        "auth.rs",
        "error.rs",
        "tenant.rs",
        "config.rs",
        "jobs",
        "ingest.rs",
    ];
    let mut offenders = Vec::new();
    for entry in pure {
        let path = shared(entry);
        let files = if path.is_dir() { sources(&path) } else { vec![path] };
        for file in files {
            for (n, line) in code(&file) {
                let mut rest = line.as_str();
                while let Some(at) = rest.find("store::") {
                    let tail = &rest[at..];
                    let allowed = STORE_API.iter().any(|a| tail.starts_with(a))
                        || tail.starts_with("store::StoreError::")
                        || tail.starts_with("store::tenants::TenantEntry");
                    if !allowed {
                        offenders.push(format!("{}:{n}: {}", file.strip_prefix(root()).unwrap().display(), line.trim()));
                        break;
                    }
                    rest = &tail["store::".len()..];
                }
            }
        }
    }
    assert!(offenders.is_empty(), "storage reached past the table and its repositories:\n{}", offenders.join("\n"));
}

/// Files stay small enough to read in one sitting: no source file outside
/// the tests is over 400 lines, and the query function's lib (the route
/// table, the access check and the cache) over 250; what grows splits by
/// what it is about, as ARCHITECTURE.md says.
#[test]
fn no_source_file_outgrows_one_subject() {
    let mut offenders = Vec::new();
    for dir in ["shared/src", "shared/contract/src", "clients/rust/src", "functions", "tools/src"] {
        for path in sources(&root().join(dir)) {
            let rel = path.strip_prefix(root()).unwrap().to_string_lossy().into_owned();
            if rel.ends_with("tests.rs") || rel.contains("/tests/") {
                continue;
            }
            let lines = std::fs::read_to_string(&path).unwrap().lines().count();
            let most = if rel == "functions/query/src/lib.rs" { 250 } else { 400 };
            if lines > most {
                offenders.push(format!("{rel}: {lines} lines, at most {most}"));
            }
        }
    }
    assert!(offenders.is_empty(), "files to split:\n{}", offenders.join("\n"));
}
