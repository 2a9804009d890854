//! cloon-img's command line (`create`, `info`, `gc`) and its dispatch; `main.rs` only calls
//! [`main`].

use crate::{debootstrap, Create, Source, PART, STAGE};
use clap::{Parser, Subcommand};
use cloon_core::complete::{Reply, Request};
use cloon_core::{cli, Document};
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
--explain says on stderr, before each action, the shell command that does the same (mkdir, cp,
ln, printf, debootstrap, truncate, mkfs.ext4 -d, mv); stdout stays the JSON document. --dry-run
says the commands and does nothing (root is not needed); they form a script that makes the same
image. When the size depends on files not made yet (--busybox, --debootstrap without --size),
the script computes it in $size and the document's image.bytes is 0.

A create killed halfway (SIGKILL, a crash, a power cut) leaves its staging directory and
temporary image next to the image (.IMG.cloon-rootfs-PID, .IMG.cloon-tmp-PID); the next create of
the same image removes them, and so does `cloon-img gc`. Both find them by the record the killed
run held locked (.IMG.cloon-record-PID), never by their names alone.

Progress goes to stderr while it is a terminal (CLOON_PROGRESS=0 hides it, 1 forces it). Manual
pages and shell completions: scripts/install installs them, made by `cargo xtask man DIR` and
`cargo xtask completions SHELL DIR` in cloon's source tree.

Examples:
  cloon-img create --busybox bb.img
  cloon-img create --debootstrap bookworm bookworm.img
  cloon-img create --from-dir ./rootfs --size 512M my.img
  cloon-img create --from-tar alpine-rootfs.tar.gz alpine.img
  docker export CONTAINER | cloon-img create --from-tar - my.img
  cloon-img create --from-oci ./layout:latest app.img      # e.g. from skopeo copy ... oci:layout:latest
  SOURCE_DATE_EPOCH=1700000000 cloon-img create --reproducible --busybox bb.img
  cloon-img info bb.img | cloon-overlay --name Cloon1
  cloon-img gc --dry-run .                             # what killed creates left here
  cloon-img create --explain --busybox bb.img          # the steps as shell commands, on stderr
  cloon-img create --dry-run --busybox bb.img 2>bb.sh  # the same commands, nothing made";

/// cloon-img's command line.
#[derive(Debug, Parser)]
#[command(
    name = "cloon-img",
    version,
    about = "Make the ext4 image that holds a container's root filesystem (step 1 of the article)",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    #[command(flatten)]
    explain: cli::ExplainArgs,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create IMG and add the `image` part to the document read on stdin (if any)
    #[command(after_help = CREATE_EXAMPLES)]
    Create {
        /// The image file to write
        image: PathBuf,
        /// Fill it with Debian's static busybox (the default; offline)
        #[arg(long, group = "source")]
        busybox: bool,
        /// Fill it with the files of DIR
        #[arg(long, value_name = "DIR", group = "source")]
        from_dir: Option<PathBuf>,
        /// Fill it from a root filesystem tarball (plain, gzip, zstd, xz or bzip2, e.g. a
        /// `docker export`); `-` reads it from stdin, which then carries no document. A tarball
        /// of an OCI layout (oci-archive) is imported as --from-oci; a `docker save` is refused
        #[arg(long, value_name = "FILE|-", group = "source")]
        from_tar: Option<PathBuf>,
        /// Fill it from the image tagged TAG of an OCI image layout (index.json, blobs/), for
        /// this machine's platform; its Entrypoint, Cmd, Env and WorkingDir go to image.config.
        /// TAG follows the first colon (it may hold colons); DIR may be an oci-archive file
        #[arg(long, value_name = "DIR[:TAG]", group = "source")]
        from_oci: Option<String>,
        /// Fill it with Debian SUITE (e.g. bookworm), as the article does
        #[arg(long, value_name = "SUITE", group = "source")]
        debootstrap: Option<String>,
        /// Extra packages for --debootstrap, comma-separated ("" for none)
        #[arg(long, value_name = "PKGS", requires = "debootstrap", default_value = debootstrap::ARTICLE_PACKAGES)]
        include: String,
        /// Mirror for --debootstrap [default: the host's apt sources]
        #[arg(long, value_name = "URL", requires = "debootstrap")]
        mirror: Option<String>,
        /// Image size: 64M, 1G, ... [default: the content plus a quarter plus 32M]
        #[arg(long, value_parser = parse_size)]
        size: Option<u64>,
        /// Replace IMG if it exists
        #[arg(long)]
        force: bool,
        /// The same input gives the same image bytes: every time set to SOURCE_DATE_EPOCH (1
        /// when unset), a UUID and hash seed derived from the content (not with --debootstrap,
        /// whose runs differ)
        #[arg(long)]
        reproducible: bool,
        /// The filesystem UUID of a --reproducible image [default: derived from the content]
        #[arg(long, value_name = "UUID", requires = "reproducible", value_parser = parse_uuid)]
        uuid: Option<String>,
    },
    /// Print a document holding the `image` part of an existing image (what `create` prints),
    /// to pipe into cloon-overlay
    Info {
        /// The image file
        image: PathBuf,
    },
    /// Remove what killed runs of `create` left next to their images (staging directories,
    /// temporary images), found by the records those runs held locked; print a JSON report of
    /// what was found, removed and kept
    #[command(after_help = GC_HELP)]
    Gc {
        /// Directories to clean (every image in them), or images (only their leftovers)
        /// [default: the current directory]
        #[arg(value_name = "DIR|IMG")]
        paths: Vec<PathBuf>,
    },
}

