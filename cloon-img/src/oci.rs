//! OCI image layouts (`--from-oci DIR[:TAG]`): `oci-layout`, `index.json` and content-addressed
//! blobs under `blobs/sha256/`, as `skopeo copy ... oci:DIR:TAG` or `umoci` write them.
//!
//! The image is picked by its tag (`org.opencontainers.image.ref.name`), an index or Docker
//! manifest list is followed to the manifest of this machine's platform, every blob read is
//! checked against its digest and size, and the layers are stacked in order with their whiteouts
//! (see [`crate::whiteout`]). The image's default process (Entrypoint and Cmd, Env, WorkingDir)
//! becomes the document's `image.config`.
//!
//! The JSON types below are cloon's own rather than oci-spec's (`image` feature), on purpose:
//! they read only the fields cloon uses and let the others be, so a layout written by any tool is
//! taken as long as what cloon needs is there. oci-spec's types require what cloon does not use
//! (an index's `schemaVersion`, a configuration's `rootfs` and `architecture`) and would refuse
//! such layouts; for the digests and media types, Docker's included, the checks here are what
//! cloon needs, in a few lines.

use crate::leftovers::remove_tree;
use crate::{tar, whiteout};
use cloon_core::doc::ImageConfig;
use cloon_core::{explain, Code, Context, Error, Result, Undo};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The annotation that holds an image's tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// JSON blobs (indexes, manifests, configs) larger than this are refused.
const MAX_JSON: u64 = 8 << 20;
/// Indexes pointing to indexes are followed this deep.
const MAX_DEPTH: usize = 4;

/// A content descriptor: what a blob is, its digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// The platform of a manifest in an index.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// An image index (`index.json`, or a manifest list).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// An image manifest: its config and its layers, bottom first.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// The parts of an image configuration that cloon uses.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfigFile {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub config: Option<ContainerConfig>,
}

/// The image's default process.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerConfig {
    #[serde(rename = "Entrypoint", default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    pub cmd: Option<Vec<String>>,
    #[serde(rename = "Env", default)]
    pub env: Option<Vec<String>>,
    #[serde(rename = "WorkingDir", default)]
    pub working_dir: Option<String>,
}

impl ConfigFile {
    /// The document's `image.config`: Entrypoint then Cmd, Env, WorkingDir.
    pub fn image_config(&self) -> ImageConfig {
        let c = self.config.clone().unwrap_or_default();
        let mut args = c.entrypoint.unwrap_or_default();
        args.extend(c.cmd.unwrap_or_default());
        ImageConfig {
            args,
            env: c.env.unwrap_or_default(),
            cwd: c.working_dir.filter(|w| !w.is_empty()),
        }
    }
}

/// This machine's architecture as OCI names it (`amd64`, `arm64`, ...).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Splits `DIR[:TAG]` as skopeo's `oci:` transport does: at the first `:`, so that a tag may
/// hold colons (`layout:app:v1` is the layout `layout`, tag `app:v1`); a value that names a
/// layout as given (a directory with an `index.json`) stays whole, with no tag.
pub fn parse_ref(value: &str) -> (PathBuf, Option<String>) {
    if Path::new(value).join("index.json").is_file() {
        return (value.into(), None);
    }
    match value.split_once(':') {
        Some((dir, tag)) if !dir.is_empty() && !tag.is_empty() => {
            (dir.into(), Some(tag.to_string()))
        }
        _ => (value.into(), None),
    }
}

/// The hexadecimal part of a `sha256:` digest, checked (so that it is a safe file name).
pub fn sha256_hex(digest: &str) -> Result<&str> {
    let hex = digest.strip_prefix("sha256:").ok_or_else(|| {
        Error::new(
            Code::InvalidConfig,
            format!("the digest {digest:?} is not sha256: cloon reads sha256 blobs only"),
        )
    })?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(Error::config(format!("the digest {digest:?} is malformed")));
    }
    Ok(hex)
}

/// The tags of the layout in `dir`, for shell completion: none when it has no readable
/// `index.json`.
pub fn layout_tags(dir: &Path) -> Vec<String> {
    cloon_core::complete::read_small(&dir.join("index.json"), MAX_JSON)
        .and_then(|bytes| serde_json::from_slice::<Index>(&bytes).ok())
        .map(|index| tags(&index))
        .unwrap_or_default()
}

