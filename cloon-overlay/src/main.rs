//! cloon-overlay: attach the image read-only and mount a copy-on-write root filesystem over it.

use clap::{Args, Parser, Subcommand};
use cloon_core::doc::Image;
use cloon_core::{cli, Document, Error};
use std::path::PathBuf;
use std::process::ExitCode;

const STAGE: &str = "cloon-overlay";

#[derive(Parser, Debug)]
#[command(
    version,
    args_conflicts_with_subcommands = true,
    about = "Attach an image read-only and mount a copy-on-write overlay over it (step 2 of the article)",
    after_help = "Examples:\n  cloon-img create --busybox bb.img | cloon-overlay --name Cloon1\n  cloon-overlay --image bb.img --name Cloon1 </dev/null\n  cloon-overlay down --name Cloon1\n  cloon-overlay check < Cloon1.json"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    up: Up,
    #[command(flatten)]
    common: cli::Common,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Attach and mount (the default action)
    Up(Up),
    /// Unmount, detach and remove the upper layer
    Down(Named),
    /// Check that the mounts and the loop device are still as recorded
    Check(Named),
    /// Print the record
    Show(Named),
}

#[derive(Args, Debug, Default)]
struct Up {
    /// The ext4 image [default: the document's image.path]
    #[arg(long)]
    image: Option<PathBuf>,
    #[command(flatten)]
    named: Named,
}

#[derive(Args, Debug, Default)]
struct Named {
    /// The container's name [default: the document's name]
    #[arg(long)]
    name: Option<String>,
}

fn main() -> ExitCode {
    let args = Cli::parse();
    let state = match args.common.state() {
        Ok(s) => s,
        Err(e) => return cli::fail(STAGE, &e),
    };
    match args.cmd.unwrap_or(Cmd::Up(args.up)) {
        Cmd::Up(up) => cli::run_step(STAGE, |doc| {
            let mut doc = doc.unwrap_or_else(Document::new);
            let name = cli::pick_name(up.named.name.as_deref(), Some(&doc), STAGE)?;
            let image = match up.image {
                Some(p) => p,
                None => doc
                    .get::<Image>("image")?
                    .map(|i| PathBuf::from(i.path))
                    .ok_or_else(|| {
                        Error::invalid("no image: give --image IMG or the output of cloon-img")
                    })?,
            };
            doc.set_name(&name)?;
            let part = cloon_overlay::up(&state, &name, &image)?;
            doc.set(cloon_overlay::PART, &part);
            Ok(doc)
        }),
        Cmd::Down(n) => cli::run_down(STAGE, cloon_overlay::PART, n.name.as_deref(), |name| {
            cloon_overlay::down(&state, name)
        }),
        Cmd::Check(n) => cli::run_check(STAGE, n.name.as_deref(), |name| {
            cloon_overlay::check(&state, name).map(drop)
        }),
        Cmd::Show(n) => cli::run_show(STAGE, n.name.as_deref(), |name| {
            cloon_overlay::show(&state, name)
        }),
    }
}
