//! Fuzzing with proptest: the document parser and the parsers of every tool's flags, fed random
//! and near-valid input, never panic, and what they accept is sane. Then each tool's command
//! line, fed random words with `--dry-run` inside a sandbox, answers with a documented exit status
//! and never panics. Bounded (PROPTEST_CASES, 256 by default) so it runs in CI.

use cloon_core::{name, Document};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

/// Strings built from the characters that matter to the parsers, plus any character.
fn tricky() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(":".to_string()),
        Just(",".to_string()),
        Just("=".to_string()),
        Just("/".to_string()),
        Just("..".to_string()),
        Just("addr=".to_string()),
        Just("mac=".to_string()),
        Just("mtu=".to_string()),
        Just("host-addr=".to_string()),
        Just("bridge=".to_string()),
        Just("10.0.0.2/24".to_string()),
        Just("fd00::2/64".to_string()),
        Just("02:00:00:00:00:01".to_string()),
        Just("eth0".to_string()),
        Just("vgt_1_1_0".to_string()),
        Just("9000".to_string()),
        Just("NET_ADMIN".to_string()),
        Just("K".to_string()),
        Just("G".to_string()),
        "[ -~]{0,6}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

/// JSON values of any shape, a few levels deep.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z0-9/._-]{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        let keys = prop_oneof![
            Just("cloonVersion".to_string()),
            Just("name".to_string()),
            Just("image".to_string()),
            Just("overlay".to_string()),
            Just("netns".to_string()),
            Just("bundle".to_string()),
            Just("container".to_string()),
            Just("error".to_string()),
            Just("code".to_string()),
            Just("path".to_string()),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::vec((keys, inner), 0..6)
                .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn the_document_parser_never_panics_and_round_trips(text in ".{0,200}") {
        if let Ok(Some(doc)) = Document::parse(&text) {
            prop_assert_eq!(Document::parse(&doc.to_json()).unwrap(), Some(doc));
        }
    }

    #[test]
    fn documents_of_any_shape_are_parsed_or_refused(value in json(), version in prop::bool::ANY) {
        let mut value = value;
        if let (true, Some(map)) = (version, value.as_object_mut()) {
            map.insert("cloonVersion".into(), "1".into());
        }
        let text = value.to_string();
        if let Ok(Some(doc)) = Document::parse(&text) {
            // Every typed part reads or fails cleanly; the name, when there is one, is a string.
            let _ = doc.get::<cloon_core::doc::Image>("image");
            let _ = doc.get::<cloon_core::doc::Overlay>("overlay");
            let _ = doc.get::<cloon_core::doc::Netns>("netns");
            let _ = doc.get::<cloon_core::doc::Bundle>("bundle");
            let _ = doc.get::<cloon_core::doc::Container>("container");
            let _ = doc.error_status();
            prop_assert_eq!(Document::parse(&doc.to_json()).unwrap(), Some(doc));
        }
        // A truncated document is never taken for a good one.
        let cut = &text[..text.len() / 2];
        if !cut.trim().is_empty() {
            prop_assert!(Document::parse(cut).is_err());
        }
    }

    #[test]
    fn accepted_names_cannot_escape_or_overflow(text in tricky()) {
        for (check, max) in [
            (name::container as fn(&str) -> cloon_core::Result<()>, name::MAX_NAME),
            (name::netns, name::MAX_NAME),
            (name::interface, name::MAX_IFNAME),
        ] {
            if check(&text).is_ok() {
                prop_assert!(!text.contains('/') && text != ".." && text != ".");
                prop_assert!(!text.is_empty() && text.len() <= max);
                prop_assert!(text.bytes().all(|b| b.is_ascii_graphic()));
            }
        }
    }

    #[test]
    fn veth_and_link_flags_never_panic(text in tricky(), more in tricky()) {
        if let Ok(spec) = cloon_netns::parse::parse_veth(&text) {
            let shown = format!("{:?}", spec);
            prop_assert!(!shown.is_empty());
        }
        let _ = cloon_netns::parse::parse_veths(&[text.clone(), more.clone()]);
        let _ = cloon_netns::p2p::parse_end(&text);
        let _ = cloon_netns::p2p::parse_ends(&[text, more]);
    }

    #[test]
    fn vxlan_flags_never_panic(text in tricky(), port in any::<u16>()) {
        if let Ok(end) = cloon_netns::vxlan::parse_end(&text) {
            prop_assert!(end.ifname.len() <= name::MAX_IFNAME && end.ifname != "lo");
        }
        if let Ok(remote) = cloon_netns::vxlan::parse_remote(&text, port.max(1)) {
            prop_assert!(remote.port != 0 && !remote.addr.is_unspecified());
        }
        if let Ok(vni) = cloon_netns::vxlan::parse_vni(&text) {
            prop_assert!((1..=cloon_netns::vxlan::VNI_MAX).contains(&vni));
        }
    }

    #[test]
    fn spec_flags_never_panic(text in tricky()) {
        let _ = cloon_spec::spec::parse_cap(&text);
        let _ = cloon_spec::spec::parse_env(&text);
        let _ = cloon_spec::spec::parse_bind(&text);
        let _ = cloon_spec::spec::parse_sysctl(&text);
        let _ = cloon_spec::spec::check_hostname(&text);
        let _ = cloon_core::netns::Target::parse(&text);
    }

    #[test]
    fn sizes_parse_or_refuse(text in tricky(), n in any::<u64>(), unit in "[KMGTkmgt]?") {
        let _ = cloon_img::size::parse(&text);
        let written = format!("{n}{unit}");
        if let Ok(bytes) = cloon_img::size::parse(&written) {
            prop_assert!(bytes >= n);
        }
    }

    #[test]
    fn runtime_states_parse_or_refuse(value in json()) {
        let _ = cloon_run::runtime::parse_state(&value);
        let _ = cloon_run::runtime::kind_of(&value.to_string());
    }
}

