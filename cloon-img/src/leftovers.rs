//! What a killed `cloon-img create` leaves next to its image, and how the next create of that
//! image, or `cloon-img gc`, finds and removes it: by the run's record and its lock, never by a
//! name that merely looks like a staging name.
//!
//! A run makes its staging items in the image's directory: `.IMG.cloon-rootfs-PID`, the directory
//! the root filesystem is assembled in (with `.IMG.cloon-rootfs-PID.layerN` beside it for the
//! layers of an OCI image), and `.IMG.cloon-tmp-PID`, the image being written, renamed to IMG at
//! the end. Before it makes any of them, it creates its record `.IMG.cloon-record-PID` (mode 0600)
//! and locks it (`flock`) for its whole life. The programs it runs (tar, debootstrap, mkfs.ext4,
//! cp, debugfs) inherit the lock, so it is held while anything of the run may still write, and
//! they are killed when the run dies (a parent-death signal). The record's first line says which
//! run it is (pid, start time, image); each further line names one item, written before the item
//! is made. At its end a run removes its record once every item it names is gone.
//!
//! A record whose lock can be taken belongs to a run that is over: each item it names is removed
//! if it is still what the run made (a directory, or a regular file, of the record's owner, on the
//! directory's own mount, not a symbolic link), without ever following a symbolic link or
//! entering another mount below it; then the record goes. A record still locked belongs to a live
//! run: it and its items are kept. A file named like a staging item that no record names, or a
//! file named like a record that is not one, is left alone.

use crate::STAGE;
use cloon_core::gc::Report;
use cloon_core::state::absolute;
use cloon_core::{explain, host, Code, Error, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, openat2, Flock, FlockArg, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The `tool` of a record's first line.
const TOOL: &str = "cloon-img create";
/// What sets cloon-img's staging names apart: `.IMG` + this + `KIND-PID`.
const MARK: &str = ".cloon-";
/// The most of a record that is read (a record holds a few short lines).
const MAX_RECORD: usize = 64 * 1024;
/// How long a run whose process is gone may take to let its record's lock go (the programs it
/// started die with it, a moment later).
const GRACE: Duration = Duration::from_secs(3);

/// What one staging name is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    /// `.IMG.cloon-record-PID`: the run's record, locked while it lives.
    Record,
    /// `.IMG.cloon-rootfs-PID`: the directory the root filesystem is assembled in.
    Rootfs,
    /// `.IMG.cloon-rootfs-PID.layerN`: where layer N (from 1) of an OCI image is extracted;
    /// `.layer0` is where an OCI archive (a tarball of a layout) is extracted first.
    Layer(u32),
    /// `.IMG.cloon-tmp-PID`: the image being written.
    Tmp,
}

/// A name of cloon-img's staging scheme, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StagingName {
    /// The image's file name.
    pub image: String,
    /// The process id of the run that makes it.
    pub pid: u32,
    pub part: Part,
}

impl StagingName {
    /// The name `part` of the run `pid` creating the image named `image`.
    pub fn new(image: &str, pid: u32, part: Part) -> StagingName {
        StagingName {
            image: image.to_string(),
            pid,
            part,
        }
    }

    /// Splits a file name of the staging scheme; `None` for any other name.
    pub fn parse(name: &str) -> Option<StagingName> {
        let rest = name.strip_prefix('.')?;
        let at = rest.rfind(MARK)?;
        let (image, tail) = (&rest[..at], &rest[at + MARK.len()..]);
        let (kind, rest) = tail.split_once('-')?;
        let (pid, layer) = match rest.split_once(".layer") {
            Some((pid, n)) => (pid, Some(number(n)?)),
            None => (rest, None),
        };
        let part = match (kind, layer) {
            ("record", None) => Part::Record,
            ("rootfs", None) => Part::Rootfs,
            ("rootfs", Some(n)) => Part::Layer(n),
            ("tmp", None) => Part::Tmp,
            _ => return None,
        };
        let parsed = StagingName::new(image, number(pid)?, part);
        // Only the exact spelling this module makes (no `+1`, no leading zero, no empty image).
        (!image.is_empty() && parsed.file_name() == name).then_some(parsed)
    }

    /// The file name.
    pub fn file_name(&self) -> String {
        let (image, pid) = (&self.image, self.pid);
        match self.part {
            Part::Record => format!(".{image}{MARK}record-{pid}"),
            Part::Rootfs => format!(".{image}{MARK}rootfs-{pid}"),
            Part::Layer(n) => format!(".{image}{MARK}rootfs-{pid}.layer{n}"),
            Part::Tmp => format!(".{image}{MARK}tmp-{pid}"),
        }
    }

    /// Whether the item is a directory (else a regular file).
    pub fn is_dir(&self) -> bool {
        matches!(self.part, Part::Rootfs | Part::Layer(_))
    }

    /// What a report calls it.
    fn kind(&self) -> &'static str {
        match self.part {
            Part::Record => "record",
            Part::Rootfs | Part::Layer(_) => "staging directory",
            Part::Tmp => "temporary image",
        }
    }
}

fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The first line of a record: which run it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Header {
    tool: String,
    pid: u32,
    /// When the process started (clock ticks after boot, `/proc/PID/stat`); 0 when unknown.
    start: u64,
    /// The image's file name.
    image: String,
}

/// A further line of a record: one item the run makes (its file name, in the record's
/// directory), written before it is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum Entry {
    Dir(String),
    File(String),
}

impl Entry {
    fn name(&self) -> &str {
        match self {
            Entry::Dir(n) | Entry::File(n) => n,
        }
    }
}

/// The record of the running `create`, locked until it is dropped. Dropping it removes the
/// record when nothing it names is left; otherwise the record stays for the next run or `gc`.
#[derive(Debug)]
pub struct Record {
    dir: PathBuf,
    dir_fd: OwnedFd,
    name: StagingName,
    lock: Flock<File>,
    items: RefCell<Vec<String>>,
}

impl Record {
    /// Creates and locks the record of this run of `create` for `image` (an absolute path whose
    /// directory exists).
    pub fn begin(image: &Path) -> Result<Record> {
        let (dir, image_name) = split(image)?;
        let dir_fd = open_dir(&dir)?;
        let name = StagingName::new(&image_name, std::process::id(), Part::Record);
        let file_name = name.file_name();
        let shown = dir.join(&file_name);
        let header = Header {
            tool: TOOL.into(),
            pid: name.pid,
            start: start_time(name.pid).unwrap_or(0),
            image: image_name,
        };
        explain::note(&format!(
            "the staging names are recorded in {}, locked while this run lives: if it is killed, the next create of this image or `cloon-img gc` removes what it left",
            shown.display()
        ));
        for _ in 0..100 {
            let created = openat(
                dir_fd.as_fd(),
                file_name.as_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_APPEND
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            );
            let fd = match created {
                Ok(fd) => fd,
                Err(Errno::EEXIST) => {
                    // A record with this very pid: an earlier process that had it, now over (its
                    // leftovers go), or a run in another pid namespace (alive: wait for it).
                    let mut report = Report::default();
                    settle(
                        dir_fd.as_fd(),
                        &dir,
                        &name,
                        &mut BTreeSet::new(),
                        &mut report,
                    )?;
                    if !exists(dir_fd.as_fd(), &file_name) {
                        continue;
                    }
                    let said = shown.display().to_string();
                    let why = report
                        .kept
                        .iter()
                        .find(|i| i.name == said)
                        .map(|i| i.why.clone())
                        .or_else(|| report.errors.first().map(ToString::to_string))
                        .unwrap_or_default();
                    return Err(Error::new(
                        Code::TryAgain,
                        format!("{said} is in the way ({why}): try again when that run is over, or remove it"),
                    ));
                }
                Err(e) => return Err(Error::sys(format!("cannot create {}", shown.display()), e)),
            };
            let lock = Flock::lock(File::from(fd), FlockArg::LockExclusive)
                .map_err(|(_, e)| Error::sys(format!("cannot lock {}", shown.display()), e))?;
            // A gc that opened it before it was locked found it empty and may have removed it.
            if !same_file(dir_fd.as_fd(), &file_name, &lock)? {
                continue;
            }
            // The programs this run starts inherit the lock: it is held while any of them lives.
            nix::fcntl::fcntl(
                lock.as_fd(),
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )
            .map_err(|e| Error::sys(format!("cannot share the lock of {}", shown.display()), e))?;
            let record = Record {
                dir,
                dir_fd,
                name,
                lock,
                items: RefCell::new(Vec::new()),
            };
            record.append(&header)?;
            return Ok(record);
        }
        Err(Error::new(
            Code::TryAgain,
            format!("cannot create {}: it keeps being removed", shown.display()),
        ))
    }

    /// Says in the record that this run is about to make `path`, one of its staging items.
    pub fn will_make(&self, path: &Path) -> Result<()> {
        let item = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(StagingName::parse)
            .filter(|n| {
                path.parent() == Some(self.dir.as_path())
                    && n.image == self.name.image
                    && n.pid == self.name.pid
                    && n.part != Part::Record
            })
            .ok_or_else(|| {
                Error::new(
                    Code::Io,
                    format!(
                        "internal error: {} is not a staging name of this run",
                        path.display()
                    ),
                )
            })?;
        let name = item.file_name();
        let entry = if item.is_dir() {
            Entry::Dir(name.clone())
        } else {
            Entry::File(name.clone())
        };
        self.append(&entry)?;
        self.items.borrow_mut().push(name);
        Ok(())
    }

    /// Appends one line, in one write (the file is opened for appending).
    fn append<T: Serialize>(&self, line: &T) -> Result<()> {
        let mut text = serde_json::to_string(line).unwrap_or_default();
        text.push('\n');
        (&*self.lock).write_all(text.as_bytes()).map_err(|e| {
            Error::io(
                format!(
                    "cannot write {}",
                    self.dir.join(self.name.file_name()).display()
                ),
                &e,
            )
        })
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let left: Vec<String> = self
            .items
            .borrow()
            .iter()
            .filter(|n| {
                !matches!(
                    fstatat(
                        self.dir_fd.as_fd(),
                        n.as_str(),
                        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW
                    ),
                    Err(Errno::ENOENT)
                )
            })
            .map(|n| self.dir.join(n).display().to_string())
            .collect();
        if left.is_empty() {
            let _ = unlinkat(
                self.dir_fd.as_fd(),
                self.name.file_name().as_str(),
                UnlinkatFlags::NoRemoveDir,
            );
        } else {
            say(&format!(
                "warning: {} left behind; `cloon-img gc {}` removes it and says what was wrong",
                left.join(", "),
                self.dir.display()
            ));
        }
        // The lock goes with the file, after the record.
    }
}

