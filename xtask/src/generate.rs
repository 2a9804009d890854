//! Manual pages and shell completions from the clap commands of the tools, and the tools' commands
//! themselves, each as the tool's library builds it.

use cloon_core::complete::Shell;
use std::io::{Error, Result};
use std::path::{Path, PathBuf};

/// The clap command of each tool that `scripts/install` installs, as its `--help` shows it.
pub fn tools() -> Vec<clap::Command> {
    use cloon_core::stage::command;
    vec![
        cloon_img::cli::command(),
        command::<cloon_overlay::stage::Overlay>(),
        command::<cloon_netns::stage::Net>(),
        command::<cloon_spec::stage::Spec>(),
        command::<cloon_run::stage::Run>(),
        cloon_core::cli::command::<cloon_lab::cli::Cli>(),
    ]
}

/// Writes the completion script of `cmd`'s tool for `shell` in `dir`, under the name the shell
/// looks for (the script `TOOL completions SHELL` prints); the file written.
pub fn completions(shell: Shell, cmd: &clap::Command, dir: &Path) -> Result<PathBuf> {
    let tool = cmd.get_name();
    std::fs::create_dir_all(dir).map_err(|e| at(dir, e))?;
    let path = dir.join(shell.file_name(tool));
    std::fs::write(&path, cloon_core::complete::script(shell, tool)).map_err(|e| at(&path, e))?;
    Ok(path)
}

/// Writes the manual page of `cmd`, `DIR/TOOL.1`, and one per visible subcommand,
/// `DIR/TOOL-SUB.1`; the files written.
pub fn man(mut cmd: clap::Command, dir: &Path) -> Result<Vec<PathBuf>> {
    let tool = cmd.get_name().to_string();
    std::fs::create_dir_all(dir).map_err(|e| at(dir, e))?;
    cmd.build();
    let mut written = Vec::new();
    write_pages(&cmd, &tool, &tool, dir, &mut written)?;
    Ok(written)
}

/// The page of `cmd` (a command of `tool`) named `name`, then those of its visible subcommands,
/// `NAME-SUB`.
fn write_pages(
    cmd: &clap::Command,
    tool: &str,
    name: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<()> {
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page(cmd, tool, name)?).map_err(|e| at(&path, e))?;
    written.push(path);
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let sub_name = format!("{name}-{}", sub.get_name());
        write_pages(sub, tool, &sub_name, dir, written)?;
    }
    Ok(())
}

/// The manual page of `cmd`, a command of `tool`, named `name`: clap_mangen's NAME, SYNOPSIS,
/// DESCRIPTION (with the prose of the after-help), OPTIONS and SUBCOMMANDS, then EXIT STATUS,
/// ENVIRONMENT, FILES, EXAMPLES (verbatim, as `--help` shows them) and SEE ALSO.
pub fn page(cmd: &clap::Command, tool: &str, name: &str) -> Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd.clone().name(name.to_string()));
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    // No hyphenation anywhere: the prose is full of flags, paths and commands.
    out.extend_from_slice(b".nh\n");
    // Each render of clap_mangen starts with the same preamble (the apostrophe string): once is
    // enough.
    let text = String::from_utf8_lossy(&out).into_owned();
    let preamble = text[..text.find(".TH").unwrap_or(0)].to_string();
    let section = |out: &mut Vec<u8>, render: &dyn Fn(&mut Vec<u8>) -> Result<()>| {
        let mut bytes = Vec::new();
        render(&mut bytes)?;
        let bytes = bytes.strip_prefix(preamble.as_bytes()).unwrap_or(&bytes);
        out.extend_from_slice(bytes);
        Result::Ok(())
    };
    section(&mut out, &|w| man.render_name_section(w))?;
    section(&mut out, &|w| man.render_synopsis_section(w))?;
    section(&mut out, &|w| man.render_description_section(w))?;
    let after = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let (prose, examples) = split_after_help(&after);
    let mut roff = String::new();
    prose_paragraphs(&mut roff, &prose);
    out.extend_from_slice(roff.as_bytes());
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        section(&mut out, &|w| man.render_options_section(w))?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        section(&mut out, &|w| man.render_subcommands_section(w))?;
    }
    let mut roff = String::new();
    exit_status(&mut roff, name);
    environment(&mut roff, tool);
    files(&mut roff, tool);
    if !examples.is_empty() {
        roff.push_str(".SH EXAMPLES\n.nf\n.nh\n");
        for line in &examples {
            if line.trim().is_empty() {
                roff.push_str(".sp\n");
            } else {
                roff.push_str(&escape(line));
                roff.push('\n');
            }
        }
        roff.push_str(".fi\n");
    }
    see_also(&mut roff, tool, name);
    out.extend_from_slice(roff.as_bytes());
    Ok(out)
}

