//! A state directory whose path holds a character the mount table escapes (a space `\040`, a
//! tab `\011`, a newline `\012`, a backslash `\134`), or one overlayfs's options must escape
//! (`,`, `:`, `\`): `check`, `down` and `gc` read the mount table right. Two containers of one
//! image share its lower; `down` of one leaves the other's lower mounted and its data whole;
//! `check` passes on healthy overlays; `gc` keeps them and their upper data.

use cloon_tests::{gc_item, gc_items, lower_of, unique, Run, Sandbox};
use serde_json::Value;

/// Runs `program` with `args` inside the sandbox (no shell, so any path is passed as is).
fn run(sb: &Sandbox, program: &str, args: &[&str]) -> Run {
    sb.run_cmd(sb.cmd(program).args(args), "")
}

/// Whether `path` is a mount point inside the sandbox.
fn mounted(sb: &Sandbox, path: &str) -> bool {
    run(sb, "mountpoint", &["-q", path]).status == 0
}

/// The state directory `state` holds nothing but its marker: removes it.
fn assert_empty(sb: &Sandbox, state: &str) {
    let left = run(sb, "ls", &["-A", state]).ok();
    let left: Vec<&str> = left.lines().filter(|l| *l != ".cloon-state").collect();
    assert!(left.is_empty(), "left in {state:?}: {left:?}");
    run(sb, "rm", &["-f", "--", &format!("{state}/.cloon-state")]).ok();
    run(sb, "rmdir", &[state]).ok();
}

/// Runs `tool` on the state directory `state` with `args` and `stdin`.
fn tool(sb: &Sandbox, state: &str, tool: &str, args: &[&str], stdin: &str) -> Run {
    sb.tool(tool, &[&["--state-dir", state], args].concat(), stdin)
}

/// The lower of `img` under the state directory `state`.
fn lower(state: &str, img: &str) -> String {
    lower_of(img).replacen("/run/cloon", state, 1)
}

/// Overlay `name` works: `check` passes, its data reads back from its rootfs and its upper
/// directory, and the image's files read through it.
fn works(sb: &Sandbox, state: &str, name: &str) {
    let check = tool(sb, state, "cloon-overlay", &["check", "--name", name], "");
    assert_eq!(check.status, 0, "check {name}: {}", check.stderr);
    let shown = tool(sb, state, "cloon-overlay", &["show", "--name", name], "").json();
    let (rootfs, upper) = (
        shown["rootfs"].as_str().expect("rootfs"),
        shown["upper"].as_str().expect("upper"),
    );
    for file in [format!("{rootfs}/data"), format!("{upper}/data")] {
        assert_eq!(run(sb, "cat", &[&file]).ok(), format!("{name}\n"), "{file}");
    }
    run(sb, "cat", &[&format!("{rootfs}/bin/busybox")]).ok();
}

/// `gc` of cloon-overlay finds nothing, and keeps `names` and the lower of `img`.
fn gc_keeps(sb: &Sandbox, state: &str, img: &str, names: &[&str]) {
    let gc = tool(sb, state, "cloon-overlay", &["gc"], "");
    assert_eq!(gc.status, 0, "gc: {}\n{}", gc.stdout, gc.stderr);
    let report = gc.json();
    assert_eq!(report["stateDir"], state);
    assert_eq!(
        gc_items(&report, "found"),
        Vec::<(String, String)>::new(),
        "gc took healthy overlays for leftovers: {report:#}"
    );
    let kept = gc_items(&report, "kept");
    for n in names {
        assert!(kept.contains(&gc_item("overlay", n)), "{report:#}");
    }
    assert!(
        kept.contains(&gc_item("lower", &lower(state, img))),
        "{report:#}"
    );
}

