//! The document's JSON Schema (`schema/cloon-document.schema.json`, generated from cloon-core's
//! types) validates every document the tools write along a real pipeline, up and down, and its
//! error documents; and it rejects documents that are not cloon's.

use cloon_tests::{unique, Sandbox};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// Python's jsonschema (Draft 2020-12) on each document: the errors, one line each. Its
/// `pattern` follows ECMA-262, as JSON Schema says, and not Python's `re`: a `$` outside a
/// character class is the end of the string (`\Z`), where Python's `$` also matches before a final
/// newline (`"Cloon1\n"` would pass `^[A-Za-z0-9]...$`).
const VALIDATE: &str = r#"
import json, re, sys, jsonschema
from jsonschema import validators, Draft202012Validator

def ecma(pattern):
    out, in_class, i = [], False, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "$":
            c = r"\Z"
        out.append(c)
        i += 1
    return "".join(out)

assert ecma(r"^(/|\$loop$)[$]$") == r"^(/|\$loop\Z)[$]\Z"
assert not re.search(ecma("^a$"), "a\n") and re.search(ecma("^a$"), "a")

def pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not re.search(ecma(pattern), instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")

schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
v = validators.extend(Draft202012Validator, {"pattern": pattern})(schema)
docs = json.load(open(sys.argv[2]))
for i, d in enumerate(docs):
    for e in v.iter_errors(d):
        print(f"document {i}: {e.message} at {list(e.absolute_path)}")
"#;

fn schema_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/cloon-document.schema.json")
}

/// The schema's complaints about each of `docs`.
fn complaints(docs: &[Value], scratch: &Path) -> Vec<String> {
    let file = scratch.join("docs-to-validate.json");
    std::fs::write(&file, serde_json::to_vec(docs).expect("json")).expect("write docs");
    let out = Command::new("python3")
        .args(["-c", VALIDATE])
        .arg(schema_path())
        .arg(&file)
        .output()
        .expect("python3 with jsonschema (scripts/test installs it)");
    assert!(
        out.status.success(),
        "the validator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&file).expect("rm docs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// Runs each shell step in the sandbox's scratch directory, step N writing `N.json`; the
/// documents, in order.
fn run_steps(sb: &Sandbox, steps: &[String]) -> Vec<Value> {
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            sb.sh(&format!("cd {} && {step}", sb.dir.display())).ok();
            let text = std::fs::read_to_string(sb.path(&format!("{}.json", i + 1)))
                .unwrap_or_else(|e| panic!("{step}: {e}"));
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{step}: {e}: {text}"))
        })
        .collect()
}

#[test]
fn every_document_of_a_pipeline_is_valid() {
    let Some(sb) = Sandbox::new("schema-pipeline") else {
        return;
    };
    let name = unique("Schema1-");
    let steps = [
        "cloon-img create --busybox bb.img </dev/null > 1.json".to_string(),
        format!("cloon-overlay --name {name} < 1.json > 2.json"),
        "cloon-netns --netns cloonix_1_1 --veth vgt_1_1_0:eth0,addr=10.0.0.2/24,bridge=lan1,host-mtu=1400 < 2.json > 3.json".into(),
        "cloon-spec --env A=b < 3.json > 4.json".into(),
        "cloon-run --root /run/crun < 4.json > 5.json".into(),
        "cloon-run check < 5.json > 6.json".into(),
        "cloon-run down < 5.json > 7.json".into(),
        "cloon-spec down < 7.json > 8.json".into(),
        "cloon-netns down < 8.json > 9.json".into(),
        "cloon-overlay down < 9.json > 10.json".into(),
        "cloon-netns --netns x --veth much_too_long_for_linux:eth0 --name E1 </dev/null > 11.json || true".into(),
        "cloon-run --name E1 --bundle /nonexistent </dev/null > 12.json || true".into(),
        "cloon-spec < 11.json > 13.json || true".into(),
        // An error document of each other tool: a directory that does not exist, no image, no
        // root filesystem.
        "cloon-img create --busybox /nonexistent/bb.img </dev/null > 14.json || true".into(),
        "cloon-overlay --name E2 </dev/null > 15.json || true".into(),
        "cloon-spec --name E3 </dev/null > 16.json || true".into(),
    ];
    let docs = run_steps(&sb, &steps);
    assert_eq!(docs[4]["container"]["status"], "running", "{}", docs[4]);
    assert!(docs[10]["error"]["code"] == 4 && docs[11]["error"]["code"] == 7);
    assert_eq!(docs[12], docs[10], "an error document passes through");
    // error.stage: the schema's closed set holds every tool's name.
    let stages: Vec<&Value> = [10, 11, 13, 14, 15]
        .iter()
        .map(|&i| &docs[i]["error"]["stage"])
        .collect();
    assert_eq!(
        stages,
        [
            cloon_netns::STAGE,
            cloon_run::STAGE,
            cloon_img::STAGE,
            "cloon-overlay",
            cloon_spec::STAGE
        ],
        "{docs:#?}"
    );
    let errors = complaints(&docs, &sb.dir);
    assert!(
        errors.is_empty(),
        "invalid documents:\n{}",
        errors.join("\n")
    );
    sb.assert_clean(&[]);
}