/// The after-help `text` split into its prose and its examples: the lines after the last
/// `Examples:` (or `Example:`), which [`cloon_core::cli::command`] puts last, without the
/// two-space indent every example line of `--help` has.
pub fn split_after_help(text: &str) -> (String, Vec<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let Some(header) = lines
        .iter()
        .rposition(|l| matches!(l.trim(), "Examples:" | "Example:"))
    else {
        return (text.to_string(), Vec::new());
    };
    // Prose after the examples (a subcommand's own help may have some) goes with the prose
    // before them.
    let end = cloon_core::cli::examples_end(&lines, header);
    let mut examples: Vec<String> = lines[header + 1..end]
        .iter()
        .map(|l| l.strip_prefix("  ").unwrap_or(l).trim_end().to_string())
        .collect();
    while examples.last().is_some_and(|l| l.is_empty()) {
        examples.pop();
    }
    while examples.first().is_some_and(|l| l.is_empty()) {
        examples.remove(0);
    }
    let mut prose: Vec<&str> = lines[..header].to_vec();
    if end < lines.len() {
        prose.push("");
        prose.extend(&lines[end + 1..]);
    }
    (prose.join("\n"), examples)
}

/// `text` as roff text: a backslash as `\e`, the characters groff would typeset otherwise (`-`,
/// quotes, `^`, `~`) as their ASCII glyphs, and a line that starts with `.` or `'` (a control
/// line to roff) behind `\&`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    if text.starts_with(['.', '\'']) {
        out.push_str(r"\&");
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str(r"\e"),
            '-' => out.push_str(r"\-"),
            '\'' => out.push_str(r"\(aq"),
            '`' => out.push_str(r"\(ga"),
            '^' => out.push_str(r"\(ha"),
            '~' => out.push_str(r"\(ti"),
            c => out.push(c),
        }
    }
    out
}

/// The paragraphs of `prose` (separated by blank lines), filled; a paragraph with an indented
/// line (a list, a table) is kept as it is.
fn prose_paragraphs(roff: &mut String, prose: &str) {
    let mut paragraph: Vec<&str> = Vec::new();
    let flush = |paragraph: &mut Vec<&str>, roff: &mut String| {
        if paragraph.is_empty() {
            return;
        }
        roff.push_str(".PP\n");
        let verbatim = paragraph.iter().any(|l| l.starts_with(' '));
        if verbatim {
            roff.push_str(".nf\n");
        }
        for line in paragraph.iter() {
            let line = if verbatim { line } else { line.trim() };
            roff.push_str(&escape(line));
            roff.push('\n');
        }
        if verbatim {
            roff.push_str(".fi\n");
        }
        paragraph.clear();
    };
    for line in prose.lines() {
        if line.trim().is_empty() {
            flush(&mut paragraph, roff);
        } else {
            paragraph.push(line);
        }
    }
    flush(&mut paragraph, roff);
}

