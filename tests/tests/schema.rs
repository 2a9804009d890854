//! The document's JSON Schema (`schema/cloon-document.schema.json`, generated from cloon-core's
//! types) validates every document the tools write along a real pipeline, up and down, and its
//! error documents; and it rejects documents that are not cloon's.

use cloon_tests::{unique, Sandbox};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// Python's jsonschema (Draft 2020-12) on each document: the errors, one line each.
const VALIDATE: &str = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
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
    ];
    let docs: Vec<Value> = steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            sb.sh(&format!("cd {} && {step}", sb.dir.display())).ok();
            let text = std::fs::read_to_string(sb.path(&format!("{}.json", i + 1)))
                .unwrap_or_else(|e| panic!("{step}: {e}"));
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{step}: {e}: {text}"))
        })
        .collect();
    assert_eq!(docs[4]["container"]["status"], "running", "{}", docs[4]);
    assert!(docs[10]["error"]["code"] == 4 && docs[11]["error"]["code"] == 7);
    assert_eq!(docs[12], docs[10], "an error document passes through");
    let errors = complaints(&docs, &sb.dir);
    assert!(
        errors.is_empty(),
        "invalid documents:\n{}",
        errors.join("\n")
    );
    sb.assert_clean(&[]);
}

#[test]
fn documents_that_are_not_clouns_are_rejected() {
    let scratch = std::env::temp_dir().join(format!("cloon-schema-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch");
    let good = json!({"cloonVersion": "1", "name": "A", "mine": {"any": "thing"},
        "image": {"path": "/i.img", "fstype": "ext4", "bytes": 1,
                  "config": {"args": ["/bin/sh"], "env": ["A=b"], "cwd": "/"}}});
    let bad = [
        json!({"name": "A"}),
        json!({"cloonVersion": "2"}),
        json!({"cloonVersion": "1", "image": {"path": "/i", "fstype": "ext4", "bytes": "big"}}),
        json!({"cloonVersion": "1", "overlay": {"loop": "/dev/loop0"}}),
        json!({"cloonVersion": "1", "image": {"path": "/i", "fstype": "ext4", "bytes": 1, "config": {"args": "sh"}}}),
        json!({"cloonVersion": "1", "error": {"code": 4, "stage": "x"}}),
    ];
    assert!(complaints(&[good], &scratch).is_empty());
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
