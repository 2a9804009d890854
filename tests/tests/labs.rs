//! The Makefile labs of scripts/labs/, each brought up, tested, drawn and brought down inside a
//! sandbox: `make up test graph down` must pass and leave nothing behind.

use cloon_tests::{bin_dir, bookworm_image, Sandbox};
use std::path::Path;

fn run_lab(lab: &str, extra: &str) {
    let Some(sb) = Sandbox::new(&format!("lab-{lab}")) else {
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/labs")
        .join(lab);
    let work = sb.path("work");
    let make = format!(
        "make -C {} BIN={} WORK={} {extra} up test graph down",
        dir.display(),
        bin_dir().display(),
        work.display()
    );
    let run = sb.sh(&format!("{make} 2>&1"));
    assert_eq!(run.status, 0, "{make} failed:\n{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("{lab}: all checks passed")),
        "{}",
        run.stdout
    );
    let svg = std::fs::read_to_string(work.join(format!("{lab}.svg"))).expect("the lab's SVG");
    assert!(svg.contains("<svg"), "not an SVG: {svg}");
    sb.assert_clean(&[]);
}

/// One test for all labs, run one after the other: the labs name their containers as the article
/// does (Cloon1, ...), and a container's cgroups are named after it on the whole host, so two
/// labs must not run at the same time.
#[test]
fn the_labs() {
    run_lab("article", "");
    run_lab("lan", "");
    match bookworm_image() {
        Some(img) => run_lab("router", &format!("ROUTER_IMG={}", img.display())),
        None => eprintln!("skipping the router lab: its router runs the bookworm image"),
    }
}
