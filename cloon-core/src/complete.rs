//! Shell completion by the tool itself: `TOOL completions bash|zsh|fish` prints a short script
//! that, at each TAB, runs `TOOL __complete WORD...` (the words typed after the tool's name, the
//! last one being the word under completion), and this module answers from the tool's own clap
//! command: its subcommands, its flags, the values of a flag (a closed set, a path) and, through
//! the tool's [`Live`] function, the names of live objects (the containers a stage recorded, a
//! lab's nodes), read from the system at the moment of the TAB.
//!
//! The answer is a mode line, then one candidate per line: `words` and the candidates (those
//! starting with the word under completion), or `files` (with the words offered beside the
//! paths, if any) or `dirs` for the shell to complete a path itself.
//!
//! Written here rather than taken from clap_complete: its completion of live values is behind
//! an unstable feature, and it is asked for through an environment variable that, left set,
//! would turn every tool of a pipeline into a completion engine (what `CLOON_GENERATE` did); a
//! hidden first word cannot be set by accident.

use clap::builder::PossibleValue;
use clap::{Arg, Command, ValueHint};
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

/// The hidden first word that asks a tool to complete the words after it.
pub const ASK: &str = "__complete";
/// The subcommand that prints a tool's completion script.
pub const SUBCOMMAND: &str = "completions";

/// The shells a tool prints a completion script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    /// The file name the shell looks for `tool`'s completions under, in its completion
    /// directory.
    pub fn file_name(self, tool: &str) -> String {
        match self {
            Shell::Bash => tool.to_string(),
            Shell::Zsh => format!("_{tool}"),
            Shell::Fish => format!("{tool}.fish"),
        }
    }
}

/// What the shell offers for the word under completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// These words (those that start with the word typed).
    Words(Vec<String>),
    /// A path, completed by the shell, or one of these words (often none).
    Files(Vec<String>),
    /// A directory, completed by the shell.
    Dirs,
}

impl Reply {
    /// The reply with its words made by `f` from its words.
    fn map_words(self, f: impl FnOnce(Vec<String>) -> Vec<String>) -> Reply {
        match self {
            Reply::Words(words) => Reply::Words(f(words)),
            Reply::Files(words) => Reply::Files(f(words)),
            Reply::Dirs => Reply::Dirs,
        }
    }
}

/// The value being completed, and what was typed before it.
#[derive(Debug)]
pub struct Request<'a> {
    /// The subcommands typed, outermost first (`["netem", "show"]`); empty for the tool itself.
    pub path: Vec<String>,
    /// The argument whose value is completed.
    pub arg: &'a Arg,
    /// The positional values given to the innermost subcommand before this one.
    pub positionals: Vec<String>,
    /// The word typed so far.
    pub current: String,
    options: Vec<(String, String)>,
}

impl Request<'_> {
    /// The id of the argument being completed (its field's name: `name`, `node`).
    pub fn id(&self) -> &str {
        self.arg.get_id().as_str()
    }

    /// The innermost subcommand typed, if any.
    pub fn subcommand(&self) -> Option<&str> {
        self.path.last().map(String::as_str)
    }

    /// The value given to the option whose id is `id` (`state_dir`, `labs_dir`), the last one
    /// if given twice.
    pub fn option(&self, id: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == id)
            .map(|(_, v)| v.as_str())
    }

    /// [`Request::option`] as a path.
    pub fn path_option(&self, id: &str) -> Option<PathBuf> {
        self.option(id).map(PathBuf::from)
    }
}

/// A tool's live values: the reply for the value `request` completes (the words need not start
/// with the word typed: they are filtered), `None` for those it does not know (then its closed
/// set or its path, if any, are offered).
pub type Live = fn(&Request) -> Option<Reply>;

/// The [`Live`] of a tool whose values are all known from its command.
pub fn no_live(_: &Request) -> Option<Reply> {
    None
}

/// `cmd` with the `completions` subcommand (unless it has it already).
pub fn with_subcommand(cmd: Command) -> Command {
    if cmd.find_subcommand(SUBCOMMAND).is_some() {
        return cmd;
    }
    let tool = cmd.get_name().to_string();
    cmd.subcommand(
        Command::new(SUBCOMMAND)
            .about("Print the shell completion script (bash, zsh or fish)")
            .long_about(format!(
                "Print the shell completion script (bash, zsh or fish). At each TAB it asks \
                 {tool} itself, so it offers the subcommands and flags of this version, and live \
                 names: the containers recorded in the state directory, a lab's nodes and \
                 interfaces. scripts/install puts it where each shell looks for it."
            ))
            .arg(
                Arg::new("shell")
                    .required(true)
                    .value_name("SHELL")
                    .value_parser(clap::value_parser!(Shell))
                    .help("The shell"),
            )
            .after_help(format!(
                "Examples:\n  source <({tool} completions bash)\n  \
                 {tool} completions zsh > \"${{fpath[1]}}/_{tool}\"\n  \
                 {tool} completions fish > ~/.config/fish/completions/{tool}.fish"
            )),
    )
}

