//! cloon-img's other sources, on real files: root filesystem tarballs (plain, gzip, zstd, stdin),
//! OCI image layouts made here by hand (two layers, whiteouts, an index pointing to a manifest
//! list), reproducible images, and progress lines. Images are read back with debugfs, and the OCI
//! image runs its own default command through the pipeline in a sandbox.

use cloon_tests::{sha256, unique, Run, Sandbox};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const STAGE: &str = "cloon-img";

fn debugfs(sb: &Sandbox, img: &Path, request: &str) -> String {
    sb.sh(&format!(
        "debugfs -R '{request}' {} 2>/dev/null",
        img.display()
    ))
    .ok()
}

fn img(sb: &Sandbox, args: &[&str]) -> Run {
    sb.tool(STAGE, args, "")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A small root filesystem with what a tarball must carry over: a device node, an owner that is
/// not root, a set-uid mode, an extended attribute (when the scratch filesystem takes them).
/// Returns whether the attribute could be set.
fn special_tree(sb: &Sandbox) -> (PathBuf, bool) {
    let root = sb.busybox_rootfs();
    sb.sh(&format!(
        "cd {} && mknod dev/null c 1 3 && echo owned > etc/owned && chown 1234:5678 etc/owned \
         && cp bin/busybox bin/suid && chmod 4755 bin/suid && echo motd > etc/motd",
        root.display()
    ))
    .ok();
    let xattr = sb
        .sh(&format!(
            "python3 -c \"import os; os.setxattr('{}/etc/owned', 'user.cloon', b'kept')\"",
            root.display()
        ))
        .status
        == 0;
    if !xattr {
        eprintln!("the scratch filesystem takes no user xattrs: not checking them");
    }
    (root, xattr)
}

fn assert_special_tree(sb: &Sandbox, image: &Path, xattr: bool) {
    let null = debugfs(sb, image, "stat /dev/null");
    assert!(null.contains("Type: character special"), "{null}");
    assert!(null.contains("Device major/minor number: 01:03"), "{null}");
    let owned = debugfs(sb, image, "stat /etc/owned");
    assert!(owned.contains("User:  1234   Group:  5678"), "{owned}");
    let suid = debugfs(sb, image, "stat /bin/suid");
    assert!(suid.contains("Mode:  04755"), "{suid}");
    assert_eq!(debugfs(sb, image, "cat /etc/motd"), "motd\n");
    if xattr {
        let ea = debugfs(sb, image, "ea_get /etc/owned user.cloon");
        assert!(ea.contains("kept"), "{ea}");
    }
}

#[test]
fn tarballs_plain_gzip_and_zstd_keep_owners_devices_modes_and_xattrs() {
    let Some(sb) = Sandbox::new("img-tar") else {
        return;
    };
    let (root, xattr) = special_tree(&sb);
    for (flag, file) in [
        ("", "r.tar"),
        ("--gzip", "r.tar.gz"),
        ("--zstd", "r.tar.zst"),
    ] {
        let tarball = sb.path(file);
        sb.sh(&format!(
            "tar -c {flag} --numeric-owner --xattrs --xattrs-include='*' -f {} -C {} .",
            tarball.display(),
            root.display()
        ))
        .ok();
        let image = sb.path(&format!("{file}.img"));
        let run = img(&sb, &["create", "--from-tar", s(&tarball), s(&image)]);
        let doc = run.json();
        assert_eq!(run.status, 0, "{file}: {}", run.stderr);
        assert_eq!(doc["image"]["path"], s(&image));
        assert_eq!(doc["image"]["fstype"], "ext4");
        assert!(doc["image"].get("config").is_none(), "{doc}");
        assert!(run.stderr.is_empty(), "{file}: said {}", run.stderr);
        assert_special_tree(&sb, &image, xattr);
    }
    // From stdin: the tarball is the input, so no document is read; one is written.
    let image = sb.path("stdin.img");
    let run = sb.sh(&format!(
        "cat {} | cloon-img create --from-tar - {}",
        sb.path("r.tar.zst").display(),
        image.display()
    ));
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.json()["image"]["path"], s(&image));
    assert_special_tree(&sb, &image, xattr);
    std::fs::remove_dir_all(&root).expect("rm rootfs");
    for f in ["r.tar", "r.tar.gz", "r.tar.zst"] {
        std::fs::remove_file(sb.path(f)).expect("rm tarball");
    }
    assert_eq!(
        sb.scratch_files(),
        ["r.tar.gz.img", "r.tar.img", "r.tar.zst.img", "stdin.img"],
        "staging left behind"
    );
}

