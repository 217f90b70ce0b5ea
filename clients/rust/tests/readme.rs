//! The README's example is the code of `examples/axum.rs`, which cargo
//! builds: a change to one without the other fails here.

#[test]
fn the_readme_example_is_the_example_that_compiles() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("../../README.md")).expect("README.md");
    let example = std::fs::read_to_string(root.join("examples/axum.rs")).expect("examples/axum.rs");
    let section = readme.split("## Sending events from a Rust service").nth(1).expect("the README section");
    let code = section.split("```rust\n").nth(1).and_then(|s| s.split("```").next()).expect("a rust block");
    let lines: Vec<&str> = code.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    assert!(lines.len() <= 10, "ten lines at most: {}", lines.len());
    let example_lines: Vec<&str> = example.lines().map(str::trim).collect();
    for line in lines {
        assert!(example_lines.contains(&line), "README line not in examples/axum.rs: {line}");
    }
}
