//! What every tool's `main` does around its one step: read the document from stdin, pass an error
//! document through untouched, run the step, and write the document (or an error document) on
//! stdout with a matching exit status.

use crate::doc::Document;
use crate::error::{Code, Error, Result};
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags every tool accepts.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Common {
    /// Where cloon records what it created [env: CLOON_STATE_DIR] [default: /run/cloon]
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    #[command(flatten)]
    pub explain: ExplainArgs,
}

/// `--explain` and `--dry-run`, which every tool accepts (see [`crate::explain`]).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ExplainArgs {
    /// Say on stderr, before each action, the shell command that does the same
    #[arg(long, global = true)]
    pub explain: bool,
    /// Say the shell commands on stderr without doing anything
    #[arg(long, global = true)]
    pub dry_run: bool,
}

impl ExplainArgs {
    /// The mode these flags ask for.
    pub fn mode(&self) -> crate::explain::Mode {
        use crate::explain::Mode;
        match (self.dry_run, self.explain) {
            (true, _) => Mode::DryRun,
            (false, true) => Mode::Explain,
            (false, false) => Mode::Quiet,
        }
    }

    /// Puts the mode in force for the rest of the process.
    pub fn apply(&self) {
        crate::explain::set(self.mode());
    }
}

impl Common {
    pub fn state(&self) -> Result<crate::state::StateDir> {
        crate::state::StateDir::new(self.state_dir.as_deref())
    }

    /// Puts `--explain`/`--dry-run` in force, then runs a tool's `dispatch` with its state
    /// directory, or reports why there is none.
    pub fn with_state(
        &self,
        stage: &str,
        dispatch: impl FnOnce(&crate::state::StateDir) -> ExitCode,
    ) -> ExitCode {
        self.explain.apply();
        match self.state() {
            Ok(state) => dispatch(&state),
            Err(e) => fail(stage, &e),
        }
    }
}

/// `--name`, the flag of the actions on one container's record (`down`, `check`, `show`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NameArgs {
    /// The container's name [default: the document's]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

