//! Images: a node's `image:` is an image file used as it is, or a source cloon-img builds an
//! image from once, into a cache shared by every lab.
//!
//! The cache is a directory (default `/var/cache/cloon-lab/images`, `--cache-dir`) of
//! `KIND-KEY.img` images, each with `KIND-KEY.json`, the document `cloon-img create` printed for
//! it (it carries what the image alone does not: an OCI image's command, environment and working
//! directory, which cloon-spec reads). The KEY is a hash of the source (`debootstrap:bookworm`,
//! `tar:/abs/rootfs.tar`) and of the content of its input: the host's busybox binary for
//! `busybox`, the tarball for `tar:`, the layout's `index.json` for `oci:` (the blobs it names
//! are addressed by their digests), nothing for `debootstrap:` (the suite is its own key). So an
//! input that changes gives a new image, and an unchanged one is never built twice.
//!
//! A cached image is made in the open by cloon-img (`create --force`: a leftover image without its
//! document is replaced), its document written to a temporary file renamed into place: a document
//! exists only for a whole image. Two `up` at once wait for each other on a lock per key.
//! Images live outside `/run` on purpose: they are files, not kernel state, and survive a reboot
//! (debootstrap takes minutes).

use crate::run::{Cmd, Pipeline, Tools};
use crate::topology::ImageSource;
use anyhow::{bail, Context as _};
use sha2::{Digest, Sha256};
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Where images are cached unless `--cache-dir` says otherwise.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/cloon-lab/images";

/// One image, as the node pipelines take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    /// An image file of the user's: `cloon-overlay --image FILE`.
    File(PathBuf),
    /// A cached image: its `cloon-img create` document is the pipeline's input.
    Cached(CacheEntry),
}

/// A cached image and how it is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The source, as `image:` says it.
    pub spec: String,
    pub img: PathBuf,
    pub doc: PathBuf,
    /// `cloon-img create ... IMG`.
    pub create: Cmd,
}

impl CacheEntry {
    /// The pipeline that builds it: `cloon-img create ... >DOC.tmp`, then a rename.
    pub fn pipeline(&self) -> Pipeline {
        Pipeline::new(vec![self.create.clone()]).stdout(self.tmp_doc())
    }

    pub fn tmp_doc(&self) -> PathBuf {
        let mut s = self.doc.clone().into_os_string();
        s.push(".tmp");
        PathBuf::from(s)
    }

    pub fn is_built(&self) -> bool {
        self.doc.is_file() && self.img.is_file()
    }
}

/// The image of `source`, with its cache entry computed (this reads the input to hash it).
pub fn resolve(source: &ImageSource, cache_dir: &Path) -> anyhow::Result<Image> {
    let (kind, input, args): (&str, Option<PathBuf>, Vec<String>) = match source {
        ImageSource::File { path } => return Ok(Image::File(path.clone())),
        ImageSource::Busybox => {
            let bin = Tools::new().find("busybox").ok_or_else(|| {
                anyhow::anyhow!(
                    "image busybox: the host has no busybox: apt-get install busybox-static"
                )
            })?;
            ("busybox", Some(bin), vec!["--busybox".into()])
        }
        ImageSource::Debootstrap { suite, include } => {
            let mut a = vec!["--debootstrap".to_string(), suite.clone()];
            if let Some(p) = include {
                a.push("--include".into());
                a.push(p.clone());
            }
            ("debootstrap", None, a)
        }
        ImageSource::Oci { layout, tag } => {
            let arg = match tag {
                Some(t) => format!("{}:{t}", layout.display()),
                None => layout.display().to_string(),
            };
            (
                "oci",
                Some(layout.join("index.json")),
                vec!["--from-oci".into(), arg],
            )
        }
        ImageSource::Tar { file } => (
            "tar",
            Some(file.clone()),
            vec!["--from-tar".into(), file.display().to_string()],
        ),
    };
    let spec = source.spec();
    let mut h = Sha256::new();
    h.update(b"cloon-lab image 1\0");
    h.update(spec.as_bytes());
    h.update([0]);
    if let Some(input) = &input {
        h.update(hash_file(input)?.as_bytes());
    }
    let key: String = h
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let img = cache_dir.join(format!("{kind}-{key}.img"));
    let doc = cache_dir.join(format!("{kind}-{key}.json"));
    let create = Cmd::new("cloon-img")
        .arg("create")
        .args(args)
        .arg("--force")
        .arg(img.display().to_string());
    Ok(Image::Cached(CacheEntry {
        spec,
        img,
        doc,
        create,
    }))
}

/// The SHA-256 of a file's content, in hex.
fn hash_file(path: &Path) -> anyhow::Result<String> {
    let mut f = std::fs::File::open(path)
        .with_context(|| format!("cannot read {} to key the image cache", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Builds `entry` unless it is built; waits for another cloon-lab building it. Returns whether it
/// was built now.
pub fn ensure(tools: &Tools, entry: &CacheEntry) -> anyhow::Result<bool> {
    let dir = entry.img.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot make the image cache {}", dir.display()))?;
    let lock_path = entry.doc.with_extension("lock");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("cannot lock {}: {e}", lock_path.display()))?;
    if entry.is_built() {
        return Ok(false);
    }
    let p = entry.pipeline();
    let out = tools.run(&p)?;
    if !out.ok {
        let _ = std::fs::remove_file(entry.tmp_doc());
        bail!("image {}: {}", entry.spec, out.failure(&p));
    }
    std::fs::rename(entry.tmp_doc(), &entry.doc)
        .with_context(|| format!("cannot write {}", entry.doc.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_source_and_its_content() {
        let dir = std::env::temp_dir().join(format!("cloon-lab-image-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tar = dir.join("rootfs.tar");
        std::fs::write(&tar, "one").unwrap();
        let cache = Path::new("/cache");
        let src = ImageSource::Tar { file: tar.clone() };
        let Image::Cached(a) = resolve(&src, cache).unwrap() else {
            panic!("cached")
        };
        let Image::Cached(b) = resolve(&src, cache).unwrap() else {
            panic!("cached")
        };
        assert_eq!(a, b, "stable");
        assert!(a.img.to_string_lossy().starts_with("/cache/tar-"));
        assert_eq!(
            a.create.args,
            [
                "create",
                "--from-tar",
                &tar.display().to_string(),
                "--force",
                &a.img.display().to_string()
            ]
        );
        std::fs::write(&tar, "two").unwrap();
        let Image::Cached(c) = resolve(&src, cache).unwrap() else {
            panic!("cached")
        };
        assert_ne!(a.img, c.img, "new content, new image");
        let d = ImageSource::Debootstrap {
            suite: "bookworm".into(),
            include: Some("iproute2".into()),
        };
        let Image::Cached(e) = resolve(&d, cache).unwrap() else {
            panic!("cached")
        };
        assert_eq!(
            e.create.args[..5],
            [
                "create",
                "--debootstrap",
                "bookworm",
                "--include",
                "iproute2"
            ]
        );
        assert_eq!(
            resolve(
                &ImageSource::File {
                    path: "/x.img".into()
                },
                cache
            )
            .unwrap(),
            Image::File("/x.img".into())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
