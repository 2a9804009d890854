//! `cloon-lab doctor` (filled in below).
use crate::run::Tools;
use std::process::ExitCode;
pub fn run(_tools: &Tools, _json: bool) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