/// What a tool's `main` does before parsing its command line: answers `TOOL __complete ...` and
/// `TOOL completions SHELL` (with the exit status), or `None` for any other command line.
pub fn intercept(make: &dyn Fn() -> Command, args: &[OsString], live: Live) -> Option<i32> {
    let first = args.get(1)?;
    if first == ASK {
        let words: Vec<String> = args[2..]
            .iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect();
        let text = match complete(with_subcommand(make()), &words, live) {
            Reply::Words(words) => lines("words", &words),
            Reply::Files(words) => lines("files", &words),
            Reply::Dirs => lines("dirs", &[]),
        };
        return Some(print(&text));
    }
    if !args.iter().skip(1).any(|a| a == SUBCOMMAND) {
        return None;
    }
    let mut cmd = with_subcommand(make()).args_conflicts_with_subcommands(false);
    let tool = cmd.get_name().to_string();
    match cmd.try_get_matches_from_mut(args) {
        Ok(m) => {
            let (name, sub) = m.subcommand()?;
            if name != SUBCOMMAND {
                return None;
            }
            let shell = *sub.get_one::<Shell>("shell")?;
            Some(print(&script(shell, &tool)))
        }
        Err(e) if first == SUBCOMMAND => e.exit(),
        Err(_) => None,
    }
}

/// Writes `text` on stdout; the exit status.
fn print(text: &str) -> i32 {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// The mode line, then each word on a line.
fn lines(mode: &str, words: &[String]) -> String {
    let mut text = format!("{mode}\n");
    for w in words {
        text.push_str(w);
        text.push('\n');
    }
    text
}

/// The completion of `words` (those typed after the tool's name, the last being the word under
/// completion, possibly empty) for the command `cmd`.
pub fn complete(mut cmd: Command, words: &[String], live: Live) -> Reply {
    cmd.build();
    let (current, before) = match words.split_last() {
        Some((current, before)) => (current.clone(), before),
        None => (String::new(), &[][..]),
    };
    let mut at = &cmd;
    let mut path = Vec::new();
    let mut positionals: Vec<String> = Vec::new();
    let mut options = Vec::new();
    // After `--` or once a trailing argument started, every word is a value.
    let mut only_values = false;
    let mut i = 0;
    while i < before.len() {
        let word = &before[i];
        i += 1;
        if only_values || !word.starts_with('-') || word == "-" {
            if positionals.is_empty() && !only_values {
                if let Some(sub) = find_subcommand(at, word) {
                    at = sub;
                    path.push(sub.get_name().to_string());
                    continue;
                }
            }
            positionals.push(word.clone());
            if positional(at, positionals.len() - 1, only_values)
                .is_some_and(Arg::is_trailing_var_arg_set)
            {
                only_values = true;
            }
            continue;
        }
        if word == "--" {
            only_values = true;
            continue;
        }
        let Some((arg, inline)) = option(at, word) else {
            continue;
        };
        if !arg.get_action().takes_values() {
            continue;
        }
        let id = arg.get_id().to_string();
        match inline {
            Some(value) => options.push((id, value)),
            None if i < before.len() => {
                options.push((id, before[i].clone()));
                i += 1;
            }
            None => {
                let request = Request {
                    path,
                    arg,
                    positionals,
                    current,
                    options,
                };
                return value(&request, live);
            }
        }
    }
    if !only_values && current.starts_with('-') {
        if let Some((name, typed)) = current.strip_prefix("--").and_then(|r| r.split_once('=')) {
            let Some((arg, _)) = option(at, &format!("--{name}")) else {
                return Reply::Words(Vec::new());
            };
            let request = Request {
                path,
                arg,
                positionals,
                current: typed.to_string(),
                options,
            };
            return value(&request, live)
                .map_words(|words| words.into_iter().map(|w| format!("--{name}={w}")).collect());
        }
        return Reply::Words(starting_with(long_flags(at), &current));
    }
    let mut words = Vec::new();
    if positionals.is_empty() && !only_values && at.has_subcommands() {
        words = at
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .flat_map(|s| std::iter::once(s.get_name()).chain(s.get_visible_aliases()))
            .map(str::to_string)
            .collect();
    }
    if let Some(arg) = positional(at, positionals.len(), only_values) {
        let request = Request {
            path,
            arg,
            positionals,
            current: current.clone(),
            options,
        };
        match value(&request, live) {
            Reply::Words(more) => words.extend(more),
            Reply::Files(more) => {
                words.extend(more);
                return Reply::Files(starting_with(words, &current));
            }
            Reply::Dirs => return Reply::Dirs,
        }
    } else if words.is_empty() && !only_values {
        words = long_flags(at);
    }
    Reply::Words(starting_with(words, &current))
}

/// The subcommand of `cmd` named (or aliased) `word`.
fn find_subcommand<'a>(cmd: &'a Command, word: &str) -> Option<&'a Command> {
    cmd.get_subcommands()
        .find(|s| s.get_name() == word || s.get_all_aliases().any(|a| a == word))
}

