//! Validation of every name cloon turns into a path, a namespace or an interface, before anything
//! is touched.

use crate::error::{Error, Result};

/// Longest container or namespace name.
pub const MAX_NAME: usize = 64;
/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

fn check_chars(kind: &str, name: &str, max: usize) -> Result<()> {
    let what = || format!("{kind} \"{}\"", name.escape_debug());
    if name.is_empty() {
        return Err(Error::invalid(format!("the {kind} is empty: give a name")));
    }
    if name.len() > max {
        return Err(Error::invalid(format!(
            "{} is {} bytes long: use at most {max}",
            what(),
            name.len()
        )));
    }
    if name == "." || name == ".." {
        return Err(Error::invalid(format!("{} is not a usable name", what())));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_.-".contains(*c)))
    {
        return Err(Error::invalid(format!(
            "{} contains {:?}: use only letters, digits, '_', '.' and '-'",
            what(),
            bad
        )));
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(Error::invalid(format!(
            "{} must start with a letter or a digit",
            what()
        )));
    }
    Ok(())
}

/// A container name: also the name of its state directory, its hostname and its runtime id.
pub fn container(name: &str) -> Result<()> {
    check_chars("container name", name, MAX_NAME)
}

/// A network namespace name: a file under `/run/netns`.
pub fn netns(name: &str) -> Result<()> {
    check_chars("namespace name", name, MAX_NAME)
}

/// A network interface name: at most 15 bytes.
pub fn interface(name: &str) -> Result<()> {
    check_chars("interface name", name, MAX_IFNAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_articles_names() {
        container("Cloon1").unwrap();
        netns("cloonix_1_1").unwrap();
        interface("vgt_1_1_0").unwrap();
        interface("eth0").unwrap();
        interface("abcdefghijklmno").unwrap();
    }

    #[test]
    fn refuses_what_could_escape_or_confuse() {
        for bad in [
            "", ".", "..", "a/b", "../x", "a b", "a\nb", "a\0", "-x", ".hidden", "é",
        ] {
            assert!(container(bad).is_err(), "{bad:?} accepted");
        }
        assert!(container(&"a".repeat(65)).is_err());
        container(&"a".repeat(64)).unwrap();
    }

    #[test]
    fn interface_names_fit_ifnamsiz() {
        let err = interface("abcdefghijklmnop").unwrap_err();
        assert!(err.msg.contains("16 bytes"), "{}", err.msg);
        assert!(interface("eth0:1").is_err());
    }
}