#[test]
fn a_tarball_cannot_write_outside_the_image() {
    let Some(sb) = Sandbox::new("img-tar-escape") else {
        return;
    };
    let victim = sb.path("victim");
    std::fs::create_dir(&victim).expect("victim dir");
    let escape = sb.path("escaped");
    // A leading `/` is removed: the member lands inside the image, not at its absolute path.
    let abs = sb.path("abs.tar");
    let absolute_target = sb.path("absolute-victim");
    let make = |tar: &Path, members: &str| {
        sb.sh(&format!(
            "python3 - <<'EOF'\nimport io, tarfile\nt = tarfile.open('{}', 'w')\n\
             def add(name, data=b'x', kind=tarfile.REGTYPE, link=''):\n    \
             i = tarfile.TarInfo(name); i.type = kind; i.linkname = link\n    \
             i.size = len(data) if kind == tarfile.REGTYPE else 0\n    \
             t.addfile(i, io.BytesIO(data) if kind == tarfile.REGTYPE else None)\n\
             add('etc/', kind=tarfile.DIRTYPE)\n{members}\nt.close()\nEOF",
            tar.display()
        ))
        .ok();
    };
    make(&abs, &format!("add('{}')", absolute_target.display()));
    let image = sb.path("abs.img");
    let run = img(&sb, &["create", "--from-tar", s(&abs), s(&image)]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stderr.contains("Removing leading"), "{}", run.stderr);
    assert!(!absolute_target.exists(), "tar wrote an absolute path");
    let inside = absolute_target.strip_prefix("/").expect("absolute");
    assert_eq!(
        debugfs(&sb, &image, &format!("cat /{}", inside.display())),
        "x"
    );

    // `..` and writing through a symbolic link: tar refuses, cloon-img fails and leaves nothing.
    for (tag, members) in [
        ("dotdot", format!("add('../{}')", escape.file_name().unwrap().to_string_lossy())),
        (
            "symlink",
            format!(
                "add('lnk', kind=tarfile.SYMTYPE, link='{}')\nadd('lnk/pwned')",
                victim.display()
            ),
        ),
        (
            "relative-symlink",
            "add('rel', kind=tarfile.SYMTYPE, link='../../../../../../..' + '{}')\nadd('rel/pwned')"
                .replace("{}", &victim.display().to_string()),
        ),
    ] {
        let tar = sb.path(&format!("{tag}.tar"));
        make(&tar, &members);
        let image = sb.path(&format!("{tag}.img"));
        let run = img(&sb, &["create", "--from-tar", s(&tar), s(&image)]);
        run.assert_error(STAGE, 5);
        assert!(run.stderr.contains("tar could not extract"), "{}", run.stderr);
        assert!(!image.exists(), "{tag}: an image was left");
        std::fs::remove_file(&tar).expect("rm tar");
    }
    assert!(!escape.exists(), "a member escaped with ..");
    assert_eq!(
        std::fs::read_dir(&victim).expect("victim").count(),
        0,
        "a member was written through a symbolic link"
    );
    assert_eq!(
        sb.scratch_files(),
        ["abs.img", "abs.tar", "victim"],
        "staging left behind"
    );
}

