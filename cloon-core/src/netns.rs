//! The document's `--netns NAME|PATH` convention, shared by the tools that take a network
//! namespace: a value with a `/` is the path of an existing namespace file, anything else the name
//! of one under `/run/netns`, as with iproute2.

use crate::error::{Error, Result};
use crate::{name, state};
use std::path::{Path, PathBuf};

/// Where named namespaces live, as with iproute2.
pub const RUN_DIR: &str = "/run/netns";

/// The namespace `--netns` designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A name: the namespace file `/run/netns/NAME` (which cloon-netns creates and owns).
    Named(String),
    /// The path of an existing namespace file (which cloon-netns uses but never deletes).
    Existing(PathBuf),
}

impl Target {
    /// Reads `--netns`: a value with a `/` is a path, anything else a name under `/run/netns`.
    pub fn parse(value: &str) -> Result<Target> {
        if value.contains('/') {
            let path = state::absolute(Path::new(value))?;
            if path.file_name().is_none() {
                return Err(Error::invalid(format!(
                    "--netns {value} does not name a file: give the namespace's file, \
                     e.g. /run/netns/cloonix_1_1"
                )));
            }
            return Ok(Target::Existing(path));
        }
        name::netns(value).map_err(|e| {
            Error::invalid(format!(
                "--netns: {} (or give a path with a '/' to use an existing namespace)",
                e.msg
            ))
        })?;
        Ok(Target::Named(value.to_string()))
    }

    /// The namespace's name: its own for a name, the file name for a path.
    pub fn name(&self) -> String {
        match self {
            Target::Named(name) => name.clone(),
            Target::Existing(path) => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    /// The namespace file.
    pub fn path(&self) -> PathBuf {
        match self {
            Target::Named(name) => Path::new(RUN_DIR).join(name),
            Target::Existing(path) => path.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Code;

    #[test]
    fn names_and_paths() {
        let t = Target::parse("cloonix_1_1").unwrap();
        assert_eq!(t, Target::Named("cloonix_1_1".into()));
        assert_eq!(t.path(), Path::new("/run/netns/cloonix_1_1"));
        assert_eq!(t.name(), "cloonix_1_1");
        let t = Target::parse("/var/run/netns/x1").unwrap();
        assert_eq!(t, Target::Existing("/var/run/netns/x1".into()));
        assert_eq!(t.name(), "x1");
        assert!(matches!(Target::parse("./ns").unwrap(), Target::Existing(p) if p.is_absolute()));
    }

    #[test]
    fn bad_names_are_refused_before_anything() {
        for bad in ["", "..", "a b", "-x", "ns;rm"] {
            let e = Target::parse(bad).unwrap_err();
            assert_eq!(e.code, Code::InvalidArgument, "{bad}");
            assert!(e.msg.starts_with("--netns: "), "{}", e.msg);
        }
        assert_eq!(Target::parse("/").unwrap_err().code, Code::InvalidArgument);
    }
}
