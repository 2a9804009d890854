//! cloon-img on images made by the real tools rather than by hand: an OCI layout built with
//! umoci (a tag holding a colon, two layers unpacked and repacked, a default command), its
//! oci-archive and docker-archive made with skopeo. Privileged, in a sandbox, offline (every
//! source is a local file). Without skopeo or umoci the test fails under `CLOON_REQUIRE_ROOT=1`
//! and is skipped, saying so, otherwise: scripts/setup-host installs them.

use cloon_tests::{can_run, sha256, unique, Run, Sandbox};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

const STAGE: &str = "cloon-img";

/// Whether skopeo and umoci are installed; if not, a failure under `CLOON_REQUIRE_ROOT=1`, else
/// a skip said on stderr.
fn have_image_tools(test: &str) -> bool {
    let missing: Vec<&str> = ["skopeo", "umoci"]
        .into_iter()
        .filter(|tool| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool} >/dev/null")])
                .status()
                .expect("sh")
                .success()
        })
        .collect();
    can_run(
        test,
        missing.is_empty(),
        &format!(
            "needs {}: install skopeo and umoci: scripts/setup-host",
            missing.join(" and ")
        ),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn img(sb: &Sandbox, args: &[&str]) -> Run {
    sb.tool(STAGE, args, "")
}

fn debugfs(sb: &Sandbox, img: &Path, request: &str) -> String {
    sb.sh(&format!(
        "debugfs -R '{request}' {} 2>/dev/null",
        img.display()
    ))
    .ok()
}

/// The names in directory `dir` of the image, sorted.
fn names_in(sb: &Sandbox, image: &Path, dir: &str) -> Vec<String> {
    let text = debugfs(sb, image, &format!("ls -p {dir}"));
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| l.split('/').nth(5))
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .map(String::from)
        .collect();
    names.sort();
    names
}

/// What an image made from the umoci layout holds, to compare images: the names in `/`, `/bin`
/// and `/etc`, busybox's SHA-256 and its mode, and /etc/motd.
fn content(sb: &Sandbox, image: &Path) -> Value {
    let dump = sb.path("busybox.dump");
    debugfs(
        sb,
        image,
        &format!("dump -p /bin/busybox {}", dump.display()),
    );
    let busybox = sha256(s(&dump));
    std::fs::remove_file(&dump).expect("rm dump");
    let stat = debugfs(sb, image, "stat /bin/busybox");
    let mode = stat
        .split_whitespace()
        .skip_while(|w| *w != "Mode:")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    json!({
        "/": names_in(sb, image, "/"),
        "/bin": names_in(sb, image, "/bin"),
        "/etc": names_in(sb, image, "/etc"),
        "busybox": busybox,
        "mode": mode,
        "motd": debugfs(sb, image, "cat /etc/motd"),
    })
}