/// The option `word` names (`--long`, `--long=value`, `-s`, `-svalue`, a cluster of short
/// flags), with the value written in the word itself.
fn option<'a>(cmd: &'a Command, word: &str) -> Option<(&'a Arg, Option<String>)> {
    if let Some(long) = word.strip_prefix("--") {
        let (name, inline) = match long.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (long, None),
        };
        let arg = cmd.get_arguments().find(|a| {
            a.get_long() == Some(name)
                || a.get_all_aliases()
                    .is_some_and(|aliases| aliases.contains(&name))
        })?;
        return Some((arg, inline));
    }
    let shorts = word.strip_prefix('-')?;
    for (at, c) in shorts.char_indices() {
        let arg = cmd.get_arguments().find(|a| a.get_short() == Some(c))?;
        if arg.get_action().takes_values() {
            let rest = &shorts[at + c.len_utf8()..];
            let rest = rest.strip_prefix('=').unwrap_or(rest);
            return Some((arg, (!rest.is_empty()).then(|| rest.to_string())));
        }
        if at + c.len_utf8() == shorts.len() {
            return Some((arg, None));
        }
    }
    None
}

/// The positional argument of `cmd` that takes the value at `index` (counting the values given
/// so far), following each one's number of values; an argument that comes only after `--` is
/// reached only when `after_dashes`.
fn positional(cmd: &Command, index: usize, after_dashes: bool) -> Option<&Arg> {
    let mut args: Vec<&Arg> = cmd.get_positionals().collect();
    args.sort_by_key(|a| a.get_index());
    // clap gives every word after `--` to the argument that comes only after it.
    if let Some(last) = args
        .iter()
        .find(|a| a.is_last_set())
        .filter(|_| after_dashes)
    {
        return Some(last);
    }
    let mut left = index;
    for arg in args {
        if arg.is_last_set() && !after_dashes {
            return None;
        }
        let most = arg.get_num_args().map_or(1, |r| r.max_values());
        if left < most {
            return Some(arg);
        }
        left -= most;
    }
    None
}

/// The long flags of `cmd` a user sees in its help (`--name`, `--help`).
fn long_flags(cmd: &Command) -> Vec<String> {
    cmd.get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_positional())
        .flat_map(|a| {
            let mut names: Vec<&str> = a.get_long().into_iter().collect();
            names.extend(a.get_visible_aliases().unwrap_or_default());
            names
        })
        .map(|l| format!("--{l}"))
        .collect()
}

/// The candidates for the value `request` completes.
fn value(request: &Request, live: Live) -> Reply {
    if let Some(reply) = live(request) {
        return reply.map_words(|words| starting_with(words, &request.current));
    }
    let closed: Vec<String> = request
        .arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(PossibleValue::get_name)
        .map(str::to_string)
        .collect();
    if !closed.is_empty() {
        return Reply::Words(starting_with(closed, &request.current));
    }
    let names_a_dir = request
        .arg
        .get_value_names()
        .is_some_and(|names| names.iter().any(|n| n.as_str() == "DIR"));
    match request.arg.get_value_hint() {
        ValueHint::DirPath => Reply::Dirs,
        ValueHint::AnyPath if names_a_dir => Reply::Dirs,
        ValueHint::AnyPath | ValueHint::FilePath | ValueHint::ExecutablePath => {
            Reply::Files(Vec::new())
        }
        _ => Reply::Words(Vec::new()),
    }
}