fn tags(index: &Index) -> Vec<String> {
    let mut tags: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.annotations.get(REF_NAME).cloned())
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

fn platform_matches(d: &Descriptor, arch: &str) -> bool {
    d.platform
        .as_ref()
        .is_some_and(|p| p.os == "linux" && p.architecture == arch)
}

fn describe_platforms(list: &[&Descriptor]) -> String {
    let mut names: Vec<String> = list
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .map(|p| match &p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        })
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// The entry of the top-level index to use: the one tagged `tag`; without a tag, the only image,
/// or the only one for `arch`.
pub fn pick<'a>(index: &'a Index, tag: Option<&str>, arch: &str) -> Result<&'a Descriptor> {
    let candidates: Vec<&Descriptor> = match tag {
        Some(t) => index
            .manifests
            .iter()
            .filter(|d| d.annotations.get(REF_NAME).map(String::as_str) == Some(t))
            .collect(),
        None => index.manifests.iter().collect(),
    };
    match candidates.as_slice() {
        [] if tag.is_some() => Err(Error::new(
            Code::Unknown,
            format!(
                "the layout has no image tagged {:?}: its tags are {}",
                tag.unwrap_or_default(),
                list_or_none(&tags(index))
            ),
        )),
        [] => Err(Error::config("the layout's index.json lists no image")),
        [one] => Ok(one),
        many => {
            let for_arch: Vec<&&Descriptor> =
                many.iter().filter(|d| platform_matches(d, arch)).collect();
            match for_arch.as_slice() {
                [one] => Ok(one),
                _ => Err(Error::invalid(format!(
                    "the layout holds {} images: say which with DIR:TAG (tags: {}; platforms: {})",
                    many.len(),
                    list_or_none(&tags(index)),
                    describe_platforms(many)
                ))),
            }
        }
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// The manifest of an index (or manifest list) for `arch` on Linux.
pub fn pick_platform<'a>(index: &'a Index, arch: &str) -> Result<&'a Descriptor> {
    let all: Vec<&Descriptor> = index.manifests.iter().collect();
    index
        .manifests
        .iter()
        .find(|d| platform_matches(d, arch))
        .ok_or_else(|| {
            Error::new(
                Code::Unknown,
                format!(
                    "the image has no manifest for linux/{arch}: it has {}",
                    describe_platforms(&all)
                ),
            )
        })
}

/// An OCI image layout on disk.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
}

/// Reads `inner` while computing its SHA-256 and counting its bytes.
struct Verifying<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Verifying<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

impl<R: Read> Verifying<R> {
    /// Fails unless what was read is the blob of `desc`.
    fn check(self, desc: &Descriptor, path: &Path) -> Result<()> {
        let hex = format!("{:x}", self.hasher.finalize());
        if self.bytes != desc.size || format!("sha256:{hex}") != desc.digest {
            return Err(Error::new(
                Code::InvalidConfig,
                format!(
                    "the blob {} is damaged: it does not match its digest and size",
                    path.display()
                ),
            )
            .details(format!(
                "expected {} ({} bytes), found sha256:{hex} ({} bytes)",
                desc.digest, desc.size, self.bytes
            )));
        }
        Ok(())
    }
}

impl Layout {
    /// Opens the layout in `dir`: it must have `oci-layout` and `index.json`.
    pub fn open(dir: &Path) -> Result<Layout> {
        let dir = cloon_core::state::absolute(dir)?;
        if !dir.is_dir() {
            return Err(Error::invalid(format!(
                "--from-oci {}: no such directory",
                dir.display()
            )));
        }
        for file in ["oci-layout", "index.json"] {
            if !dir.join(file).is_file() {
                return Err(Error::invalid(format!(
                    "{} is not an OCI image layout: it has no {file} (make one with `skopeo copy docker://IMAGE oci:DIR:TAG` or `umoci init`)",
                    dir.display()
                )));
            }
        }
        Ok(Layout { dir })
    }

    /// The file of a blob.
    pub fn blob_path(&self, desc: &Descriptor) -> Result<PathBuf> {
        Ok(self
            .dir
            .join("blobs/sha256")
            .join(sha256_hex(&desc.digest)?))
    }

    fn open_blob(&self, desc: &Descriptor) -> Result<(PathBuf, std::fs::File)> {
        let path = self.blob_path(desc)?;
        let file = std::fs::File::open(&path).map_err(|e| {
            Error::io(format!("the layout lacks the blob {}", desc.digest), &e)
                .details(format!("{}: {e}", path.display()))
        })?;
        Ok((path, file))
    }