/// What an exit status `code` says. Every code is here (no wildcard): a new one does not compile
/// until it is described.
pub fn meaning(code: cloon_core::error::Code) -> &'static str {
    use cloon_core::error::Code;
    match code {
        Code::IncompatibleVersion => {
            "The document's cloonVersion is not one this tool understands."
        }
        Code::Unknown => {
            "A container, namespace, link, image or record that should exist does not."
        }
        Code::InvalidArgument => {
            "A flag or a field of the document has a value the tool cannot use."
        }
        Code::Io => "A system call or a file operation failed.",
        Code::Decode => "The standard input is not a cloon document.",
        Code::InvalidConfig => "The document misses a part this step needs, or its parts disagree.",
        Code::TryAgain => "A resource is busy for now; the same command may work later.",
        Code::Prerequisite => {
            "The host lacks something cloon needs (a program, a kernel feature, a cgroup layout)."
        }
        Code::NameTaken => "The name is already used by another container, namespace or interface.",
        Code::Runtime => "The OCI runtime (crun, runc) failed; its own message is in details.",
        Code::NotPermitted => {
            "The tool lacks the privileges it needs (root, CAP_SYS_ADMIN, CAP_NET_ADMIN)."
        }
        Code::Drift => "What exists no longer matches what cloon recorded (check).",
    }
}

/// A tagged paragraph: `tag` in bold, then `text`.
fn item(roff: &mut String, tag: &str, text: &str) {
    roff.push_str(".TP\n.B ");
    roff.push_str(&escape(tag));
    roff.push('\n');
    roff.push_str(&escape(text));
    roff.push('\n');
}

/// EXIT STATUS: 0, clap's 2 for a usage error, and every code of [`cloon_core::error::Code`].
fn exit_status(roff: &mut String, name: &str) {
    roff.push_str(".SH \"EXIT STATUS\"\n");
    roff.push_str(&escape(
        "On failure the tool writes an error document on standard output (its error object \
         holds the code, the message and the details), says the message on standard error, \
         and exits with the code. An error document on standard input (an earlier stage \
         failed) is handed on untouched, with its code as exit status.",
    ));
    roff.push('\n');
    let mut statuses: Vec<(u8, &str)> = vec![
        (0, "Success."),
        (
            2,
            "The command line is wrong (a usage error, said by the argument parser).",
        ),
    ];
    statuses.extend(cloon_core::error::Code::ALL.map(|c| (c.number(), meaning(c))));
    statuses.sort_by_key(|(n, _)| *n);
    for (number, text) in statuses {
        item(roff, &number.to_string(), text);
    }
    if name.ends_with("-exec") {
        roff.push_str(".PP\n");
        roff.push_str(&escape(
            "Once the command runs in the container, the exit status is the command's own.",
        ));
        roff.push('\n');
    }
}

/// ENVIRONMENT: the variables `tool` reads (itself or through cloon-core).
fn environment(roff: &mut String, tool: &str) {
    roff.push_str(".SH ENVIRONMENT\n");
    if tool != "cloon-lab" {
        item(
            roff,
            "CLOON_STATE_DIR",
            &format!(
                "The state directory, where cloon records what it created, when --state-dir \
                 is not given (default {}).",
                cloon_core::state::DEFAULT_ROOT
            ),
        );
    }
    item(
        roff,
        "CLOON_PROGRESS",
        "1 shows the progress of long work on standard error even when it is not a terminal, \
         0 hides it; by default it is shown on a terminal (never with --explain or --dry-run).",
    );
    if matches!(tool, "cloon-img" | "cloon-lab") {
        item(
            roff,
            "SOURCE_DATE_EPOCH",
            "With --reproducible (cloon-img create), the time of every file of the image, in \
             seconds since 1970 (default 1).",
        );
    }
    if tool == "cloon-lab" {
        item(
            roff,
            "CLOON_LAB_DIR",
            "Where each lab's state directory is made, when --labs-dir is not given.",
        );
        item(
            roff,
            "CLOON_LAB_CACHE",
            "Where images built from a source are cached, when --cache-dir is not given.",
        );
        item(
            roff,
            "CLOON_LAB_IMPAIR",
            "The impairment relay program (default: cloon-lab-impair beside cloon-lab, else \
             found on PATH).",
        );
        item(
            roff,
            "HOME",
            "The home directory that a path starting with ~/ in a topology file names.",
        );
    }
    item(
        roff,
        "PATH",
        "Where the programs the tool runs are looked for.",
    );
}

