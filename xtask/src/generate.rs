//! Manual pages and shell completions from the clap commands of the tools, and the tools' commands
//! themselves, each as the tool's library builds it.

use clap_complete::Shell;
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

/// The file name a shell looks for the completions of `tool` under.
pub fn completion_file(shell: Shell, tool: &str) -> String {
    match shell {
        Shell::Bash => tool.to_string(),
        Shell::Zsh => format!("_{tool}"),
        Shell::Fish => format!("{tool}.fish"),
        Shell::Elvish => format!("{tool}.elv"),
        Shell::PowerShell => format!("_{tool}.ps1"),
        _ => tool.to_string(),
    }
}

/// Writes the completions of `cmd` for `shell` in `dir`; the file written.
pub fn completions(shell: Shell, mut cmd: clap::Command, dir: &Path) -> Result<PathBuf> {
    let tool = cmd.get_name().to_string();
    std::fs::create_dir_all(dir).map_err(|e| at(dir, e))?;
    let path = dir.join(completion_file(shell, &tool));
    let mut bytes = Vec::new();
    clap_complete::generate(shell, &mut cmd, tool, &mut bytes);
    std::fs::write(&path, bytes).map_err(|e| at(&path, e))?;
    Ok(path)
}

/// Writes the manual page of `cmd`, `DIR/TOOL.1`, and one per visible subcommand,
/// `DIR/TOOL-SUB.1`; the files written.
pub fn man(mut cmd: clap::Command, dir: &Path) -> Result<Vec<PathBuf>> {
    let tool = cmd.get_name().to_string();
    std::fs::create_dir_all(dir).map_err(|e| at(dir, e))?;
    cmd.build();
    let mut written = Vec::new();
    write_pages(&cmd, &tool, dir, &mut written)?;
    Ok(written)
}

/// The page of `cmd` named `name`, then those of its visible subcommands, `NAME-SUB`.
fn write_pages(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<()> {
    let page = cmd.clone().name(name.to_string());
    let path = dir.join(format!("{name}.1"));
    let mut bytes = Vec::new();
    clap_mangen::Man::new(page).render(&mut bytes)?;
    std::fs::write(&path, bytes).map_err(|e| at(&path, e))?;
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
    fn completion_files_are_named_as_shells_look_for_them() {
        assert_eq!(completion_file(Shell::Bash, "cloon-img"), "cloon-img");
        assert_eq!(completion_file(Shell::Zsh, "cloon-img"), "_cloon-img");
        assert_eq!(completion_file(Shell::Fish, "cloon-img"), "cloon-img.fish");
        assert_eq!(completion_file(Shell::Elvish, "cloon-img"), "cloon-img.elv");
        assert_eq!(
            completion_file(Shell::PowerShell, "cloon-img"),
            "_cloon-img.ps1"
        );
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
                assert!(
                    text.contains("Example"),
                    "{} has no examples",
                    page.display()
                );
            }
        }
        let page = std::fs::read_to_string(dir.join("cloon-overlay-down.1")).unwrap();
        assert!(
            page.contains(r"cloon\-overlay down \-\-name Cloon1"),
            "{page}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_shell_gets_a_file_per_tool() {
        let dir = scratch("completions");
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::PowerShell,
        ] {
            for cmd in tools() {
                let tool = cmd.get_name().to_string();
                let path = completions(shell, cmd, &dir).unwrap();
                assert_eq!(path, dir.join(completion_file(shell, &tool)));
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(text.contains(&tool), "{}", path.display());
            }
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
    }
}