#[test]
fn images_made_by_umoci_and_skopeo_are_imported_or_refused() {
    let test = "img-tools";
    if !have_image_tools(test) {
        return;
    }
    let Some(sb) = Sandbox::new(test) else {
        return;
    };
    let dir = sb.dir.display().to_string();
    // The layout: an empty image, a layer with a static busybox (unpack, add, repack), a second
    // layer for /etc/motd, and a default command that keeps the container running. Not `umoci
    // insert`: umoci 0.4.7 (Debian 12) writes its layer without the tar's padding and end blocks,
    // which GNU tar refuses ("Unexpected EOF in archive").
    sb.sh(&format!(
        "cd {dir} && umoci init --layout L && umoci new --image L:app:v1 \
         && umoci unpack --image L:app:v1 B && mkdir -p B/rootfs/bin B/rootfs/etc B/rootfs/tmp \
         && cp /bin/busybox B/rootfs/bin/busybox && umoci repack --image L:app:v1 B && rm -r B \
          && umoci unpack --image L:app:v1 B && echo 'made by umoci' > B/rootfs/etc/motd \
         && umoci repack --image L:app:v1 B && rm -r B \
         && umoci config --image L:app:v1 --config.cmd /bin/busybox --config.cmd sleep \
            --config.cmd 1000 --config.workingdir /tmp"
    ))
    .ok();
    let layout = sb.path("L");

    // The tag holds a colon: cloon-img splits the reference at the first one.
    let image = sb.path("oci.img");
    let run = img(
        &sb,
        &[
            "create",
            "--from-oci",
            &format!("{}:app:v1", s(&layout)),
            s(&image),
        ],
    );
    assert_eq!(run.status, 0, "{}{}", run.stdout, run.stderr);
    let doc = run.json();
    assert_eq!(doc["image"]["path"], s(&image));
    assert_eq!(
        doc["image"]["config"]["args"],
        json!(["/bin/busybox", "sleep", "1000"]),
        "{doc}"
    );
    assert_eq!(doc["image"]["config"]["cwd"], "/tmp", "{doc}");
    let want = content(&sb, &image);
    assert_eq!(want["busybox"], sha256("/bin/busybox"), "{want}");
    assert_eq!(want["mode"], "0755", "{want}");
    assert_eq!(want["motd"], "made by umoci\n", "{want}");
    assert_eq!(want["/bin"], json!(["busybox"]), "{want}");

    // The image runs its busybox: its own command keeps the container up, `busybox true` runs.
    let name = unique("Tools1-");
    std::fs::write(sb.path("img.json"), &run.stdout).expect("img.json");
    sb.sh(&format!(
        "cd {dir} && cloon-overlay --name {name} < img.json | cloon-spec \
         | cloon-run --root {} > {name}.json",
        sb.runtime_root
    ))
    .ok();
    let t = sb.tool(
        "cloon-run",
        &["exec", &name, "--", "/bin/busybox", "true"],
        "",
    );
    assert_eq!(t.status, 0, "busybox true: {}{}", t.stdout, t.stderr);
    let f = sb.tool(
        "cloon-run",
        &["exec", &name, "--", "/bin/busybox", "false"],
        "",
    );
    assert_eq!(f.status, 1, "busybox false: {}{}", f.stdout, f.stderr);
    sb.sh(&format!(
        "cd {dir} && cloon-run down < {name}.json | cloon-spec down | cloon-overlay down \
         && rm {name}.json img.json"
    ))
    .ok();

    // skopeo's oci-archive, to --from-oci and to --from-tar: the same content, the same config.
    sb.sh(&format!(
        "cd {dir} && skopeo copy -q oci:L:app:v1 oci-archive:A.tar"
    ))
    .ok();
    let archive = sb.path("A.tar");
    for flag in ["--from-oci", "--from-tar"] {
        let other = sb.path("a.img");
        let run = img(&sb, &["create", flag, s(&archive), s(&other)]);
        assert_eq!(run.status, 0, "{flag}: {}{}", run.stdout, run.stderr);
        assert_eq!(
            run.json()["image"]["config"],
            doc["image"]["config"],
            "{flag}"
        );
        assert_eq!(content(&sb, &other), want, "{flag}");
        std::fs::remove_file(&other).expect("rm image");
    }

    // skopeo's docker-archive (docker save's format): refused, naming it and the way out, and
    // nothing is left.
    sb.sh(&format!(
        "cd {dir} && skopeo copy -q oci:L:app:v1 docker-archive:D.tar:app:v1"
    ))
    .ok();
    let before = sb.scratch_files();
    for flag in ["--from-tar", "--from-oci"] {
        let refused = sb.path("d.img");
        let run = img(&sb, &["create", flag, s(&sb.path("D.tar")), s(&refused)]);
        let err = run.assert_error(STAGE, 4);
        let msg = err["error"]["msg"].as_str().unwrap_or_default();
        assert!(msg.contains("docker save"), "{flag}: {err}");
        assert!(msg.contains("docker-archive"), "{flag}: {err}");
        assert!(!refused.exists(), "{flag}: the image was left");
    }
    assert_eq!(sb.scratch_files(), before, "something left behind");
    sb.assert_clean(&[]);
}
