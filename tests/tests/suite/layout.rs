//! The layout's rules, checked on the sources themselves (see ARCHITECTURE.md):
//! no non-test function in the Rust crates is longer than 100 lines, no source file of a crate
//! has more than 800 lines of non-test code (the protocol's engine and wire codec stay whole),
//! no module of the server imports one that imports it back, and the closed sets the log
//! carries to the page are typed: no document key, phase or role parsed again in the server, no
//! report format named outside `report::Format`.
//!
//! Functions are measured from `fn` to their closing brace, as parsed by `syn`; test code
//! (`#[cfg(test)]` modules, `#[test]` functions, `tests.rs` files, integration tests) is not
//! held to the rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

const MAX_FN_LINES: usize = 100;
const MAX_FILE_LINES: usize = 800;
/// Each one cohesive state machine, kept whole as quinn-proto keeps its own: the protocol's
/// sync engine and its wire codec.
const WHOLE_STATE_MACHINES: [&str; 2] = ["protocol/src/engine.rs", "protocol/src/wire.rs"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// Every file and folder below `dir`, leaving out what builds and tools make, sorted.
fn paths_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if matches!(
                e.file_name().to_str(),
                Some("target" | "node_modules" | ".git")
            ) {
                continue;
            }
            if p.is_dir() {
                todo.push(p.clone());
                out.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every `.rs` file below `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    paths_below(dir)
        .into_iter()
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "rs"))
        .collect()
}

fn is_test_attr(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        let p = a.path();
        p.is_ident("test")
            || p.segments.last().is_some_and(|s| s.ident == "test")
            || (p.is_ident("cfg")
                && a.parse_args::<syn::Meta>()
                    .is_ok_and(|m| m.path().is_ident("test")))
    })
}

/// Functions longer than the limit: (where, lines).
struct LongFunctions<'a> {
    file: &'a str,
    found: Vec<(String, usize)>,
}

impl LongFunctions<'_> {
    fn measure(&mut self, name: &syn::Ident, fn_token: &syn::token::Fn, block: &syn::Block) {
        let first = fn_token.span.start().line;
        let last = block.brace_token.span.close().end().line;
        let lines = last + 1 - first;
        if lines > MAX_FN_LINES {
            self.found
                .push((format!("{}:{first} {name}", self.file), lines));
        }
    }
}

impl<'ast> Visit<'ast> for LongFunctions<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if !is_test_attr(&m.attrs) {
            syn::visit::visit_item_mod(self, m);
        }
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if !is_test_attr(&f.attrs) {
            self.measure(&f.sig.ident, &f.sig.fn_token, &f.block);
            syn::visit::visit_item_fn(self, f);
        }
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_test_attr(&f.attrs) {
            self.measure(&f.sig.ident, &f.sig.fn_token, &f.block);
            syn::visit::visit_impl_item_fn(self, f);
        }
    }
}

fn parse(path: &Path) -> syn::File {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    syn::parse_file(&text).unwrap_or_else(|e| panic!("{path:?} does not parse: {e}"))
}

#[test]
fn no_function_is_longer_than_a_hundred_lines() {
    let root = root();
    let mut long = Vec::new();
    for dir in [
        "protocol/src",
        "domain/src",
        "server/src",
        "client-cli/src",
        "tests/src",
        "fuzz/fuzz_targets",
    ] {
        for path in rust_files(&root.join(dir)) {
            if path.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let file = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .display()
                .to_string();
            let mut v = LongFunctions {
                file: &file,
                found: Vec::new(),
            };
            v.visit_file(&parse(&path));
            long.extend(v.found);
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines (cut them along their seams): {long:#?}"
    );
}

/// The lines of a file that are not test code: all of them but those of `#[cfg(test)]`
/// modules and `#[test]` functions.
fn non_test_lines(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let file = syn::parse_file(&text).unwrap_or_else(|e| panic!("{path:?} does not parse: {e}"));
    let test_lines: usize = file
        .items
        .iter()
        .filter_map(|item| {
            let (attrs, span) = match item {
                syn::Item::Mod(m) => (&m.attrs, syn::spanned::Spanned::span(m)),
                syn::Item::Fn(f) => (&f.attrs, syn::spanned::Spanned::span(f)),
                _ => return None,
            };
            is_test_attr(attrs).then(|| span.end().line + 1 - span.start().line)
        })
        .sum();
    text.lines().count().saturating_sub(test_lines)
}

#[test]
fn no_source_file_is_longer_than_eight_hundred_lines() {
    let root = root();
    let mut long = Vec::new();
    for dir in [
        "protocol/src",
        "domain/src",
        "office/src",
        "server/src",
        "client-cli/src",
        "tests/src",
    ] {
        for path in rust_files(&root.join(dir)) {
            let file = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .display()
                .to_string();
            if WHOLE_STATE_MACHINES.contains(&file.as_str()) || file.ends_with("/tests.rs") {
                continue;
            }
            let n = non_test_lines(&path);
            if n > MAX_FILE_LINES {
                long.push((file, n));
            }
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_FILE_LINES} lines of non-test code (split them along their seams): {long:?}"
    );
}

/// The module path of a file below `src` (`net::hub` for `src/net/hub.rs`).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|l| l == "mod" || l == "lib" || l == "main")
    {
        parts.pop();
    }
    parts
}

/// The paths a file names through `crate::` or `super::`, made absolute.
struct Imports<'a> {
    here: &'a [String],
    found: Vec<Vec<String>>,
}