/// Says `text` on stderr: as a comment line when explaining (stderr is then a script).
fn say(text: &str) {
    if explain::mode() == explain::Mode::Quiet {
        eprintln!("{STAGE}: {text}");
    } else {
        explain::note(text);
    }
}

/// Before a create of `image`: removes what killed runs creating the same image left, and says
/// so on stderr. It never fails the create: what cannot be removed is said, and left to `gc`.
pub fn clean_for(image: &Path) {
    let Ok((dir, image_name)) = split(image) else {
        return;
    };
    let mut report = Report::default();
    let images = BTreeSet::from([image_name]);
    if let Err(e) = sweep(&dir, Some(&images), &mut report) {
        report.errors.push(e);
    }
    for item in report.found.iter().filter(|i| i.removed == Some(true)) {
        say(&format!(
            "removed the {} {}: {}",
            item.kind, item.name, item.why
        ));
    }
    for e in &report.errors {
        say(&format!(
            "warning: {e}; `cloon-img gc {}` tries again",
            dir.display()
        ));
    }
}

/// `cloon-img gc [DIR|IMG]...`: the leftovers of killed runs of `create` in each directory (all
/// images), or next to each image; the current directory when none is given.
pub fn gc(paths: &[PathBuf]) -> Result<Report> {
    if explain::acting() {
        host::require_root(STAGE, "remove what killed runs of cloon-img create left")?;
    }
    let here = [PathBuf::from(".")];
    let paths = if paths.is_empty() { &here[..] } else { paths };
    // Each directory once: every image in it (None), or only those named.
    let mut targets: BTreeMap<PathBuf, Option<BTreeSet<String>>> = BTreeMap::new();
    for p in paths {
        let path = absolute(p)?;
        if path.is_dir() {
            targets.insert(path, None);
            continue;
        }
        let (dir, image) = split(&path).map_err(|_| {
            Error::invalid(format!(
                "{}: neither a directory nor an image in an existing directory",
                path.display()
            ))
        })?;
        if let Some(set) = targets.entry(dir).or_insert_with(|| Some(BTreeSet::new())) {
            set.insert(image);
        }
    }
    let mut report = Report {
        state_dir: targets
            .keys()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":"),
        dry_run: !explain::acting(),
        ..Report::default()
    };
    for (dir, images) in &targets {
        if let Err(e) = sweep(dir, images.as_ref(), &mut report) {
            report.failed("directory", &dir.display().to_string(), e);
        }
    }
    Ok(report)
}

/// The directory and the file name of `image`; the directory must exist.
fn split(image: &Path) -> Result<(PathBuf, String)> {
    let dir = image
        .parent()
        .filter(|p| p.is_dir())
        .ok_or_else(|| {
            Error::invalid(format!(
                "the directory of {} does not exist",
                image.display()
            ))
        })?
        .to_path_buf();
    let name = image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::invalid(format!("{} names no file", image.display())))?;
    Ok((dir, name))
}

/// Looks at the staging names in `dir` (of the images `images`, or of all): settles each record,
/// then reports every other staging name that no record names as kept.
fn sweep(dir: &Path, images: Option<&BTreeSet<String>>, report: &mut Report) -> Result<()> {
    let dir_fd = open_dir(dir)?;
    let mut names: Vec<StagingName> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("cannot list {}", dir.display()), &e))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| StagingName::parse(&n))
        .filter(|n| images.is_none_or(|set| set.contains(&n.image)))
        .collect();
    names.sort();
    let mut named = BTreeSet::new();
    for record in names.iter().filter(|n| n.part == Part::Record) {
        settle(dir_fd.as_fd(), dir, record, &mut named, report)?;
    }
    for item in names.iter().filter(|n| n.part != Part::Record) {
        let file_name = item.file_name();
        let exists = !matches!(
            fstatat(
                dir_fd.as_fd(),
                file_name.as_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW
            ),
            Err(Errno::ENOENT)
        );
        if exists && !named.contains(&file_name) {
            report.keep(
                item.kind(),
                &dir.join(&file_name).display().to_string(),
                "named like a staging item of cloon-img create, but no record names it: left alone (remove it by hand if you know it is one)",
            );
        }
    }
    Ok(())
}

/// What a file named like a record turned out to be.
enum Verdict {
    /// Removed meanwhile.
    Gone,
    /// Not a record of cloon-img: why.
    Foreign(String),
    /// The record of a live run: why it is taken for alive, and the items it names.
    Live(String, Vec<Entry>),
    /// The record of a run that is over, locked by us now; what it names.
    Over(Flock<File>, Vec<Entry>),
}

