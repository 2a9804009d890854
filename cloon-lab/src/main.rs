//! cloon-lab: the lab layer over the five cloon tools (see the library, [`cloon_lab`]).

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli: cloon_lab::cli::Cli = cloon_core::cli::parse(cloon_lab::complete::live);
    match cloon_lab::command::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cloon-lab: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
