//! Inside the library, imports run one way, down the data path (docs/DESIGN.md, "Layout"):
//! no top-level module of src/ imports, through any chain of others, a module that imports
//! it. A circle means a piece sits on the wrong side of the line; it moves to where both
//! sides can import it from below.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Files of the CLI's binary (src/main.rs and src/cmd/), which import the library from
/// above, as any user does.
const BINARY: &[&str] = &["main", "cmd"];

/// Which top-level module imports which, and the files that make each edge.
type Edges = BTreeMap<(String, String), BTreeSet<String>>;

/// The library's top-level modules: src/NAME.rs and src/NAME/.
fn modules(src: &Path) -> BTreeSet<String> {
    std::fs::read_dir(src)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let name = match name.strip_suffix(".rs") {
                Some(stem) => stem.to_string(),
                None if e.path().is_dir() => name,
                None => return None,
            };
            (name != "lib" && !BINARY.contains(&name.as_str())).then_some(name)
        })
        .collect()
}

/// The names `crate::` paths start with in `text`, comments left out: `crate::a::B` gives
/// "a", `crate::{a, b::C}` gives "a" and "b".
fn crate_paths(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| l.find("//").map_or(l, |at| &l[..at]))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let Some(group) = rest.strip_prefix('{') else {
            out.insert(ident(rest));
            continue;
        };
        // The group's top-level items, up to its closing brace.
        let (mut depth, mut start) = (0, 0);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    out.insert(ident(&group[start..i]));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.insert(ident(&group[start..i]));
                    start = i + 1;
                }
                _ => {}
            }
        }
    }
    out.remove("");
    out
}

/// The edges between the top-level modules of `files` (path under src/, text).
fn edges(files: impl IntoIterator<Item = (String, String)>, modules: &BTreeSet<String>) -> Edges {
    let mut out = Edges::new();
    for (path, text) in files {
        let top = path.split('/').next().unwrap_or_default();
        let from = top.strip_suffix(".rs").unwrap_or(top).to_string();
        if !modules.contains(&from) {
            continue;
        }
        for to in crate_paths(&text) {
            if to != from && modules.contains(&to) {
                out.entry((from.clone(), to))
                    .or_default()
                    .insert(path.clone());
            }
        }
    }
    out
}

/// A circle of modules (the first one again at the end), if there is one.
fn circle(edges: &Edges) -> Option<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        next.entry(a).or_default().push(b);
    }
    // Depth first; a module on the current path met again closes a circle.
    fn visit<'a>(
        m: &'a str,
        next: &BTreeMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| *p == m) {
            let mut c: Vec<String> = path[at..].iter().map(|s| s.to_string()).collect();
            c.push(m.to_string());
            return Some(c);
        }
        if !done.insert(m) {
            return None;
        }
        path.push(m);
        for n in next.get(m).into_iter().flatten() {
            if let Some(c) = visit(n, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in next.keys() {
        if let Some(c) = visit(m, &next, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

/// Every .rs file under `dir`, as (path under `root`, text).
fn sources(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(root, &p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            out.push((rel, std::fs::read_to_string(&p).unwrap()));
        }
    }
}

#[test]
fn the_librarys_modules_import_in_one_direction() {
    let src = Path::new(ROOT).join("src");
    let modules = modules(&src);
    let mut files = Vec::new();
    sources(&src, &src, &mut files);
    let edges = edges(files, &modules);
    // The reading found the imports it is to judge (the decoder alone has several).
    assert!(
        edges.keys().filter(|(a, _)| a == "decoder").count() >= 3,
        "{edges:?}"
    );
    if let Some(c) = circle(&edges) {
        let how: Vec<String> = c
            .windows(2)
            .map(|w| {
                let files = &edges[&(w[0].clone(), w[1].clone())];
                format!("  {} -> {} ({files:?})", w[0], w[1])
            })
            .collect();
        panic!(
            "an import circle: {}\n{}\nmove what both sides need below them (docs/DESIGN.md, \"Layout\")",
            c.join(" -> "),
            how.join("\n")
        );
    }
}

#[test]
fn the_circle_check_finds_what_it_is_for() {
    let modules: BTreeSet<String> = ["a", "b", "c", "d"].map(String::from).into();
    let file = |p: &str, t: &str| (p.to_string(), t.to_string());
    let files = [
        file("a.rs", "use crate::b::X;\n// crate::d::Not (a comment)\n"),
        file(
            "b/mod.rs",
            "use crate::{c::{Y, Z}, nothing};\nfn f() { my_crate::a::g() }",
        ),
        file("b/inner.rs", "let x = crate::b::Own;"),
        file("c.rs", "pub use crate::{\n    d::W,\n    a::V,\n};"),
    ];
    let e = edges(files.clone(), &modules);
    let pairs: Vec<(&str, &str)> = e.keys().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(pairs, [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]);
    assert_eq!(circle(&e).unwrap(), ["a", "b", "c", "a"]);
    // Without c's import of a, the rest runs one way.
    let one_way = edges(
        files
            .into_iter()
            .filter(|(p, _)| p != "c.rs")
            .chain([file("c.rs", "use crate::d::W;")]),
        &modules,
    );
    assert_eq!(circle(&one_way), None);
}