/// Judges the record `name` in `dir` and acts on it: the leftovers of a run that is over are
/// removed (said only, in a dry run), a live run's items are kept. The file names of the items
/// it names are added to `named`.
fn settle(
    dir_fd: BorrowedFd<'_>,
    dir: &Path,
    name: &StagingName,
    named: &mut BTreeSet<String>,
    report: &mut Report,
) -> Result<()> {
    let record = name.file_name();
    let shown = dir.join(&record).display().to_string();
    let verdict = match judge(dir_fd, name) {
        Ok(v) => v,
        Err(e) => {
            report.failed("record", &shown, e);
            return Ok(());
        }
    };
    match verdict {
        Verdict::Gone => {}
        Verdict::Foreign(why) => report.keep(
            "record",
            &shown,
            format!("named like a record of cloon-img create, but {why}: left alone"),
        ),
        Verdict::Live(why, items) => {
            for item in &items {
                named.insert(item.name().to_string());
                if exists(dir_fd, item.name()) {
                    let kind = StagingName::parse(item.name()).map_or("file", |n| n.kind());
                    let path = dir.join(item.name()).display().to_string();
                    report.keep(kind, &path, format!("in use: {why}"));
                }
            }
            report.keep("record", &shown, format!("in use: {why}"));
        }
        Verdict::Over(lock, items) => {
            let why = format!(
                "left by cloon-img create (pid {}), which ended without finishing (killed or crashed): its record {record} names it and nobody holds the record's lock",
                name.pid
            );
            let mut left = false;
            for item in items.iter().rev() {
                named.insert(item.name().to_string());
                left |= remove_item(dir_fd, dir, item, &why, report);
            }
            if left {
                report.keep(
                    "record",
                    &shown,
                    "kept until what it names is removed: run gc again once the error is fixed",
                );
            } else {
                let why = format!(
                    "the record of cloon-img create (pid {}), which ended without finishing",
                    name.pid
                );
                let outcome = if explain::step(&["rm", "-f", shown.as_str()]) {
                    match unlinkat(dir_fd, record.as_str(), UnlinkatFlags::NoRemoveDir) {
                        Ok(()) | Err(Errno::ENOENT) => Ok(true),
                        Err(e) => Err(Error::sys(format!("cannot remove {shown}"), e)),
                    }
                } else {
                    Ok(false)
                };
                report.found("record", &shown, why, outcome);
            }
            drop(lock);
        }
    }
    Ok(())
}

/// Whether `name` exists in `dir` (as anything).
fn exists(dir: BorrowedFd<'_>, name: &str) -> bool {
    !matches!(
        fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW),
        Err(Errno::ENOENT)
    )
}

/// Opens the record `name` and tells whose it is.
fn judge(dir_fd: BorrowedFd<'_>, name: &StagingName) -> Result<Verdict> {
    let file_name = name.file_name();
    let opened = openat(
        dir_fd,
        file_name.as_str(),
        OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    let fd = match opened {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(Verdict::Gone),
        Err(Errno::ELOOP) => return Ok(Verdict::Foreign("it is a symbolic link".into())),
        Err(e) => return Err(Error::sys(format!("cannot open {file_name}"), e)),
    };
    let st = fstat(&fd).map_err(|e| Error::sys(format!("cannot inspect {file_name}"), e))?;
    if let Some(why) = not_private(&st) {
        return Ok(Verdict::Foreign(why));
    }
    let lock = match Flock::lock(File::from(fd), FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((file, Errno::EWOULDBLOCK)) => {
            // Being written: what is complete of it is enough to say which run it is.
            let (header, items) = parse(&read(&file)?, name).unwrap_or_default();
            let start = header.map_or(0, |h| h.start);
            if alive(name.pid, start) {
                let why = format!("cloon-img create (pid {}) is running", name.pid);
                return Ok(Verdict::Live(why, items));
            }
            // The run is gone; the programs it started die with it, a moment later.
            match wait_lock(file) {
                Some(lock) => lock,
                None => {
                    let why = format!(
                        "cloon-img create (pid {}) is over, but a program it started still holds the record's lock (see `fuser {file_name}`)",
                        name.pid
                    );
                    return Ok(Verdict::Live(why, items));
                }
            }
        }
        Err((_, e)) => return Err(Error::sys(format!("cannot lock {file_name}"), e)),
    };
    if !same_file(dir_fd, &file_name, &lock)? {
        return Ok(Verdict::Gone);
    }
    match parse(&read(&lock)?, name) {
        Ok((_, items)) => Ok(Verdict::Over(lock, items)),
        Err(why) => Ok(Verdict::Foreign(why)),
    }
}

/// Why the file `st` cannot be a record this user's runs made, if it cannot.
fn not_private(st: &FileStat) -> Option<String> {
    let me = nix::unistd::geteuid().as_raw();
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        Some("it is not a regular file".into())
    } else if st.st_uid != me {
        Some(format!("it is owned by uid {}, not {me}", st.st_uid))
    } else if st.st_mode & 0o077 != 0 {
        Some(format!(
            "others may read or write it (mode {:o})",
            st.st_mode & 0o7777
        ))
    } else if st.st_nlink != 1 {
        Some("it has other names (hard links)".into())
    } else {
        None
    }
}

