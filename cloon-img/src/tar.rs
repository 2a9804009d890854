//! Root filesystem tarballs (`--from-tar`, and the layers of `--from-oci`), extracted by the
//! system's GNU tar as root: numeric owners, permissions, device nodes and extended attributes
//! kept. GNU tar refuses to write outside the directory: it strips a leading `/` from member
//! names and link targets, skips members whose name holds `..`, and defers symbolic links so that
//! no member is written through one (the tests check each case).

use cloon_core::progress::Progress;
use cloon_core::{explain, host, Code, Context, Error, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// How a tarball is compressed, recognised by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Plain,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
}

impl Compression {
    /// Recognises the compression from the first bytes of a file (at least 6 wanted); anything
    /// without a known compressor's magic number is taken as a plain tar.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else {
            Compression::Plain
        }
    }

    /// GNU tar's option for it, if any.
    pub fn tar_flag(self) -> Option<&'static str> {
        match self {
            Compression::Plain => None,
            Compression::Gzip => Some("--gzip"),
            Compression::Zstd => Some("--zstd"),
            Compression::Xz => Some("--xz"),
            Compression::Bzip2 => Some("--bzip2"),
        }
    }

    /// The program tar runs for it, and its Debian package.
    fn program(self) -> Option<(&'static str, &'static str)> {
        match self {
            Compression::Plain => None,
            Compression::Gzip => Some(("gzip", "gzip")),
            Compression::Zstd => Some(("zstd", "zstd")),
            Compression::Xz => Some(("xz", "xz-utils")),
            Compression::Bzip2 => Some(("bzip2", "bzip2")),
        }
    }
}

/// What an extracted tarball turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archive {
    /// A root filesystem (anything else).
    Rootfs,
    /// An image saved by `docker save` before Docker 25: `manifest.json` with `repositories` or
    /// `ID/layer.tar` directories at the top.
    DockerSave,
    /// An OCI image layout (`oci-layout` and `index.json` at the top): an oci-archive, or what
    /// `docker save` writes since Docker 25.
    OciLayout,
}

/// Tells what the tarball extracted into `dir` is, from the files at its top.
pub fn classify(dir: &Path) -> Archive {
    if dir.join("oci-layout").is_file() && dir.join("index.json").is_file() {
        return Archive::OciLayout;
    }
    if dir.join("manifest.json").is_file() {
        let layer_tar = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join("layer.tar").is_file());
        if layer_tar || dir.join("repositories").is_file() {
            return Archive::DockerSave;
        }
    }
    Archive::Rootfs
}

/// The error for a `docker save` archive `name`, given where a root filesystem or OCI layout is
/// wanted.
pub fn docker_save_error(name: &str) -> Error {
    Error::invalid(format!(
        "{name} is a `docker save` archive (manifest.json and layer tarballs), not a root filesystem: convert it with `skopeo copy docker-archive:{name} oci:DIR:TAG`, then `cloon-img create --from-oci DIR:TAG IMG` (or give `docker export CONTAINER` to --from-tar)"
    ))
}

/// Whether the 512-byte block `head` is a POSIX or GNU tar header (`ustar` at byte 257).
pub fn is_tar_header(head: &[u8]) -> bool {
    head.get(257..262) == Some(b"ustar")
}

/// The arguments of the `tar` that extracts into `dir` what it reads from `file` (`-` for stdin).
pub fn tar_args(compression: Compression, file: &str, dir: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "--extract",
        "--numeric-owner",
        "--same-owner",
        "--preserve-permissions",
        "--xattrs",
        "--xattrs-include=*",
    ]
    .map(String::from)
    .into();
    args.extend(compression.tar_flag().map(String::from));
    args.extend([
        "--file".to_string(),
        file.to_string(),
        "--directory".into(),
        dir.to_string_lossy().into_owned(),
    ]);
    args
}