#[test]
fn every_document_of_a_dry_run_pipeline_is_valid() {
    let Some(sb) = Sandbox::new("schema-dry-run") else {
        return;
    };
    let name = unique("SchemaDry");
    // Two namespaces for a link, an underlay with a route to the VXLAN's remote.
    sb.sh(
        "ip netns add dry_a && ip netns add dry_b && ip link add und0 type veth peer name und1 \
         && ip addr add 192.168.99.1/24 dev und0 && ip link set und0 up && ip link set und1 up",
    )
    .ok();
    let steps = [
        "cloon-img create --dry-run --busybox bb.img </dev/null > 1.json".to_string(),
        format!("cloon-overlay --dry-run --name {name} < 1.json > 2.json"),
        "cloon-netns --dry-run --netns nsdry --veth vdry0:eth0,addr=10.0.0.2/24,addr=fd00::2/64,bridge=brdry < 2.json > 3.json".into(),
        "cloon-spec --dry-run < 3.json > 4.json".into(),
        "cloon-run --dry-run < 4.json > 5.json".into(),
        "cloon-run down --dry-run < 5.json > 6.json".into(),
        "cloon-spec down --dry-run < 6.json > 7.json".into(),
        "cloon-netns down --dry-run < 7.json > 8.json".into(),
        "cloon-overlay down --dry-run < 8.json > 9.json".into(),
        "cloon-netns --dry-run link --name wire1 dry_a:p2p0,addr=10.9.0.1/30 dry_b:p2p0,addr=10.9.0.2/30 </dev/null > 10.json".into(),
        "cloon-netns --dry-run vxlan --name lan5 --vni 5 --remote 192.168.99.2 vxl_l,bridge=lan5 </dev/null > 11.json".into(),
        "cloon-netns --dry-run vxlan --name wan1 --vni 42 --local 192.168.99.1 --remote 192.168.99.2 /run/netns/dry_a:eth1,addr=10.42.0.1/24 </dev/null > 12.json".into(),
    ];
    let docs = run_steps(&sb, &steps);
    // The placeholders of a dry run: the loop device's shell variable, no pid, no status.
    assert_eq!(docs[1]["overlay"]["loop"], "$loop", "{}", docs[1]);
    assert_eq!(docs[4]["container"]["pid"], 0, "{}", docs[4]);
    assert_eq!(docs[4]["container"]["status"], "", "{}", docs[4]);
    assert!(docs.iter().all(|d| d.get("error").is_none()), "{docs:?}");
    let errors = complaints(&docs, &sb.dir);
    assert!(
        errors.is_empty(),
        "invalid documents:\n{}",
        errors.join("\n")
    );
    sb.sh("ip netns del dry_a && ip netns del dry_b && ip link del und0")
        .ok();
    sb.assert_clean(&[]);
}

/// `doc` with the value at `pointer` replaced by `value` (or removed, for `Value::Null`).
fn with(doc: &Value, pointer: &str, value: Value) -> Value {
    let mut doc = doc.clone();
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let slot = doc.pointer_mut(parent).expect("the pointer's parent");
    match (slot, value) {
        (Value::Object(map), Value::Null) => {
            map.remove(key);
        }
        (Value::Object(map), value) => {
            map.insert(key.to_string(), value);
        }
        (Value::Array(items), Value::Null) => {
            items.remove(key.parse::<usize>().expect("an index"));
        }
        (Value::Array(items), value) => {
            items[key.parse::<usize>().expect("an index")] = value;
        }
        (other, _) => panic!("{pointer}: not in an object or array: {other}"),
    }
    doc
}