    /// Reads a JSON blob, checked against its descriptor.
    fn json_blob<T: serde::de::DeserializeOwned>(
        &self,
        desc: &Descriptor,
        what: &str,
    ) -> Result<T> {
        if desc.size > MAX_JSON {
            return Err(Error::config(format!(
                "the {what} {} is {} bytes: too large for JSON",
                desc.digest, desc.size
            )));
        }
        let (path, file) = self.open_blob(desc)?;
        let mut reader = Verifying {
            inner: file.take(MAX_JSON + 1),
            hasher: Sha256::new(),
            bytes: 0,
        };
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .context(|| format!("cannot read {}", path.display()))?;
        reader.check(desc, &path)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::config(format!("the {what} {} is not valid JSON", path.display())).details(e)
        })
    }

    /// The manifest and configuration of the image tagged `tag` (or the only one) for `arch`.
    pub fn resolve(&self, tag: Option<&str>, arch: &str) -> Result<(Manifest, ConfigFile)> {
        let path = self.dir.join("index.json");
        let text = std::fs::read(&path).context(|| format!("cannot read {}", path.display()))?;
        let index: Index = serde_json::from_slice(&text).map_err(|e| {
            Error::config(format!("{} is not an OCI index", path.display())).details(e)
        })?;
        let mut desc = pick(&index, tag, arch)?.clone();
        for _ in 0..MAX_DEPTH {
            if INDEX_TYPES.contains(&desc.media_type.as_str()) {
                let inner: Index = self.json_blob(&desc, "image index")?;
                desc = pick_platform(&inner, arch)?.clone();
                continue;
            }
            if !desc.media_type.is_empty() && !MANIFEST_TYPES.contains(&desc.media_type.as_str()) {
                return Err(Error::config(format!(
                    "the layout's entry {} is a {}, not an image manifest or index",
                    desc.digest, desc.media_type
                )));
            }
            let manifest: Manifest = self.json_blob(&desc, "image manifest")?;
            let config: ConfigFile = self.json_blob(&manifest.config, "image configuration")?;
            if !config.architecture.is_empty() && config.architecture != arch {
                return Err(Error::invalid(format!(
                    "the image is for {}/{}, not for this machine's linux/{arch}: pick another tag or platform",
                    config.os, config.architecture
                )));
            }
            return Ok((manifest, config));
        }
        Err(Error::config(format!(
            "the layout's indexes nest more than {MAX_DEPTH} deep"
        )))
    }

    /// Extracts one layer into `dir`, checking the blob against its digest as it is read.
    fn extract_layer(&self, desc: &Descriptor, dir: &Path) -> Result<()> {
        let path = self.blob_path(desc)?;
        explain::shell(&format!(
            "echo {} | sha256sum --check --quiet",
            explain::quote(&format!(
                "{}  {}",
                sha256_hex(&desc.digest)?,
                path.display()
            ))
        ));
        let (path, file) = self.open_blob(desc)?;
        let mut reader = Verifying {
            inner: file,
            hasher: Sha256::new(),
            bytes: 0,
        };
        let extracted = tar::extract(&mut reader, &path.to_string_lossy(), Some(desc.size), dir);
        if !explain::acting() {
            return extracted;
        }
        // tar may stop at the end-of-archive blocks, or at damage: the rest counts too, and a
        // damaged blob is said as such rather than as tar's complaint.
        std::io::copy(&mut reader, &mut std::io::sink())
            .context(|| format!("cannot read {}", path.display()))?;
        reader.check(desc, &path)?;
        extracted
    }
}

/// Layer media types cloon extracts (compression is recognised by magic number anyway).
fn is_layer(media_type: &str) -> bool {
    media_type.is_empty()
        || media_type.starts_with("application/vnd.oci.image.layer.")
        || media_type.starts_with("application/vnd.docker.image.rootfs.")
}