#[test]
fn what_is_not_a_tarball_is_refused_cleanly() {
    let Some(sb) = Sandbox::new("img-tar-bad") else {
        return;
    };
    let junk = sb.path("junk.tar");
    std::fs::write(&junk, vec![b'j'; 4096]).expect("junk");
    let image = sb.path("j.img");
    let run = img(&sb, &["create", "--from-tar", s(&junk), s(&image)]);
    run.assert_error(STAGE, 4);
    let run = img(
        &sb,
        &["create", "--from-tar", "/nonexistent.tar", s(&image)],
    );
    run.assert_error(STAGE, 3);
    let run = img(
        &sb,
        &["create", "--from-tar", s(&junk), "--busybox", s(&image)],
    );
    assert_eq!(run.status, 2, "two sources: {}", run.stderr);
    assert_eq!(sb.scratch_files(), ["junk.tar"]);
}

/// An OCI image layout written by hand: blobs named by their SHA-256.
struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn new(dir: PathBuf) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("blobs");
        std::fs::write(
            dir.join("oci-layout"),
            json!({"imageLayoutVersion": "1.0.0"}).to_string(),
        )
        .expect("oci-layout");
        Layout { dir }
    }

    /// Stores `file` as a blob; its descriptor with `media_type`.
    fn blob_file(&self, file: &Path, media_type: &str) -> Value {
        let hex = sha256(s(file));
        let size = std::fs::metadata(file).expect("blob").len();
        std::fs::copy(file, self.dir.join("blobs/sha256").join(&hex)).expect("copy blob");
        json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": size})
    }

    fn blob_json(&self, value: &Value, media_type: &str, scratch: &Path) -> Value {
        let tmp = scratch.join("blob.json");
        std::fs::write(&tmp, serde_json::to_vec(value).expect("json")).expect("write");
        let desc = self.blob_file(&tmp, media_type);
        std::fs::remove_file(&tmp).expect("rm");
        desc
    }
}

/// Two layers: a busybox system with files, then a gzip layer that deletes `/etc/gone` with a
/// whiteout, makes `/opt/data` opaque and replaces `/etc/motd`. Its default process writes
/// `$GREETING` to /tmp/said. Tagged 1.0, through an index that lists an arm64 manifest (whose
/// blobs are absent) and the amd64 one. Returns the layout and the first layer's blob.
fn oci_layout(sb: &Sandbox) -> (PathBuf, PathBuf) {
    let one = sb.busybox_rootfs();
    sb.sh(&format!(
        "cd {} && echo 'layer one' > etc/motd && echo bye > etc/gone && mkdir -p opt/data \
         && echo a > opt/data/a && echo b > opt/data/b",
        one.display()
    ))
    .ok();
    let two = sb.path("layer2");
    sb.sh(&format!(
        "mkdir -p {d}/etc {d}/opt/data && cd {d} && : > etc/.wh.gone && echo 'layer two' > etc/motd \
         && : > opt/data/.wh..wh..opq && echo c > opt/data/c",
        d = two.display()
    ))
    .ok();
    let (t1, t2) = (sb.path("layer1.tar"), sb.path("layer2.tar.gz"));
    sb.sh(&format!(
        "tar -c --numeric-owner -f {} -C {} . && tar -cz --numeric-owner -f {} -C {} .",
        t1.display(),
        one.display(),
        t2.display(),
        two.display()
    ))
    .ok();
    let layout = Layout::new(sb.path("layout"));
    let l1 = layout.blob_file(&t1, "application/vnd.oci.image.layer.v1.tar");
    let l2 = layout.blob_file(&t2, "application/vnd.oci.image.layer.v1.tar+gzip");
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["echo \"$GREETING\" > /tmp/said; exec sleep 1000"],
            "Env": ["PATH=/bin", "GREETING=hello from oci"],
            "WorkingDir": "/opt"
        },
        "rootfs": {"type": "layers", "diff_ids": []}
    });
    let config = layout.blob_json(&config, "application/vnd.oci.image.config.v1+json", &sb.dir);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": [l1, l2]
    });
    let mut manifest = layout.blob_json(
        &manifest,
        "application/vnd.oci.image.manifest.v1+json",
        &sb.dir,
    );
    manifest["platform"] = json!({"architecture": "amd64", "os": "linux"});
    let absent = json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{}", "0".repeat(64)), "size": 10,
        "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}
    });
    let list = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                      "manifests": [absent, manifest]});
    let mut list = layout.blob_json(&list, "application/vnd.oci.image.index.v1+json", &sb.dir);
    list["annotations"] = json!({"org.opencontainers.image.ref.name": "1.0"});
    std::fs::write(
        layout.dir.join("index.json"),
        json!({"schemaVersion": 2, "manifests": [list]}).to_string(),
    )
    .expect("index.json");
    let first = layout.dir.join("blobs/sha256").join(
        l1["digest"]
            .as_str()
            .expect("digest")
            .trim_start_matches("sha256:"),
    );
    for done in [&one, &two] {
        std::fs::remove_dir_all(done).expect("rm layer tree");
    }
    for done in [&t1, &t2] {
        std::fs::remove_file(done).expect("rm layer tar");
    }
    (layout.dir, first)
}

