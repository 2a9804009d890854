//! Progress of long work (a download, an extraction, a large copy, `mkfs` on a big tree) on one
//! line of stderr, rewritten in place, while stderr is a terminal; nothing otherwise, and nothing
//! with `--explain` or `--dry-run`, whose stderr is a script. `CLOON_PROGRESS=1` forces it on,
//! `CLOON_PROGRESS=0` off.

use crate::explain;
use std::io::{IsTerminal, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(200);

/// Whether progress is shown: stderr is a terminal (or `CLOON_PROGRESS=1`), and the tool is not
/// saying commands.
pub fn enabled() -> bool {
    if explain::mode() != explain::Mode::Quiet {
        return false;
    }
    match std::env::var("CLOON_PROGRESS").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => std::io::stderr().is_terminal(),
    }
}

/// A size in bytes for people: `512 B`, `12.3 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The text of the progress line: `what: 12.3 MiB of 45.6 MiB (27%), 3 s`; without a total, the
/// bytes done if any; then the time spent.
pub fn render(what: &str, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    match (done, total) {
        (_, Some(total)) if total > 0 => {
            let pct = (done.min(total) as u128 * 100 / total as u128) as u64;
            format!(
                "{what}: {} of {} ({pct}%), {secs} s",
                human(done),
                human(total)
            )
        }
        (0, _) => format!("{what}, {secs} s"),
        (done, _) => format!("{what}: {}, {secs} s", human(done)),
    }
}

/// Rewrites the line of stderr the cursor is on with `line`.
fn draw(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[K{line}");
    let _ = err.flush();
}

#[derive(Debug)]
struct Shared {
    what: Mutex<String>,
    done: AtomicU64,
    total: Option<u64>,
    stop: AtomicBool,
}

/// A progress line on stderr, redrawn by a thread of its own until dropped, then erased. A
/// disabled one (see [`enabled`]) does nothing.
#[derive(Debug)]
pub struct Progress {
    shared: Option<Arc<Shared>>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts showing `what` (the tool's name first, e.g. `cloon-img: extracting x.tar`), with
    /// the number of bytes to do if known.
    pub fn start(what: &str, total: Option<u64>) -> Progress {
        if !enabled() {
            return Progress {
                shared: None,
                thread: None,
            };
        }
        let shared = Arc::new(Shared {
            what: Mutex::new(what.to_string()),
            done: AtomicU64::new(0),
            total,
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let started = Instant::now();
        // The first line at once, so that even short work shows what it was.
        draw(&render(what, 0, total, Duration::ZERO));
        let thread = std::thread::spawn(move || {
            let mut last = Instant::now();
            while !s.stop.load(Ordering::Relaxed) {
                if last.elapsed() >= TICK {
                    let what = s.what.lock().map(|w| w.clone()).unwrap_or_default();
                    let line = render(
                        &what,
                        s.done.load(Ordering::Relaxed),
                        s.total,
                        started.elapsed(),
                    );
                    draw(&line);
                    last = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        });
        Progress {
            shared: Some(shared),
            thread: Some(thread),
        }
    }

    /// Counts `n` more bytes done.
    pub fn add(&self, n: u64) {
        if let Some(s) = &self.shared {
            s.done.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Changes what the line says (a phase, the last message of a program).
    pub fn say(&self, what: &str) {
        if let Some(s) = &self.shared {
            if let Ok(mut w) = s.what.lock() {
                *w = what.to_string();
            }
        }
    }

    /// A reader that counts what it reads as done.
    pub fn reader<R: Read>(&self, inner: R) -> Counting<'_, R> {
        Counting {
            inner,
            progress: self,
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(s) = &self.shared {
            s.stop.store(true, Ordering::Relaxed);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// See [`Progress::reader`].
#[derive(Debug)]
pub struct Counting<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_du_h() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(45 << 20), "45.0 MiB");
        assert_eq!(human(3 << 30), "3.0 GiB");
    }

    #[test]
    fn lines_say_what_how_much_and_how_long() {
        let s = Duration::from_secs(3);
        assert_eq!(
            render("cloon-img: extracting a.tar", 1 << 20, Some(4 << 20), s),
            "cloon-img: extracting a.tar: 1.0 MiB of 4.0 MiB (25%), 3 s"
        );
        assert_eq!(
            render("x", 9, Some(4), s),
            "x: 9 B of 4 B (100%), 3 s",
            "never past 100%"
        );
        assert_eq!(
            render("cloon-img: mkfs.ext4", 0, None, s),
            "cloon-img: mkfs.ext4, 3 s"
        );
        assert_eq!(render("copy", 2048, None, s), "copy: 2.0 KiB, 3 s");
    }

    #[test]
    fn a_disabled_progress_counts_nothing_and_reads_through() {
        // The tests' stderr is not a terminal.
        if std::env::var_os("CLOON_PROGRESS").is_some() {
            return;
        }
        let p = Progress::start("x", Some(3));
        assert!(p.shared.is_none());
        let mut out = String::new();
        p.reader(&b"abc"[..]).read_to_string(&mut out).unwrap();
        assert_eq!(out, "abc");
    }
}
