//! Expansion tests for the return-type check and the `crate` argument: the run passes
//! through one `ResilientResult` bound spanned at the error type, and every runtime path
//! starts at the `crate` argument when one is given.
//!
//! Where the check is spanned is shown by the UI tests (`tests/ui/fail/*result*`).

use quote::quote;

use crate::tests::{check, errors};

#[test]
fn a_result_alias_is_checked_at_the_alias() {
    check(
        "a_result_alias_is_checked_at_the_alias",
        quote!(name = "count_rows"),
        quote! {
            async fn count(&self, table: &str) -> PgResult<u64> {
                self.query_scalar(table).await
            }
        },
    );
}

#[test]
fn a_facade_crate_names_the_path_of_resilience_core() {
    check(
        "a_facade_crate_names_the_path_of_resilience_core",
        quote!(policy = "db", crate = "my_facade::resilience"),
        quote! {
            async fn load(table: &str) -> Result<u64, LoadError> {
                Ok(table.len() as u64)
            }
        },
    );
}

#[test]
fn the_crate_argument_takes_a_path() {
    let found = errors(
        quote!(crate = "not a path!", policy = "db"),
        quote!(
            async fn f() -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert_eq!(
        found,
        [
            "`crate` takes the path `resilience_core` is re-exported under: \
             write `crate = \"my_facade::resilience\"`"
        ]
    );
    let found = errors(
        quote!(crate = my_facade, policy = "db"),
        quote!(
            async fn f() -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert_eq!(
        found,
        ["`crate` takes a string literal: write `crate = \"my_facade::resilience\"`"]
    );
}

#[test]
fn an_opaque_error_type_is_left_to_the_calls() {
    let tokens = crate::expand_with(
        quote!(),
        quote!(
            async fn f(&self) -> Result<u32, impl ResilientError> {
                Ok(1)
            }
        ),
        || unreachable!(),
    );
    let text = tokens.to_string();
    assert!(!text.contains("Check"), "{text}");
    assert!(text.contains("step"), "{text}");
}
