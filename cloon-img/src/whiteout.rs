//! Stacking the layers of an OCI image: each layer is a tar of the changes to the layers below.
//! A file `.wh.NAME` deletes `NAME` of the layers below; a file `.wh..wh..opq` in a directory
//! hides everything the layers below had in that directory (the layer's own entries stay). Other
//! entries replace what the layers below had at the same path, except that a directory over a
//! directory merges with it. The whiteout files themselves never reach the image.

use cloon_core::state::remove_tree_one_fs;
use cloon_core::{Context, Result};
use std::collections::BTreeSet;
use std::path::Path;

/// The prefix of a whiteout file.
pub const PREFIX: &str = ".wh.";
/// The opaque whiteout: its directory hides the lower layers' entries.
pub const OPAQUE: &str = ".wh..wh..opq";

/// What a directory entry of a layer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    /// `.wh..wh..opq`.
    Opaque,
    /// `.wh.NAME`: NAME of the lower layers is deleted.
    Whiteout(&'a str),
    /// Another `.wh.` file (AUFS bookkeeping such as `.wh..wh.plnk`, or `.wh.` alone): dropped.
    Meta,
    /// A file or directory of the layer.
    Plain,
}

/// Classifies the name of a layer's directory entry.
pub fn classify(name: &str) -> Entry<'_> {
    if name == OPAQUE {
        return Entry::Opaque;
    }
    match name.strip_prefix(PREFIX) {
        None => Entry::Plain,
        Some(target) if target.is_empty() || target == "." || target == ".." => Entry::Meta,
        Some(target) if target.starts_with(".wh.") => Entry::Meta,
        Some(target) => Entry::Whiteout(target),
    }
}

fn names(dir: &Path) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.context(|| format!("cannot list {}", dir.display()))?;
        out.insert(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(out)
}

fn is_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// Puts the layer extracted in `upper` over the tree `lower` (both directories on one
/// filesystem): afterwards `upper` holds the stacked tree, and `lower` only what the layer hid or
/// replaced, for the caller to remove.
pub fn apply(lower: &Path, upper: &Path) -> Result<()> {
    let up = names(upper)?;
    let opaque = up.contains(OPAQUE);
    let hidden: BTreeSet<&str> = up
        .iter()
        .filter_map(|n| match classify(n) {
            Entry::Whiteout(t) => Some(t),
            _ => None,
        })
        .collect();
    let mut merged = BTreeSet::new();
    if !opaque {
        for name in names(lower)? {
            if hidden.contains(name.as_str()) {
                continue;
            }
            let (from, to) = (lower.join(&name), upper.join(&name));
            match std::fs::symlink_metadata(&to) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::rename(&from, &to).context(|| {
                        format!("cannot move {} to {}", from.display(), to.display())
                    })?;
                }
                Ok(m) if m.is_dir() && is_real_dir(&from) => {
                    apply(&from, &to)?;
                    merged.insert(name);
                }
                // The layer's entry replaces the lower one.
                _ => {}
            }
        }
    }
    for name in &up {
        let path = upper.join(name);
        if classify(name) != Entry::Plain {
            remove_tree_one_fs(&path)?;
        } else if !merged.contains(name) && is_real_dir(&path) {
            strip(&path)?;
        }
    }
    Ok(())
}

/// Removes the whiteout files of a directory that is new in its layer (they hide nothing).
pub fn strip(dir: &Path) -> Result<()> {
    for name in names(dir)? {
        let path = dir.join(&name);
        if classify(&name) != Entry::Plain {
            remove_tree_one_fs(&path)?;
        } else if is_real_dir(&path) {
            strip(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    #[test]
    fn names_are_classified() {
        assert_eq!(classify(".wh..wh..opq"), Entry::Opaque);
        assert_eq!(classify(".wh.passwd"), Entry::Whiteout("passwd"));
        assert_eq!(classify(".wh..profile"), Entry::Whiteout(".profile"));
        assert_eq!(classify(".wh..wh.plnk"), Entry::Meta);
        assert_eq!(classify(".wh."), Entry::Meta);
        assert_eq!(classify(".wh.."), Entry::Meta);
        assert_eq!(classify(".wh..."), Entry::Meta);
        assert_eq!(classify("passwd"), Entry::Plain);
        assert_eq!(classify(".whatever"), Entry::Plain);
    }

    fn tree(root: &Path, files: &[&str]) {
        for f in files {
            let p = root.join(f);
            if let Some(dir) = f.strip_suffix('/') {
                fs::create_dir_all(root.join(dir)).unwrap();
            } else {
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(&p, f).unwrap();
            }
        }
    }

    fn listing(root: &Path) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            let mut entries: Vec<PathBuf> = fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            entries.sort();
            for p in entries {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if is_real_dir(&p) {
                    out.push(format!("{rel}/"));
                    walk(root, &p, out);
                } else {
                    out.push(format!(
                        "{rel}={}",
                        fs::read_to_string(&p).unwrap_or_default()
                    ));
                }
            }
        }
        let mut out = Vec::new();
        walk(root, root, &mut out);
        out
    }

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cloon-wh-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("lower")).unwrap();
        fs::create_dir_all(d.join("upper")).unwrap();
        d
    }

    #[test]
    fn whiteouts_delete_opaque_directories_hide_and_directories_merge() {
        let d = scratch("apply");
        let (lower, upper) = (d.join("lower"), d.join("upper"));
        tree(
            &lower,
            &["a/x", "a/y", "b/z", "b/sub/deep", "c", "d/e/f", "g/", "h"],
        );
        tree(
            &upper,
            &[
                "a/.wh.x",
                "a/w",
                "b/.wh..wh..opq",
                "b/n",
                ".wh.c",
                "d/e/g",
                "new/.wh.ghost",
                "new/k",
                "g",
                "h/",
                ".wh..wh.plnk",
            ],
        );
        apply(&lower, &upper).unwrap();
        assert_eq!(
            listing(&upper),
            [
                "a/",
                "a/w=a/w",
                "a/y=a/y",
                "b/",
                "b/n=b/n",
                "d/",
                "d/e/",
                "d/e/f=d/e/f",
                "d/e/g=d/e/g",
                "g=g",
                "h/",
                "new/",
                "new/k=new/k",
            ]
        );
        // What was hidden or replaced stays below, for the caller to remove.
        let left = listing(&lower);
        for gone in ["a/x=a/x", "b/z=b/z", "c=c", "g/", "h=h"] {
            assert!(left.iter().any(|l| l == gone), "{gone} not in {left:?}");
        }
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_first_layer_loses_its_whiteouts_and_a_file_can_come_back() {
        let d = scratch("first");
        let (lower, upper) = (d.join("lower"), d.join("upper"));
        tree(&upper, &["etc/.wh.gone", "etc/passwd", ".wh..wh..opq"]);
        apply(&lower, &upper).unwrap();
        assert_eq!(listing(&upper), ["etc/", "etc/passwd=etc/passwd"]);
        // A layer that deletes a file and adds it again keeps its own.
        let again = d.join("again");
        tree(&again, &["etc/.wh.passwd", "etc/passwd"]);
        fs::write(again.join("etc/passwd"), "new").unwrap();
        apply(&upper, &again).unwrap();
        assert_eq!(listing(&again), ["etc/", "etc/passwd=new"]);
        fs::remove_dir_all(&d).unwrap();
    }
}