const GC_HELP: &str = "\
Each run of create holds a record, .IMG.cloon-record-PID next to the image, locked for its whole
life and naming the staging items it makes (.IMG.cloon-rootfs-PID, its .layerN siblings for an
OCI image, .IMG.cloon-tmp-PID). gc takes each record's lock: if it can, the run is over and the
items it names are removed, if they are still what the run made (a directory or regular file of
the record's owner, on the same mount, not a symbolic link), never following a link nor entering
a mount point below them; then the record goes. A record still locked is a live run's: it and its
items are kept. A file named like a staging item that no record names is kept (remove it by hand
if you know it is one); so is a file named like a record that is not one. With --dry-run it
changes nothing and says the commands it would run. The report is JSON on stdout: {stateDir (the
directories looked in, separated by ':'), dryRun, found: [{kind, name, why, removed}], kept:
[{kind, name, why}]}; the exit status is the first failure's code, 0 when none.

Examples:
  cloon-img gc --dry-run
  cloon-img gc /var/lib/images
  cloon-img gc bb.img";

const CREATE_EXAMPLES: &str = "\
Examples:
  cloon-img create --busybox bb.img
  cloon-img create --debootstrap bookworm --include tini bookworm.img
  cloon-img create --from-dir ./rootfs --size 512M my.img
  cloon-img create --from-tar rootfs.tar.zst my.img
  docker export CONTAINER | cloon-img create --from-tar - my.img
  cloon-img create --from-oci ./layout:1.0 app.img
  cloon-img create --reproducible --uuid 01234567-89ab-cdef-0123-456789abcdef --busybox bb.img";

fn parse_size(text: &str) -> Result<u64, String> {
    crate::size::parse(text).map_err(|e| e.msg)
}

fn parse_uuid(text: &str) -> Result<String, String> {
    crate::reproducible::parse_uuid(text)
}

/// The command line of `cloon-img` as its `--help` shows it; its manual pages and completions
/// (`cargo xtask`) are made from it too.
pub fn command() -> clap::Command {
    cli::command::<Cli>()
}

/// cloon-img's `main`: parses the command line and runs the command.
pub fn main() -> ExitCode {
    run(cli::parse(live))
}

/// The live values of cloon-img's command line, for shell completion: after `--from-oci
/// LAYOUT:`, the layout's tags; before the colon, a directory.
fn live(request: &Request) -> Option<Reply> {
    if request.id() != "from_oci" {
        return None;
    }
    let Some((dir, _)) = request.current.split_once(':') else {
        return Some(Reply::Dirs);
    };
    let tags = crate::oci::layout_tags(std::path::Path::new(dir));
    Some(Reply::Words(
        tags.into_iter().map(|t| format!("{dir}:{t}")).collect(),
    ))
}

/// Runs the command `cli`.
pub fn run(cli: Cli) -> ExitCode {
    cli.explain.apply();
    match cli.cmd {
        Cmd::Info { image } => cli::run_new(STAGE, || crate::info_document(&image)),
        Cmd::Gc { paths } => cloon_core::gc::run(STAGE, || crate::leftovers::gc(&paths)),
        Cmd::Create {
            image,
            busybox: _,
            from_dir,
            from_tar,
            from_oci,
            debootstrap,
            include,
            mirror,
            size,
            force,
            reproducible,
            uuid,
        } => {
            let stdin_is_data = from_tar.as_deref() == Some(std::path::Path::new("-"));
            let source = if let Some(dir) = from_dir {
                Source::Dir(dir)
            } else if let Some(file) = from_tar {
                Source::Tar(file)
            } else if let Some(value) = from_oci {
                let (dir, tag) = crate::oci::parse_ref(&value);
                Source::Oci { dir, tag }
            } else if let Some(suite) = debootstrap {
                Source::Debootstrap {
                    suite,
                    include,
                    mirror,
                }
            } else {
                Source::Busybox
            };
            let req = Create {
                image,
                source,
                size,
                force,
                reproducible,
                uuid,
            };
            if stdin_is_data {
                return cli::run_new(STAGE, || {
                    let mut doc = Document::new();
                    doc.set(PART, &crate::create(&req)?);
                    Ok(doc)
                });
            }
            cli::run_step(STAGE, |doc| {
                let mut doc = doc.unwrap_or_else(Document::new);
                let part = crate::create(&req)?;
                doc.set(PART, &part);
                Ok(doc)
            })
        }
    }
}
