//! Shell completion, in the shells themselves: each tool prints its script for bash, zsh and
//! fish (`TOOL completions SHELL`), the shell reads it, and a TAB offers what the tool knows at
//! that moment: subcommands and flags, a lab's nodes and `NODE:IFACE` ends from the topology file
//! typed, an OCI layout's tags, and (in the sandbox) the containers recorded in the state
//! directory typed and the labs that are up. bash runs its completion function on `COMP_LINE`,
//! fish its `complete -C`, zsh its function with `compadd` and `_files` standing in for its
//! completion system (which needs a terminal).

use cloon_tests::{can_run, tool_path, tools_path, unique, Sandbox, TOOLS};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether `shell` is installed (scripts/setup-host installs zsh and fish).
fn have(shell: &str) -> bool {
    let found = Command::new(shell).arg("-c").arg("exit 0").status().is_ok();
    can_run(
        &format!("the {shell} part"),
        found,
        &format!("needs {shell} (scripts/setup-host installs it)"),
    )
}

/// A scratch directory of this test.
fn scratch(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cloon-completion-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    dir
}

/// The candidates a TAB at the end of `line` gives in `shell`, run by `cmd` (a plain command, or
/// one in a sandbox) in `dir`, with the tools first in `PATH`.
fn tab(mut cmd: Command, shell: &str, line: &str, dir: &Path) -> Vec<String> {
    let tool = line
        .split_whitespace()
        .find(|w| !w.contains('='))
        .expect("a tool");
    let function = format!("_{}", tool.replace('-', "_"));
    let script = match shell {
        "bash" => format!(
            "source <({tool} completions bash)\nCOMP_LINE={}; COMP_POINT=${{#COMP_LINE}}\n\
             {function}\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            sh_quote(line)
        ),
        "fish" => format!(
            "{tool} completions fish | source\ncomplete -C {}\n",
            sh_quote(line)
        ),
        // The words as zsh's lexer cuts the line (quotes kept, as in completion's `words`).
        "zsh" => format!(
            "compdef() {{ :; }}\ncompadd() {{ shift; print -l -- \"$@\"; }}\n\
             _files() {{ print -- FILES; }}\nsource <({tool} completions zsh)\n\
             line={}; words=(${{(z)line}}); [[ $line == *' ' ]] && words+=('')\n\
             CURRENT=${{#words}}\n{function}; true\n",
            sh_quote(line)
        ),
        _ => unreachable!(),
    };
    let out = cmd
        .arg(shell)
        .arg("-c")
        .arg(&script)
        .current_dir(dir)
        .env("HOME", dir)
        .env("PATH", tools_path())
        .env_remove("CLOON_STATE_DIR")
        .env_remove("CLOON_LAB_DIR")
        .output()
        .expect("run the shell");
    assert!(
        out.status.success(),
        "{shell}: {line:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        // fish prints each candidate with its description after a tab.
        .map(|l| l.split('\t').next().unwrap_or_default().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// `text` in single quotes, for bash, zsh and fish alike.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// [`tab`] outside any sandbox.
fn tab_here(shell: &str, line: &str, dir: &Path) -> Vec<String> {
    tab(Command::new("env"), shell, line, dir)
}

fn shells() -> Vec<&'static str> {
    ["bash", "zsh", "fish"]
        .into_iter()
        .filter(|s| have(s))
        .collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_tool_prints_a_script_each_shell_reads_and_installs_the_same() {
    let dir = scratch("scripts");
    for shell in shells() {
        for tool in TOOLS {
            let out = Command::new(tool_path(tool))
                .args(["completions", shell])
                .output()
                .expect("run the tool");
            assert!(out.status.success(), "{tool} completions {shell}");
            let text = String::from_utf8(out.stdout).expect("UTF-8");
            assert!(
                text.contains(&format!("{tool} __complete")),
                "{tool} {shell}"
            );
            let file = dir.join(format!("{tool}.{shell}"));
            std::fs::write(&file, &text).expect("write");
            let check = Command::new(shell)
                .arg("-n")
                .arg(&file)
                .output()
                .expect("run the shell");
            assert!(
                check.status.success(),
                "{shell} -n {tool}: {}",
                String::from_utf8_lossy(&check.stderr)
            );
        }
    }
    // A wrong shell is a usage error that names the choices, with nothing on stdout.
    let out = Command::new(tool_path("cloon-run"))
        .args(["completions", "tcsh"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash, zsh, fish"));
    std::fs::remove_dir_all(&dir).expect("clean");
}

#[test]
fn subcommands_flags_nodes_ends_and_tags_in_each_shell() {
    let dir = scratch("files");
    std::fs::write(
        dir.join("lab.clab.yml"),
        "name: t\ntopology:\n  defaults: {kind: linux, image: busybox}\n  nodes:\n    \
         r1: {}\n    r2: {}\n    sw: {kind: bridge}\n  links:\n    \
         - endpoints: [\"r1:eth1\", \"r2:eth1\"]\n    - endpoints: [\"r1:eth2\", \"sw:r1\"]\n",
    )
    .expect("topology");
    std::fs::write(
        dir.join("wan.clab.yml"),
        "name: w\nhosts:\n  h1: {address: 192.0.2.1}\n  h2: {address: 192.0.2.2}\n\
         topology:\n  defaults: {kind: linux, image: busybox}\n  nodes:\n    \
         a: {host: h1}\n    b: {host: h2}\n    c: {host: h2}\n",
    )
    .expect("topology");
    std::fs::copy(dir.join("lab.clab.yml"), dir.join("my lab.clab.yml")).expect("copy");
    let layout = dir.join("layout");
    std::fs::create_dir(&layout).expect("layout");
    let desc = |tag: &str| {
        serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", "a".repeat(64)), "size": 1,
            "annotations": {"org.opencontainers.image.ref.name": tag}})
    };
    let index =
        serde_json::json!({"schemaVersion": 2, "manifests": [desc("app:v1"), desc("base")]});
    std::fs::write(layout.join("index.json"), index.to_string()).expect("index");
    for shell in shells() {
        let ask = |line: &str| tab_here(shell, line, &dir);
        assert_eq!(ask("cloon-lab ex"), strings(&["exec"]), "{shell}");
        assert_eq!(
            ask("cloon-run down --s"),
            strings(&["--signal", "--state-dir"]),
            "{shell}"
        );
        assert_eq!(ask("cloon-run down --signal "), strings(&["KILL", "TERM"]));
        // The nodes are the topology's containers (not its bridge), read from the file typed.
        assert_eq!(
            ask("cloon-lab exec lab.clab.yml "),
            strings(&["r1", "r2"]),
            "{shell}"
        );
        // bash cuts words at ':', the other shells do not: each shows the whole end.
        let ends = ask("cloon-lab capture lab.clab.yml r1:");
        let expected = if shell == "bash" {
            strings(&["eth1", "eth2"])
        } else {
            strings(&["r1:eth1", "r1:eth2"])
        };
        assert_eq!(ends, expected, "{shell}");
        assert_eq!(
            ask("cloon-lab netem show lab.clab.yml r2"),
            strings(&["r2:eth1"]),
            "{shell}"
        );
        // A path where a file is wanted: the shell's own completion.
        let file = ask("cloon-lab up lab.c");
        assert!(
            file == strings(&["lab.clab.yml"]) || file == strings(&["FILES"]),
            "{shell}: {file:?}"
        );
        // The layout's tags after the colon (bash shows what follows it).
        let tags = ask("cloon-img create x.img --from-oci layout:");
        let expected = if shell == "bash" {
            strings(&["app:v1", "base"])
        } else {
            strings(&["layout:app:v1", "layout:base"])
        };
        assert_eq!(tags, expected, "{shell}");
        // A spread lab: its hosts, and with --host the nodes of that host.
        assert_eq!(
            ask("cloon-lab up wan.clab.yml --host "),
            strings(&["h1", "h2"])
        );
        assert_eq!(
            ask("cloon-lab exec wan.clab.yml --host h2 "),
            strings(&["b", "c"]),
            "{shell}"
        );
        // Words as the shell passes them: quoted, escaped, with ~/ (HOME is the directory).
        for file in ["'my lab.clab.yml'", "my\\ lab.clab.yml", "~/lab.clab.yml"] {
            let line = format!("cloon-lab exec {file} ");
            assert_eq!(ask(&line), strings(&["r1", "r2"]), "{shell}: {line}");
        }
        // A value given with `=`: bash replaces what follows it.
        let engine = ask("cloon-lab netem lab.clab.yml r1:eth1 --engine=re");
        let expected = if shell == "bash" {
            strings(&["relay"])
        } else {
            strings(&["--engine=relay"])
        };
        assert_eq!(engine, expected, "{shell}");
        // netem's first word: show, reset, or a file.
        let first = ask("cloon-lab netem ");
        assert!(
            first.contains(&"show".to_string())
                && first.contains(&"reset".to_string())
                && (first.contains(&"lab.clab.yml".to_string())
                    || first.contains(&"FILES".to_string())),
            "{shell}: {first:?}"
        );
        let first = ask("cloon-lab netem la");
        assert!(!first.contains(&"reset".to_string()), "{shell}: {first:?}");
        assert!(
            first.contains(&"lab.clab.yml".to_string()) || first == strings(&["FILES"]),
            "{shell}: {first:?}"
        );
        // After `--`, every word is the command's, not FILE's or NODE's.
        assert_eq!(
            ask("cloon-lab exec lab.clab.yml -- "),
            strings(&[]),
            "{shell}"
        );
        // Nothing is offered inside the command given to a container.
        assert_eq!(ask("cloon-lab exec lab.clab.yml r1 -- "), strings(&[]));
    }
    std::fs::remove_dir_all(&dir).expect("clean");
}

#[test]
fn live_containers_and_labs_of_the_state_directory_typed() {
    let Some(sb) = Sandbox::new("completion_live") else {
        return;
    };
    let name = unique("Compl");
    let img = sb.busybox_image("bb.img");
    let up = sb.sh(&format!(
        "cloon-overlay --image {img} --name {name} | cloon-netns --netns {name} \
         | cloon-spec -- sleep 1000 | cloon-run"
    ));
    assert_eq!(up.status, 0, "{}", up.stderr);
    // A second state directory with another container's overlay.
    let other = unique("Other");
    sb.sh(&format!(
        "cloon-overlay --state-dir /run/other --image {img} --name {other}"
    ))
    .ok();
    let lab_file = sb.path("one.clab.yml");
    let lab_name = unique("cl");
    std::fs::write(
        &lab_file,
        format!("name: {lab_name}\ntopology:\n  nodes:\n    n1: {{kind: linux, image: busybox}}\n"),
    )
    .expect("topology");
    let cache = sb.path("cache");
    let lab_up = sb.tool(
        "cloon-lab",
        &[
            "up",
            "--cache-dir",
            &cache.display().to_string(),
            &lab_file.display().to_string(),
        ],
        "",
    );
    assert_eq!(lab_up.status, 0, "{}", lab_up.stderr);

    for shell in shells() {
        let ask = |line: &str| tab(sb.cmd("env"), shell, line, &sb.dir);
        assert_eq!(ask("cloon-run exec "), vec![name.clone()], "{shell}");
        assert_eq!(ask("cloon-run state C"), vec![name.clone()], "{shell}");
        assert_eq!(
            ask("cloon-overlay down --name "),
            vec![name.clone()],
            "{shell}"
        );
        assert_eq!(
            ask("cloon-overlay --state-dir /run/other check --name "),
            vec![other.clone()],
            "{shell}"
        );
        // The state directory says which: none of its containers in another.
        assert_eq!(ask("cloon-run --state-dir /run/other exec "), strings(&[]));
        // up's --name is a new name, as are link's and vxlan's: nothing offered.
        assert_eq!(ask("cloon-run --name "), strings(&[]), "{shell}");
        assert_eq!(ask("cloon-netns link --name "), strings(&[]), "{shell}");
        assert_eq!(ask("cloon-netns down --name "), vec![name.clone()]);
        assert_eq!(ask("cloon-lab down --name "), vec![lab_name.clone()]);
    }

    let down = sb.sh(&format!(
        "cloon-run down --name {name} && cloon-spec down --name {name} && \
         cloon-netns down --name {name} && cloon-overlay down --name {name} && \
         cloon-overlay --state-dir /run/other down --name {other} && \
         cloon-lab down {}",
        lab_file.display()
    ));
    assert_eq!(down.status, 0, "{}", down.stderr);
    for shell in shells() {
        let ask = |line: &str| tab(sb.cmd("env"), shell, line, &sb.dir);
        assert_eq!(ask("cloon-run exec "), strings(&[]), "{shell}");
        assert_eq!(ask("cloon-lab down --name "), strings(&[]), "{shell}");
    }
    sb.sh("rm -rf /run/other; rm -f /run/cloon/.cloon-state; rmdir /run/cloon 2>/dev/null; true")
        .ok();
    sb.assert_clean(&[]);
}

/// Labs are offered only when their state looks as `up` makes it: a valid name (never one the
/// shell would read as a command), a directory of this user's; and the labs directory may be
/// set before the tool, as the tools read it.
#[test]
fn only_labs_cloon_made_are_offered() {
    let dir = scratch("labs");
    let labs = dir.join("labs");
    for name in ["good", "$(touch PWNED)", "two\nlines", "-dash"] {
        std::fs::create_dir_all(labs.join(name).join(".lab")).expect("lab dir");
    }
    std::fs::create_dir_all(dir.join("elsewhere/.lab")).expect("dir");
    std::os::unix::fs::symlink(dir.join("elsewhere"), labs.join("linked")).expect("link");
    for shell in shells() {
        let line = format!("CLOON_LAB_DIR={} cloon-lab down --name ", labs.display());
        assert_eq!(tab_here(shell, &line, &dir), strings(&["good"]), "{shell}");
        let line = format!("cloon-lab down --labs-dir {} --name ", labs.display());
        assert_eq!(tab_here(shell, &line, &dir), strings(&["good"]), "{shell}");
    }
    assert!(!dir.join("PWNED").exists());
    std::fs::remove_dir_all(&dir).expect("clean");
}

/// A TAB never waits: a topology "file" that is a fifo or a device, or a huge file, gives no
/// nodes, at once.
#[test]
fn a_tab_never_waits_on_a_fifo_or_a_huge_file() {
    let dir = scratch("fifo");
    let fifo = dir.join("fifo.yml");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo")
        .success());
    let huge = dir.join("huge.yml");
    std::fs::File::create(&huge)
        .and_then(|f| f.set_len(1 << 30))
        .expect("sparse file");
    let layout = dir.join("oci");
    std::fs::create_dir(&layout).expect("layout");
    assert!(Command::new("mkfifo")
        .arg(layout.join("index.json"))
        .status()
        .expect("mkfifo")
        .success());
    let asks: Vec<(&str, Vec<String>)> = vec![
        (
            "cloon-lab",
            vec!["exec".into(), fifo.display().to_string(), String::new()],
        ),
        (
            "cloon-lab",
            vec!["capture".into(), "/dev/zero".into(), String::new()],
        ),
        (
            "cloon-lab",
            vec!["exec".into(), huge.display().to_string(), String::new()],
        ),
        (
            "cloon-lab",
            vec!["netem".into(), "/dev/stdin".into(), String::new()],
        ),
        (
            "cloon-img",
            vec![
                "create".into(),
                "x.img".into(),
                "--from-oci".into(),
                format!("{}:", layout.display()),
            ],
        ),
    ];
    for (tool, words) in asks {
        let started = std::time::Instant::now();
        let mut child = Command::new(tool_path(tool))
            .arg("__complete")
            .args(&words)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break Some(status);
            }
            if started.elapsed() > std::time::Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert!(
            status.is_some_and(|s| s.success()),
            "{tool} {words:?}: hung or failed"
        );
        let out = child.wait_with_output().expect("output");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "words\n",
            "{tool} {words:?}"
        );
    }
    std::fs::remove_dir_all(&dir).expect("clean");
}