#[test]
fn an_oci_layout_stacks_its_layers_and_runs_its_default_command() {
    let Some(sb) = Sandbox::new("img-oci") else {
        return;
    };
    let (layout, _) = oci_layout(&sb);
    let image = sb.path("oci.img");
    let name = unique("Oci1-");
    let up = format!(
        "cd {} && cloon-img create --from-oci {}:1.0 {} | tee img.json \
         | cloon-overlay --name {name} | cloon-spec | cloon-run --root /run/crun > {name}.json",
        sb.dir.display(),
        layout.display(),
        image.display()
    );
    sb.sh(&up).ok();
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(sb.path("img.json")).expect("img.json"))
            .expect("JSON");
    assert_eq!(
        doc["image"]["config"],
        json!({"args": ["/bin/sh", "-c", "echo \"$GREETING\" > /tmp/said; exec sleep 1000"],
               "env": ["PATH=/bin", "GREETING=hello from oci"], "cwd": "/opt"})
    );
    // The layers, stacked: the whiteout deleted /etc/gone, the opaque directory kept only the
    // second layer's file, the second layer's /etc/motd replaced the first's.
    assert_eq!(debugfs(&sb, &image, "cat /etc/motd"), "layer two\n");
    assert!(debugfs(&sb, &image, "stat /etc/gone").is_empty());
    let data = debugfs(&sb, &image, "ls -p /opt/data");
    let names: Vec<&str> = data
        .lines()
        .filter_map(|l| l.split('/').nth(5))
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .collect();
    assert_eq!(names, ["c"], "{data}");
    let etc = debugfs(&sb, &image, "ls /etc");
    assert!(!etc.contains(".wh."), "{etc}");
    assert!(debugfs(&sb, &image, "stat /bin/busybox").contains("Type: regular"));

    // The container runs the image's own command, in its directory, with its environment.
    let said = sb
        .sh(&format!(
            "for i in $(seq 50); do cloon-run exec {name} -- cat /tmp/said 2>/dev/null && exit 0; sleep 0.1; done; exit 1"
        ))
        .ok();
    assert_eq!(said, "hello from oci\n");
    let cwd = sb
        .sh(&format!(
            "cloon-run exec {name} -- /bin/busybox readlink /proc/1/cwd"
        ))
        .ok();
    assert_eq!(cwd.trim(), "/opt");
    let config = sb
        .sh(&format!("cat /run/cloon/{name}/bundle/config.json"))
        .ok();
    let config: Value = serde_json::from_str(&config).expect("config.json");
    assert_eq!(
        config["process"]["env"],
        json!(["PATH=/bin", "TERM=xterm", "GREETING=hello from oci"])
    );
    sb.sh(&format!(
        "cd {} && cloon-run down < {name}.json | cloon-spec down | cloon-overlay down",
        sb.dir.display()
    ))
    .ok();
    sb.assert_clean(&[]);
}

