//! Expansion tests: `expand()` output, formatted with `prettyplease`, compared with the
//! expected text in `tests/expanded/<test name>.rs`. After a deliberate change to the
//! expansion, run with `UPDATE_EXPANDED=1` to rewrite those files, and review the diff.

use std::path::Path;

use proc_macro2::TokenStream;
use quote::quote;

use crate::catalog::Catalog;

/// A fixed catalog, so the expected text does not depend on the machine.
fn catalog() -> Result<Catalog, String> {
    Ok(Catalog {
        names: ["api", "db", "file"].map(String::from).into(),
        files: vec![
            "/policies/default.toml".into(),
            "/policies/prod.toml".into(),
        ],
    })
}

fn expand(attr: TokenStream, item: TokenStream) -> String {
    let tokens = crate::expand_with(attr, item, catalog);
    let file: syn::File = syn::parse2(tokens.clone()).unwrap_or_else(|e| panic!("{e}: {tokens}"));
    prettyplease::unparse(&file)
}

/// Compares the expansion with `tests/expanded/<name>.rs`; `UPDATE_EXPANDED=1` rewrites it.
#[track_caller]
pub(crate) fn check(name: &str, attr: TokenStream, item: TokenStream) {
    compare(name, &expand(attr, item));
}

/// Compares `actual` with `tests/expanded/<name>.rs`; `UPDATE_EXPANDED=1` rewrites it.
#[track_caller]
pub(crate) fn compare(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/expanded")
        .join(format!("{name}.rs"));
    if std::env::var_os("UPDATE_EXPANDED").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_EXPANDED=1 to create it",
            path.display()
        )
    });
    assert!(
        actual == expected,
        "expansion differs from {}\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

/// The messages of the `compile_error!`s in the expansion, in order.
pub(crate) fn errors(attr: TokenStream, item: TokenStream) -> Vec<String> {
    let file: syn::File = syn::parse2(crate::expand_with(attr, item, catalog)).unwrap();
    file.items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Macro(m) if m.mac.path.segments.last().unwrap().ident == "compile_error" => {
                Some(m.mac.parse_body::<syn::LitStr>().unwrap().value())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn default_policy_method() {
    check(
        "default_policy_method",
        quote!(),
        quote! {
            /// Checks the connection.
            #[allow(clippy::needless_return)]
            pub async fn test_connection(&self) -> Result<Info, PgError> {
                self.client.ping().await?;
                Ok(Info)
            }
        },
    );
}

#[test]
fn policy_key_and_name() {
    check(
        "policy_key_and_name",
        quote!(policy = "db", key = self.host_key(), name = "fetch_page"),
        quote! {
            async fn fetch_page(&self, table: &Table, after: Option<&Key>) -> Result<Page, PgError> {
                if table.is_empty() {
                    return Ok(Page::default());
                }
                self.query(table, after).await
            }
        },
    );
}

#[test]
fn mut_self_method() {
    check(
        "mut_self_method",
        quote!(policy = "db"),
        quote! {
            pub(crate) async fn next(&mut self) -> io::Result<u32> {
                self.calls += 1;
                Ok(self.calls)
            }
        },
    );
}

#[test]
fn free_function_with_policy() {
    check(
        "free_function_with_policy",
        quote!(policy = "api", key = "orders.example.com"),
        quote! {
            async fn list_orders(client: &Client, page: u32) -> Result<Vec<Order>, ApiError> {
                client.get(page).await
            }
        },
    );
}

#[test]
fn generics_lifetimes_where_clause_and_impl_trait() {
    check(
        "generics_lifetimes_where_clause_and_impl_trait",
        quote!(),
        quote! {
            async fn load<'a, T: Decode + 'a, R>(&'a self, name: &'a str, rows: impl AsRef<[R]>) -> Result<Vec<T>, Error>
            where
                R: Row,
            {
                #![allow(unused_variables)]
                self.decode(name, rows.as_ref())
            }
        },
    );
}

#[test]
fn trait_impl_method_keeps_attributes() {
    check(
        "trait_impl_method_keeps_attributes",
        quote!(name = "source.read"),
        quote! {
            #[inline]
            #[doc = "Reads a page."]
            async fn read(&self, cursor: Option<&Cursor>) -> Result<Self::Page, Self::Error> {
                Ok(self.page(cursor).await?)
            }
        },
    );
}

#[test]
fn impl_trait_in_the_return_type_is_inferred() {
    check(
        "impl_trait_in_the_return_type_is_inferred",
        quote!(),
        quote! {
            async fn rows(&self) -> Result<impl Iterator<Item = Row>, Error> {
                Ok(self.rows.iter().cloned())
            }
        },
    );
}

#[test]
fn errors_keep_the_original_item() {
    check(
        "errors_keep_the_original_item",
        quote!(policy = db),
        quote! {
            fn sync(&self) -> u32 { 1 }
        },
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let found = errors(
        quote!(policy = "nope", retries = 3, name = "a", name = "b"),
        quote!(
            fn sync(&self) -> (u32, bool) {
                (1, true)
            }
        ),
    );
    assert_eq!(
        found,
        [
            "unknown argument `retries`; expected one of: policy, key, name, crate",
            "repeated argument `name`; expected one of: policy, key, name, crate, each at most once",
            "#[resilient_operation] wraps only an `async fn`: write `async fn`, each attempt awaits the body",
            "expected a `Result` return type: write `-> Result<T, E>` where `E: ResilientError`, \
             so that failed attempts can be classified and retried",
            "unknown policy `nope`; known policies: api, db, file",
        ]
    );
}

#[test]
fn a_missing_return_type_is_reported() {
    let found = errors(
        quote!(),
        quote!(
            async fn ping(&self) {}
        ),
    );
    assert_eq!(
        found,
        [
            "#[resilient_operation] needs a `Result` return type: write `-> Result<T, E>` where \
          `E: ResilientError`, so that failed attempts can be classified and retried"
        ]
    );
}

/// Any path is accepted: whether it is a `Result` of a `ResilientError` (through an
/// alias, too) is one trait bound the compiler checks at the return type.
#[test]
fn any_path_is_accepted_and_left_to_the_compiler() {
    for output in [
        quote!(Result<(), E>),
        quote!(io::Result<()>),
        quote!(::sqlx::Result<Row>),
        quote!(PgResult<Row>),
        quote!(Option<u32>),
    ] {
        let found = errors(quote!(), quote!(async fn ping(&self) -> #output { Ok(()) }));
        assert!(found.is_empty(), "{output}: {found:?}");
    }
    for output in [
        quote!(impl Future),
        quote!((Result<u32, E>, u8)),
        quote!(&'static Result<u32, E>),
        quote!(<T as Query>::Result),
    ] {
        let found = errors(quote!(), quote!(async fn ping(&self) -> #output { Ok(()) }));
        assert_eq!(found.len(), 1, "{output}: {found:?}");
    }
}

#[test]
fn policy_and_name_take_string_literals() {
    let found = errors(
        quote!(policy = DB, name = concat!("a", "b")),
        quote!(
            async fn f(&self) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert_eq!(
        found,
        [
            "`policy` takes a string literal: write `policy = \"db\"`",
            "`name` takes a string literal: write `name = \"fetch_page\"`",
        ]
    );
}

#[test]
fn a_free_function_must_name_a_policy() {
    let found = errors(
        quote!(key = "k"),
        quote!(
            async fn f(x: &str) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert_eq!(
        found,
        [
            "a function without a `self` receiver must name its policy: \
          write `#[resilient_operation(policy = \"db\")]`"
        ]
    );
    // A malformed policy value is reported once, not also as a missing policy.
    let found = errors(
        quote!(policy = 1),
        quote!(
            async fn f() -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert_eq!(
        found,
        ["`policy` takes a string literal: write `policy = \"db\"`"]
    );
}

#[test]
fn an_unreadable_policy_folder_is_reported_at_the_attribute() {
    let tokens = crate::expand_with(
        quote!(policy = "db"),
        quote!(
            async fn f(&self) -> Result<(), E> {
                Ok(())
            }
        ),
        || {
            Err(
                "cannot check the policy name: policies/prod.toml:3:7: unknown key `retires`"
                    .into(),
            )
        },
    );
    let text = tokens.to_string();
    assert!(text.contains("policies/prod.toml:3:7"), "{text}");
}

#[test]
fn a_non_function_item_is_reported() {
    let found = errors(
        quote!(),
        quote!(
            struct S;
        ),
    );
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("#[resilient_operation] applies to an `async fn` with a body"),
        "{found:?}"
    );
}

#[test]
fn a_default_policy_method_reads_no_policy_file() {
    let tokens = crate::expand_with(
        quote!(),
        quote!(
            async fn f(&self) -> Result<(), E> {
                Ok(())
            }
        ),
        || panic!("the catalog is only needed for a named policy"),
    );
    assert!(!tokens.to_string().contains("include_bytes"));
}

#[test]
fn the_build_catalog_checks_against_the_policy_folder() {
    // `expand` reads the policies of this crate's build, like the real macro.
    let tokens = crate::expand(
        quote!(policy = "db"),
        quote!(
            async fn f(&self) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    let text = tokens.to_string();
    assert!(!text.contains("compile_error"), "{text}");
    assert!(
        text.contains("include_bytes"),
        "the policy files are tracked: {text}"
    );
    let tokens = crate::expand(
        quote!(policy = "no_such_policy"),
        quote!(
            async fn f(&self) -> Result<(), E> {
                Ok(())
            }
        ),
    );
    assert!(
        tokens
            .to_string()
            .contains("unknown policy `no_such_policy`; known policies: ")
    );
}