impl NameArgs {
    /// The name given, if any.
    pub fn get(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

/// Parses the command line of a tool, or exits with clap's usage error (status 2); answers
/// shell completion with `live` (see [`crate::complete`]).
pub fn parse<T: clap::Parser>(live: crate::complete::Live) -> T {
    parse_command(T::command, live)
}

/// [`parse`], for the command that `make` builds (as [`crate::stage`] builds it for a stage),
/// without the presentation of [`command`]: see [`try_parse_lazily`]. `TOOL completions SHELL`
/// and the shell's `TOOL __complete WORD...` are answered here, and the process ends.
pub fn parse_command<T: clap::FromArgMatches>(
    make: impl Fn() -> clap::Command,
    live: crate::complete::Live,
) -> T {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = crate::complete::intercept(&make, &args, live) {
        std::process::exit(code);
    }
    let (parsed, cmd) = parse_plainly(make, args);
    // The command is not needed any more, and freeing its hundreds of small allocations one by
    // one costs a quarter of the parse: the process ends soon and takes them all at once.
    std::mem::forget(cmd);
    parsed.unwrap_or_else(|e| e.exit())
}

/// [`try_parse_command`] of the command `make` builds, presented as [`command`] presents it only
/// when clap is to show the presentation: the examples and the usage are only in help texts and
/// usage errors, so a command line that parses, or `--version`, costs one plain clap parse (what
/// every start of a tool pays; the presentation would double it). Anything else is parsed again
/// with the presented command, whose error (the help, or a usage error) is returned.
pub fn try_parse_lazily<T, I, A>(
    make: impl Fn() -> clap::Command,
    args: I,
) -> std::result::Result<T, clap::Error>
where
    T: clap::FromArgMatches,
    I: IntoIterator<Item = A>,
    A: Into<std::ffi::OsString> + Clone,
{
    parse_plainly(make, args).0
}

/// [`try_parse_lazily`], and the plain command it parsed with.
fn parse_plainly<T, I, A>(
    make: impl Fn() -> clap::Command,
    args: I,
) -> (std::result::Result<T, clap::Error>, clap::Command)
where
    T: clap::FromArgMatches,
    I: IntoIterator<Item = A>,
    A: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let mut cmd = make();
    let conflicts = cmd.is_args_conflicts_with_subcommands_set();
    cmd = cmd.args_conflicts_with_subcommands(false);
    let parsed = match cmd.try_get_matches_from_mut(&args) {
        Ok(mut matches) if !(conflicts && conflicting_flag(&cmd, &matches).is_some()) => {
            T::from_arg_matches_mut(&mut matches)
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayVersion => Err(e),
        _ => try_parse_command(with_examples(make()), args),
    };
    (parsed, cmd)
}

/// The clap command of a tool as cloon presents it: each subcommand's help ends with examples,
/// taken from the tool's own examples that use the subcommand (or, for a subcommand that acts on
/// one container's record, `TOOL SUB --name Cloon1` and `TOOL SUB < Cloon1.json`). Its manual
/// pages and completions (`cargo xtask`) are made from it too.
pub fn command<T: clap::CommandFactory>() -> clap::Command {
    with_examples(T::command())
}

/// The examples of a command's help: the lines after `Examples:` (or `Example:`), each example
/// a line indented by two spaces with the lines that continue it.
fn examples(after_help: &str) -> Vec<String> {
    let mut lines = after_help.lines().skip_while(|l| {
        let t = l.trim();
        t != "Examples:" && t != "Example:"
    });
    lines.next();
    let mut out: Vec<String> = Vec::new();
    for line in lines {
        let continues =
            line.starts_with("   ") || out.last().is_some_and(|e| e.trim_end().ends_with('\\'));
        match out.last_mut() {
            Some(last) if continues => {
                last.push('\n');
                last.push_str(line);
            }
            _ if line.starts_with("  ") => out.push(line.to_string()),
            _ => {}
        }
    }
    out
}

/// Whether `example` runs `tool` with the subcommand `sub` (or, for `up`, with none of `subs`).
fn example_uses(example: &str, tool: &str, sub: &str, subs: &[String]) -> bool {
    let words: Vec<&str> = example.split_whitespace().collect();
    let after_tool: Vec<Option<&&str>> = words
        .iter()
        .enumerate()
        .filter(|(_, w)| **w == tool)
        .map(|(i, _)| words.get(i + 1))
        .collect();
    if sub == "up" {
        return !after_tool.is_empty()
            && after_tool
                .iter()
                .all(|next| next.is_none_or(|w| *w == "up" || !subs.iter().any(|s| s == *w)));
    }
    after_tool
        .iter()
        .any(|next| next.is_some_and(|w| *w == sub))
}

/// Where the examples whose header (`Examples:`) is `lines[header]` end: at the first blank line
/// followed by a line that is not indented (prose after them), else at the end.
pub fn examples_end(lines: &[&str], header: usize) -> usize {
    (header + 1..lines.len())
        .find(|&i| {
            lines[i].trim().is_empty()
                && lines
                    .get(i + 1)
                    .is_some_and(|n| !n.starts_with(' ') && !n.is_empty())
        })
        .unwrap_or(lines.len())
}

/// `after_help` with its examples last: paragraphs that follow the examples move before them.
fn examples_last(after_help: &str) -> String {
    let lines: Vec<&str> = after_help.lines().collect();
    let Some(start) = lines
        .iter()
        .position(|l| matches!(l.trim(), "Examples:" | "Example:"))
    else {
        return after_help.to_string();
    };
    let end = examples_end(&lines, start);
    if end == lines.len() {
        return after_help.to_string();
    }
    let mut out: Vec<&str> = lines[..start].to_vec();
    out.extend(&lines[end + 1..]);
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    out.push("");
    out.extend(&lines[start..end]);
    out.join("\n")
}

/// `cmd` with the examples of [`command`]: its own examples last in its help, and each
/// subcommand's help ending with the examples that use it.
pub fn with_examples(cmd: clap::Command) -> clap::Command {
    let mut cmd = crate::complete::with_subcommand(cmd);
    let tool = cmd.get_name().to_string();
    if let Some(help) = cmd.get_after_help().map(|h| h.to_string()) {
        let reordered = examples_last(&help);
        if reordered != help {
            cmd = cmd.after_help(reordered);
        }
    }
    let all = cmd
        .get_after_help()
        .map(|h| examples(&h.to_string()))
        .unwrap_or_default();
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    cmd.mut_subcommands(|sub| {
        if sub.get_after_help().is_some() {
            return sub;
        }
        let name = sub.get_name().to_string();
        let mut mine: Vec<String> = all
            .iter()
            .filter(|e| example_uses(e, &tool, &name, &subs))
            .cloned()
            .collect();
        if mine.is_empty() && sub.get_arguments().any(|a| a.get_long() == Some("name")) {
            mine = vec![
                format!("  {tool} {name} --name Cloon1"),
                format!("  {tool} {name} < Cloon1.json"),
            ];
        }
        if mine.is_empty() {
            return sub;
        }
        let label = if mine.len() == 1 {
            "Example:"
        } else {
            "Examples:"
        };
        sub.after_help(format!("{label}\n{}", mine.join("\n")))
    })
}

/// Parses `args` as [`parse`] does.
///
/// A tool whose command has `args_conflicts_with_subcommands` (the flags of `up` stand alone, not
/// before `down`) still takes the global flags (`--state-dir`) before a subcommand: clap would
/// count them as conflicting too, so the conflict is checked here, for the other flags only.
pub fn try_parse_from<T, I, A>(args: I) -> std::result::Result<T, clap::Error>
where
    T: clap::Parser,
    I: IntoIterator<Item = A>,
    A: Into<std::ffi::OsString> + Clone,
{
    try_parse_command(command::<T>(), args)
}

/// [`try_parse_from`] for the command `cmd`.
pub fn try_parse_command<T, I, A>(
    cmd: clap::Command,
    args: I,
) -> std::result::Result<T, clap::Error>
where
    T: clap::FromArgMatches,
    I: IntoIterator<Item = A>,
    A: Into<std::ffi::OsString> + Clone,
{
    let conflicts = cmd.is_args_conflicts_with_subcommands_set();
    let usage = cmd.clone().render_usage().to_string();
    let mut cmd = cmd.args_conflicts_with_subcommands(false);
    if conflicts {
        // The usage as clap writes it for a command whose flags conflict with its subcommands.
        let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage).to_string();
        cmd = cmd.override_usage(usage);
    }
    let mut matches = cmd.try_get_matches_from_mut(args)?;
    match conflicting_flag(&cmd, &matches) {
        Some((sub, arg)) if conflicts => Err(cmd.error(
            clap::error::ErrorKind::ArgumentConflict,
            format!("the subcommand '{sub}' cannot be used with '{arg}'"),
        )),
        _ => T::from_arg_matches_mut(&mut matches),
    }
}

/// The subcommand of `matches` and a flag of `cmd` given with it that is not a global one (one
/// of the flags of `up` that stand alone), if any.
fn conflicting_flag(cmd: &clap::Command, matches: &clap::ArgMatches) -> Option<(String, String)> {
    let (sub, _) = matches.subcommand()?;
    let arg = cmd.get_arguments().find(|a| {
        !a.is_global_set()
            && matches.value_source(a.get_id().as_str())
                == Some(clap::parser::ValueSource::CommandLine)
    })?;
    Some((sub.to_string(), arg.to_string()))
}

/// Reads the document on stdin; a terminal or an empty input is no document.
pub fn read_input() -> Result<Option<Document>> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(None);
    }
    let mut text = String::new();
    stdin.read_to_string(&mut text).map_err(|e| {
        Error::new(Code::Decode, "cannot read the document on standard input").details(e)
    })?;
    Document::parse(&text)
}