#[test]
fn oci_tags_platforms_and_damaged_blobs_fail_cleanly() {
    let Some(sb) = Sandbox::new("img-oci-bad") else {
        return;
    };
    let (layout, first) = oci_layout(&sb);
    let image = sb.path("bad.img");
    let before = sb.scratch_files();
    // The only image is taken without a tag.
    let run = img(&sb, &["create", "--from-oci", s(&layout), s(&image)]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    std::fs::remove_file(&image).expect("rm image");
    let run = img(
        &sb,
        &[
            "create",
            "--from-oci",
            &format!("{}:2.0", layout.display()),
            s(&image),
        ],
    );
    let err = run.assert_error(STAGE, 3);
    assert!(
        err["error"]["msg"].as_str().unwrap_or("").contains("1.0"),
        "{err}"
    );
    let run = img(&sb, &["create", "--from-oci", s(&sb.dir), s(&image)]);
    run.assert_error(STAGE, 4);
    // A layer changed by one byte is refused by its digest.
    let mut bytes = std::fs::read(&first).expect("layer");
    let last = bytes.len() - 2000;
    bytes[last] ^= 0x20;
    std::fs::write(&first, bytes).expect("damage");
    let run = img(
        &sb,
        &[
            "create",
            "--from-oci",
            &format!("{}:1.0", layout.display()),
            s(&image),
        ],
    );
    let err = run.assert_error(STAGE, 7);
    assert!(
        err["error"]["msg"]
            .as_str()
            .unwrap_or("")
            .contains("damaged"),
        "{err}"
    );
    assert_eq!(sb.scratch_files(), before, "staging or layers left behind");
}

#[test]
fn reproducible_images_are_the_same_bytes() {
    let Some(sb) = Sandbox::new("img-repro") else {
        return;
    };
    let (root, _) = special_tree(&sb);
    let tarball = sb.path("r.tar.gz");
    sb.sh(&format!(
        "tar -cz --numeric-owner -f {} -C {} .",
        tarball.display(),
        root.display()
    ))
    .ok();
    let make = |name: &str, args: &[&str], env: &str| -> String {
        let image = sb.path(name);
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        sb.sh(&format!(
            "{env} cloon-img create --reproducible {} {} </dev/null >/dev/null",
            args.join(" "),
            image.display()
        ))
        .ok();
        sha256(s(&image))
    };
    let tar = ["--from-tar", s(&tarball)];
    let one = make("t1.img", &tar, "");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(
        make("t2.img", &tar, ""),
        one,
        "two images of one tarball differ"
    );
    let dir = ["--from-dir", s(&root)];
    let d1 = make("d1.img", &dir, "SOURCE_DATE_EPOCH=1700000000");
    sb.sh(&format!("touch {}/etc/motd", root.display())).ok();
    assert_eq!(
        make("d2.img", &dir, "SOURCE_DATE_EPOCH=1700000000"),
        d1,
        "a changed mtime changed the image"
    );
    assert_eq!(
        debugfs(&sb, &sb.path("d1.img"), "stat /etc/motd")
            .lines()
            .filter(|l| l.contains("time:"))
            .map(|l| l.split(" -- ").next().unwrap_or("").trim().to_string())
            .collect::<Vec<_>>(),
        [
            "ctime: 0x6553f100:00000000",
            "atime: 0x6553f100:00000000",
            "mtime: 0x6553f100:00000000",
            "crtime: 0x6553f100:00000000"
        ]
    );
    assert_ne!(
        make("d3.img", &dir, "SOURCE_DATE_EPOCH=1700000001"),
        d1,
        "the epoch is not in the image"
    );
    let bb = make("b1.img", &["--busybox"], "");
    assert_eq!(make("b2.img", &["--busybox"], ""), bb);
    let uuid = "01234567-89ab-cdef-0123-456789abcdef";
    make("u.img", &["--busybox", "--uuid", uuid], "");
    let stats = debugfs(&sb, &sb.path("u.img"), "stats");
    assert!(
        stats.contains(&format!("Filesystem UUID:          {uuid}")),
        "{stats}"
    );
    // The directory of yours is left as it was: its times are changed in a copy.
    let mtime = std::fs::metadata(root.join("etc/motd"))
        .expect("motd")
        .modified()
        .expect("mtime");
    assert!(mtime > std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_001));
}

