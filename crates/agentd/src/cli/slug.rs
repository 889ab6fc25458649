//! Default slugs: the CLI derives an agent's slug from its manifest name and a
//! workspace's slug from its display name, unless the user passes one.

use agentd_core::Slug;

/// A slug from a human name: lowercase ASCII letters and digits, everything else folded
/// into single dashes, at most 63 characters. `None` when nothing usable is left.
pub fn slugify(name: &str) -> Option<String> {
    let mut slug = String::new();
    for c in name.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.truncate(63);
    let slug = slug.trim_end_matches('-').to_owned();
    Slug::parse(&slug).ok().map(|_| slug)
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn names_become_lowercase_dashed_slugs() {
        assert_eq!(slugify("python-echo").as_deref(), Some("python-echo"));
        assert_eq!(slugify("My Agent  v2!").as_deref(), Some("my-agent-v2"));
        assert_eq!(slugify("__x__").as_deref(), Some("x"));
        assert_eq!(slugify("Ünïcode").as_deref(), Some("n-code"));
        assert_eq!(slugify(&"a".repeat(80)).map(|s| s.len()), Some(63));
    }

    #[test]
    fn a_name_without_letters_or_digits_has_no_slug() {
        assert_eq!(slugify("!!!"), None);
        assert_eq!(slugify(""), None);
    }
}
