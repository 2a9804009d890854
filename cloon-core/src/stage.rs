//! The stage skeleton: what every tool of the pipeline does around its one step, written once.
//!
//! In the spirit of CNI's `skel.PluginMain(add, check, del)`, a tool implements [`Stage`] (its
//! `up`, its `down` under the container's lock, its `check`, and how `gc` judges one of its
//! records) and its `main` is one call, [`main`]. The skeleton provides the rest: the command line
//! (`up` as the default action, `down`, `check`, `show`, `gc`, the tool's own verbs), standard
//! input and output, error documents that keep the name and the earlier parts, `down --name`, the
//! drift check, the pass of `gc` over the records, `--explain`/`--dry-run`, and the exit status.
//!
//! A stage's source then holds its step of the article and nothing else:
//!
//! ```text
//! cloon-spec/src/
//!   main.rs      fn main() -> ExitCode { cloon_core::stage::main::<cloon_spec::stage::Spec>() }
//!   stage.rs     impl Stage for Spec: its texts, and UP, DOWN, CHECK, JUDGE (its step's functions)
//!   lib.rs       the step: up, down_locked, check, the record
//!   gc.rs        how gc judges a record, and what it removes beyond the records
//!   spec.rs bundle.rs command.rs    what the step makes
//! ```

use crate::cli::{self, Common, NameArgs};
use crate::doc::{self, Document};
use crate::error::Result;
use crate::explain;
use crate::gc::{self, Report};
use crate::state::StateDir;
use crate::table;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::process::ExitCode;

/// What `gc` makes of one record of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Kept, and why: what the record names is whole, or still in use.
    Keep(String),
    /// Brought down by the stage's `down`, and why: what the record names is partly gone (a
    /// tool killed halfway, an object removed by hand), or the record is stale.
    Down(String),
}

