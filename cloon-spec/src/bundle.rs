//! The OCI bundle on disk: a directory holding `config.json` (the root filesystem stays where it
//! is; `root.path` is absolute).

use cloon_core::{explain, Context, Error, Result, StateDir};
use std::fs;
use std::path::{Path, PathBuf};

/// The configuration file of the bundle `dir`.
pub fn config_path(dir: &Path) -> PathBuf {
    dir.join("config.json")
}

/// Writes `config` as `dir/config.json` (mode 0600), creating `dir` (mode 0700) under the state
/// directory, through the state layer (no link followed); the file appears whole or not at all.
pub fn write(state: &StateDir, dir: &Path, config: &str) -> Result<PathBuf> {
    state.create_dir(dir, 0o700)?;
    let path = config_path(dir);
    state.write_file(&path, config.as_bytes())?;
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
pub fn remove(state: &StateDir, dir: &Path) -> Result<()> {
    if !dir.exists() || !explain::step(&["rm", "-rf", "--one-file-system", &dir.to_string_lossy()])
    {
        return Ok(());
    }
    state.remove_tree(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_load_remove() {
        let dir = std::env::temp_dir().join(format!("cloon-spec-bundle-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let state = StateDir::new(Some(&dir)).unwrap();
        state.ensure_root().unwrap();
        let spec = oci_spec::runtime::Spec::default();
        let text = serde_json::to_string(&spec).unwrap();
        let path = write(&state, &dir.join("bundle"), &text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(path, dir.join("bundle/config.json"));
        assert_eq!(load(&path).unwrap(), spec);
        assert!(!dir.join("bundle/config.json.tmp").exists());
        fs::write(&path, "{").unwrap();
        assert_eq!(
            load(&path).unwrap_err().code,
            cloon_core::Code::InvalidConfig
        );
        remove(&state, &dir.join("bundle")).unwrap();
        remove(&state, &dir.join("bundle")).unwrap();
        assert!(!dir.join("bundle").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
