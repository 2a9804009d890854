//! The OCI bundle on disk: a directory holding `config.json` (the root filesystem stays where it
//! is; `root.path` is absolute).

use cloon_core::{explain, Context, Error, Result};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The configuration file of the bundle `dir`.
pub fn config_path(dir: &Path) -> PathBuf {
    dir.join("config.json")
}

/// Writes `config` as `dir/config.json`, creating `dir`; the file appears whole or not at all.
pub fn write(dir: &Path, config: &str) -> Result<PathBuf> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .context(|| format!("cannot create the bundle directory {}", dir.display()))?;
    let path = config_path(dir);
    let tmp = dir.join("config.json.tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(config.as_bytes())
        .and_then(|()| file.sync_all())
        .context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, &path).context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Says, with `--explain` or `--dry-run`, the shell commands that write `config` as [`write`]
/// does: `mkdir`, `cat` with a here-document holding the exact bytes, `chmod`. Returns whether to
/// act.
pub fn explain_write(dir: &Path, config: &str) -> bool {
    let path = config_path(dir);
    let (d, p) = (
        explain::quote(&dir.to_string_lossy()),
        explain::quote(&path.to_string_lossy()),
    );
    explain::shell(&format!("mkdir -p -m 700 {d}"));
    // No line of a JSON text is `EOF` (its strings cannot hold a raw newline), and the
    // configuration ends with a newline (spec::to_json), so the here-document has its exact bytes.
    let newline = if config.ends_with('\n') { "" } else { "\n" };
    explain::shell(&format!("cat > {p} <<'EOF'\n{config}{newline}EOF"));
    explain::shell(&format!("chmod 600 {p}"))
}

/// Reads and parses the bundle's configuration.
pub fn load(config: &Path) -> Result<oci_spec::runtime::Spec> {
    let text =
        fs::read_to_string(config).context(|| format!("cannot read {}", config.display()))?;
    let bad = |e: &dyn std::fmt::Display| {
        Error::config(format!(
            "{} is not a valid OCI configuration",
            config.display()
        ))
        .details(e)
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(&e))?;
    if !value.is_object() || value.get("root").is_none() || value.get("process").is_none() {
        return Err(bad(&"it is not an object with root and process"));
    }
    serde_json::from_value(value).map_err(|e| bad(&e))
}

/// Removes the bundle directory (`rm -rf --one-file-system`, said with `--explain`); a missing
/// one is already removed. Never crosses a mount point.
pub fn remove(dir: &Path) -> Result<()> {
    if !dir.exists() || !explain::step(&["rm", "-rf", "--one-file-system", &dir.to_string_lossy()])
    {
        return Ok(());
    }
    cloon_core::state::remove_tree_one_fs(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_load_remove() {
        let dir = std::env::temp_dir().join(format!("cloon-spec-bundle-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let spec = oci_spec::runtime::Spec::default();
        let text = serde_json::to_string(&spec).unwrap();
        let path = write(&dir.join("bundle"), &text).unwrap();
        assert_eq!(path, dir.join("bundle/config.json"));
        assert_eq!(load(&path).unwrap(), spec);
        assert!(!dir.join("bundle/config.json.tmp").exists());
        fs::write(&path, "{").unwrap();
        assert_eq!(
            load(&path).unwrap_err().code,
            cloon_core::Code::InvalidConfig
        );
        remove(&dir.join("bundle")).unwrap();
        remove(&dir.join("bundle")).unwrap();
        assert!(!dir.join("bundle").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
