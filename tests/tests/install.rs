//! `scripts/install` into a temporary prefix: the tools, a manual page per tool and subcommand
//! that groff renders without a warning (but for example lines too long to break), with the
//! sections of a manual page (EXIT STATUS, ENVIRONMENT, FILES, EXAMPLES verbatim, SEE ALSO...), and
//! completions, made by the xtask built with the tools, that are the scripts the tools print
//! (`TOOL completions SHELL`) and that bash parses; every `--help` ends with
//! examples of the tool (and, for a subcommand, of that subcommand); the tools themselves carry no
//! generator (no `CLOON_GENERATE`, no clap_mangen, clap_complete or schemars in a release binary).

use cloon_tests::{bin_dir, tool_path, TOOLS};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

fn out(cmd: &mut Command) -> (bool, String, String) {
    let o = cmd.output().expect("run");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn install_puts_tools_pages_and_completions_under_the_prefix() {
    // The xtask that `cargo build --workspace` built with the tools: scripts/install runs it
    // rather than `cargo xtask` (no cargo inside a test).
    for t in TOOLS.iter().chain(&["xtask"]) {
        tool_path(t);
    }
    let prefix = std::env::temp_dir().join(format!("cloon-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&prefix);
    let (ok, _, err) = out(Command::new(repo().join("scripts/install"))
        .arg(&prefix)
        .env("CLOON_BIN_DIR", bin_dir()));
    assert!(ok, "scripts/install failed: {err}");
    let share = prefix.join("share");
    for t in TOOLS {
        assert!(prefix.join("bin").join(t).is_file(), "{t} not installed");
        let (ok, version, _) = out(Command::new(prefix.join("bin").join(t)).arg("--version"));
        assert!(ok && version.starts_with(t), "{version}");
        // bash: the file parses, and defines the completion of the tool.
        let bash = share.join("bash-completion/completions").join(t);
        let (ok, _, err) = out(Command::new("bash").arg("-n").arg(&bash));
        assert!(ok, "bash -n {}: {err}", bash.display());
        let (ok, said, err) = out(Command::new("bash")
            .arg("-c")
            .arg(format!("source {} && complete -p {t}", bash.display())));
        assert!(ok && said.contains(t), "{said}{err}");
        let zsh = std::fs::read_to_string(share.join("zsh/site-functions").join(format!("_{t}")))
            .expect("zsh completion");
        assert!(zsh.starts_with(&format!("#compdef {t}")), "{zsh}");
        let fish = std::fs::read_to_string(
            share
                .join("fish/vendor_completions.d")
                .join(format!("{t}.fish")),
        )
        .expect("fish completion");
        assert!(fish.contains(&format!("complete -c {t}")), "{fish}");
        // Each is what the tool itself prints.
        for (shell, text) in [
            ("bash", std::fs::read_to_string(&bash).ok()),
            ("zsh", Some(zsh)),
            ("fish", Some(fish)),
        ] {
            let (ok, printed, err) = out(Command::new(tool_path(t)).args(["completions", shell]));
            assert!(ok, "{t} completions {shell}: {err}");
            assert_eq!(text.as_deref(), Some(printed.as_str()), "{t} {shell}");
        }
    }
    let man1 = share.join("man/man1");
    let mut pages: Vec<String> = std::fs::read_dir(&man1)
        .expect("man1")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for expected in [
        "cloon-img.1",
        "cloon-img-create.1",
        "cloon-overlay-down.1",
        "cloon-netns-link.1",
        "cloon-spec.1",
        "cloon-run-exec.1",
        "cloon-lab-doctor.1",
    ] {
        assert!(
            pages.iter().any(|p| p == expected),
            "{expected} not in {pages:?}"
        );
    }
    let mut rendered: Vec<(String, String)> = Vec::new();
    for page in &pages {
        let path = man1.join(page);
        let (ok, text, warnings) = out(Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-Wbreak", "-z"])
            .arg(&path));
        assert!(ok && warnings.is_empty(), "groff {page}: {warnings}");
        let (ok, text2, _) = out(Command::new("groff")
            .args(["-man", "-Tutf8", "-P", "-cbou"])
            .arg(&path));
        assert!(ok && text.is_empty(), "{page}");
        let name = page.trim_end_matches(".1");
        assert!(
            text2.contains("NAME") && text2.contains(name),
            "{page}:\n{text2}"
        );
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "EXIT STATUS",
            "ENVIRONMENT",
            "FILES",
            "EXAMPLES",
            "SEE ALSO",
        ] {
            assert!(
                text2.lines().any(|l| l == section),
                "{page} has no {section} section:\n{text2}"
            );
        }
        assert!(!text2.contains("EXTRA"), "{page}:\n{text2}");
        rendered.push((name.to_string(), text2));
    }
    // The examples are verbatim: each line of a tool's `--help` examples is a line of its page,
    // unbroken and unhyphenated (groff indents it).
    let page_lines = |name: &str| -> Vec<String> {
        let (_, text) = rendered
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no page {name}"));
        text.lines().map(|l| l.trim().to_string()).collect()
    };
    for t in TOOLS {
        for sub in std::iter::once(None).chain(subcommands(t).into_iter().map(Some)) {
            let (_, help, _) = out(Command::new(tool_path(t)).args(&sub).arg("--help"));
            let name = match &sub {
                Some(s) => format!("{t}-{s}"),
                None => t.to_string(),
            };
            let lines = page_lines(&name);
            let mut examples = help
                .lines()
                .skip_while(|l| !matches!(l.trim(), "Examples:" | "Example:"))
                .skip(1)
                .take_while(|l| l.is_empty() || l.starts_with("  "))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .peekable();
            assert!(examples.peek().is_some(), "{name}: no examples in --help");
            for example in examples {
                assert!(
                    lines.iter().any(|l| l == example),
                    "{name}.1 lacks the example line `{example}`"
                );
            }
        }
    }
    let known = "cloon-netns link --name wire1 cloonix_1_1:eth1,addr=10.9.0.1/30,mtu=9000 \
                 cloonix_1_2:eth1,addr=10.9.0.2/30,mtu=9000 </dev/null";
    assert!(page_lines("cloon-netns").iter().any(|l| l == known));
    assert!(
        prefix.join("bin/cloon-lab-impair").is_file(),
        "cloon-lab's relay is installed beside it"
    );
    // --uninstall removes exactly what the install made: a file of someone else's stays, and so
    // do the directories.
    let other = man1.join("other-tool.1");
    std::fs::write(&other, ".TH OTHER 1\n").expect("write another page");
    let (ok, _, err) = out(Command::new(repo().join("scripts/install"))
        .arg("--uninstall")
        .arg(&prefix));
    assert!(ok, "scripts/install --uninstall failed: {err}");
    let mut left = Vec::new();
    for dir in ["bin", "share/man/man1", "share/bash-completion/completions"] {
        for e in std::fs::read_dir(prefix.join(dir)).expect("the directory stays") {
            left.push(e.expect("entry").file_name().to_string_lossy().into_owned());
        }
    }
    for dir in [
        "share/zsh/site-functions",
        "share/fish/vendor_completions.d",
    ] {
        for e in std::fs::read_dir(prefix.join(dir)).expect("the directory stays") {
            left.push(e.expect("entry").file_name().to_string_lossy().into_owned());
        }
    }
    assert_eq!(left, ["other-tool.1"], "left after --uninstall");
    std::fs::remove_dir_all(&prefix).expect("rm prefix");
}

/// The subcommands `TOOL --help` lists.
fn subcommands(tool: &str) -> Vec<String> {
    let (_, help, _) = out(Command::new(tool_path(tool)).arg("--help"));
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|s| *s != "help")
        .map(String::from)
        .collect()
}

#[test]
fn every_help_ends_with_examples() {
    for tool in TOOLS {
        let subs = subcommands(tool);
        assert!(!subs.is_empty(), "{tool} lists no subcommand");
        for sub in std::iter::once(None).chain(subs.iter().map(Some)) {
            let mut cmd = Command::new(tool_path(tool));
            cmd.args(sub).arg("--help");
            let (ok, help, _) = out(&mut cmd);
            let what = format!("{tool} {}", sub.map_or("", |s| s.as_str()));
            assert!(ok, "{what} --help");
            let lines: Vec<&str> = help.lines().filter(|l| !l.trim().is_empty()).collect();
            let header = lines
                .iter()
                .rposition(|l| matches!(l.trim(), "Examples:" | "Example:"))
                .unwrap_or_else(|| panic!("{what} --help has no examples:\n{help}"));
            let examples = &lines[header + 1..];
            assert!(!examples.is_empty(), "{what}");
            assert!(
                examples.iter().all(|l| l.starts_with("  ")),
                "{what} --help does not end with its examples:\n{help}"
            );
            let mine = match sub {
                Some(s) if s != "up" => format!("{tool} {s}"),
                _ => tool.to_string(),
            };
            assert!(
                examples.iter().any(|l| l.contains(&mine)),
                "{what}: no example runs `{mine}`:\n{help}"
            );
        }
    }
}

#[test]
fn the_schema_and_a_bad_request_from_the_xtask() {
    let xtask = tool_path("xtask");
    let (ok, schema, err) = out(Command::new(&xtask).arg("schema"));
    assert!(ok, "xtask schema: {err}");
    let shipped = std::fs::read_to_string(repo().join("schema/cloon-document.schema.json"))
        .expect("shipped schema");
    assert_eq!(schema, shipped);
    let o = Command::new(&xtask)
        .args(["completions", "tcsh", "/tmp"])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid value 'tcsh'"));
}

/// The tools do not read `CLOON_GENERATE` any more: with it set, a tool does what its command line
/// says. A release binary holds nothing of the generators (their crates' names would be in its
/// panic messages and type names); a debug build's debug information names them anyway.
#[test]
fn the_tools_carry_no_generator() {
    for t in TOOLS {
        for value in [
            "schema",
            "man:/nonexistent",
            "completions:bash:/nonexistent",
        ] {
            let (ok, version, err) = out(Command::new(tool_path(t))
                .arg("--version")
                .env("CLOON_GENERATE", value));
            assert!(ok && version.starts_with(t), "{t}: {version}{err}");
            assert!(!version.contains("$schema"), "{t} printed the schema");
        }
        if cfg!(debug_assertions) {
            continue;
        }
        let bytes = std::fs::read(tool_path(t)).expect("read the tool");
        for generator in ["clap_mangen", "clap_complete", "schemars"] {
            assert!(
                !bytes
                    .windows(generator.len())
                    .any(|w| w == generator.as_bytes()),
                "{t} holds {generator}"
            );
        }
    }
}
