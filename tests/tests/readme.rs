//! The README as written, on real kernel objects: its code blocks are read from README.md by
//! their heading (a block that moved or went away fails the test, naming it), so that a change of
//! the README is a change of what runs here.
//!
//! - The Quick start's "A container of your own" runs with `sh -e` in a sandbox (the tools are
//!   put on `PATH` by the test, in place of the block's `cargo build ... export PATH` line): the
//!   container's `eth0` has 10.0.0.2, and after the teardown pipeline no loop device, mount,
//!   namespace, link, container or state record is left.
//! - The Labs block runs line by line, each line as typed in a shell, in a directory standing for
//!   the root of a clone (its `labs/` is the repository's): the ping answers, the graph is a DOT
//!   graph naming every node, and `down` leaves nothing.
//!
//! Without privileges, the blocks are found and have the shape the runs rely on.

use cloon_tests::{code_block, readme_section, repo_root, Run, Sandbox};
use std::path::Path;

/// The heading, and the line before the block, of the Quick start's own container.
const QUICK_START: (&str, &str) = ("## Quick start", "A container of your own");
/// The heading of the Labs section; its block is the section's first `sh` block.
const LABS: &str = "## Labs";

/// The Quick start's block without its first line, the build and `export PATH` (the test runs
/// the tools it was built with).
fn quick_start_script() -> String {
    let block = code_block(&readme_section(QUICK_START.0), QUICK_START.1, "sh");
    let mut lines = block.lines();
    let build = lines.next().unwrap_or_default();
    assert!(
        build.starts_with("cargo build") && build.contains("export PATH"),
        "the Quick start's block no longer starts with its build line: {build:?}\n{block}"
    );
    let script: Vec<&str> = lines.collect();
    assert!(
        !script.iter().any(|l| l.contains("cargo ")),
        "a second build line in the Quick start's block:\n{block}"
    );
    script.join("\n") + "\n"
}

/// The Labs block's commands: its lines that are not empty, as written.
fn labs_lines() -> Vec<String> {
    let block = code_block(&readme_section(LABS), "", "sh");
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect()
}

/// The words of a line before its comment.
fn words(line: &str) -> Vec<&str> {
    line.split('#')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect()
}

/// The verb of a `cloon-lab` line, and its topology file (a `.clab.yml` under `labs/`).
fn verb_and_file(line: &str) -> (String, String) {
    let w = words(line);
    assert_eq!(
        w.first(),
        Some(&"cloon-lab"),
        "not a cloon-lab command: {line}"
    );
    let file = w
        .iter()
        .find(|w| w.ends_with(".clab.yml"))
        .unwrap_or_else(|| panic!("no topology file in: {line}"));
    (w[1].to_string(), file.to_string())
}

/// The file a line's output is redirected to (`> FILE`), if any.
fn redirect(line: &str) -> Option<String> {
    let w = words(line);
    let at = w.iter().position(|w| *w == ">")?;
    w.get(at + 1).map(|f| f.to_string())
}

#[test]
fn the_readme_blocks_are_found_and_run_from_a_clone_without_downloads() {
    let script = quick_start_script();
    for part in [
        "cloon-img create --busybox",
        "cloon-run exec",
        "cloon-overlay down",
    ] {
        assert!(script.contains(part), "no `{part}` in:\n{script}");
    }
    let lines = labs_lines();
    let verbs: Vec<String> = lines.iter().map(|l| verb_and_file(l).0).collect();
    assert_eq!(verbs.first().map(String::as_str), Some("up"), "{lines:#?}");
    assert_eq!(verbs.last().map(String::as_str), Some("down"), "{lines:#?}");
    for verb in ["exec", "graph"] {
        assert!(verbs.iter().any(|v| v == verb), "no {verb} in {lines:#?}");
    }
    // One lab file, in the repository, whose images are busybox (no download).
    let (_, file) = verb_and_file(&lines[0]);
    assert!(file.starts_with("labs/"), "{file}: not a lab of labs/");
    for line in &lines {
        assert_eq!(verb_and_file(line).1, file, "{line}: another lab");
    }
    let text = std::fs::read_to_string(repo_root().join(&file))
        .unwrap_or_else(|e| panic!("the README's lab {file}: {e}"));
    for image in text.lines().filter_map(|l| l.trim().strip_prefix("image:")) {
        assert_eq!(
            image.trim(),
            "busybox",
            "{file}: an image that needs the network"
        );
    }
}