/// Extracts the tarball read from `input` into `dir` (an existing directory) with the system's
/// tar. `name` is how the tarball is said (a path, or `-` for stdin); `total` its size, for the
/// progress line. The first bytes tell the compression. With `--explain`, says the `tar` command
/// first; with `--dry-run`, only says it.
pub fn extract(input: &mut dyn Read, name: &str, total: Option<u64>, dir: &Path) -> Result<()> {
    // The first bytes tell the compression; reading them acts on nothing, so a dry run does too.
    let mut head = [0u8; 512];
    let mut have = 0;
    while have < head.len() {
        let n = input
            .read(&mut head[have..])
            .context(|| format!("cannot read {name}"))?;
        if n == 0 {
            break;
        }
        have += n;
    }
    if have == 0 {
        return Err(Error::invalid(format!(
            "{name} is empty: give a tarball of a root filesystem"
        )));
    }
    let compression = Compression::detect(&head[..have]);
    if compression == Compression::Plain && !is_tar_header(&head[..have]) {
        return Err(Error::invalid(format!(
            "{name} is not a tarball (neither plain tar, gzip, zstd, xz nor bzip2)"
        )));
    }
    let tar = host::require_program("tar", "tar")?;
    if let Some((program, package)) = compression.program() {
        host::require_program(program, package)?;
    }
    let mut words = vec![explain::program(&tar)];
    words.extend(tar_args(compression, name, dir));
    if !explain::step(&words) {
        return Ok(());
    }
    let mut cmd = Command::new(&tar);
    cmd.args(tar_args(compression, "-", dir))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    crate::leftovers::die_with_parent(&mut cmd);
    let mut child = cmd
        .spawn()
        .context(|| format!("cannot run {}", tar.display()))?;
    let stderr = child.stderr.take();
    let said = std::thread::spawn(move || {
        let mut lines = Vec::new();
        if let Some(err) = stderr {
            for line in BufReader::new(err)
                .lines()
                .map_while(std::result::Result::ok)
            {
                lines.push(line);
            }
        }
        lines
    });
    let progress = Progress::start(&format!("{}: extracting {name}", crate::STAGE), total);
    progress.add(have as u64);
    let copied = {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(&head[..have])
            .and_then(|()| std::io::copy(&mut progress.reader(input), &mut stdin).map(|_| ()))
    };
    drop(progress);
    let status = child
        .wait()
        .context(|| format!("cannot wait for {}", tar.display()))?;
    let lines = said.join().unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = lines.iter().rev().take(8).map(String::as_str).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(Error::new(
            Code::Io,
            format!("tar could not extract {name}: is it a whole root filesystem tarball?"),
        )
        .details(format!("{status}; {}", tail.join(" | "))));
    }
    if let Err(e) = copied {
        // tar succeeded without reading everything (trailing data after the end of archive).
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(Error::io(format!("cannot read {name}"), &e));
        }
    }
    for line in lines {
        // tar's warnings (a leading `/` removed, ...) are worth knowing.
        if explain::mode() == explain::Mode::Quiet {
            eprintln!("{}: {line}", crate::STAGE);
        } else {
            explain::note(&line);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressions_are_told_by_their_magic_numbers() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"\xfd7zXZ\x00rest"), Compression::Xz);
        assert_eq!(Compression::detect(b"BZh91AY"), Compression::Bzip2);
        assert_eq!(Compression::detect(b"etc/\0\0\0"), Compression::Plain);
        assert_eq!(Compression::detect(b""), Compression::Plain);
        assert_eq!(Compression::Zstd.tar_flag(), Some("--zstd"));
        assert_eq!(Compression::Plain.tar_flag(), None);
    }

    #[test]
    fn tar_headers_are_recognised() {
        let mut block = [0u8; 512];
        assert!(!is_tar_header(&block));
        block[257..263].copy_from_slice(b"ustar\0");
        assert!(is_tar_header(&block));
        assert!(!is_tar_header(&block[..100]));
    }

    #[test]
    fn tar_keeps_owners_modes_and_xattrs() {
        let args = tar_args(Compression::Gzip, "-", Path::new("/s"));
        for a in [
            "--numeric-owner",
            "--same-owner",
            "--preserve-permissions",
            "--xattrs",
            "--gzip",
        ] {
            assert!(args.iter().any(|x| x == a), "{a} missing from {args:?}");
        }
        assert_eq!(
            &args[args.len() - 4..],
            ["--file", "-", "--directory", "/s"]
        );
    }

    #[test]
    fn a_real_tarball_of_each_kind_extracts() {
        // Unprivileged: tar as a normal user keeps modes; owners need root and are tested in
        // the integration tests.
        let base = std::env::temp_dir().join(format!("cloon-img-tar-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("src/etc")).unwrap();
        std::fs::write(base.join("src/etc/motd"), "hello\n").unwrap();
        for (flag, kind) in [("", "plain"), ("-z", "gzip"), ("--zstd", "zstd")] {
            if kind == "zstd" && host::find_program("zstd").is_none() {
                continue;
            }
            let file = base.join(format!("r.{kind}"));
            let mut cmd = Command::new("tar");
            cmd.arg("-c")
                .args(flag.split_whitespace())
                .arg("-f")
                .arg(&file);
            assert!(cmd
                .arg("-C")
                .arg(base.join("src"))
                .arg(".")
                .status()
                .unwrap()
                .success());
            let out = base.join(format!("out-{kind}"));
            std::fs::create_dir(&out).unwrap();
            let mut f = std::fs::File::open(&file).unwrap();
            extract(&mut f, &file.to_string_lossy(), None, &out).unwrap();
            assert_eq!(
                std::fs::read_to_string(out.join("etc/motd")).unwrap(),
                "hello\n"
            );
        }
        let mut junk: &[u8] = b"this is not a tarball at all";
        let err = extract(&mut junk, "junk", None, &base).unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn image_archives_are_told_from_root_filesystems() {
        let dir = std::env::temp_dir().join(format!("cloon-tar-classify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).expect("scratch dir");
        let rootfs = classify(&dir);
        std::fs::write(dir.join("manifest.json"), "[]").expect("manifest.json");
        let manifest_only = classify(&dir);
        std::fs::create_dir(dir.join("abc")).expect("layer dir");
        std::fs::write(dir.join("abc/layer.tar"), "").expect("layer.tar");
        let docker = classify(&dir);
        std::fs::write(dir.join("oci-layout"), "{}").expect("oci-layout");
        std::fs::write(dir.join("index.json"), "{}").expect("index.json");
        let oci = classify(&dir);
        std::fs::remove_dir_all(&dir).expect("remove scratch dir");
        assert_eq!(rootfs, Archive::Rootfs);
        assert_eq!(manifest_only, Archive::Rootfs);
        assert_eq!(docker, Archive::DockerSave);
        assert_eq!(oci, Archive::OciLayout);
        let msg = docker_save_error("/x/saved.tar").msg;
        assert!(
            msg.contains("skopeo copy docker-archive:/x/saved.tar oci:DIR:TAG"),
            "{msg}"
        );
    }
}
