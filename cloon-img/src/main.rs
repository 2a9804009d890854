//! cloon-img: make the ext4 image holding a container's root filesystem.

use clap::{Parser, Subcommand};
use cloon_core::{cli, Document};
use cloon_img::{debootstrap, Create, Source, PART, STAGE};
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
--explain says on stderr, before each action, the shell command that does the same (mkdir, cp,
ln, printf, debootstrap, truncate, mkfs.ext4 -d, mv); stdout stays the JSON document. --dry-run
says the commands and does nothing (root is not needed); they form a script that makes the same
image. When the size depends on files not made yet (--busybox, --debootstrap without --size),
the script computes it in $size and the document's image.bytes is 0.

Examples:
  cloon-img create --busybox bb.img
  cloon-img create --debootstrap bookworm bookworm.img
  cloon-img create --from-dir ./rootfs --size 512M my.img
  cloon-img info bb.img
  cloon-img create --explain --busybox bb.img          # the steps as shell commands, on stderr
  cloon-img create --dry-run --busybox bb.img 2>bb.sh  # the same commands, nothing made";

#[derive(Debug, Parser)]
#[command(
    name = "cloon-img",
    version,
    about = "Make the ext4 image that holds a container's root filesystem (step 1 of the article)",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    #[command(flatten)]
    explain: cli::ExplainArgs,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create IMG and add the `image` part to the document read on stdin (if any)
    Create {
        /// The image file to write
        image: PathBuf,
        /// Fill it with Debian's static busybox (the default; offline)
        #[arg(long, conflicts_with_all = ["from_dir", "debootstrap"])]
        busybox: bool,
        /// Fill it with the files of DIR
        #[arg(long, value_name = "DIR", conflicts_with = "debootstrap")]
        from_dir: Option<PathBuf>,
        /// Fill it with Debian SUITE (e.g. bookworm), as the article does
        #[arg(long, value_name = "SUITE")]
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
    },
    /// Print the `image` part of an existing image
    Info {
        /// The image file
        image: PathBuf,
    },
}

fn parse_size(text: &str) -> Result<u64, String> {
    cloon_img::size::parse(text).map_err(|e| e.msg)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.explain.apply();
    match cli.cmd {
        Cmd::Info { image } => cli::run_query(STAGE, || cloon_img::info(&image)),
        Cmd::Create {
            image,
            busybox: _,
            from_dir,
            debootstrap,
            include,
            mirror,
            size,
            force,
        } => {
            let source = match (from_dir, debootstrap) {
                (Some(dir), _) => Source::Dir(dir),
                (None, Some(suite)) => Source::Debootstrap {
                    suite,
                    include,
                    mirror,
                },
                (None, None) => Source::Busybox,
            };
            let req = Create {
                image,
                source,
                size,
                force,
            };
            cli::run_step(STAGE, |doc| {
                let mut doc = doc.unwrap_or_else(Document::new);
                let part = cloon_img::create(&req)?;
                doc.set(PART, &part);
                Ok(doc)
            })
        }
    }
}
