//! Names of entries inside a bundle, parsed from untrusted archive bytes.
//!
//! An [`EntryPath`] is the only form in which a name reaches the code that writes files:
//! relative, `/`-separated, UTF-8, with `.` and empty components dropped and `..`,
//! absolute paths, backslashes and NUL bytes refused. `./agent.toml` and `agent.toml`
//! therefore parse to the same path, and the empty path is the bundle root itself.
//!
//! Link targets are resolved here too, lexically, against the link's own folder.

/// Longest accepted path, in bytes (Linux `PATH_MAX`).
const MAX_PATH_BYTES: usize = 4096;
/// Longest accepted component, in bytes (Linux `NAME_MAX`).
const MAX_COMPONENT_BYTES: usize = 255;

/// A normalized, safe, relative path inside a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct EntryPath(String);

impl EntryPath {
    /// Parses an entry name as stored in an archive. The error is the reason it is unsafe,
    /// worded to follow the name in a message.
    pub(crate) fn parse(raw: &[u8]) -> Result<EntryPath, &'static str> {
        let text = std::str::from_utf8(raw).map_err(|_| "is not valid UTF-8")?;
        if text.contains('\0') {
            return Err("contains a NUL byte");
        }
        if text.contains('\\') {
            // A backslash is a separator on Windows and an ordinary character here; refuse
            // it rather than guess which one the author meant.
            return Err("contains a backslash (use / as the separator)");
        }
        if text.starts_with('/') {
            return Err("is an absolute path");
        }
        if text.len() > MAX_PATH_BYTES {
            return Err("is longer than 4096 bytes");
        }
        let mut normalized = String::with_capacity(text.len());
        for component in text.split('/') {
            match component {
                "" | "." => continue,
                ".." => return Err("contains a `..` component"),
                name if name.len() > MAX_COMPONENT_BYTES => {
                    return Err("has a component longer than 255 bytes");
                }
                name => {
                    if !normalized.is_empty() {
                        normalized.push('/');
                    }
                    normalized.push_str(name);
                }
            }
        }
        Ok(EntryPath(normalized))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// True for the bundle root itself (`./` entries).
    pub(crate) fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The folder holding this entry; empty for entries at the root.
    pub(crate) fn parent(&self) -> &str {
        self.0.rsplit_once('/').map_or("", |(parent, _)| parent)
    }

    /// Every enclosing folder, outermost first, excluding the root and the path itself.
    pub(crate) fn ancestors(&self) -> impl Iterator<Item = &str> {
        self.0.match_indices('/').map(|(index, _)| &self.0[..index])
    }
}

/// Resolves a link target lexically against the folder `dir` that holds the link. Returns
/// the path it names inside the bundle, or the reason it is unsafe. This does not follow
/// other links on the way; [`crate::walk`] does that once the whole bundle has been read.
pub(crate) fn resolve_link_target(dir: &str, target: &str) -> Result<String, &'static str> {
    if target.is_empty() {
        return Err("has an empty target");
    }
    if target.starts_with('/') {
        return Err("has an absolute target");
    }
    if target.contains('\0') {
        return Err("has a target containing a NUL byte");
    }
    if target.len() > MAX_PATH_BYTES {
        return Err("has a target longer than 4096 bytes");
    }
    let mut stack: Vec<&str> = dir.split('/').filter(|c| !c.is_empty()).collect();
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                if stack.pop().is_none() {
                    return Err("points outside the bundle");
                }
            }
            name => stack.push(name),
        }
    }
    Ok(stack.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &str) -> Result<String, &'static str> {
        EntryPath::parse(raw.as_bytes()).map(|p| p.as_str().to_owned())
    }

    #[test]
    fn dot_and_empty_components_are_dropped() {
        assert_eq!(parsed("./agent.toml"), Ok("agent.toml".to_owned()));
        assert_eq!(parsed("a//b/./c/"), Ok("a/b/c".to_owned()));
        assert_eq!(parsed("./"), Ok(String::new()));
    }

    #[test]
    fn escaping_names_are_refused() {
        assert!(parsed("/etc/passwd").is_err());
        assert!(parsed("a/../../b").is_err());
        assert!(parsed("a/../b").is_err(), "`..` is refused even when it stays inside");
        assert!(parsed("a\\b").is_err());
        assert!(parsed("a\0b").is_err());
        assert!(EntryPath::parse(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn ancestors_and_parent_follow_the_components() {
        let path = EntryPath::parse(b"a/b/c").unwrap();
        assert_eq!(path.ancestors().collect::<Vec<_>>(), vec!["a", "a/b"]);
        assert_eq!(path.parent(), "a/b");
        assert_eq!(EntryPath::parse(b"top").unwrap().parent(), "");
    }

    #[test]
    fn link_targets_resolve_against_the_links_folder() {
        assert_eq!(resolve_link_target("a/b", "../c"), Ok("a/c".to_owned()));
        assert_eq!(resolve_link_target("", "lib/x.so"), Ok("lib/x.so".to_owned()));
        assert_eq!(resolve_link_target("a", ".."), Ok(String::new()));
        assert!(resolve_link_target("a", "../..").is_err());
        assert!(resolve_link_target("", "/etc").is_err());
    }
}
