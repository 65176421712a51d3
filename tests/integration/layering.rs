//! Imports run one way: no module of `host/src` or `sdk/src` reaches, through
//! the modules it imports, back to itself (docs/architecture.md, "Layers").
//! A cycle means two modules that can only be understood together; this
//! check keeps a change from adding one unnoticed.
//!
//! A module's imports are the `crate::`, `super::` and `self::` paths in its
//! file, outside `#[cfg(test)]` items, in `use` trees and inline alike. A
//! path is charged to the module that defines the item: a name a module
//! re-exports with `pub use` is followed to where it comes from, so
//! `crate::Request` counts as an import of `request`, not of the crate root.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use wasmhost_tests::workspace;

/// A module, as its path from the crate root (`["session", "handle"]`).
type Module = Vec<String>;

/// A name a `use` tree brings in, and the path it names.
type Export = (String, Vec<String>);

#[test]
fn no_import_cycle_in_the_host() {
    assert_no_cycle("host/src");
}

#[test]
fn no_import_cycle_in_the_sdk() {
    assert_no_cycle("sdk/src");
}

/// The check finds a cycle where there is one (so it cannot pass by
/// finding nothing at all).
#[test]
fn a_cycle_is_found() {
    let mut crate_ = Crate::default();
    crate_.add(module(&["a"]), "use crate::b::B; pub struct A;");
    crate_.add(module(&["b"]), "pub struct B(crate::A);");
    crate_.add(module(&[]), "mod a; mod b; pub use a::A;");
    assert_eq!(crate_.cycle(), Some(vec![module(&["a"]), module(&["b"])]));
}

/// `super::` in an inline module is its file's module, and a `#[cfg(test)]`
/// module nested anywhere imports nothing.
#[test]
fn inline_modules_and_nested_tests_are_read_as_rust_reads_them() {
    let mut crate_ = Crate::default();
    crate_.add(
        module(&["a"]),
        "pub struct A; pub(crate) mod inner { use super::A; #[cfg(test)] mod tests { use crate::b::B; } }",
    );
    crate_.add(module(&["b"]), "pub struct B(crate::a::inner::X);");
    crate_.add(module(&[]), "mod a; mod b;");
    assert_eq!(crate_.cycle(), None);
}

fn assert_no_cycle(source: &str) {
    let root = workspace().join(source);
    let mut crate_ = Crate::default();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 5, "{source} holds the crate's modules");
    for file in files {
        let relative = file.strip_prefix(&root).expect("under the root");
        let mut path: Module = relative
            .with_extension("")
            .iter()
            .map(|part| part.to_string_lossy().into_owned())
            .collect();
        match path.last().map(String::as_str) {
            // A binary beside a library is a crate of its own, which
            // reaches the library by its name, not by `crate::`.
            Some("main") if root.join("lib.rs").exists() => continue,
            Some("mod" | "lib" | "main") => {
                path.pop();
            }
            _ => {}
        }
        let text = std::fs::read_to_string(&file).expect("a source file reads");
        crate_.add(path, &text);
    }
    if let Some(cycle) = crate_.cycle() {
        let names: Vec<String> = cycle.iter().map(|m| m.join("/")).collect();
        panic!(
            "{source}: these modules import one another in a circle: {}",
            names.join(" -> ")
        );
    }
}