/// One step of the pipeline, as a tool implements it.
pub trait Stage: Sized {
    /// The tool's name, as error documents and messages give it (`cloon-overlay`).
    const TOOL: &'static str;
    /// The name of the stage's record in a container's state directory (`overlay` for
    /// `overlay.json`).
    const RECORD: &'static str;
    /// What the stage makes, in messages (`overlay`, `bundle`, `container`).
    const WHAT: &'static str;
    /// The kind of a record's item in `gc`'s report.
    const KIND: &'static str = Self::WHAT;
    /// Other parts of the document the stage owns (and `down` removes), beside its
    /// [`Stage::Part`].
    const OTHER_PARTS: &'static [&'static str] = &[];

    /// The flags of `up`.
    type Up: clap::Args + Debug;
    /// The flags of `down` beyond `--name` ([`NoFlags`] for none).
    type Down: clap::Args + Debug + Default;
    /// The tool's own subcommands beyond up, down, check, show and gc ([`NoVerbs`] for none).
    type Verbs: clap::Subcommand + Debug;
    /// The stage's part of the document (whose type names its key).
    type Part: doc::Part + PartialEq;
    /// The stage's record.
    type Record: Serialize + DeserializeOwned;

    /// The tool's one-line description.
    const ABOUT: &'static str;
    /// The text after the options in `--help`, its examples last.
    const AFTER_HELP: &'static str;
    /// The text after the options in `gc --help`.
    const GC_HELP: &'static str;
    /// The one-line descriptions of the subcommands, where the skeleton's do not fit the stage.
    const ABOUTS: &'static [(&'static str, &'static str)] = &[];

    /// The container name `--name` gives `up`, if any: the skeleton puts it in an error document.
    const UP_NAME: fn(&Self::Up) -> Option<&str>;
    /// `up`: does the step for the document (none when stdin had none) and returns it with the
    /// stage's part; all or nothing.
    const UP: fn(&StateDir, &Self::Up, Option<Document>) -> Result<Document>;
    /// `down` of the container `name`, whose state directory exists and whose lock the caller
    /// holds (or in a dry run): undoes what the records say the stage made, removes them.
    const DOWN: fn(&StateDir, &str, &Self::Down) -> Result<()>;
    /// `check`: compares what the stage made for a container with its record; returns the part
    /// as recorded, or a [`crate::Code::Drift`] error listing the differences.
    const CHECK: fn(&StateDir, &str) -> Result<Self::Part>;
    /// How `gc` judges one record of the stage.
    const JUDGE: fn(&StateDir, &str, &Self::Record) -> Result<Verdict>;

    /// The command line: clap's, with the stage's name, description and help texts.
    fn command(cmd: clap::Command) -> clap::Command {
        let mut cmd = cmd
            .name(Self::TOOL)
            .about(Self::ABOUT)
            .after_help(Self::AFTER_HELP)
            .mut_subcommand("gc", |c| c.after_help(Self::GC_HELP));
        for (sub, about) in Self::ABOUTS {
            cmd = cmd.mut_subcommand(*sub, |c| c.about(*about));
        }
        cmd
    }

    /// What `gc` checks before it starts (root, where it acts).
    fn gc_start(_state: &StateDir) -> Result<()> {
        Ok(())
    }

    /// `check` of the document `doc` for the container `--name` names (or the document's): by
    /// default [`Stage::check`], then the document's part (if any) compared with the record's.
    fn check_document(
        state: &StateDir,
        name: Option<&str>,
        doc: Option<Document>,
    ) -> Result<Document> {
        cli::check_document(Self::TOOL, <Self::Part as doc::Part>::KEY, name, doc, |n| {
            (Self::CHECK)(state, n)
        })
    }

    /// What `show` prints for `name`: by default its record.
    fn show(state: &StateDir, name: &str) -> Result<serde_json::Value> {
        let record = record::<Self>(state, name)?;
        Ok(serde_json::to_value(record).unwrap_or_default())
    }

    /// What `gc` removes in the state directory of `name`, which has no record of this stage and
    /// whose lock is held (or in a dry run): objects of the stage that no record names.
    fn strays(_state: &StateDir, _name: &str, _report: &mut Report) -> Result<()> {
        Ok(())
    }

    /// Whether the state directory of `name` holds something of this stage without a record
    /// (then [`Stage::strays`] is called under its lock).
    fn has_strays(_state: &StateDir, _name: &str) -> Result<bool> {
        Ok(false)
    }

    /// The passes of `gc` beyond the records: kernel objects that cloon tagged as its own and
    /// that no record explains.
    fn gc_more(_state: &StateDir, _report: &mut Report) -> Result<()> {
        Ok(())
    }

    /// `down --dry-run` (or `--explain`) of a container that has no record of this stage, whose
    /// document has the stage's `part` (a document made by a `--dry-run` pipeline, whose steps a
    /// script did): says the shell commands that undo what the part describes, computing at run
    /// time what only the system knows (a loop device), and does nothing. The removal of the
    /// record is said after them, by [`down_document`].
    fn down_unrecorded(
        state: &StateDir,
        name: &str,
        part: &Self::Part,
        flags: &Self::Down,
    ) -> Result<()>;

    /// `down --all`: brings down each of `names` (every name with a record of the stage), each
    /// under its lock, one after the other. A stage may do part of the work for all at once
    /// (cloon-netns deletes their host interfaces in one kernel request).
    fn down_all(state: &StateDir, names: &[String], flags: &Self::Down) -> Result<()> {
        for name in names {
            down::<Self>(state, name, flags)?;
        }
        Ok(())
    }

    /// The tool's own subcommands.
    fn verb(_state: &StateDir, verb: Self::Verbs) -> ExitCode {
        unreachable!("{verb:?}: a tool with verbs of its own runs them")
    }
}

/// No flags beyond `--name`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NoFlags {}

/// No subcommands beyond up, down, check, show and gc.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum NoVerbs {}

/// The flags of `show`: `--name`, and `--json` or `--table`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub name: NameArgs,
    #[command(flatten)]
    pub output: table::Output,
}

/// The command line of a stage.
#[derive(Debug, clap::Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
pub struct Cli<U: clap::Args, D: clap::Args, V: clap::Subcommand> {
    /// The subcommand; none is `up`.
    #[command(subcommand)]
    pub cmd: Option<Cmd<U, D, V>>,
    /// The flags of `up`, which stand alone.
    #[command(flatten)]
    pub up: U,
    /// The flags every command takes.
    #[command(flatten)]
    pub common: Common,
}

