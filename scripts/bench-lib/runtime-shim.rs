//! A stand-in for the OCI runtime, used by scripts/bench only: it runs the real runtime (the
//! program named by `CLOON_BENCH_RUNTIME`, else `/usr/bin/crun`) with the same arguments, the
//! same standard streams and the same environment, exits with its status, and appends to the file
//! `CLOON_BENCH_RUNTIME_LOG` (when set) one line: the nanoseconds the runtime took, then its
//! arguments. Given to `cloon-run --runtime`, it tells the runtime's time inside cloon-run apart
//! from cloon-run's own. Built by scripts/bench with `rustc -O`; no dependencies.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{exit, Command};
use std::time::Instant;

fn main() {
    let real = std::env::var_os("CLOON_BENCH_RUNTIME").unwrap_or_else(|| "/usr/bin/crun".into());
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let start = Instant::now();
    let status = match Command::new(&real).args(&args).status() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("runtime-shim: cannot run {}: {e}", real.to_string_lossy());
            exit(127);
        }
    };
    let ns = start.elapsed().as_nanos();
    if let Some(log) = std::env::var_os("CLOON_BENCH_RUNTIME_LOG") {
        let words: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        let line = format!("{ns} {}\n", words.join(" "));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log);
        if let Err(e) = file.and_then(|mut f| f.write_all(line.as_bytes())) {
            eprintln!("runtime-shim: cannot write {}: {e}", log.to_string_lossy());
        }
    }
    exit(match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        _ => 1,
    });
}
