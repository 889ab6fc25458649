//! `inspect` on hostile names and links: `path_unsafe` and `symlink_unsafe`.

use crate::build::{Spec, file, minimal, tar_gz, with, zip};
use crate::refused;

fn code_of(extra: Vec<Spec>) -> &'static str {
    let err = refused(&tar_gz(&with(minimal(), extra)));
    // Every message says what to do, not just what failed.
    assert!(err.to_string().contains("inside the bundle"), "{err}");
    err.code()
}

#[test]
fn absolute_and_parent_paths_are_unsafe() {
    assert_eq!(code_of(vec![file("/etc/cron.d/x", "")]), "path_unsafe");
    assert_eq!(code_of(vec![file("../escape", "")]), "path_unsafe");
    assert_eq!(code_of(vec![file("lib/../../escape", "")]), "path_unsafe");
    assert_eq!(code_of(vec![file("lib\\x", "")]), "path_unsafe");
}

#[test]
fn zip_names_are_checked_too() {
    let err = refused(&zip(&with(minimal(), vec![file("../../escape", "")])));
    assert_eq!(err.code(), "path_unsafe");
}

#[test]
fn duplicate_paths_and_clashes_are_unsafe() {
    assert_eq!(code_of(vec![file("main.py", "again")]), "path_unsafe");
    assert_eq!(code_of(vec![file("main.py/inner", "")]), "path_unsafe");
    assert_eq!(code_of(vec![file("lib/a", ""), file("lib", "")]), "path_unsafe");
}

#[test]
fn entries_under_a_symlink_are_unsafe_whatever_the_order() {
    // The classic escape: a link to somewhere, then a file written through it.
    assert_eq!(code_of(vec![Spec::Symlink("out", "lib"), file("out/x", "")]), "path_unsafe");
    assert_eq!(code_of(vec![file("out/x", ""), Spec::Symlink("out", "lib")]), "path_unsafe");
}

#[test]
fn absolute_and_escaping_link_targets_are_unsafe() {
    assert_eq!(code_of(vec![Spec::Symlink("etc", "/etc")]), "symlink_unsafe");
    assert_eq!(code_of(vec![Spec::Symlink("up", "..")]), "symlink_unsafe");
    assert_eq!(code_of(vec![Spec::Symlink("lib/up", "../../x")]), "symlink_unsafe");
    let err = refused(&zip(&with(minimal(), vec![Spec::Symlink("etc", "/etc/passwd")])));
    assert_eq!(err.code(), "symlink_unsafe");
}

#[test]
fn a_link_escaping_through_another_link_is_unsafe() {
    // `a/..` looks like the root, but `a` is itself the root, so `b` is its parent.
    assert_eq!(code_of(vec![Spec::Symlink("a", "."), Spec::Symlink("b", "a/..")]), "symlink_unsafe");
    assert_eq!(code_of(vec![Spec::Symlink("b", "a/.."), Spec::Symlink("a", ".")]), "symlink_unsafe");
}

#[test]
fn hard_links_must_name_an_earlier_regular_file() {
    assert_eq!(code_of(vec![Spec::HardLink("h", "/etc/passwd")]), "symlink_unsafe");
    assert_eq!(code_of(vec![Spec::HardLink("h", "../outside")]), "symlink_unsafe");
    assert_eq!(code_of(vec![Spec::HardLink("h", "later.py"), file("later.py", "")]), "symlink_unsafe");
    assert_eq!(code_of(vec![Spec::Dir("lib/"), Spec::HardLink("h", "lib")]), "symlink_unsafe");
}
