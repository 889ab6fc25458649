//! Checking that symlinks stay inside the bundle once every link is known.
//!
//! A lexical check of each target alone is not enough: with `a -> .` and `b -> a/..`, the
//! target of `b` looks like the root, but the kernel resolves `a` first and lands in the
//! root's parent. So targets are resolved here the way the kernel would, component by
//! component, expanding every symlink of the bundle met on the way. A path that climbs
//! above the root anywhere is refused. Work is bounded so that a bundle full of nested
//! links cannot make the check slow.

use std::collections::BTreeMap;

use crate::BundleError;
use crate::entry_path::EntryPath;
use crate::walk::Node;

/// Links followed while resolving one target, as the kernel's `ELOOP` limit.
const MAX_HOPS: u32 = 40;
/// Components visited over the whole bundle before giving up.
const MAX_STEPS: u64 = 200_000;

/// Refuses the first symlink whose target, followed through the bundle's other links,
/// leaves the bundle root. Targets that stay inside but name nothing are allowed.
pub(crate) fn check_symlinks(
    tree: &BTreeMap<String, Node>,
    symlinks: &[(EntryPath, String)],
) -> Result<(), BundleError> {
    let mut resolver = Resolver { tree, steps: 0 };
    for (path, target) in symlinks {
        let mut hops = 0;
        let mut stack: Vec<String> = split(path.parent());
        resolver.resolve(&mut stack, target, &mut hops).map_err(|reason| BundleError::SymlinkUnsafe {
            path: path.as_str().to_owned(),
            target: target.clone(),
            reason,
        })?;
    }
    Ok(())
}

struct Resolver<'a> {
    tree: &'a BTreeMap<String, Node>,
    steps: u64,
}

impl Resolver<'_> {
    /// Walks `target` from the folder `stack`, leaving in `stack` the folder it names.
    fn resolve(&mut self, stack: &mut Vec<String>, target: &str, hops: &mut u32) -> Result<(), &'static str> {
        if target.starts_with('/') {
            return Err("reaches an absolute path through another link");
        }
        for component in target.split('/') {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return Err("is part of a chain of links too long to check");
            }
            match component {
                "" | "." => {}
                ".." => {
                    if stack.pop().is_none() {
                        return Err("points outside the bundle");
                    }
                }
                name => {
                    stack.push(name.to_owned());
                    if let Some(Node::Symlink(next)) = self.tree.get(&stack.join("/")) {
                        *hops += 1;
                        if *hops > MAX_HOPS {
                            return Err("is part of a loop of links");
                        }
                        stack.pop();
                        self.resolve(stack, next, hops)?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn split(folder: &str) -> Vec<String> {
    folder.split('/').filter(|c| !c.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(links: &[(&str, &str)]) -> Result<(), BundleError> {
        let mut tree = BTreeMap::new();
        let mut symlinks = Vec::new();
        for (path, target) in links {
            tree.insert((*path).to_owned(), Node::Symlink((*target).to_owned()));
            symlinks.push((EntryPath::parse(path.as_bytes()).unwrap(), (*target).to_owned()));
        }
        check_symlinks(&tree, &symlinks)
    }

    #[test]
    fn links_inside_the_bundle_pass() {
        assert!(check(&[("lib/current", "v2"), ("run", "lib/current/run.sh")]).is_ok());
        assert!(check(&[("a/up", "..")]).is_ok());
    }

    #[test]
    fn a_link_that_escapes_through_another_link_is_refused() {
        let err = check(&[("a", "."), ("b", "a/..")]).unwrap_err();
        assert_eq!(err.code(), "symlink_unsafe");
        let err = check(&[("d/a", ".."), ("b", "d/a/../x")]).unwrap_err();
        assert_eq!(err.code(), "symlink_unsafe");
    }

    #[test]
    fn loops_are_refused_not_followed_forever() {
        let err = check(&[("a", "b/x"), ("b", "a/x")]).unwrap_err();
        assert_eq!(err.code(), "symlink_unsafe");
    }
}
