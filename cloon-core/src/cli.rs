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
}

impl Common {
    pub fn state(&self) -> Result<crate::state::StateDir> {
        crate::state::StateDir::new(self.state_dir.as_deref())
    }
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
    eprintln!("{stage}: error: {err}");
    print(&Document::from_error(stage, err).to_json());
    ExitCode::from(err.code.number())
}

/// Runs a step that extends (or, for `down`, trims) the document read on stdin.
pub fn run_step(stage: &str, step: impl FnOnce(Option<Document>) -> Result<Document>) -> ExitCode {
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
    match step(input) {
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
pub fn run_down(
    stage: &str,
    part: &str,
    name: Option<&str>,
    down: impl FnOnce(&str) -> Result<()>,
) -> ExitCode {
    run_step(stage, |doc| {
        let name = pick_name(name, doc.as_ref(), stage)?;
        down(&name)?;
        let mut doc = doc.unwrap_or_default();
        doc.set_name(&name)?;
        doc.remove(part);
        Ok(doc)
    })
}

/// `check`: the document passes through unchanged when what it records still exists.
pub fn run_check(
    stage: &str,
    name: Option<&str>,
    check: impl FnOnce(&str) -> Result<()>,
) -> ExitCode {
    run_step(stage, |doc| {
        let name = pick_name(name, doc.as_ref(), stage)?;
        check(&name)?;
        let mut doc = doc.unwrap_or_default();
        doc.set_name(&name)?;
        Ok(doc)
    })
}

/// `show`: prints the stage's record for the container named by `--name` or the document.
pub fn run_show<T: serde::Serialize>(
    stage: &str,
    name: Option<&str>,
    show: impl FnOnce(&str) -> Result<T>,
) -> ExitCode {
    let doc = match read_input() {
        Ok(doc) => doc,
        Err(e) => return fail(stage, &e),
    };
    run_query(stage, || show(&pick_name(name, doc.as_ref(), stage)?))
}
