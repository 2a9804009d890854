//! `cargo xtask`: what is made from cloon's sources rather than shipped in the tools, so that the
//! tools' binaries carry none of it (clap_mangen, schemars).
//!
//! ```sh
//! cargo xtask man DIR                  # DIR/cloon-img.1, DIR/cloon-img-create.1, ... every tool
//! cargo xtask completions bash DIR     # DIR/cloon-img, ...; zsh: DIR/_cloon-img; fish: DIR/cloon-img.fish
//! cargo xtask schema > schema/cloon-document.schema.json
//! ```
//!
//! The pages come from each tool's own clap command, as its `--help` shows it
//! (with the examples [`cloon_core::cli::with_examples`] adds), taken from the tool's library.

mod generate;

use clap::{Parser, Subcommand};
use cloon_core::complete::Shell;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    about = "Make cloon's manual pages, shell completions and document schema from its sources"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Write a manual page per tool and per subcommand in DIR (TOOL.1, TOOL-SUB.1)
    Man {
        /// The directory to write the pages in (made if missing)
        dir: PathBuf,
    },
    /// Write each tool's completion script for SHELL in DIR (what `TOOL completions SHELL`
    /// prints), under the name the shell looks for (bash: TOOL, zsh: _TOOL, fish: TOOL.fish)
    Completions {
        /// The shell
        shell: Shell,
        /// The directory to write the files in (made if missing)
        dir: PathBuf,
    },
    /// Print the document's JSON Schema (schema/cloon-document.schema.json holds it)
    Schema,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.task {
        Task::Man { dir } => generate::tools()
            .into_iter()
            .try_for_each(|cmd| generate::man(cmd, dir).map(drop)),
        Task::Completions { shell, dir } => generate::tools()
            .into_iter()
            .try_for_each(|cmd| generate::completions(*shell, &cmd, dir).map(drop)),
        Task::Schema => {
            print!("{}", cloon_core::doc::schema_text());
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
