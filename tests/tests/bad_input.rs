//! Bad input of every kind, for every tool: each case gets the documented code, an error document
//! whose message says what to do, and leaves nothing behind.

use cloon_tests::Sandbox;

/// One bad input: what to prepare, the tool and its arguments, the document on stdin, the code
/// expected, words the message must contain (what to do), and how to remove what was prepared.
struct Case {
    setup: &'static str,
    tool: &'static str,
    args: &'static [&'static str],
    stdin: &'static str,
    code: u64,
    hint: &'static str,
    teardown: &'static str,
}

const fn case(
    tool: &'static str,
    args: &'static [&'static str],
    stdin: &'static str,
    code: u64,
    hint: &'static str,
) -> Case {
    Case {
        setup: "",
        tool,
        args,
        stdin,
        code,
        hint,
        teardown: "",
    }
}

const IMG: &str = "cloon-img create --busybox bb.img </dev/null >/dev/null";
const LONG_NAME: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const ERROR_DOC: &str =
    r#"{"cloonVersion":"1","error":{"code":5,"stage":"cloon-img","msg":"m","details":"d"}}"#;
const NOBODY: &str = "setpriv --reuid=65534 --regid=65534 --clear-groups";

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for tool in ["cloon-overlay", "cloon-netns", "cloon-spec", "cloon-run"] {
        cases.extend([
            case(
                tool,
                &[],
                "{\"cloonVersion\":\"1\",",
                6,
                "give the output of another cloon tool",
            ),
            case(
                tool,
                &[],
                "{\"cloonVersion\":\"1\",\"name\":\"A\",\"image\":{\"path\":\"/x\"",
                6,
                "give the output",
            ),
            case(tool, &[], "[1, 2]", 6, "JSON object"),
            case(
                tool,
                &[],
                "{\"cloonVersion\":\"2\",\"name\":\"A\"}",
                1,
                "cloonVersion \"1\"",
            ),
            case(
                tool,
                &[],
                "{\"name\":\"A\"}",
                6,
                "not written by a cloon tool",
            ),
        ]);
    }
    // A name that would escape the state directory, from the document.
    let escape = "{\"cloonVersion\":\"1\",\"name\":\"../../etc\"}";
    cases.extend([
        case("cloon-overlay", &["--image", "/etc/passwd"], escape, 4, "use only letters"),
        case("cloon-netns", &["--netns", "n"], escape, 4, "use only letters"),
        case("cloon-spec", &["--rootfs", "/tmp"], escape, 4, "use only letters"),
        case("cloon-run", &["--bundle", "/tmp"], escape, 4, "use only letters"),
        case("cloon-overlay", &["down"], escape, 4, "use only letters"),
        case("cloon-run", &["down"], escape, 4, "use only letters"),
    ]);
    cases.extend([
        // Missing parts.
        case("cloon-overlay", &["--name", "A"], "", 4, "give --image IMG"),
        case("cloon-spec", &["--name", "A"], "", 7, "give --rootfs DIR"),
        case("cloon-run", &["--name", "A"], "", 7, "give --bundle DIR"),
        case(
            "cloon-overlay",
            &["--name", "A"],
            r#"{"cloonVersion":"1","image":{"path":3}}"#,
            7,
            "malformed",
        ),
        // Names.
        Case {
            setup: IMG,
            ..case(
                "cloon-overlay",
                &["--name", LONG_NAME, "--image", "@/bb.img"],
                "",
                4,
                "use at most 64",
            )
        },
        Case {
            setup: IMG,
            ..case(
                "cloon-overlay",
                &["--name", "a/b", "--image", "@/bb.img"],
                "",
                4,
                "use only letters",
            )
        },
        Case {
            setup: IMG,
            ..case(
                "cloon-overlay",
                &["--name", "..", "--image", "@/bb.img"],
                "",
                4,
                "not a usable name",
            )
        },
        Case {
            setup: IMG,
            ..case(
                "cloon-overlay",
                &["--name", "a b", "--image", "@/bb.img"],
                "",
                4,
                "use only letters",
            )
        },
        Case {
            setup: IMG,
            ..case(
                "cloon-overlay",
                &["--name", "a\nb", "--image", "@/bb.img"],
                "",
                4,
                "use only letters",
            )
        },
        Case {
            setup: IMG,
            ..case(
                "cloon-overlay",
                &["--name", "a\u{1b}b", "--image", "@/bb.img"],
                "",
                4,
                "use only letters",
            )
        },
        Case {
            setup: IMG,
            ..case(
                "cloon-overlay",
                &["--name=-x", "--image", "@/bb.img"],
                "",
                4,
                "start with a letter",
            )
        },
        case(
            "cloon-netns",
            &["--netns", LONG_NAME],
            "",
            4,
            "use at most 64",
        ),
        case(
            "cloon-netns",
            &["--netns", "n", "--veth", "abcdefghijklmnop:eth0"],
            "",
            4,
            "use at most 15",
        ),
        case(
            "cloon-netns",
            &["--netns", "n", "--veth", "a:eth 0"],
            "",
            4,
            "use only letters",
        ),
        case(
            "cloon-netns",
            &["--netns", "n", "--veth", "a"],
            "",
            4,
            "write HOST:GUEST",
        ),
        case(
            "cloon-netns",
            &["--netns", "n", "--veth", "a:eth0,addr=10.0.0.300/24"],
            "",
            4,
            "write e.g. 10.0.0.2/24",
        ),
        case(
            "cloon-netns",
            &["--netns", "n", "--veth", "a:eth0,mac=zz"],
            "",
            4,
            "six hexadecimal bytes",
        ),
        case(
            "cloon-netns",
            &["--netns", "n", "--veth", "a:eth0,bogus=1"],
            "",
            4,
            "use addr=",
        ),
        case(
            "cloon-netns",
            &["--netns", "n", "--veth", "a:eth0,bridge=br/x"],
            "",
            4,
            "use only letters",
        ),
        case(
            "cloon-spec",
            &["--name", "A", "--rootfs", "/tmp", "--cap-add", "BOGUS"],
            "",
            4,
            "capabilities(7)",
        ),
        case(
            "cloon-spec",
            &["--name", "A", "--rootfs", "/tmp", "--env", "NOEQUALS"],
            "",
            4,
            "KEY=VALUE",
        ),
        case(
            "cloon-spec",
            &["--name", "A", "--rootfs", "/tmp", "--bind", "rel:/x"],
            "",
            4,
            "absolute path",
        ),
        case(
            "cloon-spec",
            &["--name", "A", "--rootfs", "/tmp", "--sysctl", "x"],
            "",
            4,
            "net.ipv4.ip_forward=1",
        ),
        case(
            "cloon-spec",
            &["--name", "A", "--rootfs", "/tmp", "--", "/bin/nothere"],
            "",
            7,
            "give a command the image has",
        ),
        case(
            "cloon-spec",
            &["--name", "A", "--rootfs", "/nothere"],
            "",
            3,
            "give --rootfs DIR",
        ),
        case(
            "cloon-spec",
            &[
                "--name",
                "A",
                "--rootfs",
                "/tmp",
                "--netns",
                "/run/netns/nothere",
            ],
            "",
            3,
            "ip netns add",
        ),
        // Missing or wrong images.
        case(
            "cloon-overlay",
            &["--name", "A", "--image", "/nothere.img"],
            "",
            3,
            "cloon-img create",
        ),
        case(
            "cloon-overlay",
            &["--name", "A", "--image", "/etc/passwd"],
            "",
            7,
            "give an image made by `cloon-img create`",
        ),
        case(
            "cloon-img",
            &["info", "/etc/passwd"],
            "",
            7,
            "cloon-img create",
        ),
        case(
            "cloon-img",
            &["create", "/nodir/x.img"],
            "",
            4,
            "create it first",
        ),
        Case {
            setup: IMG,
            ..case("cloon-img", &["create", "@/bb.img"], "", 101, "--force")
        },
        case(
            "cloon-img",
            &["create", "--from-dir", "/nothere", "@/x.img"],
            "",
            4,
            "no such directory",
        ),
        // An image a loop device exposes read-write (attached by hand, as the article does).
        Case {
            setup: "cloon-img create --busybox bb.img </dev/null >/dev/null && losetup -f bb.img",
            teardown: "losetup -n -O NAME -j bb.img | xargs -r losetup -d",
            ..case("cloon-overlay", &["--name", "A", "--image", "@/bb.img"], "", 11, "losetup -d")
        },
        // Names already taken.
        Case {
            setup: "ip netns add taken",
            teardown: "ip netns del taken",
            ..case(
                "cloon-netns",
                &["--netns", "taken"],
                "",
                101,
                "pick another name",
            )
        },
        Case {
            setup: "ip link add hostx type veth peer name hosty",
            teardown: "ip link del hostx",
            ..case(
                "cloon-netns",
                &["--netns", "n", "--veth", "hostx:eth0"],
                "",
                101,
                "pick another host-side name",
            )
        },
        Case {
            setup: "ip link add lanx type veth peer name lany",
            teardown: "ip link del lanx",
            ..case(
                "cloon-netns",
                &["--netns", "n", "--veth", "a:eth0,bridge=lanx"],
                "",
                101,
                "bridge",
            )
        },
        // The runtime.
        Case {
            setup: "mkdir -p b && echo '{}' > b/config.json",
            ..case(
                "cloon-run",
                &[
                    "--name",
                    "A",
                    "--bundle",
                    "@/b",
                    "--runtime",
                    "/nonexistent",
                ],
                "",
                100,
                "no such file",
            )
        },
        Case {
            setup: "mkdir -p b && echo '{}' > b/config.json",
            ..case(
                "cloon-run",
                &[
                    "--name",
                    "A",
                    "--bundle",
                    "@/b",
                    "--runtime",
                    "nosuchruntime",
                ],
                "",
                100,
                "apt-get install",
            )
        },
        case(
            "cloon-run",
            &["exec", "nobody", "--", "sh"],
            "",
            3,
            "bring it up first",
        ),
        case(
            "cloon-run",
            &["state", "nobody"],
            "",
            3,
            "bring it up first",
        ),
        case(
            "cloon-overlay",
            &["check", "--name", "nobody"],
            "",
            3,
            "bring it up first",
        ),
        case(
            "cloon-netns",
            &["check", "--name", "nobody"],
            "",
            3,
            "bring it up first",
        ),
        case(
            "cloon-spec",
            &["check", "--name", "nobody"],
            "",
            3,
            "bring it up first",
        ),
        // Not root.
        Case {
            setup: IMG,
            ..case(
                "cloon-overlay",
                &["--name", "A", "--image", "@/bb.img"],
                "",
                103,
                "run it with sudo",
            )
        },
        case(
            "cloon-netns",
            &["--netns", "n9"],
            "",
            103,
            "run it with sudo",
        ),
    ]);
    cases
}

