//! The article's Debian image: `debootstrap --include=... bookworm DIR MIRROR`, with the mirror
//! taken from the host's apt sources.

use cloon_core::progress::Progress;
use cloon_core::{explain, host, Code, Context, Error, Result};
use std::collections::VecDeque;
use std::io::BufRead;
use std::io::BufReader;
use std::path::Path;
use std::process::{Command, Stdio};

/// The packages the article adds to its bookworm image.
pub const ARTICLE_PACKAGES: &str = "openssh-client,vim,bash-completion,net-tools,tcpdump,tini";

/// Used when the host's apt sources name no Debian mirror.
pub const FALLBACK_MIRROR: &str = "http://deb.debian.org/debian";

/// The first Debian mirror in apt sources text, one-line (`deb URL SUITE ...`) or deb822
/// (`Types: deb` / `URIs: URL` / `Suites: ...`) format; security archives are skipped.
pub fn mirror_in(text: &str) -> Option<String> {
    let plain = |url: &str, suites: &str| {
        let ok = (url.starts_with("http://") || url.starts_with("https://"))
            && !suites.split_whitespace().all(|s| s.ends_with("-security"))
            && !url.contains("security");
        ok.then(|| url.trim_end_matches('/').to_string())
    };
    // One-line format.
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            continue;
        }
        let mut rest: Vec<&str> = words.collect();
        if rest.first().is_some_and(|w| w.starts_with('[')) {
            let close = rest.iter().position(|w| w.ends_with(']')).unwrap_or(0);
            rest.drain(..=close);
        }
        if let (Some(url), Some(suite)) = (rest.first(), rest.get(1)) {
            if let Some(m) = plain(url, suite) {
                return Some(m);
            }
        }
    }
    // deb822 format: paragraphs separated by blank lines.
    for para in text.split("\n\n") {
        let field = |name: &str| {
            para.lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
                .map(str::trim)
        };
        let is_deb = field("Types").is_some_and(|t| t.split_whitespace().any(|t| t == "deb"));
        let enabled = field("Enabled").is_none_or(|e| e != "no");
        if let (true, true, Some(uris), Some(suites)) =
            (is_deb, enabled, field("URIs"), field("Suites"))
        {
            if let Some(m) = uris.split_whitespace().find_map(|u| plain(u, suites)) {
                return Some(m);
            }
        }
    }
    None
}

/// The host's Debian mirror from `/etc/apt/sources.list` and `/etc/apt/sources.list.d/`.
pub fn host_mirror() -> String {
    let mut files = vec![std::path::PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<_> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "list" || x == "sources"))
            .collect();
        more.sort();
        files.extend(more);
    }
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .find_map(|text| mirror_in(&text))
        .unwrap_or_else(|| FALLBACK_MIRROR.to_string())
}

/// Fails unless `suite` looks like a Debian suite name (`bookworm`, `stable`, `trixie-backports`).
pub fn check_suite(suite: &str) -> Result<()> {
    if suite.is_empty() || !suite.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(Error::invalid(format!(
            "--debootstrap {suite:?} is not a suite name: write for example bookworm"
        )));
    }
    Ok(())
}

/// Runs debootstrap into `root`. Its messages make the progress line when stderr is a terminal
/// (stdout carries the document), and the error's details when it fails. It runs in a private mount namespace, so the `/proc` and `/sys` it mounts in `root` vanish with
/// it even if it dies half-way.
pub fn run(suite: &str, include: &str, mirror: &str, root: &Path) -> Result<()> {
    let program = host::require_program("debootstrap", "debootstrap")?;
    check_suite(suite)?;
    let mut args = Vec::new();
    if !include.is_empty() {
        args.push(format!("--include={include}"));
    }
    args.extend([
        suite.to_string(),
        root.to_string_lossy().into_owned(),
        mirror.to_string(),
    ]);
    let mut words: Vec<String> = ["unshare", "--mount", "--propagation", "private"]
        .map(String::from)
        .into();
    words.push(explain::program(&program));
    words.extend(args.iter().cloned());
    explain::note(
        "debootstrap, in a private mount namespace: the /proc and /sys it mounts vanish with it",
    );
    if !explain::step(&words) {
        return Ok(());
    }
    let mut cmd = Command::new(program);
    cmd.args(&args);
    // Its messages feed the progress line on a terminal; otherwise they are kept for the error.
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and only makes two system calls
    // (unshare, mount) that are async-signal-safe; it allocates nothing.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
            nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
                None::<&str>,
            )?;
            Ok(())
        });
    }
    crate::leftovers::die_with_parent(&mut cmd);
    let mut child = cmd.spawn().context(|| "cannot start debootstrap".into())?;
    let progress = Progress::start(&format!("{}: debootstrap {suite}", crate::STAGE), None);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|r| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines().map_while(std::result::Result::ok) {
                let _ = tx.send(line);
            }
        })
    })
    .collect();
    drop(tx);
    let mut tail: VecDeque<String> = VecDeque::new();
    for line in rx {
        progress.say(&format!(
            "{}: debootstrap {suite}: {}",
            crate::STAGE,
            line.trim()
        ));
        tail.push_back(line);
        if tail.len() > 5 {
            tail.pop_front();
        }
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child
        .wait()
        .context(|| "cannot wait for debootstrap".into())?;
    drop(progress);
    if !status.success() {
        // The staging directory, and the log in it, are removed on failure: keep the log's end.
        let log =
            std::fs::read_to_string(root.join("debootstrap/debootstrap.log")).unwrap_or_default();
        let logged: Vec<&str> = log.lines().rev().take(5).collect();
        let logged: Vec<&str> = logged.into_iter().rev().collect();
        let said: Vec<&str> = tail.iter().map(String::as_str).collect();
        return Err(Error::new(
            Code::Io,
            format!(
                "debootstrap {suite} from {mirror} failed: check the network, the mirror (--mirror URL) and the suite name"
            ),
        )
        .details(format!("{status}; {}; log: {}", said.join(" | "), logged.join(" | "))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_mirror_in_one_line_sources() {
        let text = "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://ftp.fr.debian.org/debian/ bookworm main\n";
        assert_eq!(
            mirror_in(text).as_deref(),
            Some("http://ftp.fr.debian.org/debian")
        );
    }

    #[test]
    fn skips_security_and_source_lines() {
        let text = "deb-src http://a/debian bookworm main\ndeb http://security.debian.org/debian-security bookworm-security main\ndeb http://b/debian bookworm main\n";
        assert_eq!(mirror_in(text).as_deref(), Some("http://b/debian"));
    }

    #[test]
    fn finds_the_mirror_in_deb822_sources() {
        let text = "Types: deb\n# http://snapshot\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n";
        assert_eq!(
            mirror_in(text).as_deref(),
            Some("http://deb.debian.org/debian")
        );
        assert_eq!(
            mirror_in("Types: deb\nEnabled: no\nURIs: http://x/debian\nSuites: b\n"),
            None
        );
    }

    #[test]
    fn no_mirror_in_empty_sources() {
        assert_eq!(mirror_in(""), None);
    }
}