fn module(parts: &[&str]) -> Module {
    parts.iter().map(|part| (*part).to_owned()).collect()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source folder reads") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The modules of one crate: the paths each names, and its re-exports.
#[derive(Default)]
struct Crate {
    /// Each module's cited paths, already made absolute.
    cited: BTreeMap<Module, Vec<Vec<String>>>,
    /// (module, exported name) -> the path it re-exports, as written.
    reexports: BTreeMap<(Module, String), Vec<String>>,
}

impl Crate {
    fn add(&mut self, module: Module, text: &str) {
        let tokens = TokenStream::from_str(text).expect("a source file lexes");
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        self.add_tokens(module, &tokens);
    }

    /// A module's tokens; an inline `mod name { ... }` is a module of its own.
    fn add_tokens(&mut self, module: Module, tokens: &[TokenTree]) {
        let mut cited = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            if is_cfg_test(tokens, i) {
                i = skip_item(tokens, i + 2);
                continue;
            }
            if let Some((next, exported)) = pub_use(tokens, i) {
                for (name, path) in exported {
                    self.reexports.insert((module.clone(), name), path);
                }
                i = next;
                continue;
            }
            if ident(tokens.get(i)).as_deref() == Some("mod")
                && let Some(name) = ident(tokens.get(i + 1))
                && let Some(TokenTree::Group(body)) = tokens.get(i + 2)
                && body.delimiter() == Delimiter::Brace
            {
                let mut child = module.clone();
                child.push(name);
                let inner: Vec<TokenTree> = body.stream().into_iter().collect();
                self.add_tokens(child, &inner);
                i += 3;
                continue;
            }
            collect_paths(&tokens[i..=i], &mut cited);
            if let Some(path) = path_at(tokens, i, &[], &mut cited) {
                i = path;
            } else {
                i += 1;
            }
        }
        let cited = cited
            .into_iter()
            .filter(|path| matches!(path[0].as_str(), "crate" | "super" | "self"))
            .map(|path| absolute(&module, &path))
            .collect();
        self.cited.insert(module, cited);
    }

    /// The module that defines what `path` names; none for another crate's
    /// item re-exported here (`pub use http::StatusCode`).
    fn owner(&self, path: &[String], depth: usize) -> Option<Module> {
        for len in (0..=path.len()).rev() {
            let module = path[..len].to_vec();
            if !self.cited.contains_key(&module) {
                continue;
            }
            if let Some(name) = path.get(len)
                && let Some(target) = self.reexports.get(&(module.clone(), name.clone()))
                && depth < 8
            {
                let first = target.first().map(String::as_str);
                let inside = matches!(first, Some("crate" | "self" | "super"))
                    || first.is_some_and(|first| {
                        let mut child = module.clone();
                        child.push(first.to_owned());
                        self.cited.contains_key(&child)
                    });
                if !inside {
                    return None;
                }
                return self.owner(&absolute(&module, target), depth + 1);
            }
            return Some(module);
        }
        None
    }

    fn edges(&self) -> BTreeMap<Module, BTreeSet<Module>> {
        self.cited
            .iter()
            .map(|(module, paths)| {
                let targets = paths
                    .iter()
                    .filter_map(|path| self.owner(path, 0))
                    .filter(|owner| owner != module)
                    .collect();
                (module.clone(), targets)
            })
            .collect()
    }

    /// One cycle of imports, if there is any.
    fn cycle(&self) -> Option<Vec<Module>> {
        let edges = self.edges();
        let mut done = BTreeSet::new();
        for start in edges.keys() {
            let mut stack = Vec::new();
            if let Some(cycle) = visit(start, &edges, &mut stack, &mut done) {
                return Some(cycle);
            }
        }
        None
    }
}

fn visit(
    module: &Module,
    edges: &BTreeMap<Module, BTreeSet<Module>>,
    stack: &mut Vec<Module>,
    done: &mut BTreeSet<Module>,
) -> Option<Vec<Module>> {
    if let Some(at) = stack.iter().position(|m| m == module) {
        return Some(stack[at..].to_vec());
    }
    if done.contains(module) {
        return None;
    }
    stack.push(module.clone());
    for next in edges.get(module).into_iter().flatten() {
        if let Some(cycle) = visit(next, edges, stack, done) {
            return Some(cycle);
        }
    }
    stack.pop();
    done.insert(module.clone());
    None
}

/// `path` (starting `crate`, `super` or `self`) from the crate root.
fn absolute(module: &Module, path: &[String]) -> Vec<String> {
    let mut base = match path.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        Some("self") => module.clone(),
        Some("super") => module[..module.len().saturating_sub(1)].to_vec(),
        _ => module.clone(),
    };
    let rest = if matches!(
        path.first().map(String::as_str),
        Some("crate" | "self" | "super")
    ) {
        &path[1..]
    } else {
        path
    };
    base.extend(rest.iter().cloned());
    base
}

fn ident(token: Option<&TokenTree>) -> Option<String> {
    match token {
        Some(TokenTree::Ident(ident)) => Some(ident.to_string()),
        _ => None,
    }
}

fn is_path_sep(tokens: &[TokenTree], i: usize) -> bool {
    matches!(
        (tokens.get(i), tokens.get(i + 1)),
        (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b))) if a.as_char() == ':' && b.as_char() == ':'
    )
}