/// `words` that start with `prefix`, sorted, each once; a word the shell would read as more than
/// a word (a blank, a quote, `$`, `;`, ...: from a file or a directory another user could write)
/// is left out, since bash puts a candidate on the command line as it is.
fn starting_with(mut words: Vec<String>, prefix: &str) -> Vec<String> {
    words.retain(|w| w.starts_with(prefix) && plain(w));
    words.sort();
    words.dedup();
    words
}

/// Whether `word` is made of characters that mean nothing to a shell (letters, digits and
/// `._-:/@+=,%`): the names of containers, labs, nodes, interfaces and image tags are.
fn plain(word: &str) -> bool {
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:/@+=,%".contains(c))
}

/// The bytes of the regular file `path` if it has at most `limit` of them; `None` otherwise (a
/// fifo, a device, a terminal, a huge or unreadable file): a TAB must never wait or fill memory.
pub fn read_small(path: &std::path::Path, limit: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let flags = nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_NOCTTY;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > limit {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= limit).then_some(bytes)
}

/// The completion script of `tool` for `shell`: it hands the words to `TOOL __complete`.
pub fn script(shell: Shell, tool: &str) -> String {
    let function = format!("_{}", tool.replace('-', "_"));
    let template = match shell {
        Shell::Bash => BASH,
        Shell::Zsh => ZSH,
        Shell::Fish => FISH,
    };
    template
        .replace("@FUNCTION@", &function)
        .replace("@TOOL@", tool)
}