/// The "not root" cases (code 103) run as nobody; the others as root.
fn runs_as_nobody(c: &Case) -> bool {
    c.code == 103
}

#[test]
fn every_bad_input_gets_its_code_a_hint_and_leaves_nothing() {
    let all = cases();
    assert!(all.len() >= 40, "only {} cases", all.len());
    for (i, c) in all.iter().enumerate() {
        let Some(sb) = Sandbox::new(&format!("bad-{i}")) else {
            return;
        };
        let dir = sb.dir.display().to_string();
        if !c.setup.is_empty() {
            sb.sh(&format!("cd {dir} && {}", c.setup)).ok();
        }
        let mut cmd = if runs_as_nobody(c) {
            let mut cmd = sb.cmd("setpriv");
            cmd.args(NOBODY.split(' ').skip(1))
                .arg(cloon_tests::tool_path(c.tool));
            cmd
        } else {
            sb.cmd(cloon_tests::tool_path(c.tool))
        };
        // Paths in the scratch directory are written "@/NAME" in the table.
        cmd.args(c.args.iter().map(|a| a.replace("@/", &format!("{dir}/"))));
        let run = sb.run_cmd(&mut cmd, c.stdin);
        let what = format!("case {i}: {} {:?} < {:?}", c.tool, c.args, c.stdin);
        assert_eq!(
            run.status, c.code as i32,
            "{what}\nstdout: {}\nstderr: {}",
            run.stdout, run.stderr
        );
        let doc = run.json();
        assert_eq!(doc["error"]["code"], c.code, "{what}: {doc}");
        assert_eq!(doc["error"]["stage"], c.tool, "{what}: {doc}");
        let msg = format!(
            "{} {}",
            doc["error"]["msg"].as_str().unwrap_or(""),
            doc["error"]["details"].as_str().unwrap_or("")
        );
        assert!(
            msg.contains(c.hint),
            "{what}: the message does not say {:?}: {msg}",
            c.hint
        );
        assert!(run.stderr.contains(c.tool), "{what}: nothing on stderr");
        if !c.teardown.is_empty() {
            sb.sh(&format!("cd {dir} && {}", c.teardown)).ok();
        }
        sb.assert_clean(&[]);
        let left: Vec<String> = std::fs::read_dir(&sb.dir)
            .expect("scratch dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n != "bb.img" && n != "b")
            .collect();
        assert!(left.is_empty(), "{what}: left files {left:?}");
    }
}

#[test]
fn an_error_document_passes_through_every_tool() {
    let Some(sb) = Sandbox::new("bad-passthrough") else {
        return;
    };
    for tool in ["cloon-overlay", "cloon-netns", "cloon-spec", "cloon-run"] {
        for args in [&[][..], &["down"][..], &["check"][..]] {
            let run = sb.tool(tool, args, ERROR_DOC);
            // up and check hand the error on with its code; down has nothing to undo for a
            // document that names no container, and succeeds (a teardown pipeline goes on).
            let status = if args == ["down"] { 0 } else { 5 };
            assert_eq!(run.status, status, "{tool} {args:?}: {}", run.stderr);
            let doc: serde_json::Value = serde_json::from_str(ERROR_DOC).expect("JSON");
            assert_eq!(run.json(), doc, "{tool} {args:?}");
        }
    }
    sb.assert_clean(&[]);
}