/// Waits a little for the lock of `file`; `None` if it is still held then.
fn wait_lock(mut file: File) -> Option<Flock<File>> {
    let start = Instant::now();
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Some(lock),
            Err((f, Errno::EWOULDBLOCK)) if start.elapsed() < GRACE => file = f,
            Err(_) => return None,
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The text of a record (its first [`MAX_RECORD`] bytes).
fn read(file: &File) -> Result<String> {
    let mut buf = vec![0u8; MAX_RECORD];
    let mut have = 0;
    while have < buf.len() {
        match file.read_at(&mut buf[have..], have as u64) {
            Ok(0) => break,
            Ok(n) => have += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("cannot read a record", &e)),
        }
    }
    buf.truncate(have);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The header and items of the record `text` of the file `name`, or why it is not a record.
/// A last line without its newline was being written when the run died, before the item it
/// names was made: it is not counted.
fn parse(
    text: &str,
    name: &StagingName,
) -> std::result::Result<(Option<Header>, Vec<Entry>), String> {
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    let mut lines = complete.lines();
    let Some(first) = lines.next() else {
        // Killed as it began: nothing made yet. Only an empty file, or the beginning of this
        // run's header, is taken for that.
        let expected = serde_json::to_string(&Header {
            tool: TOOL.into(),
            pid: name.pid,
            start: 0,
            image: String::new(),
        })
        .unwrap_or_default();
        let prefix = expected.split(",\"start\"").next().unwrap_or_default();
        let common = text.len().min(prefix.len());
        return if text.as_bytes()[..common] == prefix.as_bytes()[..common] {
            Ok((None, Vec::new()))
        } else {
            Err("its contents are not a record".into())
        };
    };
    let header: Header =
        serde_json::from_str(first).map_err(|_| "its first line is not a record's".to_string())?;
    if header.tool != TOOL || header.pid != name.pid || header.image != name.image {
        return Err("its contents name another run".into());
    }
    let mut items = Vec::new();
    for line in lines {
        let entry: Entry = serde_json::from_str(line)
            .map_err(|_| format!("a line of it is not an item: {line}"))?;
        let ok = StagingName::parse(entry.name()).is_some_and(|n| {
            n.image == name.image
                && n.pid == name.pid
                && n.part != Part::Record
                && n.is_dir() == matches!(entry, Entry::Dir(_))
        });
        if !ok {
            return Err(format!(
                "it names {}, which is not one of its run's staging items",
                entry.name()
            ));
        }
        items.push(entry);
    }
    Ok((Some(header), items))
}

/// Removes the item `entry` of a run that is over if it is still what that run made; reports it.
/// Returns whether something of it is left that the record must go on naming.
fn remove_item(
    dir_fd: BorrowedFd<'_>,
    dir: &Path,
    entry: &Entry,
    why: &str,
    report: &mut Report,
) -> bool {
    let name = entry.name();
    let path = dir.join(name);
    let shown = path.display().to_string();
    let kind = StagingName::parse(name).map_or("file", |n| n.kind());
    let me = nix::unistd::geteuid().as_raw();
    let foreign = |report: &mut Report, what: String| {
        report.keep(
            kind,
            &shown,
            format!("named by the record of a killed run, but {what}: not what the run made, left alone"),
        );
        false
    };
    match entry {
        Entry::File(_) => {
            let st = match fstatat(dir_fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
                Err(Errno::ENOENT) => return false,
                Err(e) => {
                    report.found(
                        kind,
                        &shown,
                        why,
                        Err(Error::sys(format!("cannot inspect {shown}"), e)),
                    );
                    return true;
                }
                Ok(st) => st,
            };
            let dir_dev = fstat(dir_fd).map(|d| d.st_dev).unwrap_or(st.st_dev);
            let format = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
            if format == SFlag::S_IFLNK {
                return foreign(report, "it is a symbolic link".into());
            }
            if format != SFlag::S_IFREG {
                return foreign(report, "it is not a regular file".into());
            }
            if st.st_uid != me {
                return foreign(report, format!("it is owned by uid {}", st.st_uid));
            }
            if st.st_dev != dir_dev {
                let e = Error::new(
                    Code::TryAgain,
                    format!("{shown} is a mount point: unmount it, then run cloon-img gc again"),
                );
                report.found(kind, &shown, why, Err(e));
                return true;
            }
            if !explain::step(&["rm", "-f", shown.as_str()]) {
                report.found(kind, &shown, why, Ok(false));
                return false;
            }
            let outcome = match unlinkat(dir_fd, name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => Ok(true),
                Err(e) => Err(Error::sys(format!("cannot remove {shown}"), e)),
            };
            let left = outcome.is_err();
            report.found(kind, &shown, why, outcome);
            left
        }
        Entry::Dir(_) => {
            let top = match open_subdir(dir_fd, name) {
                Err(Errno::ENOENT) => return false,
                Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
                    let link = fstatat(dir_fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                        .is_ok_and(|st| {
                            SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK
                        });
                    let what = if link {
                        "it is a symbolic link"
                    } else {
                        "it is not a directory"
                    };
                    return foreign(report, what.into());
                }
                Err(e) => {
                    report.found(kind, &shown, why, Err(open_error(&path, e)));
                    return true;
                }
                Ok(fd) => fd,
            };
            match fstat(&top) {
                Ok(st) if st.st_uid != me => {
                    return foreign(report, format!("it is owned by uid {}", st.st_uid))
                }
                Ok(_) => {}
                Err(e) => {
                    report.found(
                        kind,
                        &shown,
                        why,
                        Err(Error::sys(format!("cannot inspect {shown}"), e)),
                    );
                    return true;
                }
            }
            if !explain::step(&["rm", "-rf", "--one-file-system", shown.as_str()]) {
                report.found(kind, &shown, why, Ok(false));
                return false;
            }
            let outcome = remove_open_tree(dir_fd, name, top, &path).map(|()| true);
            let left = outcome.is_err();
            report.found(kind, &shown, why, outcome);
            left
        }
    }
}

/// Whether `name` in `dir` is the file `file` has open.
fn same_file(dir: BorrowedFd<'_>, name: &str, file: &File) -> Result<bool> {
    let held = fstat(file).map_err(|e| Error::sys(format!("cannot inspect {name}"), e))?;
    match fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(now) => Ok(now.st_dev == held.st_dev && now.st_ino == held.st_ino),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(Error::sys(format!("cannot inspect {name}"), e)),
    }
}