impl Imports<'_> {
    fn add(&mut self, segments: Vec<String>) {
        let Some(first) = segments.first() else {
            return;
        };
        let absolute = match first.as_str() {
            "crate" => segments[1..].to_vec(),
            "super" => {
                let mut base = self.here[..self.here.len().saturating_sub(1)].to_vec();
                base.extend(segments[1..].iter().cloned());
                base
            }
            _ => return,
        };
        self.found.push(absolute);
    }
}

fn use_paths(tree: &syn::UseTree, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        syn::UseTree::Path(p) => {
            let mut next = prefix;
            next.push(p.ident.to_string());
            use_paths(&p.tree, next, out);
        }
        syn::UseTree::Name(n) => {
            let mut next = prefix;
            next.push(n.ident.to_string());
            out.push(next);
        }
        syn::UseTree::Rename(r) => {
            let mut next = prefix;
            next.push(r.ident.to_string());
            out.push(next);
        }
        syn::UseTree::Glob(_) => out.push(prefix),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                use_paths(t, prefix.clone(), out);
            }
        }
    }
}

impl<'ast> Visit<'ast> for Imports<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if !is_test_attr(&m.attrs) {
            syn::visit::visit_item_mod(self, m);
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut paths = Vec::new();
        use_paths(&u.tree, Vec::new(), &mut paths);
        for p in paths {
            self.add(p);
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        self.add(p.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, p);
    }
}

#[test]
fn no_server_module_imports_one_that_imports_it_back() {
    let src = root().join("server/src");
    let files = rust_files(&src);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&src, f)).collect();
    // A path names the longest module it starts with.
    let resolve = |path: &[String]| -> Option<Vec<String>> {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| modules.contains(p))
    };
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for f in &files {
        if f.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let here = module_of(&src, f);
        let mut v = Imports {
            here: &here,
            found: Vec::new(),
        };
        v.visit_file(&parse(f));
        let targets = edges.entry(here.clone()).or_default();
        for p in v.found {
            if let Some(t) = resolve(&p) {
                // A module is part of its ancestors; naming one of them is not a cycle.
                if !here.starts_with(&t) {
                    targets.insert(t);
                }
            }
        }
    }
    // Depth-first search for a path back to where it started.
    let mut cycles = Vec::new();
    for start in edges.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, trail)) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == start {
                    cycles.push(
                        trail
                            .iter()
                            .map(|m| m.join("::"))
                            .collect::<Vec<_>>()
                            .join(" → "),
                    );
                } else if seen.insert(next.clone()) {
                    let mut t = trail.clone();
                    t.push(next.clone());
                    stack.push((next.clone(), t));
                }
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "modules that import each other: {cycles:#?}"
    );
}

/// The string literals of a file's non-test code, outside attributes (`#[cfg(feature = "pdf")]`)
/// and the keys of index expressions (`answer["csv"]`, a JSON field).
struct Literals {
    found: Vec<(usize, String)>,
}