/// Two overlays of one image, their bundles, then `down` one at a time, with `gc` and `check`
/// between: on the state directory `state`.
fn two_containers(sb: &Sandbox, state: &str) {
    let img = sb.busybox_image("bb.img");
    let lower = lower(state, &img);
    let mut docs = Vec::new();
    for n in ["A", "B"] {
        let up = tool(
            sb,
            state,
            "cloon-overlay",
            &["--image", &img, "--name", n],
            "",
        );
        assert_eq!(up.status, 0, "up {n}: {}", up.stderr);
        let doc = up.json();
        assert_eq!(doc["overlay"]["lower"], lower.as_str());
        let rootfs = doc["overlay"]["rootfs"].as_str().expect("rootfs");
        assert!(rootfs.starts_with(state), "{rootfs}");
        let data = format!("{rootfs}/data");
        run(
            sb,
            "sh",
            &["-c", &format!("echo {n} > \"$1\""), "sh", &data],
        )
        .ok();
        let spec = tool(sb, state, "cloon-spec", &[], &up.stdout);
        assert_eq!(spec.status, 0, "spec {n}: {}", spec.stderr);
        docs.push(spec.json());
    }
    assert_eq!(docs[0]["overlay"]["loop"], docs[1]["overlay"]["loop"]);
    for n in ["A", "B"] {
        works(sb, state, n);
        tool(sb, state, "cloon-spec", &["check", "--name", n], "").ok();
    }
    gc_keeps(sb, state, &img, &["A", "B"]);
    let spec_gc = tool(sb, state, "cloon-spec", &["gc"], "").json();
    assert_eq!(gc_items(&spec_gc, "found"), Vec::<(String, String)>::new());
    for n in ["A", "B"] {
        works(sb, state, n);
    }

    // Down of A, from its document: B keeps its lower and its data.
    let down = tool(sb, state, "cloon-spec", &["down"], &docs[0].to_string());
    assert_eq!(down.status, 0, "{}", down.stderr);
    tool(sb, state, "cloon-overlay", &["down"], &down.stdout).ok();
    assert!(mounted(sb, &lower), "down of A unmounted B's lower {lower}");
    works(sb, state, "B");
    gc_keeps(sb, state, &img, &["B"]);
    works(sb, state, "B");

    tool(sb, state, "cloon-spec", &["down", "--name", "B"], "").ok();
    tool(sb, state, "cloon-overlay", &["down", "--name", "B"], "").ok();
    assert!(!mounted(sb, &lower));
    assert_eq!(sb.loops(), Vec::<String>::new());
    assert_empty(sb, state);
    sb.assert_clean(&[]);
}

#[test]
fn a_space_in_the_state_directory() {
    let Some(sb) = Sandbox::new("escaped-space") else {
        return;
    };
    two_containers(&sb, "/run/my lab");
}

#[test]
fn a_tab_in_the_state_directory() {
    let Some(sb) = Sandbox::new("escaped-tab") else {
        return;
    };
    two_containers(&sb, "/run/tab\there");
}

#[test]
fn a_newline_and_a_backslash_in_the_state_directory() {
    let Some(sb) = Sandbox::new("escaped-newline") else {
        return;
    };
    two_containers(&sb, "/run/new\nline\\back");
}

#[test]
fn the_separators_of_overlay_options_in_the_state_directory() {
    let Some(sb) = Sandbox::new("escaped-separators") else {
        return;
    };
    two_containers(&sb, "/run/lab,one:two");
}

#[test]
fn a_running_container_under_a_state_directory_with_a_space() {
    let Some(sb) = Sandbox::new("escaped-running") else {
        return;
    };
    let state = "/run/my lab";
    let img = sb.busybox_image("bb.img");
    let name = unique("es");
    let overlay = tool(
        &sb,
        state,
        "cloon-overlay",
        &["--image", &img, "--name", &name],
        "",
    );
    assert_eq!(overlay.status, 0, "{}", overlay.stderr);
    let spec = tool(
        &sb,
        state,
        "cloon-spec",
        &["--", "sleep", "1000"],
        &overlay.stdout,
    );
    assert_eq!(spec.status, 0, "{}", spec.stderr);
    let up = tool(
        &sb,
        state,
        "cloon-run",
        &["--root", sb.runtime_root],
        &spec.stdout,
    );
    assert_eq!(up.status, 0, "{}", up.stderr);
    let doc: Value = up.json();
    let rootfs = doc["overlay"]["rootfs"].as_str().unwrap().to_string();
    tool(
        &sb,
        state,
        "cloon-run",
        &[
            "exec",
            &name,
            "--",
            "sh",
            "-c",
            &format!("echo {name} > /data"),
        ],
        "",
    )
    .ok();
    works(&sb, state, &name);
    // In use, also once unmounted in the sandbox's namespace (the container keeps its copy).
    for unmount in [false, true] {
        if unmount {
            run(&sb, "umount", &[&rootfs]).ok();
        }
        let down = tool(&sb, state, "cloon-overlay", &["down", "--name", &name], "");
        down.assert_error("cloon-overlay", 11);
        let upper = doc["overlay"]["upper"].as_str().unwrap();
        assert_eq!(
            run(&sb, "cat", &[&format!("{upper}/data")]).ok(),
            format!("{name}\n")
        );
    }
    tool(&sb, state, "cloon-run", &["down", "--name", &name], "").ok();
    tool(&sb, state, "cloon-spec", &["down", "--name", &name], "").ok();
    tool(&sb, state, "cloon-overlay", &["down", "--name", &name], "").ok();
    assert_empty(&sb, state);
    sb.assert_clean(&[]);
}
