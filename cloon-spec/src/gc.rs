//! `cloon-spec gc`: finds what cloon-spec left behind (a tool killed halfway, a record or a
//! bundle lost) and removes it, by its records and by the place its layout gives each bundle
//! (`<state>/<name>/bundle`), never by names that merely look like cloon's. Three passes:
//!
//! 1. every record whose `config.json` is missing or no longer parses is brought down by the
//!    same `down` as `cloon-spec down`; healthy ones, those a running tool holds locked, and
//!    those a live container uses (see [`crate::users`]) are kept;
//! 2. every bundle directory that no record names is removed (never across a mount point),
//!    unless a live container uses it;
//! 3. the empty state directories are removed.
//!
//! The passes are the stage skeleton's ([`cloon_core::stage::collect`]): this module judges a
//! record ([`judge`]) and removes a bundle no record names ([`stray_bundle`]).

use crate::{bundle, bundle_dir, SpecRecord};
use cloon_core::gc::Report;
use cloon_core::stage::Verdict;
use cloon_core::{explain, inuse, Result, StateDir};
use std::path::Path;

/// Pass 1, for the skeleton's pass over the records: a record whose `config.json` is missing or
/// broken is brought down, unless a live container uses the bundle.
pub fn judge(state: &StateDir, name: &str, record: &SpecRecord) -> Result<Verdict> {
    let Some(why) = partly_gone(record) else {
        return Ok(Verdict::Keep("healthy: its config.json parses".into()));
    };
    let users = crate::users(state, name)?;
    Ok(if users.is_empty() {
        Verdict::Down(why)
    } else {
        Verdict::Keep(format!("{why}, but in use by {}", inuse::summary(&users)))
    })
}

/// Pass 2, for a container directory without a record: its bundle directory is removed, unless
/// a live container uses it.
pub fn stray_bundle(state: &StateDir, name: &str, report: &mut Report) -> Result<()> {
    let bundle = bundle_dir(state, name)?;
    if !bundle.exists() {
        return Ok(());
    }
    let shown = bundle.display().to_string();
    match crate::users(state, name) {
        Err(e) => report.failed("bundle", &shown, e),
        Ok(users) if !users.is_empty() => {
            let why = format!("in use by {}", inuse::summary(&users));
            report.keep("bundle", &shown, why);
        }
        Ok(_) => {
            let outcome = bundle::remove(state, &bundle).map(|()| explain::acting());
            report.found(
                "bundle",
                &shown,
                "a bundle directory no record names",
                outcome,
            );
        }
    }
    Ok(())
}

/// Why a recorded bundle counts as partly gone, if it does: its `config.json` is missing or no
/// longer parses.
pub fn partly_gone(record: &SpecRecord) -> Option<String> {
    let config = Path::new(&record.config);
    if !config.is_file() {
        return Some(format!(
            "partly gone: its config.json {} is missing",
            config.display()
        ));
    }
    bundle::load(config)
        .err()
        .map(|e| format!("partly gone: {}: {}", e.msg, e.details))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn gc_removes_broken_records_and_stray_bundles_and_keeps_healthy_ones() {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let root = std::env::temp_dir().join(format!("cloon-spec-gc-{}", std::process::id()));
        // The root filesystem next to the state directory, which holds only what tools make.
        let rootfs = root.with_extension("rootfs");
        let _ = fs::remove_dir_all(&root);
        let _ = fs::remove_dir_all(&rootfs);
        let st = StateDir::new(Some(&root)).unwrap();
        let bin = rootfs.join("bin");
        fs::create_dir_all(&bin).unwrap();
        fs::write(bin.join("sleep"), "").unwrap();
        fs::set_permissions(bin.join("sleep"), fs::Permissions::from_mode(0o755)).unwrap();
        for name in ["Good", "Lost", "Bad"] {
            let args = crate::UpArgs {
                name: Some(name.into()),
                rootfs: Some(rootfs.clone()),
                ..Default::default()
            };
            crate::up(&st, &args, None).unwrap();
        }
        fs::remove_file(root.join("Lost/bundle/config.json")).unwrap();
        fs::write(root.join("Bad/bundle/config.json"), "{").unwrap();
        // A bundle without its record, and an empty directory (private, as tools make them).
        let private = |dir: &str| {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root.join(dir))
                .unwrap();
        };
        private("Stray/bundle");
        fs::write(root.join("Stray/bundle/config.json"), "{}").unwrap();
        private("Empty");
        // Not a bundle: another tool's file.
        private("Other");
        fs::write(root.join("Other/netns.json"), "{}").unwrap();

        let report = cloon_core::stage::collect::<crate::stage::Spec>(&st).unwrap();
        let found: Vec<&str> = report.found.iter().map(|i| i.name.as_str()).collect();
        let stray = root.join("Stray/bundle").display().to_string();
        let empty = root.join("Empty").display().to_string();
        let stray_dir = root.join("Stray").display().to_string();
        assert_eq!(
            found,
            [
                "Bad",
                "Lost",
                stray.as_str(),
                empty.as_str(),
                stray_dir.as_str()
            ]
        );
        assert!(report.found.iter().all(|i| i.removed == Some(true)));
        assert!(report.errors.is_empty());
        let kept: Vec<&str> = report.kept.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(kept, ["Good"]);
        assert!(root.join("Good/bundle/config.json").is_file());
        for gone in ["Bad", "Lost", "Stray", "Empty"] {
            assert!(!root.join(gone).exists(), "{gone}");
        }
        assert!(root.join("Other/netns.json").exists());
        cloon_core::stage::down::<crate::stage::Spec>(&st, "Good", &cloon_core::stage::NoFlags {})
            .unwrap();
        let _ = fs::remove_dir_all(&root);
        let _ = fs::remove_dir_all(&rootfs);
    }
}