/// Writes `text` on stdout; a closed pipe is not worth a panic.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Reports `err`: the error document on stdout, the message on stderr, its code as exit status.
pub fn fail(stage: &str, err: &Error) -> ExitCode {
    fail_with(stage, err, None)
}

/// Reports `err` as [`fail`] does, in the document `doc` (the input the stage failed on, with the
/// name and the parts of the stages before it) when there is one.
pub fn fail_with(stage: &str, err: &Error, doc: Option<Document>) -> ExitCode {
    eprintln!("{stage}: error: {err}");
    let doc = doc.unwrap_or_default().with_error(stage, err);
    print(&doc.to_json());
    ExitCode::from(err.code.number())
}

/// Runs a step that extends (or, for `down`, trims) the document read on stdin. An error
/// document from an earlier stage is handed on untouched, and nothing is done. When the step
/// fails, its error document keeps what the input had (the name and earlier parts), with the
/// container's name `name` (the `--name` flag) added when the input had none.
pub fn run_step(stage: &str, step: impl FnOnce(Option<Document>) -> Result<Document>) -> ExitCode {
    run_named(stage, None, step)
}

/// [`run_step`], for a step whose container name may come from a flag.
pub fn run_named(
    stage: &str,
    name: Option<&str>,
    step: impl FnOnce(Option<Document>) -> Result<Document>,
) -> ExitCode {
    let input = match read_input() {
        Ok(input) => input,
        Err(e) => return fail(stage, &e),
    };
    if let Some(status) = input.as_ref().and_then(Document::error_status) {
        // An earlier stage failed: hand its error on, untouched, and do nothing.
        if let Some(doc) = &input {
            print(&doc.to_json());
        }
        return ExitCode::from(status);
    }
    finish(stage, name, input.clone(), step(input))
}