/// FILES: the directories `tool` works in.
fn files(roff: &mut String, tool: &str) {
    roff.push_str(".SH FILES\n");
    if tool == "cloon-lab" {
        item(
            roff,
            cloon_lab::naming::DEFAULT_LABS_DIR,
            "The labs, a state directory each (LABS/LAB), given to every tool the lab runs \
             (--labs-dir, CLOON_LAB_DIR).",
        );
        item(
            roff,
            cloon_lab::image::DEFAULT_CACHE_DIR,
            "The images built from a source, by content (--cache-dir, CLOON_LAB_CACHE).",
        );
    } else {
        item(
            roff,
            cloon_core::state::DEFAULT_ROOT,
            "The default state directory: a record of what the tool created, per container \
             (--state-dir, CLOON_STATE_DIR).",
        );
    }
    if matches!(tool, "cloon-netns" | "cloon-spec" | "cloon-lab") {
        item(
            roff,
            cloon_core::netns::RUN_DIR,
            "The named network namespaces, as ip-netns(8) keeps them.",
        );
    }
}

/// The cloon tools, each with a page.
const TOOLS: [&str; 6] = [
    "cloon-img",
    "cloon-overlay",
    "cloon-netns",
    "cloon-spec",
    "cloon-run",
    "cloon-lab",
];

/// SEE ALSO: the tool's own page (on a subcommand's), the other tools, and the host's programs.
fn see_also(roff: &mut String, tool: &str, name: &str) {
    roff.push_str(".SH \"SEE ALSO\"\n");
    let mut refs: Vec<(String, u8)> = Vec::new();
    if name != tool {
        refs.push((tool.to_string(), 1));
    }
    refs.extend(
        TOOLS
            .iter()
            .filter(|t| **t != tool)
            .map(|t| (t.to_string(), 1)),
    );
    refs.extend(["crun", "runc", "ip", "losetup"].map(|p| (p.to_string(), 8)));
    let last = refs.len() - 1;
    for (i, (page, section)) in refs.iter().enumerate() {
        let comma = if i < last { "," } else { "" };
        roff.push_str(&format!(".BR {} ({section}){comma}\n", escape(page)));
    }
}