/// The subcommands every stage has, then its own.
#[derive(Debug, clap::Subcommand)]
pub enum Cmd<U: clap::Args, D: clap::Args, V: clap::Subcommand> {
    /// Do the step and add its part to the document (the default action)
    Up(U),
    /// Undo the step and remove its part from the document
    Down {
        #[command(flatten)]
        name: NameArgs,
        /// Every container this tool recorded in the state directory, instead of one: no
        /// document is read, and the names brought down are printed as JSON
        #[arg(long, conflicts_with = "name")]
        all: bool,
        #[command(flatten)]
        flags: D,
    },
    /// Check that what the step made is still as recorded
    Check(NameArgs),
    /// Print the record: KEY VALUE lines when stdout is a terminal, else JSON (so a pipe gets
    /// JSON)
    Show(ShowArgs),
    /// Remove what this tool left behind (tools killed halfway, lost records), found by its
    /// records and tags only; print a JSON report of what was found, removed and kept
    Gc,
    #[command(flatten)]
    Verb(V),
}

/// The clap command of stage `S`, as its `--help` shows it (with [`cli::with_examples`]); its
/// manual pages and completions (`cargo xtask`) are made from it too.
pub fn command<S: Stage>() -> clap::Command {
    cli::with_examples(plain_command::<S>())
}

/// The clap command of stage `S` without the examples, which [`cli::parse_command`] adds only
/// when it shows a help.
fn plain_command<S: Stage>() -> clap::Command {
    use clap::CommandFactory;
    S::command(Cli::<S::Up, S::Down, S::Verbs>::command())
}

/// A stage's `main`: parses the command line and runs the command.
pub fn main<S: Stage>() -> ExitCode {
    let cli: Cli<S::Up, S::Down, S::Verbs> = cli::parse_command(plain_command::<S>, live::<S>);
    let cmd = cli.cmd.unwrap_or(Cmd::Up(cli.up));
    cli.common.with_state(S::TOOL, |state| run::<S>(state, cmd))
}

/// The live values of stage `S`'s command line: the containers it recorded in the state
/// directory (the one typed with `--state-dir`, else the default) for a `NAME` that names an
/// existing one (`down --name`, `check --name`, `show --name`, and a verb's `NAME` argument such
/// as `cloon-run exec NAME`), not for a new name (`up --name`, `cloon-netns link --name`).
pub fn live<S: Stage>(request: &crate::complete::Request) -> Option<crate::complete::Reply> {
    let existing = matches!(request.subcommand(), Some("down" | "check" | "show"))
        || (request.arg.is_positional() && request.subcommand().is_some());
    if request.id() != "name" || !existing {
        return None;
    }
    let state = StateDir::new(request.path_option("state_dir").as_deref()).ok()?;
    recorded::<S>(&state)
        .ok()
        .map(crate::complete::Reply::Words)
}

/// Runs one command of stage `S` on `state`.
pub fn run<S: Stage>(state: &StateDir, cmd: Cmd<S::Up, S::Down, S::Verbs>) -> ExitCode {
    match cmd {
        Cmd::Up(args) => cli::run_named(S::TOOL, (S::UP_NAME)(&args), |doc| {
            (S::UP)(state, &args, doc)
        }),
        Cmd::Down {
            all: true, flags, ..
        } => cli::run_query(S::TOOL, || {
            let names = recorded::<S>(state)?;
            S::down_all(state, &names, &flags)?;
            Ok(serde_json::json!({"stateDir": state.root(), "down": names}))
        }),
        Cmd::Down { name, flags, .. } => {
            let parts: Vec<&str> = std::iter::once(<S::Part as doc::Part>::KEY)
                .chain(S::OTHER_PARTS.iter().copied())
                .collect();
            cli::run_down(S::TOOL, &parts, name.get(), |n, doc| {
                down_document::<S>(state, n, doc, &flags)
            })
        }
        Cmd::Check(n) => cli::run_step(S::TOOL, |doc| S::check_document(state, n.get(), doc)),
        Cmd::Show(ShowArgs { name, output }) => {
            let doc = match cli::read_input() {
                Ok(doc) => doc,
                Err(e) => return cli::fail(S::TOOL, &e),
            };
            let query = || S::show(state, &cli::pick_name(name.get(), doc.as_ref(), S::TOOL)?);
            table::run(S::TOOL, output, query, table::record)
        }
        Cmd::Gc => gc::run(S::TOOL, || collect::<S>(state)),
        Cmd::Verb(v) => S::verb(state, v),
    }
}

