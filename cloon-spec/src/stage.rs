//! cloon-spec as a stage of the pipeline: what the skeleton ([`cloon_core::stage`]) needs of it,
//! and its command line's texts.

use crate::{SpecRecord, UpArgs, RECORD, STAGE};
use cloon_core::doc::{Bundle, Document};
use cloon_core::gc::Report;
use cloon_core::stage::{NoFlags, NoVerbs, Stage, Verdict};
use cloon_core::{Result, StateDir};

/// The stage: step 4 of the article, the runtime's configuration.
#[derive(Debug)]
pub struct Spec;

const AFTER_HELP: &str = "\
--explain says on stderr, before each action, the shell command that does the same: mkdir of the
bundle, its config.json written by `cat` from a here-document with the exact bytes, chmod; down:
rm -rf. cloon's own records are said as notes. stdout stays the JSON document. --dry-run says the
commands and does nothing (root is not needed); a root filesystem or network namespace that does
not exist yet (after --dry-run of the earlier steps) is not checked.

--cgroups says where the container's processes go in the host's cgroups, written in config.json
(the annotation org.cloon.cgroups, which cloon-run follows): none (the default: no cgroup of its
own, crun --cgroup-manager=disabled, as cloonix runs crun; the fastest), cloon (linux.cgroupsPath
/cloon/ID/NAME, ID naming the state directory: a lab's containers can be read and limited as one),
runtime (no cgroupsPath: the runtime's default, host-wide names).

down refuses (error 11, nothing changed) while a live container made from the bundle runs;
bring it down first (cloon-run down).

Examples:
  cloon-img create --busybox bb.img | cloon-overlay --name Cloon1 | cloon-spec
  cloon-spec --rootfs ./rootfs --netns cloonix_1_1 --name Cloon1 </dev/null
  cloon-spec --cap-add SYS_ADMIN --env LANG=C.UTF-8 --bind /srv:/srv:ro --name C2 --rootfs ./rootfs -- /bin/sh
  cloon-spec --cgroups cloon --rootfs ./rootfs --name C3 </dev/null   # under /cloon/ID/C3
  cloon-spec down --name Cloon1
  cloon-spec --explain --rootfs ./rootfs --name Cloon1 </dev/null   # the steps, on stderr
  cloon-spec --dry-run --rootfs ./rootfs --name Cloon1 </dev/null   # the same, nothing written";

const GC_HELP: &str = "\
gc brings down the containers whose recorded config.json is missing or no longer parses (healthy
ones, those a running tool is working on, and those a live container uses are kept), and removes
the bundle directories (STATE/NAME/bundle) that no record names and no live container uses, and
the empty state directories. With --dry-run it changes nothing and says the commands it would
run. The report is JSON on stdout: {stateDir, dryRun, found: [{kind, name, why, removed}],
kept: [{kind, name, why}]}; the exit status is the first failure's code, 0 when none.

Examples:
  cloon-spec gc --dry-run
  cloon-spec gc";

impl Stage for Spec {
    const TOOL: &'static str = STAGE;
    const RECORD: &'static str = RECORD;
    const WHAT: &'static str = "bundle";
    type Up = UpArgs;
    type Down = NoFlags;
    type Verbs = NoVerbs;
    type Part = Bundle;
    type Record = SpecRecord;

    const ABOUT: &'static str = "Write the OCI bundle (config.json) of a container, as `crun spec` and the article's edits do (step 4 of the article)";
    const AFTER_HELP: &'static str = AFTER_HELP;
    const GC_HELP: &'static str = GC_HELP;
    const ABOUTS: &'static [(&'static str, &'static str)] = &[
        (
            "up",
            "Write the bundle and add `bundle` to the document (the default)",
        ),
        (
            "down",
            "Remove the bundle and its record; drop `bundle` from the document",
        ),
        (
            "check",
            "Check that the recorded config.json is still there and parses",
        ),
    ];
    const UP_NAME: fn(&UpArgs) -> Option<&str> = |args| args.name.as_deref();
    const UP: fn(&StateDir, &UpArgs, Option<Document>) -> Result<Document> = crate::up;
    const DOWN: fn(&StateDir, &str, &Self::Down) -> Result<()> =
        |state, name, _| crate::down_locked(state, name);
    const CHECK: fn(&StateDir, &str) -> Result<Self::Part> = crate::check;
    const JUDGE: fn(&StateDir, &str, &Self::Record) -> Result<Verdict> = crate::gc::judge;

    fn down_unrecorded(_: &StateDir, _: &str, part: &Bundle, _: &NoFlags) -> Result<()> {
        crate::down_unrecorded(part)
    }

    fn has_strays(state: &StateDir, name: &str) -> Result<bool> {
        Ok(crate::bundle_dir(state, name)?.exists())
    }

    fn strays(state: &StateDir, name: &str, report: &mut Report) -> Result<()> {
        crate::gc::stray_bundle(state, name, report)
    }
}
