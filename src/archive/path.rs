//! Member path sanitizing: the one place that decides what a stored name becomes in the tree.

/// A stored member name turned into safe path components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanPath {
    /// Components, none empty, `.` or `..`, none containing `/` or NUL.
    pub components: Vec<Vec<u8>>,
    /// True when the stored name had `..` or was absolute: it was clamped into the root.
    pub was_clamped: bool,
}

/// Normalizes a stored name lexically: strips leading `/` and `./`, drops empty and `.`
/// components, resolves `..` against what precedes it and clamps at the root (so nothing
/// escapes), and cuts the name at the first NUL (C readers stop there too).
/// Returns `None` for a name that is the root itself (`./`, empty).
pub fn normalize(raw: &[u8]) -> Option<CleanPath> {
    let raw = match raw.iter().position(|&b| b == 0) {
        Some(nul) => &raw[..nul],
        None => raw,
    };
    let mut was_clamped = raw.first() == Some(&b'/');
    let mut components: Vec<Vec<u8>> = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                was_clamped = true;
                components.pop();
            }
            _ => components.push(part.to_vec()),
        }
    }
    if components.is_empty() { None } else { Some(CleanPath { components, was_clamped }) }
}

/// Joins clean components back into a `/`-separated path.
pub fn join(components: &[Vec<u8>]) -> Vec<u8> {
    components.join(&b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> Option<String> {
        normalize(s.as_bytes()).map(|c| String::from_utf8(join(&c.components)).unwrap())
    }

    #[test]
    fn strips_dots_slashes_and_clamps_parent_refs() {
        assert_eq!(norm("././foo"), Some("foo".into()));
        assert_eq!(norm("root/./bar"), Some("root/bar".into()));
        assert_eq!(norm("root/../ufo"), Some("ufo".into()));
        assert_eq!(norm("../../etc/passwd"), Some("etc/passwd".into()));
        assert_eq!(norm("/abs//x/"), Some("abs/x".into()));
        assert_eq!(norm("./"), None);
        assert_eq!(norm(""), None);
        assert_eq!(norm("a\0b/c"), Some("a".into()));
        assert!(normalize(b"root/../ufo").unwrap().was_clamped);
        assert!(!normalize(b"a/b").unwrap().was_clamped);
    }
}