#[test]
fn documents_that_are_not_clouns_are_rejected() {
    let scratch = std::env::temp_dir().join(format!("cloon-schema-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch");
    let good = json!({"cloonVersion": "1", "name": "A", "mine": {"any": "thing"},
        "image": {"path": "/i.img", "fstype": "ext4", "bytes": 1,
                  "config": {"args": ["/bin/sh"], "env": ["A=b"], "cwd": "/"}},
        "overlay": {"loop": "/dev/loop0", "lower": "/run/cloon/.lowers/2049-1311/lower",
                    "upper": "/run/cloon/A/overlay/upper", "work": "/run/cloon/A/overlay/work",
                    "rootfs": "/run/cloon/A/overlay/rootfs"},
        "netns": {"name": "cloonix_1_1", "path": "/run/netns/cloonix_1_1",
                  "links": [{"host": "vgt_1_1_0", "guest": "eth0", "mac": "02:00:00:00:00:01",
                             "addrs": ["10.0.0.2/24", "fd00::2/64"], "mtu": 1400,
                             "hostMac": "0e:AA:bb:00:00:01", "hostAddrs": ["::ffff:10.0.0.1/120"],
                             "bridge": "lan1"}]},
        "bundle": {"path": "/run/cloon/A/bundle", "config": "/run/cloon/A/bundle/config.json"},
        "container": {"id": "A", "runtime": "crun", "root": "/run/crun", "pid": 4242,
                      "status": "running"}});
    let vxlan = json!({"cloonVersion": "1", "name": "wan1",
        "vxlan": {"vni": 42, "port": 4789, "local": "192.168.99.1",
                  "remotes": [{"address": "2001:db8::2", "port": 4789}], "learning": false,
                  "ifname": "eth1", "netns": "c1", "path": "/run/netns/c1", "mac": "",
                  "addrs": ["10.42.0.1/24"], "mtu": 1450}});
    let link = json!({"cloonVersion": "1", "name": "wire1", "link": {"ends": [
        {"netns": "a", "path": "/run/netns/a", "ifname": "p2p0", "mac": "", "addrs": []},
        {"netns": "my ns", "path": "/tmp/my ns", "ifname": "p2p0", "mac": "02:00:00:00:09:02",
         "addrs": ["10.9.0.2/30"], "mtu": 9000}]}});
    // An error document keeps the parts made before the failure, for the teardown pipeline.
    let error = with(
        &with(&good, "/container", Value::Null),
        "/error",
        json!({"code": 102, "stage": "cloon-run", "msg": "the runtime failed", "details": ""}),
    );
    let mut goods = vec![good.clone(), vxlan.clone(), link.clone(), error];
    // An error of each tool, and an image's config with only one of its keys.
    let stages = [
        cloon_img::STAGE,
        "cloon-overlay",
        cloon_netns::STAGE,
        cloon_spec::STAGE,
        cloon_run::STAGE,
    ];
    goods.extend(
        stages
            .iter()
            .map(|stage| with(&error_doc(), "/error/stage", json!(stage))),
    );
    goods.push(with(&good, "/image/config", json!({"env": ["A=b"]})));
    assert_eq!(complaints(&goods, &scratch), Vec::<String>::new());
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path()).expect("the schema"))
            .expect("JSON");
    assert_eq!(
        schema["$defs"]["ErrorObject"]["properties"]["stage"]["enum"],
        json!(stages),
        "error.stage names exactly the tools that write error documents"
    );
    // A JSON null where the tools write a value or leave the key out.
    let null_at = |doc: &Value, pointer: &str| {
        let mut doc = doc.clone();
        *doc.pointer_mut(pointer).expect("the pointer") = Value::Null;
        doc
    };

    let bad = [
        json!({"name": "A"}),
        json!({"cloonVersion": "2"}),
        json!({"cloonVersion": "1", "image": {"path": "/i", "fstype": "ext4", "bytes": "big"}}),
        json!({"cloonVersion": "1", "overlay": {"loop": "/dev/loop0"}}),
        json!({"cloonVersion": "1", "image": {"path": "/i", "fstype": "ext4", "bytes": 1, "config": {"args": "sh"}}}),
        json!({"cloonVersion": "1", "error": {"code": 4, "stage": "x"}}),
        // Names the tools refuse.
        with(&good, "/name", json!("a/b c")),
        with(&good, "/name", json!("..")),
        with(&good, "/name", json!("a".repeat(65))),
        with(&good, "/container/id", json!("-x")),
        with(
            &good,
            "/netns/links/0/host",
            json!("much_too_long_for_linux"),
        ),
        with(&good, "/netns/links/0/guest", json!("eth 0")),
        with(&link, "/link/ends/0/ifname", json!("a/b")),
        with(&vxlan, "/vxlan/ifname", json!("")),
        // Relative paths.
        with(&good, "/image/path", json!("bb.img")),
        with(
            &good,
            "/overlay/rootfs",
            json!("run/cloon/A/overlay/rootfs"),
        ),
        with(&good, "/overlay/loop", json!("loop0")),
        with(&good, "/netns/path", json!("netns/cloonix_1_1")),
        with(&good, "/bundle/path", json!("./bundle")),
        with(&good, "/container/root", json!("crun")),
        with(&vxlan, "/vxlan/path", json!("c1")),
        // Misspelled keys inside a part (the top level stays open: "mine" above).
        with(&good, "/image/confg", json!({})),
        with(&good, "/overlay/rootFs", json!("/r")),
        with(&good, "/netns/links/0/host_mac", json!("02:00:00:00:00:02")),
        with(&good, "/container/Status", json!("running")),
        with(&vxlan, "/vxlan/remotes/0/prot", json!(1)),
        with(&error_doc(), "/error/detail", json!("")),
        // Bad addresses.
        with(&good, "/netns/links/0/addrs/0", json!("10.0.0.2")),
        with(&good, "/netns/links/0/addrs/0", json!("10.0.0.2/33")),
        with(&good, "/netns/links/0/addrs/0", json!("10.0.0.256/24")),
        with(&good, "/netns/links/0/addrs/1", json!("fd00::2/129")),
        with(&vxlan, "/vxlan/remotes/0/address", json!("host.example")),
        with(&vxlan, "/vxlan/local", json!("192.168.99.1/24")),
        with(&good, "/netns/links/0/mac", json!("02:00:00:00:00")),
        with(&good, "/netns/links/0/hostMac", json!("02-00-00-00-00-01")),
        with(&vxlan, "/vxlan/mac", json!("0g:00:00:00:00:01")),
        // Closed sets and ranges.
        with(&good, "/container/status", json!("dancing")),
        with(&good, "/image/fstype", json!("xfs")),
        with(&good, "/container/pid", json!(-7)),
        with(&vxlan, "/vxlan/port", json!(0)),
        with(&vxlan, "/vxlan/remotes/0/port", json!(65536)),
        with(&vxlan, "/vxlan/vni", json!(0)),
        with(&vxlan, "/vxlan/vni", json!(16_777_216)),
        with(&vxlan, "/vxlan/mtu", json!(67)),
        with(&good, "/netns/links/0/mtu", json!(65536)),
        with(&link, "/link/ends/1", Value::Null),
        // A final newline, which ECMA-262's `$` does not let pass (Python's would).
        with(&good, "/name", json!("A\n")),
        with(&good, "/container/id", json!("A\n")),
        with(&good, "/netns/links/0/host", json!("vgt_1_1_0\n")),
        with(&link, "/link/ends/0/ifname", json!("p2p0\n")),
        with(&good, "/netns/links/0/mac", json!("02:00:00:00:00:01\n")),
        with(&good, "/netns/links/0/addrs/0", json!("10.0.0.2/24\n")),
        with(&vxlan, "/vxlan/local", json!("192.168.99.1\n")),
        with(&vxlan, "/vxlan/remotes/0/address", json!("2001:db8::2\n")),
        with(&good, "/overlay/loop", json!("$loop\n")),
        // error.stage: a tool's name.
        with(&error_doc(), "/error/stage", json!("cloon-nets")),
        with(&error_doc(), "/error/stage", json!("")),
        with(&error_doc(), "/error/stage", json!("cloon-netns\n")),
        // image.config as cloon-img writes it.
        null_at(&good, "/image/config"),
        null_at(&good, "/image/config/cwd"),
        with(&good, "/image/config", json!({})),
        with(&good, "/image/config", json!("/bin/sh")),
        with(&good, "/image/config/args", json!([])),
        with(&good, "/image/config/args", json!("/bin/sh")),
        with(&good, "/image/config/env", json!([7])),
        with(&good, "/image/config/cwd", json!("")),
        with(&good, "/image/config/cwd", json!(["/"])),
        with(&good, "/image/config/Entrypoint", json!(["/bin/sh"])),
    ];
    let errors = complaints(&bad, &scratch);
    for (i, doc) in bad.iter().enumerate() {
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(&format!("document {i}:"))),
            "document {i} accepted: {doc}\n{errors:?}"
        );
    }
    std::fs::remove_dir_all(&scratch).expect("rm scratch");
}

/// An error document made before any part.
fn error_doc() -> Value {
    json!({"cloonVersion": "1", "error": {"code": 4, "stage": "cloon-netns", "msg": "m", "details": ""}})
}
