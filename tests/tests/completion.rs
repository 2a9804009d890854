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
    let tool = line.split_whitespace().next().expect("a tool");
    let function = format!("_{}", tool.replace('-', "_"));
    let script = match shell {
        "bash" => format!(
            "source <({tool} completions bash)\nCOMP_LINE={line:?}; COMP_POINT=${{#COMP_LINE}}\n\
             {function}\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n"
        ),
        "fish" => format!("{tool} completions fish | source\ncomplete -C {line:?}\n"),
        "zsh" => {
            let mut words: Vec<String> =
                line.split_whitespace().map(|w| format!("{w:?}")).collect();
            if line.ends_with(' ') {
                words.push("\"\"".into());
            }
            format!(
                "compdef() {{ :; }}\ncompadd() {{ shift; print -l -- \"$@\"; }}\n\
                 _files() {{ print -- FILES; }}\nsource <({tool} completions zsh)\n\
                 words=({}); CURRENT=${{#words}}\n{function}; true\n",
                words.join(" ")
            )
        }
        _ => unreachable!(),
    };
    let out = cmd
        .arg(shell)
        .arg("-c")
        .arg(&script)
        .current_dir(dir)
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
        // up's --name is a new name: nothing offered.
        assert_eq!(ask("cloon-run --name "), strings(&[]), "{shell}");
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