/// `e`, saying the path it happened on.
fn at(path: &Path, e: Error) -> Error {
    Error::other(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(what: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cloon-xtask-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn pages_for_the_command_and_each_subcommand() {
        let cmd = clap::Command::new("t")
            .about("a tool")
            .subcommand(clap::Command::new("down").about("undo"))
            .subcommand(clap::Command::new("secret").hide(true));
        let dir = scratch("man");
        let files = man(cmd, &dir).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["t.1", "t-down.1"]);
        let page = std::fs::read_to_string(dir.join("t-down.1")).unwrap();
        assert!(page.contains(".TH t-down 1"), "{page}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_tool_and_subcommand_page_has_its_examples() {
        let dir = scratch("tools");
        let tools = tools();
        let names: Vec<&str> = tools.iter().map(|c| c.get_name()).collect();
        assert_eq!(
            names,
            [
                "cloon-img",
                "cloon-overlay",
                "cloon-netns",
                "cloon-spec",
                "cloon-run",
                "cloon-lab"
            ]
        );
        for cmd in tools {
            for page in man(cmd, &dir).unwrap() {
                let text = std::fs::read_to_string(&page).unwrap();
                for section in [
                    ".SH NAME",
                    ".SH SYNOPSIS",
                    ".SH DESCRIPTION",
                    ".SH OPTIONS",
                    ".SH \"EXIT STATUS\"",
                    ".SH ENVIRONMENT",
                    ".SH FILES",
                    ".SH EXAMPLES\n.nf\n",
                    ".SH \"SEE ALSO\"",
                ] {
                    assert!(text.contains(section), "{}: no {section}", page.display());
                }
                assert!(!text.contains("EXTRA"), "{}", page.display());
                assert_eq!(text.matches(".ds Aq").count(), 2, "{}", page.display());
            }
        }
        let page = std::fs::read_to_string(dir.join("cloon-overlay-down.1")).unwrap();
        assert!(
            page.contains(r"cloon\-overlay down \-\-name Cloon1"),
            "{page}"
        );
        let lab = std::fs::read_to_string(dir.join("cloon-lab.1")).unwrap();
        for needed in [
            "CLOON_LAB_DIR",
            "CLOON_LAB_CACHE",
            "/run/cloon/labs",
            "/run/netns",
        ] {
            assert!(lab.contains(needed), "{needed}");
        }
        assert!(!lab.contains("CLOON_STATE_DIR\n"), "{lab}");
        let img = std::fs::read_to_string(dir.join("cloon-img.1")).unwrap();
        assert!(img.contains(".B SOURCE_DATE_EPOCH"), "{img}");
        assert!(img.contains(".B CLOON_STATE_DIR"), "{img}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn after_help_splits_into_prose_and_verbatim_examples() {
        let help =
            "Intro,\non two lines.\n\nExamples:\n  t a   # note\n\n  # comment\n  t b \\\n    c\n";
        let (prose, examples) = split_after_help(help);
        assert_eq!(prose, "Intro,\non two lines.\n");
        assert_eq!(examples, ["t a   # note", "", "# comment", "t b \\", "  c"]);
        assert_eq!(split_after_help("no examples").1, Vec::<String>::new());
        let (prose, examples) = split_after_help("A.\n\nExamples:\n  t a\n\nB.");
        assert_eq!(
            (prose.as_str(), examples),
            ("A.\n\n\nB.", vec!["t a".to_string()])
        );
    }

    #[test]
    fn roff_escapes() {
        assert_eq!(escape(r"a\b"), r"a\eb");
        assert_eq!(escape(".x"), r"\&.x");
        assert_eq!(escape("'x'"), r"\&\(aqx\(aq");
        assert_eq!(escape("-v --x ~ ^ `"), r"\-v \-\-x \(ti \(ha \(ga");
    }

    #[test]
    fn every_code_is_an_exit_status_of_the_pages() {
        let text = String::from_utf8(page(&clap::Command::new("t"), "t", "t").unwrap()).unwrap();
        for code in cloon_core::error::Code::ALL {
            assert!(
                text.contains(&format!(".B {}\n{}", code.number(), escape(meaning(code)))),
                "{code:?}"
            );
        }
        assert!(text.contains(".B 0\nSuccess."), "{text}");
        assert!(!text.contains(".SH EXAMPLES"), "{text}");
    }

    #[test]
    fn every_shell_gets_a_file_per_tool_named_as_the_shell_looks_for_it() {
        let dir = scratch("completions");
        for (shell, name) in [
            (Shell::Bash, "cloon-img"),
            (Shell::Zsh, "_cloon-img"),
            (Shell::Fish, "cloon-img.fish"),
        ] {
            for cmd in tools() {
                let tool = cmd.get_name().to_string();
                let path = completions(shell, &cmd, &dir).unwrap();
                assert_eq!(path, dir.join(shell.file_name(&tool)));
                let text = std::fs::read_to_string(&path).unwrap();
                assert_eq!(text, cloon_core::complete::script(shell, &tool));
            }
            assert!(dir.join(name).is_file(), "{name}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The shipped schema is the one `cargo xtask schema` prints.
    #[test]
    fn the_shipped_schema_is_the_generated_one() {
        let file = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../schema/cloon-document.schema.json"
        );
        let text = cloon_core::doc::schema_text();
        let shipped = std::fs::read_to_string(file).unwrap_or_default();
        assert!(
            shipped == text,
            "{file} differs from cloon_core::doc::schema(): regenerate it with \
             `cargo xtask schema > schema/cloon-document.schema.json`"
        );
        let schema = cloon_core::doc::schema();
        assert_eq!(schema["properties"]["cloonVersion"]["const"], "1");
        assert_eq!(schema["required"], serde_json::json!(["cloonVersion"]));
        assert_eq!(schema["additionalProperties"], true);
        // Inside each part, only its own keys: a misspelled one is an error.
        let defs = schema["$defs"].as_object().expect("$defs");
        for part in [
            "Image",
            "ImageConfig",
            "Overlay",
            "Netns",
            "Link",
            "LinkPart",
            "EndPart",
            "VxlanPart",
            "RemotePart",
            "Bundle",
            "Container",
            "ErrorObject",
        ] {
            assert_eq!(defs[part]["additionalProperties"], false, "{part}");
        }
    }
}
