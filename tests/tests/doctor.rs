//! `cloon-lab doctor` on this host, inside a sandbox: every required check passes on a host that
//! `scripts/setup-host` prepared, a missing runtime fails with code 100 and its fix, and the veth
//! pair that proves the kernel's support leaves nothing behind.

use cloon_tests::Sandbox;
use serde_json::Value;

#[test]
fn a_prepared_host_passes_and_a_missing_runtime_fails_with_its_fix() {
    let Some(sb) = Sandbox::new("doctor") else {
        return;
    };
    let run = sb.tool("cloon-lab", &["doctor", "--json"], "");
    let report = run.json();
    assert_eq!(run.status, 0, "{report:#}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["runtime"], "crun");
    let checks = report["checks"].as_array().expect("checks");
    let names: Vec<&str> = checks.iter().filter_map(|c| c["name"].as_str()).collect();
    for expected in [
        "root",
        "loop",
        "overlay",
        "netns",
        "veth",
        "runtime crun",
        "runtime runc",
        "cgroups",
        "mkfs.ext4",
        "busybox-static",
        "debootstrap",
        "graphviz",
    ] {
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }
    let find = |n: &str| checks.iter().find(|c| c["name"] == n).expect("check");
    assert!(
        find("veth")["found"]
            .as_str()
            .unwrap_or("")
            .contains("veth pair was made"),
        "{report:#}"
    );
    assert!(find("runtime crun")["found"]
        .as_str()
        .unwrap_or("")
        .contains("crun version"));
    for c in checks.iter().filter(|c| c["required"] == true) {
        assert_eq!(c["ok"], true, "{c}");
    }
    // The throwaway namespace took its veth pair with it.
    sb.assert_clean(&[]);

    let run = sb.tool(
        "cloon-lab",
        &["doctor", "--json", "--runtime", "/nonexistent/oci-runtime"],
        "",
    );
    assert_eq!(run.status, 100, "{}", run.stdout);
    let report: Value = run.json();
    assert_eq!(report["ok"], false);
    let rt = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "runtime /nonexistent/oci-runtime")
        .expect("runtime check")
        .clone();
    assert_eq!(rt["ok"], false);
    assert!(
        rt["fix"].as_str().unwrap_or("").contains("--runtime"),
        "{rt}"
    );

    let table = sb.tool("cloon-lab", &["doctor", "--runtime", "runc"], "");
    assert_eq!(table.status, 0, "{}", table.stdout);
    assert!(
        table.stdout.contains("ok      runtime runc"),
        "{}",
        table.stdout
    );
    assert!(table
        .stdout
        .ends_with("This host can run cloon's containers.\n"));
    let missing = sb.tool(
        "cloon-lab",
        &["doctor", "--runtime", "/nonexistent/oci-runtime"],
        "",
    );
    assert_eq!(missing.status, 100);
    assert!(
        missing
            .stdout
            .contains("MISSING runtime /nonexistent/oci-runtime"),
        "{}",
        missing.stdout
    );
    assert!(missing.stdout.contains("fix: "), "{}", missing.stdout);
}