/// Fills `staging` (an empty directory) with the image's layers, stacked; returns its default
/// process. Each layer is extracted in a directory next to `staging` and laid over it; `record`
/// (the run's, when it acts) names each such directory before it is made.
pub fn populate(
    layout: &Layout,
    tag: Option<&str>,
    staging: &Path,
    undo: &mut Undo,
    record: Option<&crate::leftovers::Record>,
) -> Result<ImageConfig> {
    let arch = host_architecture();
    let (manifest, config) = layout.resolve(tag, arch)?;
    explain::note(&format!(
        "the OCI image {}{}: {} layers, each checked against its digest, extracted, then laid over the ones below",
        layout.dir.display(),
        tag.map(|t| format!(":{t}")).unwrap_or_default(),
        manifest.layers.len()
    ));
    let count = manifest.layers.len();
    for (i, layer) in manifest.layers.iter().enumerate() {
        if !is_layer(&layer.media_type) {
            return Err(Error::config(format!(
                "layer {} of the image is a {}, which cloon cannot extract",
                i + 1,
                layer.media_type
            )));
        }
        let dir = PathBuf::from(format!("{}.layer{}", staging.display(), i + 1));
        if explain::step(&["mkdir", &dir.to_string_lossy()]) {
            if let Some(r) = record {
                r.will_make(&dir)?;
            }
            std::fs::create_dir(&dir).context(|| format!("cannot create {}", dir.display()))?;
            let d = dir.clone();
            undo.push(move || {
                let _ = remove_tree(&d);
            });
        }
        layout.extract_layer(layer, &dir)?;
        explain::note(&format!(
            "layer {} of {count} over the ones below: .wh.NAME deletes NAME, .wh..wh..opq hides its directory's lower entries, a directory merges with the one below, anything else replaces it",
            i + 1
        ));
        if explain::acting() {
            whiteout::apply(staging, &dir)?;
        }
        let (s, d) = (staging.to_string_lossy(), dir.to_string_lossy());
        if explain::step(&["rm", "-rf", "--one-file-system", &s]) {
            remove_tree(staging)?;
        }
        if explain::step(&["mv", "-T", &d, &s]) {
            std::fs::rename(&dir, staging)
                .context(|| format!("cannot move {} to {}", dir.display(), staging.display()))?;
        }
    }
    Ok(config.image_config())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(digest_byte: char, media: &str, tag: Option<&str>, arch: Option<&str>) -> Descriptor {
        Descriptor {
            media_type: media.into(),
            digest: format!("sha256:{}", digest_byte.to_string().repeat(64)),
            size: 1,
            platform: arch.map(|a| Platform {
                architecture: a.into(),
                os: "linux".into(),
                variant: None,
            }),
            annotations: tag
                .map(|t| BTreeMap::from([(REF_NAME.to_string(), t.to_string())]))
                .unwrap_or_default(),
        }
    }

    fn index(manifests: Vec<Descriptor>) -> Index {
        Index {
            media_type: None,
            manifests,
        }
    }

    #[test]
    fn references_split_at_the_first_colon() {
        assert_eq!(
            parse_ref("/nonexistent/layout:1.0"),
            ("/nonexistent/layout".into(), Some("1.0".into()))
        );
        assert_eq!(
            parse_ref("/nonexistent/layout:app:v1"),
            ("/nonexistent/layout".into(), Some("app:v1".into()))
        );
        assert_eq!(parse_ref("layout"), ("layout".into(), None));
        assert_eq!(parse_ref("a:b/c"), ("a".into(), Some("b/c".into())));
        assert_eq!(parse_ref("dir:"), ("dir:".into(), None));
        assert_eq!(parse_ref(":tag"), (":tag".into(), None));
    }

    #[test]
    fn an_existing_layout_with_a_colon_in_its_name_is_whole() {
        let dir = std::env::temp_dir().join(format!("cloon-oci-ref-{}", std::process::id()));
        let layout = dir.join("lay:out");
        std::fs::create_dir_all(&layout).expect("layout dir");
        std::fs::write(layout.join("index.json"), "{}").expect("index.json");
        let whole = layout.to_string_lossy().into_owned();
        let parsed = parse_ref(&whole);
        let tagged = parse_ref(&format!("{whole}:v1"));
        std::fs::remove_dir_all(&dir).expect("remove scratch dir");
        assert_eq!(parsed, (layout.clone(), None));
        // Not a layout as a whole: split at the first colon, as skopeo does.
        let first = whole.split_once(':').expect("a colon");
        assert_eq!(
            tagged,
            (PathBuf::from(first.0), Some(format!("{}:v1", first.1)))
        );
    }

    #[test]
    fn digests_must_be_sha256_hex() {
        let ok = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(sha256_hex(&ok).unwrap(), "ab".repeat(32));
        for bad in [
            "sha512:00".to_string(),
            "sha256:../../etc/passwd".into(),
            format!("sha256:{}", "AB".repeat(32)),
            format!("sha256:{}", "a".repeat(63)),
        ] {
            assert!(sha256_hex(&bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn images_are_picked_by_tag_then_platform() {
        let m = MANIFEST_TYPES[0];
        let idx = index(vec![
            desc('a', m, Some("1.0"), None),
            desc('b', m, Some("2.0"), None),
        ]);
        assert!(pick(&idx, Some("2.0"), "amd64")
            .unwrap()
            .digest
            .contains("bbbb"));
        let e = pick(&idx, Some("3.0"), "amd64").unwrap_err();
        assert_eq!(e.code, Code::Unknown);
        assert!(e.msg.contains("1.0, 2.0"), "{}", e.msg);
        let e = pick(&idx, None, "amd64").unwrap_err();
        assert!(e.msg.contains("DIR:TAG"), "{}", e.msg);

        let single = index(vec![desc('c', m, None, None)]);
        assert!(pick(&single, None, "amd64")
            .unwrap()
            .digest
            .contains("cccc"));
        assert!(pick(&index(vec![]), None, "amd64").is_err());

        let multi = index(vec![
            desc('d', m, Some("x"), Some("arm64")),
            desc('e', m, Some("x"), Some("amd64")),
        ]);
        assert!(pick(&multi, Some("x"), "amd64")
            .unwrap()
            .digest
            .contains("eeee"));
        assert!(pick(&multi, None, "arm64").unwrap().digest.contains("dddd"));
    }

    #[test]
    fn manifest_lists_are_followed_to_this_platform() {
        let m = MANIFEST_TYPES[1];
        let list = index(vec![
            desc('a', m, None, Some("arm64")),
            desc('b', m, None, Some("amd64")),
        ]);
        assert!(pick_platform(&list, "amd64")
            .unwrap()
            .digest
            .contains("bbbb"));
        let e = pick_platform(&list, "s390x").unwrap_err();
        assert!(e.msg.contains("linux/amd64, linux/arm64"), "{}", e.msg);
    }

    #[test]
    fn the_default_process_is_entrypoint_then_cmd() {
        let text = r#"{"architecture":"amd64","os":"linux","config":{
            "Entrypoint":["/bin/tini","--"],"Cmd":["sleep","1"],
            "Env":["PATH=/bin","A=b"],"WorkingDir":"/srv"},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let c: ConfigFile = serde_json::from_str(text).unwrap();
        assert_eq!(
            c.image_config(),
            ImageConfig {
                args: ["/bin/tini", "--", "sleep", "1"].map(String::from).into(),
                env: vec!["PATH=/bin".into(), "A=b".into()],
                cwd: Some("/srv".into()),
            }
        );
        let bare: ConfigFile =
            serde_json::from_str(r#"{"config":{"Cmd":null,"WorkingDir":""}}"#).unwrap();
        assert_eq!(bare.image_config(), ImageConfig::default());
    }

    #[test]
    fn layer_media_types() {
        assert!(is_layer("application/vnd.oci.image.layer.v1.tar+zstd"));
        assert!(is_layer(
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        ));
        assert!(!is_layer("application/vnd.oci.image.config.v1+json"));
    }

    #[test]
    fn damaged_blobs_are_refused() {
        let dir = std::env::temp_dir().join(format!("cloon-oci-blob-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        let text = br#"{"manifests":[]}"#;
        let hex = format!("{:x}", Sha256::digest(text));
        std::fs::write(dir.join("blobs/sha256").join(&hex), text).unwrap();
        let layout = Layout { dir: dir.clone() };
        let good = Descriptor {
            media_type: INDEX_TYPES[0].into(),
            digest: format!("sha256:{hex}"),
            size: text.len() as u64,
            platform: None,
            annotations: BTreeMap::new(),
        };
        let idx: Index = layout.json_blob(&good, "index").unwrap();
        assert!(idx.manifests.is_empty());
        let short = Descriptor {
            size: 3,
            ..good.clone()
        };
        let e = layout.json_blob::<Index>(&short, "index").unwrap_err();
        assert!(e.msg.contains("damaged"), "{}", e.msg);
        std::fs::write(dir.join("blobs/sha256").join(&hex), br#"{"manifests":[1]}"#).unwrap();
        assert!(layout.json_blob::<Index>(&good, "index").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
