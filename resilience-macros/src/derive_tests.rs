//! Expansion tests of `#[derive(ResilientError)]`, compared with `tests/expanded/derive_*.rs`
//! (`UPDATE_EXPANDED=1` rewrites them), and the messages of what it refuses.

use proc_macro2::TokenStream;
use quote::quote;

use crate::tests::compare;

fn expand(item: TokenStream) -> String {
    let tokens = crate::derive::expand(item);
    let file: syn::File = syn::parse2(tokens.clone()).unwrap_or_else(|e| panic!("{e}: {tokens}"));
    prettyplease::unparse(&file)
}

/// The messages of the errors the derive reports, in order.
fn errors(item: TokenStream) -> Vec<String> {
    let file: syn::File = syn::parse2(crate::derive::expand(item)).unwrap();
    file.items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Macro(m) => Some(m.mac.parse_body::<syn::LitStr>().unwrap().value()),
            _ => None,
        })
        .collect()
}

#[test]
fn derive_every_role() {
    compare(
        "derive_every_role",
        &expand(quote! {
            #[derive(Debug)]
            enum PgError<T: Clone> {
                #[resilient(classify = crate::classify::classify)]
                Driver(#[from] sqlx::Error),
                #[resilient(class = "timeout")]
                Timeout { what: String, after: Duration },
                #[resilient(class = "invalid_input")]
                Unknown(T),
                #[resilient(class = "config")]
                NotConfigured,
                #[resilient(failure)]
                Stopped(#[source] Box<Failure<PgError<T>>>),
            }
        }),
    );
}

#[test]
fn derive_named_failure_field_and_a_facade_crate() {
    compare(
        "derive_named_failure_field_and_a_facade_crate",
        &expand(quote! {
            #[resilient(crate = "facade::resilience")]
            enum ApiError {
                #[resilient(classify = status_class)]
                Status { code: u16 },
                #[resilient(failure)]
                Gave { up: Failure<ApiError> },
            }
        }),
    );
}

#[test]
fn every_mistake_is_reported_at_once() {
    let messages = errors(quote! {
        enum E {
            Untagged(u8),
            #[resilient(class = "flaky")]
            Flaky,
            #[resilient(classify = f)]
            TwoFields(u8, u8),
            #[resilient(class = "timeout", failure)]
            Both,
            #[resilient(retry)]
            Unknown,
        }
    });
    assert_eq!(
        messages,
        [
            "variant `Untagged` needs #[resilient(class = \"...\")], #[resilient(classify = \
             path::to_fn)] or #[resilient(failure)]; classes: connection, timeout, transient, \
             throttled, auth, config, invalid_input, data, unknown",
            "unknown class `flaky`, expected one of: connection, timeout, transient, throttled, \
             auth, config, invalid_input, data, unknown",
            "#[resilient(classify)] needs a variant with exactly one field (the value the \
             function classifies), `TwoFields` has 2",
            "a variant takes one of class, classify or failure",
            "expected one of: class = \"...\", classify = path::to_fn, failure",
        ]
    );
}

#[test]
fn a_verdict_variant_is_required_and_unique() {
    assert_eq!(
        errors(quote! {
            enum E {
                #[resilient(class = "data")]
                Bad,
            }
        }),
        [
            "one variant must hold the engine's verdict (retries exhausted, circuit open): add a \
          variant such as `Stopped(Box<Failure<Self>>)` marked #[resilient(failure)]"
        ]
    );
    assert_eq!(
        errors(quote! {
            enum E {
                #[resilient(failure)]
                A(Failure<E>),
                #[resilient(failure)]
                B(Failure<E>),
            }
        }),
        ["only one variant may hold the engine's verdict; `A` already does"]
    );
    assert_eq!(
        errors(quote! { struct S; }),
        ["#[derive(ResilientError)] applies to an enum whose variants say their class"]
    );
}