fn is_cfg_test(tokens: &[TokenTree], i: usize) -> bool {
    matches!(&tokens[i], TokenTree::Punct(p) if p.as_char() == '#')
        && matches!(tokens.get(i + 1), Some(TokenTree::Group(g))
            if g.delimiter() == Delimiter::Bracket && g.stream().to_string().replace(' ', "") == "cfg(test)")
}

/// The index after the item that starts at `i` (up to its `;` or its body).
fn skip_item(tokens: &[TokenTree], mut i: usize) -> usize {
    while let Some(token) = tokens.get(i) {
        i += 1;
        match token {
            TokenTree::Punct(p) if p.as_char() == ';' => break,
            TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => break,
            _ => {}
        }
    }
    i
}

/// A `pub use` (of any visibility but private) at `i`: the index after it
/// and the (name, path) pairs it exports.
fn pub_use(tokens: &[TokenTree], i: usize) -> Option<(usize, Vec<Export>)> {
    if ident(tokens.get(i))? != "pub" {
        return None;
    }
    let mut at = i + 1;
    if matches!(tokens.get(at), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis)
    {
        at += 1;
    }
    if ident(tokens.get(at))? != "use" {
        return None;
    }
    let end = skip_item(tokens, at);
    let mut exported = Vec::new();
    use_tree(&tokens[at + 1..end], &mut Vec::new(), &mut exported);
    Some((end, exported))
}

/// The (name, path) pairs of a `use` tree, whose leading path is `prefix`.
fn use_tree(tokens: &[TokenTree], prefix: &mut Vec<String>, out: &mut Vec<Export>) {
    let depth = prefix.len();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Ident(id) if *id == "as" => {
                if let (Some(name), Some(last)) = (ident(tokens.get(i + 1)), out.last_mut()) {
                    last.0 = name;
                }
                i += 2;
                continue;
            }
            TokenTree::Ident(id) => {
                prefix.push(id.to_string());
                if !is_path_sep(tokens, i + 1) {
                    out.push((id.to_string(), prefix.clone()));
                    prefix.truncate(depth);
                }
            }
            TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => {
                let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                for part in inner.split(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == ','))
                {
                    use_tree(part, &mut prefix.clone(), out);
                }
                prefix.truncate(depth);
            }
            TokenTree::Punct(p) if p.as_char() == ',' || p.as_char() == ';' => {
                prefix.truncate(depth)
            }
            _ => {}
        }
        i += 1;
    }
}

/// Every path inside the groups among `tokens` (recursively).
fn collect_paths(tokens: &[TokenTree], out: &mut Vec<Vec<String>>) {
    for token in tokens {
        if let TokenTree::Group(g) = token {
            let inner: Vec<TokenTree> = g.stream().into_iter().collect();
            let mut i = 0;
            while i < inner.len() {
                if is_cfg_test(&inner, i) {
                    i = skip_item(&inner, i + 2);
                    continue;
                }
                collect_paths(&inner[i..=i], out);
                i = path_at(&inner, i, &[], out).unwrap_or(i + 1);
            }
        }
    }
}

/// If a path starts at `i` (`crate::a::b`, or a `use` tree with groups),
/// pushes every path it names and returns the index after it.
fn path_at(
    tokens: &[TokenTree],
    i: usize,
    prefix: &[String],
    out: &mut Vec<Vec<String>>,
) -> Option<usize> {
    let first = ident(tokens.get(i))?;
    // `self.field` and `pub(super)` are not paths.
    if prefix.is_empty()
        && (!matches!(first.as_str(), "crate" | "super" | "self") || !is_path_sep(tokens, i + 1))
    {
        return None;
    }
    if i > 0 && is_path_sep(tokens, i.saturating_sub(2)) && prefix.is_empty() {
        return None;
    }
    // A macro's `$crate::` path is expanded in the crate that calls it.
    if i > 0 && matches!(&tokens[i - 1], TokenTree::Punct(p) if p.as_char() == '$') {
        return None;
    }
    let mut path = prefix.to_vec();
    path.push(first);
    let mut at = i + 1;
    while is_path_sep(tokens, at) {
        match tokens.get(at + 2) {
            Some(TokenTree::Ident(id)) => {
                path.push(id.to_string());
                at += 3;
            }
            Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => {
                let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                for part in inner.split(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == ','))
                {
                    if path_at(part, 0, &path, out).is_none() {
                        out.push(path.clone());
                    }
                }
                return Some(at + 3);
            }
            _ => break,
        }
    }
    out.push(path);
    Some(at)
}
