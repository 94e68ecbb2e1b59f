//! `#[derive(ResilientError)]`: an error enum's `class` and `from_failure`, from one
//! attribute per variant.
//!
//! ```text
//! #[resilient(class = "timeout")]        this variant is always of one class
//! #[resilient(classify = path::to_fn)]   its one field decides: `fn(&Field) -> ErrorClass`
//! #[resilient(failure)]                  it holds the engine's verdict (`Failure<Self>`,
//!                                        boxed or not); exactly one variant does
//! ```
//!
//! and on the enum, optionally, `#[resilient(crate = path)]` for a facade crate that
//! re-exports `resilience-core` under another name. Every variant must say which it is:
//! a new variant without an attribute is a compile error, not a silent `unknown`. As for
//! the attribute macro, all mistakes are reported at once, at the user's tokens.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use resilience_policy::ErrorClass;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr, Path, Variant};

use crate::Errors;

/// What one variant says about itself.
enum Role {
    Class(ErrorClass),
    Classify(Path),
    Failure,
}

/// Expands the derive, or the errors found.
pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let input: DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(error) => return error.into_compile_error(),
    };
    let mut errors = Errors::default();
    let krate = crate_path(&input, &mut errors);
    let Data::Enum(data) = &input.data else {
        errors.push_at(
            input.ident.span(),
            "#[derive(ResilientError)] applies to an enum whose variants say their class",
        );
        return errors
            .into_inner()
            .map_or_else(TokenStream::new, |e| e.into_compile_error());
    };
    let mut arms = Vec::new();
    let mut failure: Option<(&Variant, TokenStream)> = None;
    for variant in &data.variants {
        let Some(role) = role(variant, &mut errors) else {
            continue;
        };
        let name = &variant.ident;
        match role {
            Role::Class(class) => {
                let class = format_ident!("{}", format!("{class:?}"));
                arms.push(quote! { Self::#name { .. } => #krate::ErrorClass::#class, });
            }
            Role::Classify(path) => match single_field(variant, "classify", &mut errors) {
                Some(binding) => arms.push(quote_spanned! {path.span()=>
                    Self::#name #binding => #path(field),
                }),
                None => continue,
            },
            Role::Failure => {
                let Some(binding) = single_field(variant, "failure", &mut errors) else {
                    continue;
                };
                if let Some((first, _)) = &failure {
                    errors.push_at(
                        name.span(),
                        format!(
                            "only one variant may hold the engine's verdict; `{}` already does",
                            first.ident
                        ),
                    );
                    continue;
                }
                arms.push(quote! { Self::#name #binding => field.class(), });
                let construct = match &variant.fields {
                    Fields::Named(named) => {
                        let field = named.named[0].ident.as_ref();
                        quote! { Self::#name { #field: ::core::convert::From::from(failure) } }
                    }
                    _ => quote! { Self::#name(::core::convert::From::from(failure)) },
                };
                failure = Some((variant, construct));
            }
        }
    }
    if failure.is_none() && errors.is_empty() {
        errors.push_at(
            input.ident.span(),
            "one variant must hold the engine's verdict (retries exhausted, circuit open): \
             add a variant such as `Stopped(Box<Failure<Self>>)` marked #[resilient(failure)]",
        );
    }
    if let Some(error) = errors.into_inner() {
        return error.into_compile_error();
    }
    let (_, construct) = failure.expect("checked above");
    let ident = &input.ident;
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics #krate::ResilientError for #ident #type_generics #where_clause {
            fn class(&self) -> #krate::ErrorClass {
                match self {
                    #(#arms)*
                }
            }

            fn from_failure(failure: #krate::Failure<Self>) -> Self {
                #construct
            }
        }
    }
}

/// `#[resilient(crate = path)]` on the enum, else `::resilience_core`.
fn crate_path(input: &DeriveInput, errors: &mut Errors) -> TokenStream {
    let mut krate = quote!(::resilience_core);
    for attr in input
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("resilient"))
    {
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let path: Path = meta.value()?.parse::<LitStr>()?.parse()?;
                krate = quote!(#path);
                Ok(())
            } else {
                Err(meta.error("on the enum, #[resilient(...)] takes `crate = \"path\"` only"))
            }
        });
        if let Err(error) = parsed {
            errors.push(error);
        }
    }
    krate
}

/// The variant's role from its `#[resilient(...)]`, or an error saying what to write.
fn role(variant: &Variant, errors: &mut Errors) -> Option<Role> {
    let mut found: Option<(Role, Span)> = None;
    for attr in variant
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("resilient"))
    {
        let parsed = attr.parse_nested_meta(|meta| {
            let role = if meta.path.is_ident("class") {
                let lit: LitStr = meta.value()?.parse()?;
                let class = lit.value().parse::<ErrorClass>().map_err(|_| {
                    let valid: Vec<&str> = ErrorClass::ALL.iter().map(|c| c.as_str()).collect();
                    syn::Error::new(
                        lit.span(),
                        format!(
                            "unknown class `{}`, expected one of: {}",
                            lit.value(),
                            valid.join(", ")
                        ),
                    )
                })?;
                Role::Class(class)
            } else if meta.path.is_ident("classify") {
                Role::Classify(meta.value()?.parse()?)
            } else if meta.path.is_ident("failure") {
                Role::Failure
            } else {
                return Err(
                    meta.error("expected one of: class = \"...\", classify = path::to_fn, failure")
                );
            };
            if found.is_some() {
                return Err(meta.error("a variant takes one of class, classify or failure"));
            }
            found = Some((role, meta.path.span()));
            Ok(())
        });
        if let Err(error) = parsed {
            errors.push(error);
            return None;
        }
    }
    if found.is_none() {
        errors.push_at(
            variant.ident.span(),
            format!(
                "variant `{}` needs #[resilient(class = \"...\")], #[resilient(classify = \
                 path::to_fn)] or #[resilient(failure)]; classes: {}",
                variant.ident,
                ErrorClass::ALL.map(|c| c.as_str()).join(", ")
            ),
        );
    }
    found.map(|(role, _)| role)
}

/// The pattern binding a variant's only field as `field`, or an error when it has not
/// exactly one.
fn single_field(variant: &Variant, what: &str, errors: &mut Errors) -> Option<TokenStream> {
    match &variant.fields {
        Fields::Unnamed(f) if f.unnamed.len() == 1 => Some(quote!((field))),
        Fields::Named(f) if f.named.len() == 1 => {
            let name = f.named[0].ident.as_ref();
            Some(quote!({ #name: field }))
        }
        _ => {
            errors.push_at(
                variant.ident.span(),
                format!(
                    "#[resilient({what})] needs a variant with exactly one field (the {}), \
                     `{}` has {}",
                    if what == "failure" {
                        "engine's `Failure<Self>`, boxed or not"
                    } else {
                        "value the function classifies"
                    },
                    variant.ident,
                    variant.fields.len()
                ),
            );
            None
        }
    }
}
