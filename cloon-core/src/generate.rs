//! Manual pages, shell completions and the document's schema, generated from the clap definitions
//! of the tool that runs: `CLOON_GENERATE=man:DIR`, `completions:SHELL:DIR` or `schema` in the
//! environment makes [`crate::cli::parse`] write them and exit, so no tool's `main` repeats this.
//!
//! ```sh
//! CLOON_GENERATE=man:/usr/local/share/man/man1 cloon-img     # cloon-img.1, cloon-img-create.1, ...
//! CLOON_GENERATE=completions:bash:/tmp/c cloon-run           # /tmp/c/cloon-run
//! CLOON_GENERATE=schema cloon-spec > cloon-document.schema.json
//! ```

use std::path::{Path, PathBuf};

/// The environment variable that asks for generation.
pub const VAR: &str = "CLOON_GENERATE";

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `man:DIR`: a page per command and subcommand, `DIR/TOOL.1`, `DIR/TOOL-SUB.1`.
    Man(PathBuf),
    /// `completions:SHELL:DIR`: the completion file under the name the shell looks for
    /// (`DIR/TOOL` for bash, `DIR/_TOOL` for zsh, `DIR/TOOL.fish` for fish).
    Completions(clap_complete::Shell, PathBuf),
    /// `schema`: the document's JSON Schema on stdout.
    Schema,
}

/// Parses the value of [`VAR`].
pub fn parse_request(value: &str) -> Result<Request, String> {
    let usage = "write man:DIR, completions:SHELL:DIR (SHELL: bash, zsh, fish, elvish, powershell) or schema";
    match value.split_once(':') {
        Some(("man", dir)) if !dir.is_empty() => Ok(Request::Man(dir.into())),
        Some(("completions", rest)) => {
            let (shell, dir) = rest
                .split_once(':')
                .filter(|(_, d)| !d.is_empty())
                .ok_or_else(|| format!("{VAR}={value}: {usage}"))?;
            let shell = shell
                .parse::<clap_complete::Shell>()
                .map_err(|_| format!("{VAR}={value}: unknown shell {shell:?}; {usage}"))?;
            Ok(Request::Completions(shell, dir.into()))
        }
        None if value == "schema" => Ok(Request::Schema),
        _ => Err(format!("{VAR}={value}: {usage}")),
    }
}

/// The file name a shell looks for the completions of `tool` under.
pub fn completion_file(shell: clap_complete::Shell, tool: &str) -> String {
    use clap_complete::Shell;
    match shell {
        Shell::Bash => tool.to_string(),
        Shell::Zsh => format!("_{tool}"),
        Shell::Fish => format!("{tool}.fish"),
        Shell::Elvish => format!("{tool}.elv"),
        Shell::PowerShell => format!("_{tool}.ps1"),
        _ => tool.to_string(),
    }
}

/// Carries out `request` for the command `cmd`; the files written.
pub fn run(request: &Request, mut cmd: clap::Command) -> std::io::Result<Vec<PathBuf>> {
    let tool = cmd.get_name().to_string();
    match request {
        Request::Man(dir) => {
            std::fs::create_dir_all(dir)?;
            cmd.build();
            let mut written = Vec::new();
            write_pages(&cmd, &tool, dir, &mut written)?;
            Ok(written)
        }
        Request::Completions(shell, dir) => {
            std::fs::create_dir_all(dir)?;
            let path = dir.join(completion_file(*shell, &tool));
            let mut file = std::fs::File::create(&path)?;
            clap_complete::generate(*shell, &mut cmd, tool, &mut file);
            Ok(vec![path])
        }
        Request::Schema => {
            crate::cli::print(&crate::doc::schema_text());
            Ok(Vec::new())
        }
    }
}

/// The page of `cmd` named `name`, then those of its visible subcommands, `NAME-SUB`.
fn write_pages(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    let page = cmd.clone().name(name.to_string());
    let path = dir.join(format!("{name}.1"));
    let mut bytes = Vec::new();
    clap_mangen::Man::new(page).render(&mut bytes)?;
    std::fs::write(&path, bytes)?;
    written.push(path);
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let sub_name = format!("{name}-{}", sub.get_name());
        write_pages(sub, &sub_name, dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap_complete::Shell;

    #[test]
    fn requests_parse() {
        assert_eq!(
            parse_request("man:/tmp/m").unwrap(),
            Request::Man("/tmp/m".into())
        );
        assert_eq!(
            parse_request("completions:zsh:/d").unwrap(),
            Request::Completions(Shell::Zsh, "/d".into())
        );
        assert_eq!(parse_request("schema").unwrap(), Request::Schema);
        for bad in [
            "",
            "man:",
            "man",
            "completions:bash",
            "completions:tcsh:/d",
            "pdf:/x",
        ] {
            assert!(parse_request(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn completion_files_are_named_as_shells_look_for_them() {
        assert_eq!(completion_file(Shell::Bash, "cloon-img"), "cloon-img");
        assert_eq!(completion_file(Shell::Zsh, "cloon-img"), "_cloon-img");
        assert_eq!(completion_file(Shell::Fish, "cloon-img"), "cloon-img.fish");
    }

    #[test]
    fn pages_for_the_command_and_each_subcommand() {
        let cmd = clap::Command::new("t")
            .about("a tool")
            .subcommand(clap::Command::new("down").about("undo"))
            .subcommand(clap::Command::new("secret").hide(true));
        let dir = std::env::temp_dir().join(format!("cloon-gen-{}", std::process::id()));
        let files = run(&Request::Man(dir.clone()), cmd).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["t.1", "t-down.1"]);
        let page = std::fs::read_to_string(dir.join("t-down.1")).unwrap();
        assert!(page.contains(".TH t-down 1"), "{page}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
