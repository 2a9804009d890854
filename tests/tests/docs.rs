//! The documentation against the code, without privileges: the error codes table of
//! `docs/document.md` lists exactly cloon-core's codes, the README stays an on-ramp (at most 250
//! lines), and every relative link of the README and of `docs/*.md` leads to a file that exists
//! inside the repository (and, for a link to a heading of a Markdown file, to a heading that
//! exists).

use cloon_core::Code;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The repository's top directory.
fn top() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace above tests/")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The README and every Markdown file of `docs/`.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![top().join("README.md")];
    let docs = top().join("docs");
    let mut in_docs: Vec<PathBuf> = std::fs::read_dir(&docs)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", docs.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    in_docs.sort();
    files.extend(in_docs);
    files
}

/// The lines of a Markdown text outside fenced code blocks, with their numbers (from 1).
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            lines.push((i + 1, line));
        }
    }
    lines
}

/// `line` without its inline code spans (`` `...` ``), where brackets are not links.
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
        } else if !in_code {
            out.push(c);
        }
    }
    out
}

/// The targets of the inline links and images of one line: `[text](target)`, `![alt](target)`.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let mut targets = Vec::new();
    let mut rest = line.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        match after.find(')') {
            Some(end) => {
                let target = after[..end].split_whitespace().next().unwrap_or("");
                targets.push(target.to_string());
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    targets
}

/// The anchor GitHub gives a heading: lower case, spaces as hyphens, punctuation other than `-`
/// and `_` dropped (code spans keep their text).
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of the headings of a Markdown file (a repeated heading gets `-1`, `-2`, ...).
fn anchors(path: &Path) -> BTreeSet<String> {
    let text = read(path);
    let mut seen = BTreeSet::new();
    for (_, line) in prose_lines(&text) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let heading = heading.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let base = slug(heading);
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

#[test]
fn the_error_codes_table_lists_exactly_the_codes_of_cloon_core() {
    let path = top().join("docs/document.md");
    let text = read(&path);
    let mut in_table = BTreeSet::new();
    for (number, line) in prose_lines(&text) {
        let Some(row) = line.strip_prefix('|') else {
            continue;
        };
        let first = row.split('|').next().unwrap_or("").trim();
        if let Ok(code) = first.parse::<u8>() {
            assert!(
                in_table.insert(code),
                "docs/document.md:{number}: the code {code} is listed twice"
            );
        }
    }
    let in_code: BTreeSet<u8> = Code::ALL.iter().map(|c| c.number()).collect();
    assert_eq!(
        in_code.len(),
        Code::ALL.len(),
        "Code::ALL lists a code twice"
    );
    let missing: Vec<_> = in_code.difference(&in_table).collect();
    let unknown: Vec<_> = in_table.difference(&in_code).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/document.md's table of error codes and cloon_core::Code::ALL differ: \
         not in the table {missing:?}, not in the code {unknown:?}"
    );
}

#[test]
fn the_readme_has_at_most_250_lines() {
    let lines = read(&top().join("README.md")).lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines: keep it an on-ramp of at most 250 and move reference \
         material to docs/"
    );
}

#[test]
fn every_relative_link_of_the_readme_and_the_docs_leads_somewhere() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        let text = read(&file);
        let dir = file.parent().expect("a file's directory");
        let shown = file
            .strip_prefix(top())
            .unwrap_or(&file)
            .display()
            .to_string();
        for (number, line) in prose_lines(&text) {
            for target in link_targets(line) {
                if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (path, anchor) = match target.split_once('#') {
                    Some((path, anchor)) => (path, Some(anchor)),
                    None => (target.as_str(), None),
                };
                let resolved = if path.is_empty() {
                    file.clone()
                } else {
                    dir.join(path)
                };
                if !resolved.exists() {
                    broken.push(format!("{shown}:{number}: {target}: no such file"));
                    continue;
                }
                // Inside the repository: a fresh clone has nothing beside it.
                let inside = resolved
                    .canonicalize()
                    .is_ok_and(|r| top().canonicalize().is_ok_and(|t| r.starts_with(t)));
                if !inside {
                    broken.push(format!(
                        "{shown}:{number}: {target}: outside the repository"
                    ));
                    continue;
                }
                let Some(anchor) = anchor else {
                    continue;
                };
                if resolved.extension().is_some_and(|e| e == "md")
                    && !anchors(&resolved).contains(anchor)
                {
                    broken.push(format!("{shown}:{number}: {target}: no such heading"));
                }
            }
        }
    }
    assert!(checked > 0, "no relative link found: is the parser right?");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_link_parser_and_the_anchors_follow_markdown() {
    assert_eq!(
        link_targets("see [a](docs/a.md#x) and ![p](router.svg), not `[b](c)`"),
        ["docs/a.md#x", "router.svg"]
    );
    assert_eq!(slug(" What `--explain` prints"), "what---explain-prints");
    assert_eq!(
        slug(" cloon-img: the image, from anywhere"),
        "cloon-img-the-image-from-anywhere"
    );
    assert_eq!(prose_lines("a\n```\n[x](y)\n```\nb"), [(1, "a"), (5, "b")]);
}
