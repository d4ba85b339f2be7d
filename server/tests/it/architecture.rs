//! The dependency rules of docs/ARCHITECTURE.md ("Architecture invariant:"
//! lines), checked against the tree: which crate may depend on which, and
//! no import cycle between the top-level modules of any crate.
//!
//! Module edges are read from `crate::<module>` paths in non-test code
//! (everything before a file's `#[cfg(test)] mod`), which is how every
//! module here names another; `super::` stays inside a module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `[dependencies]` of a workspace crate, by name.
fn dependencies(krate: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join(krate).join("Cargo.toml")).unwrap();
    let manifest: toml::Table = text.parse().unwrap();
    manifest
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn crates_depend_only_downwards() {
    // The engine is deterministic: no async runtime, consensus, storage or
    // global metrics, and nothing above it.
    let engine = dependencies("engine");
    for forbidden in [
        "tokio",
        "openraft",
        "rocksdb",
        "metrics",
        "futures",
        "raftlimit-raft",
        "raftlimit-server",
    ] {
        assert!(!engine.contains(forbidden), "engine depends on {forbidden}");
    }
    assert!(engine.contains("raftlimit-limiter"));
    let raft = dependencies("raft");
    assert!(raft.contains("raftlimit-engine"));
    assert!(!raft.contains("raftlimit-server") && !raft.contains("raftlimit-testkit"));
    for leaf in ["resp", "limiter"] {
        let deps = dependencies(leaf);
        assert!(
            !deps.iter().any(|d| d.starts_with("raftlimit-")),
            "{leaf} depends on {deps:?}"
        );
    }
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules named by `crate::` paths in `code`.
fn crate_paths(code: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            found.extend(inner.split(',').map(|part| ident(part.trim())));
        } else {
            found.push(ident(rest));
        }
    }
    found
}

/// The module graph of a crate's `src/`: top-level module → modules it uses.
fn module_graph(krate: &str) -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join(krate).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let module_of = |path: &Path| -> String {
        let first = path
            .strip_prefix(&src)
            .unwrap()
            .components()
            .next()
            .unwrap();
        let name = first.as_os_str().to_string_lossy();
        name.strip_suffix(".rs").unwrap_or(&name).to_owned()
    };
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = module_of(file);
        if from == "lib" || from == "main" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let code = text.split("#[cfg(test)]\nmod ").next().unwrap_or("");
        let code: String = code
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for to in crate_paths(&code) {
            if to != from && modules.contains(&to) {
                graph.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    graph
}

/// A cycle in `graph`, if there is one, as the modules along it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_cycles() {
    // limiter and jepsen still have cycles among their own modules (see
    // docs/ARCHITECTURE.md); the crates of the request path have none.
    for krate in [
        "engine", "raft", "server", "resp", "testkit", "launcher", "client",
    ] {
        let graph = module_graph(krate);
        if let Some(cycle) = find_cycle(&graph) {
            panic!("{krate}: modules import each other: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_cycle_check_sees_cycles() {
    let graph: BTreeMap<String, BTreeSet<String>> = [("a", "b"), ("b", "c"), ("c", "a")]
        .into_iter()
        .map(|(from, to)| (from.to_owned(), BTreeSet::from([to.to_owned()])))
        .collect();
    assert!(find_cycle(&graph).is_some());
    assert_eq!(
        crate_paths("use crate::{a, b::c};\nlet x = crate::d::e();"),
        vec!["a", "b", "d"]
    );
    // The server's layers, as docs/ARCHITECTURE.md draws them.
    let server = module_graph("server");
    assert!(server["listener"].contains("router"));
    assert!(server["router"].contains("cmd"));
    assert!(!server["cmd"].contains("router"));
    assert!(!server.get("auth").is_some_and(|deps| deps.contains("cmd")));
}