/// Opens the directory at `path` (chosen by the user: links on the way are followed).
fn open_dir(path: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("cannot open the directory {}", path.display()), e))
}

/// Opens the directory `name` (one component) of `dir`, failing with `ELOOP` on a symbolic link,
/// `ENOTDIR` on anything else that is not a directory, and `EXDEV` on a mount point (any mount,
/// a bind mount of the same filesystem too).
fn open_subdir<P: ?Sized + nix::NixPath>(dir: BorrowedFd<'_>, name: &P) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY
        | OFlag::O_DIRECTORY
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_CLOEXEC;
    let how = OpenHow::new().flags(flags).resolve(
        ResolveFlag::RESOLVE_BENEATH
            | ResolveFlag::RESOLVE_NO_SYMLINKS
            | ResolveFlag::RESOLVE_NO_MAGICLINKS
            | ResolveFlag::RESOLVE_NO_XDEV,
    );
    loop {
        match openat2(dir, name, how) {
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
            Err(Errno::ENOSYS) => break,
            other => return other,
        }
    }
    // Kernels before 5.6: a mount point is told by its device (a bind mount of the same
    // filesystem is then not seen).
    let fd = openat(dir, name, flags, Mode::empty())?;
    if fstat(&fd)?.st_dev != fstat(dir)?.st_dev {
        return Err(Errno::EXDEV);
    }
    Ok(fd)
}

fn open_error(path: &Path, e: Errno) -> Error {
    if e == Errno::EXDEV {
        Error::new(
            Code::TryAgain,
            format!(
                "{} is a mount point: unmount it, then run cloon-img gc again",
                path.display()
            ),
        )
    } else {
        Error::sys(format!("cannot open {}", path.display()), e)
    }
}

/// Removes the directory at `path` and everything under it, as [`remove_open_tree`] does; one
/// already gone counts as removed.
pub fn remove_tree(path: &Path) -> Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Error::invalid(format!("cannot remove {}", path.display())));
    };
    let dir = open_dir(parent)?;
    match open_subdir(dir.as_fd(), name) {
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(open_error(path, e)),
        Ok(top) => remove_open_tree(dir.as_fd(), name, top, path),
    }
}

/// One directory on the way down: its name in its parent, its identity, what is left to remove
/// in it.
struct Frame {
    name: CString,
    id: (u64, u64),
    pending: Vec<CString>,
}