#[test]
fn progress_shows_on_request_and_never_with_explain() {
    let Some(sb) = Sandbox::new("img-progress") else {
        return;
    };
    let root = sb.busybox_rootfs();
    let tarball = sb.path("r.tar");
    sb.sh(&format!(
        "tar -cf {} -C {} .",
        tarball.display(),
        root.display()
    ))
    .ok();
    // The tests' stderr is not a terminal: quiet unless forced.
    let quiet = img(
        &sb,
        &["create", "--from-tar", s(&tarball), s(&sb.path("q.img"))],
    );
    assert_eq!(quiet.status, 0, "{}", quiet.stderr);
    assert_eq!(quiet.stderr, "");
    let shown = sb.sh(&format!(
        "CLOON_PROGRESS=1 cloon-img create --reproducible --from-tar {} {} </dev/null",
        tarball.display(),
        sb.path("p.img").display()
    ));
    assert_eq!(shown.status, 0, "{}", shown.stderr);
    for said in [
        "cloon-img: extracting",
        "cloon-img: digest of the files",
        "cloon-img: mkfs.ext4, an image of",
        "\r\x1b[K",
    ] {
        assert!(
            shown.stderr.contains(said),
            "no {said:?} in {:?}",
            shown.stderr
        );
    }
    let explained = sb.sh(&format!(
        "CLOON_PROGRESS=1 cloon-img create --explain --from-tar {} {} </dev/null",
        tarball.display(),
        sb.path("e.img").display()
    ));
    assert_eq!(explained.status, 0, "{}", explained.stderr);
    assert!(!explained.stderr.contains('\r'), "{}", explained.stderr);
    assert!(
        explained
            .stderr
            .lines()
            .any(|l| l.starts_with("tar --extract --numeric-owner")),
        "{}",
        explained.stderr
    );
}