#[test]
fn the_quick_start_container_runs_as_written() {
    let script = quick_start_script();
    let Some(sb) = Sandbox::new("readme-quick") else {
        return;
    };
    let dir = sb.path("quick-start");
    std::fs::create_dir_all(&dir).expect("a directory for the Quick start");
    std::fs::write(dir.join("quick-start.sh"), &script).expect("write the script");
    let r = sb.sh_within(
        &format!("cd '{}' && sh -e quick-start.sh", dir.display()),
        300,
    );
    assert_eq!(
        r.status, 0,
        "{script}\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    // `cloon-run exec Cloon1 -- ip addr`: the container's eth0, with the article's address.
    assert!(
        r.stdout
            .lines()
            .any(|l| l.trim().starts_with("inet 10.0.0.2/24 ") && l.trim().ends_with(" eth0")),
        "no eth0 with 10.0.0.2/24 in the exec's output:\n{}",
        r.stdout
    );
    // The teardown pipeline's last document: every part gone, no error.
    let last = r
        .stdout
        .rfind("{\n  \"cloonVersion\"")
        .map(|at| &r.stdout[at..])
        .unwrap_or_else(|| panic!("no document after the teardown:\n{}", r.stdout));
    let doc: serde_json::Value = serde_json::from_str(last).expect("the teardown's document");
    for part in ["error", "overlay", "netns", "bundle", "container"] {
        assert!(doc.get(part).is_none(), "{part} is left in {doc}");
    }
    sb.assert_clean(&[]);
}

/// Runs one line of the Labs block as typed in a shell, in `dir`, the image cache in the
/// sandbox's scratch directory (a lab's state is in the sandbox's own `/run`).
fn typed(sb: &Sandbox, dir: &Path, line: &str) -> Run {
    let cache = sb.path("cache");
    sb.sh_within(
        &format!(
            "cd '{}' || exit 1\nexport CLOON_LAB_CACHE='{}'\n{line}\n",
            dir.display(),
            cache.display()
        ),
        300,
    )
}

#[test]
fn the_labs_block_runs_as_written() {
    let lines = labs_lines();
    let Some(sb) = Sandbox::new("readme-labs") else {
        return;
    };
    // The root of a clone: its labs/ is the repository's, what the lines write is the sandbox's.
    let dir = sb.path("clone");
    std::fs::create_dir_all(&dir).expect("a directory for the clone");
    std::os::unix::fs::symlink(repo_root().join("labs"), dir.join("labs")).expect("labs/");
    let mut nodes: Vec<String> = Vec::new();
    for line in &lines {
        let (verb, file) = verb_and_file(line);
        let r = typed(&sb, &dir, line);
        assert_eq!(
            r.status, 0,
            "{line}\nstdout: {}\nstderr: {}",
            r.stdout, r.stderr
        );
        match verb.as_str() {
            "up" | "deploy" => {
                let view = typed(&sb, &dir, &format!("cloon-lab inspect --json {file}")).json();
                let all = view["nodes"].as_array().expect("inspect's nodes");
                for n in all {
                    let want = if n["kind"] == "bridge" {
                        "up"
                    } else {
                        "running"
                    };
                    assert_eq!(n["state"], want, "{line}: {n}");
                }
                nodes = all
                    .iter()
                    .map(|n| n["name"].as_str().expect("a node's name").to_string())
                    .collect();
                assert!(nodes.len() >= 2, "{view}");
            }
            "inspect" => {
                for n in &nodes {
                    assert!(
                        r.stdout.contains(n.as_str()),
                        "{line}: no {n} in\n{}",
                        r.stdout
                    );
                }
            }
            "exec" if line.contains("ping") => {
                assert!(
                    r.stdout.contains("1 packets received"),
                    "{line}: no answer\n{}",
                    r.stdout
                );
            }
            "graph" => {
                let out = redirect(line).unwrap_or_else(|| panic!("{line}: to which file?"));
                let graph = std::fs::read_to_string(dir.join(&out))
                    .unwrap_or_else(|e| panic!("{line}: {out}: {e}"));
                // DOT, or the picture dot draws of it.
                let (is_graph, named): (bool, fn(&str) -> String) = if out.ends_with(".svg") {
                    (graph.contains("<svg"), |n| format!("<title>{n}</title>"))
                } else {
                    let dot = graph.starts_with("graph ") && graph.trim_end().ends_with('}');
                    (dot, |n| format!("\"{n}\""))
                };
                assert!(is_graph, "{line}: {out} is not a graph:\n{graph}");
                for n in &nodes {
                    assert!(graph.contains(&named(n)), "{line}: no node {n} in\n{graph}");
                }
            }
            "down" | "destroy" => sb.assert_clean(&[]),
            _ => {}
        }
    }
    assert!(!nodes.is_empty(), "the block brought up no lab: {lines:#?}");
}