/// Removes the directory `top`, open, named `name` in `parent` (`shown` in messages), and
/// everything under it, through directory descriptors: a symbolic link is removed, never
/// followed; a mount point below stops the removal with an error, before anything of the mount
/// is touched. Only one directory is open at a time, so any depth works: the way back up is
/// `..`, checked to be the directory it came down from.
fn remove_open_tree<P: ?Sized + nix::NixPath>(
    parent: BorrowedFd<'_>,
    name: &P,
    top: OwnedFd,
    shown: &Path,
) -> Result<()> {
    let sys = |what: &str, e: Errno| Error::sys(format!("cannot {what} in {}", shown.display()), e);
    let here = |stack: &[Frame], entry: &CStr| {
        let mut p = shown.to_path_buf();
        for f in stack.iter().skip(1) {
            p.push(f.name.to_string_lossy().as_ref());
        }
        p.join(entry.to_string_lossy().as_ref())
    };
    let id = |st: &FileStat| (st.st_dev, st.st_ino);
    let top_name = name
        .with_nix_path(CStr::to_owned)
        .map_err(|e| sys("name", e))?;
    let st = fstat(&top).map_err(|e| sys("inspect", e))?;
    let mut stack = vec![Frame {
        name: top_name,
        id: id(&st),
        pending: list(top.as_fd()).map_err(|e| sys("list", e))?,
    }];
    let mut cur = top;
    loop {
        let Some(frame) = stack.last_mut() else {
            return Ok(());
        };
        if let Some(entry) = frame.pending.pop() {
            match open_subdir(cur.as_fd(), entry.as_c_str()) {
                Ok(child) => {
                    let st = fstat(&child).map_err(|e| sys("inspect", e))?;
                    let pending = list(child.as_fd()).map_err(|e| sys("list", e))?;
                    stack.push(Frame {
                        name: entry,
                        id: id(&st),
                        pending,
                    });
                    cur = child;
                }
                Err(Errno::ENOENT) => {}
                Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => {
                    match unlinkat(cur.as_fd(), entry.as_c_str(), UnlinkatFlags::NoRemoveDir) {
                        Ok(()) | Err(Errno::ENOENT) => {}
                        Err(e) => {
                            let p = here(&stack, &entry);
                            return Err(Error::sys(format!("cannot remove {}", p.display()), e));
                        }
                    }
                }
                Err(e) => return Err(open_error(&here(&stack, &entry), e)),
            }
            continue;
        }
        let done = stack.pop().expect("a frame was there");
        let Some(up_frame) = stack.last() else {
            drop(cur);
            return match unlinkat(parent, done.name.as_c_str(), UnlinkatFlags::RemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => Ok(()),
                Err(e) => Err(Error::sys(format!("cannot remove {}", shown.display()), e)),
            };
        };
        let up = openat(
            cur.as_fd(),
            "..",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| sys("go back up", e))?;
        let st = fstat(&up).map_err(|e| sys("inspect", e))?;
        if id(&st) != up_frame.id {
            return Err(Error::new(
                Code::TryAgain,
                format!(
                    "{} was moved while it was being removed: stopped; run cloon-img gc again",
                    here(&stack, &done.name).display()
                ),
            ));
        }
        match unlinkat(up.as_fd(), done.name.as_c_str(), UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => {
                let p = here(&stack, &done.name);
                return Err(Error::sys(format!("cannot remove {}", p.display()), e));
            }
        }
        cur = up;
    }
}

/// The names in the directory `dir`, without `.` and `..`.
fn list(dir: BorrowedFd<'_>) -> nix::Result<Vec<CString>> {
    let mut listing = nix::dir::Dir::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for entry in listing.iter() {
        let name = entry?.file_name().to_owned();
        if name.as_bytes() != b"." && name.as_bytes() != b".." {
            names.push(name);
        }
    }
    Ok(names)
}

/// When the process `pid` started (clock ticks after boot, field 22 of `/proc/PID/stat`).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold anything: count after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether the process `pid`, started at `start` (0: unknown), still runs.
fn alive(pid: u32, start: u64) -> bool {
    start_time(pid).is_some_and(|now| start == 0 || now == start)
}