#[test]
fn the_explained_commands_of_a_reproducible_image_make_the_same_bytes() {
    let Some(sb) = Sandbox::new("img-repro-explain") else {
        return;
    };
    let root = sb.busybox_rootfs();
    let tarball = sb.path("r.tar.zst");
    sb.sh(&format!(
        "tar -c --zstd -f {} -C {} .",
        tarball.display(),
        root.display()
    ))
    .ok();
    let image = sb.path("e.img");
    let run = img(
        &sb,
        &[
            "create",
            "--explain",
            "--reproducible",
            "--from-tar",
            s(&tarball),
            s(&image),
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let made = sha256(s(&image));
    std::fs::remove_file(&image).expect("rm image");
    let replay = sb.sh(&format!("set -e\n{}", run.stderr));
    assert_eq!(replay.status, 0, "{}\n{}", run.stderr, replay.stderr);
    assert_eq!(
        sha256(s(&image)),
        made,
        "the commands made other bytes:\n{}",
        run.stderr
    );
}

#[test]
fn image_archives_are_imported_or_refused_and_tags_may_hold_colons() {
    let Some(sb) = Sandbox::new("img-archives") else {
        return;
    };
    let (layout, _) = oci_layout(&sb);
    // A tag holding colons: the reference splits at the first one, as skopeo's does.
    let index = layout.join("index.json");
    let text = std::fs::read_to_string(&index).expect("index.json");
    std::fs::write(&index, text.replace("\"1.0\"", "\"app:v1\"")).expect("retag");
    let image = sb.path("a.img");
    let tagged = format!("{}:app:v1", layout.display());
    let run = img(&sb, &["create", "--from-oci", &tagged, s(&image)]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(debugfs(&sb, &image, "cat /etc/motd"), "layer two\n");
    std::fs::remove_file(&image).expect("rm image");

    // An oci-archive (a tarball of the layout), to --from-tar and to --from-oci FILE[:TAG].
    let archive = sb.path("oci.tar");
    sb.sh(&format!(
        "tar -cf {} -C {} .",
        archive.display(),
        layout.display()
    ))
    .ok();
    let archive_tagged = format!("{}:app:v1", archive.display());
    for args in [
        ["--from-tar", s(&archive)],
        ["--from-oci", s(&archive)],
        ["--from-oci", archive_tagged.as_str()],
    ] {
        let run = img(&sb, &["create", args[0], args[1], s(&image)]);
        assert_eq!(run.status, 0, "{args:?}: {}", run.stderr);
        let doc = run.json();
        assert_eq!(doc["image"]["config"]["cwd"], "/opt", "{args:?}: {doc}");
        assert_eq!(debugfs(&sb, &image, "cat /etc/motd"), "layer two\n");
        assert!(
            debugfs(&sb, &image, "stat /index.json").is_empty(),
            "{args:?}"
        );
        std::fs::remove_file(&image).expect("rm image");
    }

    // A docker save archive (before Docker 25): refused, naming the format and the way out.
    let saved = sb.path("saved");
    sb.sh(&format!(
        "mkdir -p {d}/0123abcd && tar -cf {d}/0123abcd/layer.tar -C {l} oci-layout \
         && echo '[{{\"Config\":\"c.json\",\"RepoTags\":[\"x:1\"],\"Layers\":[\"0123abcd/layer.tar\"]}}]' > {d}/manifest.json \
         && echo '{{}}' > {d}/repositories && tar -cf {d}.tar -C {d} . && rm -r {d}",
        d = saved.display(),
        l = layout.display()
    ))
    .ok();
    let saved_tar = sb.path("saved.tar");
    let rootfs_tar = sb.path("rootfs.tar");
    let root = sb.busybox_rootfs();
    sb.sh(&format!(
        "tar -cf {} -C {} . && rm -r {}",
        rootfs_tar.display(),
        root.display(),
        root.display()
    ))
    .ok();
    let before = sb.scratch_files();
    for flag in ["--from-tar", "--from-oci"] {
        let run = img(&sb, &["create", flag, s(&saved_tar), s(&image)]);
        let err = run.assert_error(STAGE, 4);
        let msg = err["error"]["msg"].as_str().unwrap_or("");
        assert!(msg.contains("docker save"), "{flag}: {err}");
        assert!(msg.contains("skopeo copy docker-archive:"), "{flag}: {err}");
    }
    // A root filesystem tarball is not an OCI layout.
    let run = img(&sb, &["create", "--from-oci", s(&rootfs_tar), s(&image)]);
    run.assert_error(STAGE, 4);
    // --reproducible with --debootstrap: refused before anything is fetched.
    let run = img(
        &sb,
        &[
            "create",
            "--reproducible",
            "--debootstrap",
            "bookworm",
            "--mirror",
            "http://127.0.0.1:9/debian",
            s(&image),
        ],
    );
    let err = run.assert_error(STAGE, 4);
    assert!(
        err["error"]["msg"]
            .as_str()
            .unwrap_or("")
            .contains("--debootstrap"),
        "{err}"
    );
    assert_eq!(sb.scratch_files(), before, "something left behind");
}

#[test]
fn info_feeds_cloon_overlay() {
    let Some(sb) = Sandbox::new("img-info-doc") else {
        return;
    };
    let image = sb.path("bb.img");
    let run = img(&sb, &["create", "--busybox", s(&image)]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let info = img(&sb, &["info", s(&image)]);
    assert_eq!(info.status, 0, "{}", info.stderr);
    let doc = info.json();
    assert_eq!(doc["cloonVersion"], "1", "{doc}");
    assert_eq!(doc["image"], run.json()["image"], "{doc}");
    let name = unique("Info1-");
    sb.sh(&format!(
        "cd {d} && cloon-img info {i} | cloon-overlay --name {name} > {name}.json \
         && test -d /run/cloon/{name}/overlay/rootfs/bin && cloon-overlay down < {name}.json",
        d = sb.dir.display(),
        i = image.display()
    ))
    .ok();
    sb.assert_clean(&[]);
}