/// Prints the outcome of a step on `input`: the document, or the error document that keeps what
/// `input` had, named by `name` when it had no name.
fn finish(
    stage: &str,
    name: Option<&str>,
    input: Option<Document>,
    outcome: Result<Document>,
) -> ExitCode {
    match outcome {
        Ok(doc) => {
            print(&doc.to_json());
            ExitCode::SUCCESS
        }
        Err(e) => {
            let mut doc = input.unwrap_or_default();
            if let Some(name) = name.filter(|n| crate::name::container(n).is_ok()) {
                let _ = doc.set_name(name);
            }
            fail_with(stage, &e, Some(doc))
        }
    }
}

/// Runs a step that starts a new document without reading stdin (stdin is its input data, as
/// in `cloon-img create --from-tar -`).
pub fn run_new(stage: &str, step: impl FnOnce() -> Result<Document>) -> ExitCode {
    match step() {
        Ok(doc) => {
            print(&doc.to_json());
            ExitCode::SUCCESS
        }
        Err(e) => fail(stage, &e),
    }
}

/// Runs a command whose output is its own JSON value rather than the document (`info`, `list`,
/// `state`, `show`).
pub fn run_query<T: serde::Serialize>(stage: &str, query: impl FnOnce() -> Result<T>) -> ExitCode {
    match query() {
        Ok(value) => {
            let mut s = serde_json::to_string_pretty(&value).unwrap_or_default();
            s.push('\n');
            print(&s);
            ExitCode::SUCCESS
        }
        Err(e) => fail(stage, &e),
    }
}