const BASH: &str = r#"# bash completion of @TOOL@: at each TAB, @TOOL@ itself completes the words
# (`@TOOL@ __complete WORD...`), live names included. Made by `@TOOL@ completions bash`.
@FUNCTION@() {
    local line=${COMP_LINE:0:COMP_POINT} word="" quote="" c cur value
    local -a words=() vars=() reply=()
    local -i i started=0
    # The words as the shell will pass them: quotes and backslashes taken off.
    for ((i = 0; i < ${#line}; i++)); do
        c=${line:i:1}
        if [[ -n $quote ]]; then
            if [[ $c == "$quote" ]]; then quote=""
            elif [[ $quote == '"' && $c == '\' ]]; then i+=1; word+=${line:i:1}
            else word+=$c; fi
        elif [[ $c == "'" || $c == '"' ]]; then quote=$c; started=1
        elif [[ $c == '\' ]]; then i+=1; word+=${line:i:1}; started=1
        elif [[ $c == [[:space:]] ]]; then
            if ((started)); then words+=("$word"); fi
            word=""; started=0
        else word+=$c; started=1; fi
    done
    words+=("$word")
    # Variables set before the tool (CLOON_STATE_DIR=DIR @TOOL@ ...) are set for it too.
    while [[ ${#words[@]} -gt 1 && ${words[0]} =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do
        vars+=("${words[0]}"); words=("${words[@]:1}")
    done
    words=("${words[@]/#\~\//$HOME/}")
    cur=${words[${#words[@]}-1]}
    value=$cur
    if [[ $cur == --*=* ]]; then value=${cur#*=}; fi
    mapfile -t reply < <(env "${vars[@]}" "${words[0]}" __complete "${words[@]:1}" 2>/dev/null)
    COMPREPLY=("${reply[@]:1}")
    # bash replaces only what follows the word's last ':' or '=' (if in COMP_WORDBREAKS).
    local breaks=${COMP_WORDBREAKS//[^=:]/} before
    if [[ -n $breaks && $cur == *[$breaks]* ]]; then
        before=${cur%"${cur##*[$breaks]}"}
        COMPREPLY=("${COMPREPLY[@]#"$before"}")
    fi
    if [[ ${reply[0]} == files || ${reply[0]} == dirs ]]; then
        compopt -o filenames 2>/dev/null
        local kind=-f
        if [[ ${reply[0]} == dirs ]]; then kind=-d; fi
        local -a paths
        mapfile -t paths < <(compgen $kind -- "$value")
        if [[ -n $breaks && $value == *[$breaks]* ]]; then
            before=${value%"${value##*[$breaks]}"}
            paths=("${paths[@]#"$before"}")
        fi
        COMPREPLY+=("${paths[@]}")
    fi
}
complete -F @FUNCTION@ @TOOL@
"#;

const ZSH: &str = r#"#compdef @TOOL@
# zsh completion of @TOOL@: at each TAB, @TOOL@ itself completes the words
# (`@TOOL@ __complete WORD...`), live names included. Made by `@TOOL@ completions zsh`.
@FUNCTION@() {
    local -a vars args reply
    local -i first=1
    # Variables set before the tool (CLOON_STATE_DIR=DIR @TOOL@ ...) are set for it too.
    while (( first < CURRENT )) && [[ ${words[first]} == [A-Za-z_]*=* ]]; do
        vars+=("${(Q)words[first]}"); (( first++ ))
    done
    # The words as the shell will pass them: quotes taken off, ~/ made $HOME/.
    args=("${(@Q)words[first+1,CURRENT]}")
    args=("${(@)args/#\~\//$HOME/}")
    reply=("${(@f)$(env "${(@)vars}" "${(Q)words[first]}" __complete "${(@)args}" 2>/dev/null)}")
    (( ${#reply} > 1 )) && compadd -- "${(@)reply[2,-1]}"
    if [[ ${reply[1]} == files || ${reply[1]} == dirs ]]; then
        [[ $PREFIX == --*=* ]] && compset -P '*='
        if [[ ${reply[1]} == dirs ]]; then _files -/; else _files; fi
    fi
}
if [[ ${funcstack[1]} == _@TOOL@ ]]; then
    @FUNCTION@ "$@"
else
    compdef @FUNCTION@ @TOOL@
fi
"#;

const FISH: &str = r#"# fish completion of @TOOL@: at each TAB, @TOOL@ itself completes the words
# (`@TOOL@ __complete WORD...`), live names included. Made by `@TOOL@ completions fish`.
function @FUNCTION@
    set -l words (commandline -opc)
    set -l current (commandline -ct)
    # Variables set before the tool (CLOON_STATE_DIR=DIR @TOOL@ ...) are set for it too.
    set -l vars
    while set -q words[2]; and string match -qr '^[A-Za-z_][A-Za-z0-9_]*=' -- $words[1]
        set -a vars $words[1]
        set -e words[1]
    end
    set -l args (string replace -r '^~/' "$HOME/" -- $words[2..-1] "$current")
    set -l reply (command env $vars $words[1] __complete $args 2>/dev/null)
    printf '%s\n' $reply[2..-1]
    switch "$reply[1]"
        case files
            __fish_complete_path $current
        case dirs
            __fish_complete_directories $current
    end
end
complete -c @TOOL@ -f -a '(@FUNCTION@)'
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{ArgAction, ValueEnum};

    #[derive(Debug, Clone, ValueEnum)]
    enum Signal {
        Kill,
        Term,
    }

    fn tool() -> Command {
        Command::new("tool")
            .arg(
                Arg::new("state_dir")
                    .long("state-dir")
                    .global(true)
                    .value_name("DIR")
                    .value_parser(clap::value_parser!(PathBuf)),
            )
            .arg(
                Arg::new("explain")
                    .long("explain")
                    .action(ArgAction::SetTrue),
            )
            .subcommand(
                Command::new("down")
                    .alias("destroy")
                    .arg(Arg::new("name").long("name").value_name("NAME"))
                    .arg(
                        Arg::new("signal")
                            .long("signal")
                            .value_parser(clap::value_parser!(Signal)),
                    )
                    .arg(Arg::new("all").long("all").action(ArgAction::SetTrue)),
            )
            .subcommand(
                Command::new("exec")
                    .arg(Arg::new("env").short('e').long("env"))
                    .arg(Arg::new("tty").short('t').action(ArgAction::SetTrue))
                    .arg(Arg::new("name").required(true))
                    .arg(
                        Arg::new("cmd")
                            .num_args(1..)
                            .trailing_var_arg(true)
                            .allow_hyphen_values(true),
                    ),
            )
            .subcommand(
                Command::new("lab")
                    .arg(
                        Arg::new("file")
                            .required(true)
                            .value_parser(clap::value_parser!(PathBuf)),
                    )
                    .arg(Arg::new("node").required(true))
                    .arg(Arg::new("cmd").num_args(1..).last(true)),
            )
            .subcommand(Command::new("secret").hide(true))
    }

    /// Containers a and b in any state directory, c in /other; nodes of the file given.
    fn live(request: &Request) -> Option<Reply> {
        let names = match (request.subcommand(), request.id()) {
            (Some("down" | "exec"), "name") => match request.option("state_dir") {
                Some("/other") => vec!["c".into()],
                _ => vec!["b".into(), "a".into()],
            },
            (Some("lab"), "node") => {
                let file = request.positionals.first()?;
                vec![format!("{file}-r1"), format!("{file}-r2")]
            }
            _ => return None,
        };
        Some(Reply::Words(names))
    }

    fn words(list: &[&str]) -> Reply {
        Reply::Words(list.iter().map(|w| w.to_string()).collect())
    }

    fn ask(line: &[&str]) -> Reply {
        let line: Vec<String> = line.iter().map(|w| w.to_string()).collect();
        complete(tool(), &line, live)
    }

    #[test]
    fn the_subcommands_first_with_their_visible_names_only() {
        assert_eq!(ask(&[""]), words(&["down", "exec", "help", "lab"]));
        assert_eq!(ask(&["d"]), words(&["down"]));
        assert_eq!(ask(&[]), words(&["down", "exec", "help", "lab"]));
    }

    #[test]
    fn flags_of_the_subcommand_typed_with_the_global_ones() {
        assert_eq!(
            ask(&["down", "--"]),
            words(&["--all", "--help", "--name", "--signal", "--state-dir"])
        );
        assert_eq!(ask(&["--e"]), words(&["--explain"]));
        assert_eq!(
            ask(&["destroy", "--s"]),
            words(&["--signal", "--state-dir"])
        );
    }

    #[test]
    fn live_names_follow_the_state_directory_typed() {
        assert_eq!(ask(&["down", "--name", ""]), words(&["a", "b"]));
        assert_eq!(
            ask(&["--state-dir", "/other", "down", "--name", ""]),
            words(&["c"])
        );
        assert_eq!(
            ask(&["down", "--state-dir=/other", "--name", ""]),
            words(&["c"])
        );
        assert_eq!(ask(&["down", "--name=b"]), words(&["--name=b"]));
        assert_eq!(ask(&["exec", "-t", "-e", "A=1", ""]), words(&["a", "b"]));
        assert_eq!(ask(&["exec", "-eA=1", "a"]), words(&["a"]));
    }

    #[test]
    fn a_closed_set_and_paths_without_live_values() {
        assert_eq!(ask(&["down", "--signal", ""]), words(&["kill", "term"]));
        assert_eq!(ask(&["down", "--signal", "t"]), words(&["term"]));
        assert_eq!(ask(&["--state-dir", "/r"]), Reply::Dirs);
        assert_eq!(ask(&["lab", "x"]), Reply::Files(Vec::new()));
    }

    #[test]
    fn a_positional_sees_the_ones_before_it() {
        assert_eq!(ask(&["lab", "f.yml", ""]), words(&["f.yml-r1", "f.yml-r2"]));
        assert_eq!(ask(&["lab", "f.yml", "f.yml-r2"]), words(&["f.yml-r2"]));
    }

    #[test]
    fn nothing_in_a_command_given_to_the_container() {
        assert_eq!(ask(&["exec", "a", ""]), words(&[]));
        assert_eq!(ask(&["exec", "a", "ls", "--"]), words(&[]));
        assert_eq!(ask(&["lab", "f.yml", "r1", "--", ""]), words(&[]));
        // clap gives every word after `--` to the argument that comes only after it.
        assert_eq!(ask(&["lab", "f.yml", "--", ""]), words(&[]));
    }

    #[test]
    fn a_lone_dash_starts_a_flag_and_unsafe_names_are_never_offered() {
        assert_eq!(ask(&["-"]), words(&["--explain", "--help", "--state-dir"]));
        let reply = complete(
            tool(),
            &["down".into(), "--name".into(), String::new()],
            |_| {
                Some(Reply::Words(vec![
                    "ok".into(),
                    "$(x)".into(),
                    "a b".into(),
                    "".into(),
                ]))
            },
        );
        assert_eq!(reply, words(&["ok"]));
    }

    #[test]
    fn the_completions_subcommand_is_added_once() {
        let cmd = with_subcommand(with_subcommand(tool()));
        assert_eq!(
            cmd.get_subcommands()
                .filter(|s| s.get_name() == SUBCOMMAND)
                .count(),
            1
        );
        let reply = complete(cmd, &["completions".into(), String::new()], no_live);
        assert_eq!(reply, words(&["bash", "fish", "zsh"]));
    }

    #[test]
    fn each_script_names_its_tool_and_asks_it() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = script(shell, "cloon-run");
            assert!(
                !text.contains("@TOOL@") && !text.contains("@FUNCTION@"),
                "{text}"
            );
            assert!(text.contains("__complete"), "{shell:?}");
            assert!(text.contains("_cloon_run"), "{shell:?}");
        }
        assert_eq!(Shell::Zsh.file_name("cloon-run"), "_cloon-run");
    }
}
