//! cloon-overlay as a stage of the pipeline: what the skeleton ([`cloon_core::stage`]) needs of
//! it, and its command line's texts.

use crate::{Record, UpArgs, PART, STAGE};
use cloon_core::doc::{Document, Overlay as Part};
use cloon_core::gc::Report;
use cloon_core::stage::{NoFlags, NoVerbs, Stage, Verdict};
use cloon_core::{Result, StateDir};

/// The stage: step 2 of the article, the copy-on-write view of the image.
#[derive(Debug)]
pub struct Overlay;

const AFTER_HELP: &str = "\
Every container made from one image shares one read-only loop device and one read-only mount of
the image (the lower, STATE/.lowers/DEV-INO/lower, recorded in STATE/.lowers/DEV-INO.json): the
first container attaches and mounts it, the others mount only their overlay over it, and the last
one out unmounts it (the loop device goes with it). Who uses a lower is read from the mount table
(the overlays whose lowerdir it is), under a lock on its record, so a crash leaves no wrong count.

--explain says on stderr, before each action, the shell command that does the same (mkdir,
losetup, mount, umount, rm); stdout stays the JSON document. The loop device is held in the shell
variable $loop (`loop=$(losetup --read-only --find --show IMG)`), so the commands run as a
script; with --explain a note says which device it is. cloon's own records are said as notes.
--dry-run says the commands and does nothing (root is not needed): the document's overlay.loop is
then \"$loop\", and an image that does not exist yet (after cloon-img --dry-run) is not checked.

down refuses (error 11, nothing changed) while a live container uses the root filesystem: one
cloon-run recorded on it whose process still runs, or any process whose root is in it (a
container made by hand), in whatever mount namespace; bring the container down first.

Examples:
  cloon-img create --busybox bb.img | cloon-overlay --name Cloon1
  cloon-overlay --image bb.img --name Cloon1 </dev/null
  cloon-overlay down --name Cloon1
  cloon-overlay check < Cloon1.json
  cloon-overlay --explain --image bb.img --name Cloon1 </dev/null   # the steps, on stderr
  cloon-overlay down --dry-run --name Cloon1                         # what down would do
  cloon-overlay gc --dry-run                                         # what killed tools left";

const GC_HELP: &str = "\
gc brings down the containers whose recorded overlay is not mounted (healthy ones, those a
running tool is working on, and those a live container still uses are kept), unmounts what is
mounted under a container's overlay/ directory without a record to explain it, removes the
overlay/ directories no record names, unmounts and removes the shared lowers no overlay uses
(here, or as the root of a live process elsewhere), and detaches the loop devices cloon
attached to the images it knows of that nothing mounts: each carries the name
cloon:HASH:DEV-INO (HASH of the state directory), so a device attached to the same image by hand
is kept. With --dry-run it changes nothing and says the commands it would run. The report is
JSON on stdout: {stateDir, dryRun, found: [{kind, name, why, removed}], kept: [{kind, name,
why}]}; the exit status is the first failure's code, 0 when none.

Examples:
  cloon-overlay gc --dry-run
  cloon-overlay gc";

impl Stage for Overlay {
    const TOOL: &'static str = STAGE;
    const RECORD: &'static str = PART;
    const WHAT: &'static str = "overlay";
    type Up = UpArgs;
    type Down = NoFlags;
    type Verbs = NoVerbs;
    type Part = Part;
    type Record = Record;

    const ABOUT: &'static str = "Attach an image read-only and mount a copy-on-write overlay over it (step 2 of the article)";
    const AFTER_HELP: &'static str = AFTER_HELP;
    const GC_HELP: &'static str = GC_HELP;
    const ABOUTS: &'static [(&'static str, &'static str)] = &[
        ("up", "Attach and mount (the default action)"),
        (
            "down",
            "Unmount the overlay, remove the upper layer, and the lower with its last user",
        ),
        (
            "check",
            "Check that the mounts, the loop device and the shared lower are still as recorded",
        ),
    ];
    const UP_NAME: fn(&UpArgs) -> Option<&str> = |args| args.name.as_deref();
    const UP: fn(&StateDir, &UpArgs, Option<Document>) -> Result<Document> = crate::up;
    const DOWN: fn(&StateDir, &str, &Self::Down) -> Result<()> =
        |state, name, _| crate::down_locked(state, name);
    const CHECK: fn(&StateDir, &str) -> Result<Self::Part> = crate::check;
    const JUDGE: fn(&StateDir, &str, &Self::Record) -> Result<Verdict> = crate::gc::judge;

    fn down_unrecorded(state: &StateDir, _: &str, part: &Part, _: &NoFlags) -> Result<()> {
        crate::down_unrecorded(state, part)
    }

    fn gc_start(_state: &StateDir) -> Result<()> {
        crate::gc::start()
    }

    fn gc_more(state: &StateDir, report: &mut Report) -> Result<()> {
        crate::gc::more(state, report)
    }
}