/// The name to act on: `--name` wins over the document's; one of them is needed.
pub fn pick_name(flag: Option<&str>, doc: Option<&Document>, tool: &str) -> Result<String> {
    let name = match (flag, doc.and_then(Document::name)) {
        (Some(f), Some(d)) if f != d => {
            return Err(Error::config(format!(
                "--name {f} disagrees with the document's name \"{d}\": drop one of them"
            )))
        }
        (Some(f), _) => f.to_string(),
        (None, Some(d)) => d.to_string(),
        (None, None) => {
            return Err(Error::invalid(format!(
                "{tool} needs a container name: give --name NAME or a document that has one"
            )))
        }
    };
    crate::name::container(&name)?;
    Ok(name)
}

/// `down`: undoes the stage for the container named by `--name` or the document, then removes the
/// stage's part from the document. With only `--name`, the output is a document with that name.
///
/// An error document (a pipeline that failed halfway) is undone too: the stage brings down what
/// its record says it made for the document's name, and hands the document on without its part,
/// the error kept, so that the same teardown pipeline undoes every stage that had succeeded. An
/// error document without a name made nothing anyone can name: it is handed on as it is.
pub fn run_down(
    stage: &str,
    parts: &[&str],
    name: Option<&str>,
    down: impl FnOnce(&str, Option<&Document>) -> Result<()>,
) -> ExitCode {
    let input = match read_input() {
        Ok(input) => input,
        Err(e) => return fail(stage, &e),
    };
    let failed = input.as_ref().is_some_and(|d| d.error().is_some());
    if failed && name.is_none() && input.as_ref().and_then(Document::name).is_none() {
        if let Some(doc) = &input {
            print(&doc.to_json());
        }
        return ExitCode::SUCCESS;
    }
    let outcome = down_document(stage, parts, name, input.clone(), down);
    finish(
        stage,
        name,
        input.map(|d| without_error(d, failed)),
        outcome,
    )
}

/// `doc` without its error object when it had one (`failed`): a failure of `down` on an error
/// document reports its own error.
fn without_error(mut doc: Document, failed: bool) -> Document {
    if failed {
        doc.remove("error");
    }
    doc
}

fn down_document(
    stage: &str,
    parts: &[&str],
    name: Option<&str>,
    doc: Option<Document>,
    down: impl FnOnce(&str, Option<&Document>) -> Result<()>,
) -> Result<Document> {
    let name = pick_name(name, doc.as_ref(), stage)?;
    down(&name, doc.as_ref())?;
    let mut doc = doc.unwrap_or_default();
    doc.set_name(&name)?;
    for part in parts {
        doc.remove(part);
    }
    Ok(doc)
}