/// Words for random command lines: every flag and subcommand of the tools, values good and bad.
const WORDS: &[&str] = &[
    "up",
    "down",
    "check",
    "show",
    "link",
    "vxlan",
    "create",
    "info",
    "state",
    "list",
    "--name",
    "A",
    "Cloon1",
    "--netns",
    "n",
    "/run/netns/x",
    "--veth",
    "a:eth0",
    "a:eth0,addr=10.0.0.1/24",
    "x:y,bridge=b",
    "--vni",
    "7",
    "--remote",
    "192.0.2.1",
    "n:eth1",
    "--image",
    "/nothere.img",
    "--rootfs",
    "/tmp",
    "--cap-add",
    "NET_ADMIN",
    "--env",
    "A=1",
    "--bind",
    "/tmp:/mnt",
    "--sysctl",
    "a.b=1",
    "--bundle",
    "/tmp",
    "--runtime",
    "runc",
    "--root",
    "/run/x",
    "--state-dir",
    "/run/cloon-fuzz",
    "--busybox",
    "--size",
    "8M",
    "--from-dir",
    "--force",
    "--signal",
    "TERM",
    "--timeout",
    "1",
    "--",
    "sh",
    "",
    "é",
    "a/b",
    "../x",
    "-",
    "=",
    ",",
    "--explain",
    "x.img",
];

/// Exit statuses a tool may answer with: success, the documented error codes, clap's usage error.
const STATUSES: &[i32] = &[0, 1, 2, 3, 4, 5, 6, 7, 11, 100, 101, 102, 103, 104];

#[test]
fn random_command_lines_never_panic() {
    let Some(sb) = cloon_tests::Sandbox::new("fuzz-argv") else {
        return;
    };
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let line = prop::collection::vec(prop::sample::select(WORDS), 0..8);
    for tool in [
        "cloon-img",
        "cloon-overlay",
        "cloon-netns",
        "cloon-spec",
        "cloon-run",
    ] {
        for _ in 0..40 {
            let words = line
                .new_tree(&mut runner)
                .expect("a command line")
                .current();
            let mut args: Vec<&str> = words.clone();
            args.push("--dry-run");
            let run = sb.tool(tool, &args, "");
            let what = format!("{tool} {args:?}");
            assert!(
                !run.stderr.contains("panicked"),
                "{what} panicked: {}",
                run.stderr
            );
            assert!(
                STATUSES.contains(&run.status),
                "{what}: status {}: {}",
                run.status,
                run.stderr
            );
            if run.status != 0 && run.status != 2 {
                assert_eq!(run.json()["error"]["code"], run.status, "{what}");
            }
        }
    }
    sb.assert_clean(&[]);
}