impl<'ast> Visit<'ast> for Literals {
    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {}

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if !is_test_attr(&m.attrs) {
            syn::visit::visit_item_mod(self, m);
        }
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if !is_test_attr(&f.attrs) {
            syn::visit::visit_item_fn(self, f);
        }
    }

    fn visit_expr_index(&mut self, e: &'ast syn::ExprIndex) {
        if !matches!(&*e.index, syn::Expr::Lit(_)) {
            self.visit_expr(&e.index);
        }
        self.visit_expr(&e.expr);
    }

    fn visit_lit_str(&mut self, s: &'ast syn::LitStr) {
        self.found.push((s.span().start().line, s.value()));
    }
}

#[test]
fn the_closed_sets_are_parsed_once_and_named_in_one_place() {
    let root = root();
    let mut found = Vec::new();
    // A document key, a phase or a role is parsed where it enters (a stored record, a
    // request body), never again on the way: the server holds them typed.
    for path in rust_files(&root.join("server/src")) {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let squeezed: String = text.split_whitespace().collect();
        for typed in ["DocKey", "Phase", "Role"] {
            for spelled in [
                format!("parse::<{typed}>"),
                format!("parse::<toron_domain::policy::{typed}>"),
            ] {
                if squeezed.contains(&spelled) {
                    found.push(format!("{}: {spelled}", path.display()));
                }
            }
        }
    }
    // A report format is named only by `report::Format` (its `as_str` and `FromStr`).
    let formats = ["html", "md", "csv", "xlsx", "hwpx", "pdf"];
    for dir in ["server/src", "client-cli/src", "office/src", "domain/src"] {
        for path in rust_files(&root.join(dir)) {
            if path.ends_with("domain/src/report/format.rs") {
                continue;
            }
            let mut v = Literals { found: Vec::new() };
            v.visit_file(&parse(&path));
            for (line, s) in v.found {
                if formats.contains(&s.as_str()) {
                    found.push(format!("{}:{line}: \"{s}\"", path.display()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "closed sets spelled outside their types (use report::Format, or the typed record): {found:#?}"
    );
}

#[test]
fn every_path_architecture_md_names_exists() {
    let root = root();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    // Relative to the workspace (`a/b.rs`, folders `a/`).
    let paths: BTreeSet<String> = paths_below(&root)
        .iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(&root).ok()?.to_string_lossy().into_owned();
            Some(if p.is_dir() { format!("{rel}/") } else { rel })
        })
        .collect();
    const KINDS: [&str; 12] = [
        ".rs", ".js", ".mjs", ".md", ".sh", ".toml", ".typ", ".json", ".zip", ".txt", ".css", "/",
    ];
    // Names inside the files Toron writes, not in the repository.
    const INSIDE_FILES: [&str; 2] = ["/", "BinData/"];
    let mut missing = Vec::new();
    for (i, quoted) in text.split('`').enumerate() {
        let name = quoted.trim_end_matches(['.', ',', ':', ';']);
        let path_like = i % 2 == 1
            && !name.contains(char::is_whitespace)
            && KINDS.iter().any(|k| name.ends_with(k))
            && !name.starts_with("http")
            && !name.starts_with("/api")
            && !name.contains(['*', '{', '<']);
        if !path_like || INSIDE_FILES.contains(&name) {
            continue;
        }
        // A path is named from the workspace or from its crate's folder (`registry.rs` in
        // the domain's section): some path must end with it.
        let found = paths
            .iter()
            .any(|p| p == name || p.ends_with(&format!("/{name}")));
        if !found {
            missing.push(name.to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that do not exist: {missing:?}"
    );
}

/// The suite is one binary (`main.rs`, one `mod` per file): a file it does not name would be
/// neither compiled nor run, silently.
#[test]
fn every_file_of_the_suite_is_a_module_of_it() {
    let suite = root().join("tests/tests/suite");
    let declared: BTreeSet<String> = parse(&suite.join("main.rs"))
        .items
        .iter()
        .filter_map(|i| match i {
            syn::Item::Mod(m) => Some(m.ident.to_string()),
            _ => None,
        })
        .collect();
    let forgotten: Vec<String> = rust_files(&suite)
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_string_lossy().into_owned()))
        .filter(|name| name != "main" && !declared.contains(name))
        .collect();
    assert!(
        forgotten.is_empty(),
        "files of the suite that main.rs does not name (add `mod NAME;`): {forgotten:?}"
    );
}
