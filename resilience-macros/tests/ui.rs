//! Compile-time behaviour of `#[resilient_operation]`: what compiles, and the errors
//! (with their spans) for everything the macro rejects.
//!
//! Regenerate the expected `.stderr` files with `TRYBUILD=overwrite` after a deliberate
//! change to a message, and review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