/// The names with a record of stage `S` (its own or one of [`Stage::OTHER_PARTS`]), sorted.
pub fn recorded<S: Stage>(state: &StateDir) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for name in state.names()? {
        if recorded_for::<S>(state, &name)? {
            names.push(name);
        }
    }
    Ok(names)
}

/// `down` of the container `name`: [`Stage::DOWN`] under the lock of its state directory,
/// so that it waits for an `up` or `down` of that name still at work; nothing to undo when the
/// container has no state directory.
pub fn down<S: Stage>(state: &StateDir, name: &str, flags: &S::Down) -> Result<()> {
    if state
        .with_lock(name, || (S::DOWN)(state, name, flags))?
        .is_none()
    {
        explain::note(&format!(
            "cloon has no {} for \"{name}\": nothing to undo",
            S::WHAT
        ));
    }
    Ok(())
}

/// `down` of the container `name` with the document `doc` from stdin: when explaining (`--explain`,
/// `--dry-run`) and the document has the stage's part but no record of the stage exists for the
/// name, [`Stage::down_unrecorded`] says the commands that undo the part (and nothing is done);
/// otherwise [`down`].
pub fn down_document<S: Stage>(
    state: &StateDir,
    name: &str,
    doc: Option<&Document>,
    flags: &S::Down,
) -> Result<()> {
    if explain::mode() != explain::Mode::Quiet {
        let part = match doc {
            Some(doc) => doc.part::<S::Part>()?,
            None => None,
        };
        if let Some(part) = part {
            if !recorded_for::<S>(state, name)? {
                explain::note(&format!(
                    "cloon has no record of this {} for \"{name}\": it does nothing; the \
                     commands that undo the document's {}:",
                    S::WHAT,
                    <S::Part as doc::Part>::KEY
                ));
                S::down_unrecorded(state, name, &part, flags)?;
                explain::say_release(state, name, S::RECORD)?;
                return Ok(());
            }
        }
    }
    down::<S>(state, name, flags)
}

/// Whether `name` has a record of stage `S` (its own or one of [`Stage::OTHER_PARTS`]).
fn recorded_for<S: Stage>(state: &StateDir, name: &str) -> Result<bool> {
    for record in std::iter::once(S::RECORD).chain(S::OTHER_PARTS.iter().copied()) {
        if state.has_record(name, record)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The record of `name` (what `show` prints), or [`crate::Code::Unknown`].
pub fn record<S: Stage>(state: &StateDir, name: &str) -> Result<S::Record> {
    state.require(name, S::RECORD, S::WHAT)
}

/// `gc` of stage `S`: every record judged (those a running tool holds locked are kept), those
/// partly gone brought down by the stage's own `down`; the stage's strays in directories without
/// its record; its own passes; then the empty state directories.
pub fn collect<S: Stage>(state: &StateDir) -> Result<Report> {
    S::gc_start(state)?;
    let mut report = Report::new(state);
    for name in state.names()? {
        // A directory cloon would not have made (open to others, a link) is not ours: kept.
        let recorded = match state.has_record(&name, S::RECORD) {
            Ok(recorded) => recorded,
            Err(e) => {
                report.keep(S::KIND, &name, format!("not cloon's: {}", e.msg));
                continue;
            }
        };
        if !recorded && !S::has_strays(state, &name)? {
            continue;
        }
        let _lock = if explain::acting() {
            match state.try_lock(&name)? {
                Some(lock) => Some(lock),
                None => {
                    report.keep(S::KIND, &name, "in use: a tool is at work on it");
                    continue;
                }
            }
        } else {
            None
        };
        match state.load::<S::Record>(&name, S::RECORD) {
            Err(e) => report.failed(S::KIND, &name, e),
            Ok(None) => S::strays(state, &name, &mut report)?,
            Ok(Some(rec)) => match (S::JUDGE)(state, &name, &rec) {
                Err(e) => report.failed(S::KIND, &name, e),
                Ok(Verdict::Keep(why)) => report.keep(S::KIND, &name, why),
                Ok(Verdict::Down(why)) => {
                    let outcome =
                        (S::DOWN)(state, &name, &S::Down::default()).map(|()| explain::acting());
                    report.found(S::KIND, &name, why, outcome);
                }
            },
        }
    }
    S::gc_more(state, &mut report)?;
    gc::empty_dirs(state, &mut report)?;
    Ok(report)
}