/// Makes `cmd`'s process die (SIGKILL) when this one does, so that a killed run stops writing
/// its staging items. Spawn it from the thread that lives as long as the run (the main thread):
/// the signal comes when the thread that started the child ends.
pub fn die_with_parent(cmd: &mut Command) {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec; prctl, getppid and the making of
    // an io::Error from an errno are async-signal-safe and allocate nothing.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            // The parent died before the signal was asked for: do not run at all.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(nix::libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn temp_dir(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("cloon-img-left-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn staging_names_round_trip_and_others_are_refused() {
        for (name, image, pid, part) in [
            (".bb.img.cloon-record-12", "bb.img", 12, Part::Record),
            (".bb.img.cloon-rootfs-12", "bb.img", 12, Part::Rootfs),
            (
                ".bb.img.cloon-rootfs-12.layer3",
                "bb.img",
                12,
                Part::Layer(3),
            ),
            (".bb.img.cloon-tmp-7", "bb.img", 7, Part::Tmp),
            (".a.cloon-tmp-1.cloon-tmp-2", "a.cloon-tmp-1", 2, Part::Tmp),
        ] {
            let n = StagingName::parse(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(n, StagingName::new(image, pid, part), "{name}");
            assert_eq!(n.file_name(), name);
        }
        for name in [
            "bb.img.cloon-tmp-1",
            "..cloon-tmp-1",
            ".bb.img.cloon-tmp-",
            ".bb.img.cloon-tmp-01",
            ".bb.img.cloon-tmp-+1",
            ".bb.img.cloon-tmp-1x",
            ".bb.img.cloon-other-1",
            ".bb.img.cloon-tmp-1.layer1",
            ".bb.img.cloon-rootfs-1.layer",
            ".bb.img.cloon-record-99999999999",
        ] {
            assert_eq!(StagingName::parse(name), None, "{name}");
        }
    }

    fn record_text(pid: u32, items: &[&str]) -> String {
        let mut t = format!(
            "{{\"tool\":\"cloon-img create\",\"pid\":{pid},\"start\":5,\"image\":\"x.img\"}}\n"
        );
        for i in items {
            t.push_str(i);
            t.push('\n');
        }
        t
    }

    #[test]
    fn records_are_parsed_strictly() {
        let name = StagingName::new("x.img", 9, Part::Record);
        let (h, items) = parse(
            &record_text(
                9,
                &[
                    r#"{"dir":".x.img.cloon-rootfs-9"}"#,
                    r#"{"file":".x.img.cloon-tmp-9"}"#,
                ],
            ),
            &name,
        )
        .unwrap();
        assert_eq!(h.unwrap().start, 5);
        assert_eq!(
            items,
            [
                Entry::Dir(".x.img.cloon-rootfs-9".into()),
                Entry::File(".x.img.cloon-tmp-9".into())
            ]
        );
        // A last line cut short was never acted on.
        let mut cut = record_text(9, &[]);
        cut.push_str(r#"{"dir":".x.img.cl"#);
        assert_eq!(parse(&cut, &name).unwrap().1, []);
        // Killed as it began.
        assert_eq!(parse("", &name).unwrap(), (None, vec![]));
        assert_eq!(
            parse("{\"tool\":\"cloon-img cr", &name).unwrap(),
            (None, vec![])
        );
        // Not records.
        for bad in [
            "hello".to_string(),
            "hello\n".into(),
            record_text(8, &[]),
            record_text(9, &[r#"{"dir":"/etc"}"#]),
            record_text(9, &[r#"{"dir":".x.img.cloon-rootfs-8"}"#]),
            record_text(9, &[r#"{"dir":".y.img.cloon-rootfs-9"}"#]),
            record_text(9, &[r#"{"file":".x.img.cloon-rootfs-9"}"#]),
            record_text(9, &[r#"{"dir":".x.img.cloon-record-9"}"#]),
            record_text(9, &[r#"{"dir":"../x.img.cloon-rootfs-9"}"#]),
        ] {
            assert!(parse(&bad, &name).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_tree_is_removed_without_following_links() {
        let base = temp_dir("tree");
        let outside = base.join("outside");
        fs::create_dir_all(outside.join("keep")).unwrap();
        fs::write(outside.join("keep/file"), "precious").unwrap();
        let tree = base.join("tree");
        let mut deep = tree.clone();
        for i in 0..300 {
            deep.push(format!("d{i}"));
        }
        fs::create_dir_all(&deep).unwrap();
        fs::write(deep.join("f"), "x").unwrap();
        symlink(&outside, tree.join("link")).unwrap();
        symlink(outside.join("keep/file"), deep.join("flink")).unwrap();
        fs::create_dir_all(tree.join("ro")).unwrap();
        fs::write(tree.join("ro/f"), "x").unwrap();
        fs::set_permissions(tree.join("ro"), fs::Permissions::from_mode(0o500)).unwrap();
        remove_tree(&tree).unwrap();
        assert!(!tree.exists());
        assert_eq!(
            fs::read_to_string(outside.join("keep/file")).unwrap(),
            "precious"
        );
        // Gone already: done. A link in place of the tree: refused, the target kept.
        remove_tree(&tree).unwrap();
        symlink(&outside, &tree).unwrap();
        assert!(remove_tree(&tree).is_err());
        assert!(outside.join("keep/file").exists());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_record_is_removed_with_its_run_unless_something_is_left() {
        let base = temp_dir("record");
        let img = base.join("x.img");
        let pid = std::process::id();
        let record = base.join(format!(".x.img.cloon-record-{pid}"));
        let rootfs = base.join(format!(".x.img.cloon-rootfs-{pid}"));
        {
            let r = Record::begin(&img).unwrap();
            let mode = fs::metadata(&record).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            r.will_make(&rootfs).unwrap();
            fs::create_dir(&rootfs).unwrap();
            assert!(r.will_make(&base.join("elsewhere")).is_err());
            let text = fs::read_to_string(&record).unwrap();
            let name = StagingName::new("x.img", pid, Part::Record);
            assert_eq!(
                parse(&text, &name).unwrap().1,
                [Entry::Dir(
                    rootfs.file_name().unwrap().to_string_lossy().into_owned()
                )]
            );
            // Held: another judge sees a live run.
            let dir = open_dir(&base).unwrap();
            assert!(matches!(
                judge(dir.as_fd(), &name).unwrap(),
                Verdict::Live(..)
            ));
        }
        // The staging directory is still there: the record stays, unlocked.
        assert!(record.exists());
        let dir = open_dir(&base).unwrap();
        let mut report = Report::default();
        sweep(&base, None, &mut report).unwrap();
        assert!(report.errors.is_empty(), "{report:?}");
        assert_eq!(report.found.len(), 2, "{report:?}");
        assert!(!rootfs.exists() && !record.exists());
        // A clean run leaves nothing.
        {
            let r = Record::begin(&img).unwrap();
            r.will_make(&rootfs).unwrap();
            fs::create_dir(&rootfs).unwrap();
            fs::remove_dir(&rootfs).unwrap();
        }
        assert!(!record.exists());
        drop(dir);
        fs::remove_dir_all(&base).unwrap();
    }
}