/// `check` of the document `doc` for the container `name` (or the document's): `check` compares
/// what the stage made with its record and returns the stage's part as recorded. The document
/// passes through unchanged when its part, if it has one, is the recorded one (else a
/// [`Code::Drift`] error); with only `--name`, the output is a document with that name.
pub fn check_document<P>(
    stage: &str,
    part: &str,
    name: Option<&str>,
    doc: Option<Document>,
    check: impl FnOnce(&str) -> Result<P>,
) -> Result<Document>
where
    P: serde::Serialize + serde::de::DeserializeOwned + PartialEq,
{
    let name = pick_name(name, doc.as_ref(), stage)?;
    let recorded = check(&name)?;
    let mut doc = doc.unwrap_or_default();
    if let Some(given) = doc.get::<P>(part)? {
        if given != recorded {
            let json = |p: &P| serde_json::to_string(p).unwrap_or_default();
            return Err(Error::new(
                Code::Drift,
                format!(
                    "the document's {part} part is not the one {stage} recorded for \"{name}\""
                ),
            )
            .details(format!(
                "document: {}; record: {}",
                json(&given),
                json(&recorded)
            )));
        }
    }
    doc.set_name(&name)?;
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::Bundle;
    use std::path::Path;

    #[derive(Debug, clap::Parser)]
    #[command(name = "t", args_conflicts_with_subcommands = true)]
    struct Cli {
        #[command(subcommand)]
        cmd: Option<Cmd>,
        #[arg(long)]
        image: Option<String>,
        #[command(flatten)]
        common: Common,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Cmd {
        Down(NameArgs),
    }

    fn parse(args: &[&str]) -> std::result::Result<Cli, clap::Error> {
        try_parse_from(std::iter::once("t").chain(args.iter().copied()))
    }

    #[test]
    fn global_flags_may_come_before_a_subcommand() {
        for args in [
            &["--state-dir", "/s", "down", "--name", "A"][..],
            &["down", "--state-dir", "/s", "--name", "A"],
            &["down", "--name", "A", "--state-dir=/s"],
        ] {
            let cli = parse(args).unwrap();
            assert_eq!(
                cli.common.state_dir.as_deref(),
                Some(Path::new("/s")),
                "{args:?}"
            );
            assert!(
                matches!(cli.cmd, Some(Cmd::Down(ref n)) if n.get() == Some("A")),
                "{args:?}"
            );
        }
        let cli = parse(&["--image", "i", "--state-dir", "/s"]).unwrap();
        assert!(cli.cmd.is_none());
        assert_eq!(cli.image.as_deref(), Some("i"));
    }

    #[test]
    fn other_flags_still_conflict_with_a_subcommand() {
        let e = parse(&["--image", "i", "down"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
        assert!(
            e.to_string()
                .contains("'down' cannot be used with '--image"),
            "{e}"
        );
        let e = parse(&["--state-dir", "/s", "--image", "i", "down"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
        let e = parse(&["down", "--image", "i"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
    }

    #[test]
    fn subcommands_get_the_examples_that_use_them() {
        let help = "Some text.\n\nExamples:\n  t --image i | t2\n  t down --name A\n  t down < a.json \\\n    | t2 down\n  t check < a.json   # a note";
        let ex = examples(help);
        assert_eq!(ex.len(), 4, "{ex:?}");
        assert_eq!(ex[2], "  t down < a.json \\\n    | t2 down");
        let subs: Vec<String> = ["up", "down", "check", "show"].map(String::from).into();
        assert!(example_uses(&ex[0], "t", "up", &subs));
        assert!(!example_uses(&ex[1], "t", "up", &subs));
        assert!(example_uses(&ex[2], "t", "down", &subs));
        assert!(!example_uses(&ex[2], "t", "check", &subs));
        let cmd = command::<Cli>();
        let down = cmd.find_subcommand("down").unwrap();
        let text = down.get_after_help().unwrap().to_string();
        assert_eq!(
            text,
            "Examples:\n  t down --name Cloon1\n  t down < Cloon1.json"
        );
    }

    #[test]
    fn lazy_parsing_shows_what_the_presented_command_shows() {
        use clap::CommandFactory;
        let lazily = |args: &[&str]| {
            try_parse_lazily::<Cli, _, _>(Cli::command, std::iter::once("t").chain(args.to_vec()))
        };
        let cli = lazily(&["--image", "i", "--state-dir", "/s"]).unwrap();
        assert_eq!(cli.image.as_deref(), Some("i"));
        let cli = lazily(&["--state-dir", "/s", "down", "--name", "A"]).unwrap();
        assert!(matches!(cli.cmd, Some(Cmd::Down(ref n)) if n.get() == Some("A")));
        for args in [
            &["down", "--help"][..],
            &["--help"],
            &["--image", "i", "down"],
            &["down", "--image", "i"],
            &["--bogus"],
        ] {
            let lazy = lazily(args).unwrap_err();
            let presented = parse(args).unwrap_err();
            assert_eq!(lazy.kind(), presented.kind(), "{args:?}");
            assert_eq!(lazy.to_string(), presented.to_string(), "{args:?}");
        }
        let help = lazily(&["down", "--help"]).unwrap_err().to_string();
        assert!(help.contains("t down --name Cloon1"), "{help}");
        #[derive(Debug, clap::Parser)]
        #[command(name = "v", version = "1.2")]
        struct V {}
        let version = try_parse_lazily::<V, _, _>(V::command, ["v", "--version"]).unwrap_err();
        assert_eq!(version.kind(), clap::error::ErrorKind::DisplayVersion);
        assert_eq!(version.to_string(), "v 1.2\n");
    }

    #[test]
    fn examples_move_to_the_end_of_the_help() {
        let help = "Intro.\n\nExamples:\n  t a\n  t b \\\n    c\n\nA last note,\non two lines.";
        assert_eq!(
            examples_last(help),
            "Intro.\n\nA last note,\non two lines.\n\nExamples:\n  t a\n  t b \\\n    c"
        );
        let done = "Intro.\n\nExamples:\n  t a";
        assert_eq!(examples_last(done), done);
        assert_eq!(examples_last("no examples"), "no examples");
    }

    fn bundle(path: &str) -> Bundle {
        Bundle {
            path: path.into(),
            config: format!("{path}/config.json"),
        }
    }

    fn doc_with_bundle(name: &str, path: &str) -> Document {
        let mut doc = Document::new();
        doc.set_name(name).unwrap();
        doc.set("mine", &1);
        doc.set("bundle", &bundle(path));
        doc
    }

    #[test]
    fn names_come_from_the_flag_or_the_document() {
        let doc = doc_with_bundle("A", "/b");
        assert_eq!(pick_name(None, Some(&doc), "t").unwrap(), "A");
        assert_eq!(pick_name(Some("A"), Some(&doc), "t").unwrap(), "A");
        assert_eq!(pick_name(Some("B"), None, "t").unwrap(), "B");
        let e = pick_name(Some("B"), Some(&doc), "t").unwrap_err();
        assert_eq!(e.code, Code::InvalidConfig);
        assert_eq!(
            pick_name(None, None, "t").unwrap_err().code,
            Code::InvalidArgument
        );
        assert_eq!(
            pick_name(Some("../x"), None, "t").unwrap_err().code,
            Code::InvalidArgument
        );
    }

    #[test]
    fn down_removes_only_its_part() {
        let out = down_document(
            "t",
            &["bundle"],
            None,
            Some(doc_with_bundle("A", "/b")),
            |n, doc| {
                assert_eq!(n, "A");
                assert!(doc.is_some_and(|d| d.part::<Bundle>().is_ok_and(|b| b.is_some())));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(out.get::<Bundle>("bundle").unwrap(), None);
        assert_eq!(out.get::<i32>("mine").unwrap(), Some(1));
        let out = down_document("t", &["bundle"], Some("A"), None, |_, _| Ok(())).unwrap();
        assert_eq!(
            out.to_json(),
            "{\n  \"cloonVersion\": \"1\",\n  \"name\": \"A\"\n}\n"
        );
    }

    #[test]
    fn check_passes_the_document_through_or_reports_drift() {
        let doc = doc_with_bundle("A", "/b");
        let out = check_document("t", "bundle", None, Some(doc.clone()), |_| Ok(bundle("/b")));
        assert_eq!(out.unwrap(), doc);
        let out = check_document("t", "bundle", None, Some(doc), |_| Ok(bundle("/c")));
        assert_eq!(out.unwrap_err().code, Code::Drift);
        let out = check_document("t", "bundle", Some("A"), None, |_| Ok(bundle("/c"))).unwrap();
        assert_eq!(
            out.to_json(),
            "{\n  \"cloonVersion\": \"1\",\n  \"name\": \"A\"\n}\n"
        );
        let err = Error::new(Code::Unknown, "none");
        let out = check_document("t", "bundle", Some("A"), None, |_| Err::<Bundle, _>(err));
        assert_eq!(out.unwrap_err().code, Code::Unknown);
    }
}
