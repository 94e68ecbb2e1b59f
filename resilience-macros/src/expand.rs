//! Writing the new body: glue that hands the original body to the engine, once per attempt.
//!
//! The signature is re-emitted as written and only the body is replaced, so the
//! function keeps its API, docs and attributes. The original body becomes an `async`
//! block created afresh for every attempt, so `?` and `return` end one attempt, and
//! the block borrows the arguments instead of consuming them. Every runtime path
//! goes through `::resilience_core::__private` (or the `crate` argument's path); the
//! behaviour lives there.
//!
//! The return type is checked once, where the run starts, by one statement whose every
//! token is spanned at the return type's error type: `__private::Check` picks the run
//! back when the type is a `Result` of a `ResilientError` (through an alias, too), and
//! otherwise reports one bound there and leaves the run's type unknown, so the calls
//! after it add no more errors. The loop below is the same either way.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::visit_mut::VisitMut;
use syn::{Ident, LitStr, Type};

use crate::item::Function;
use crate::validate::{Plan, Receiver};

/// The function with its body replaced by the retry loop.
pub(crate) fn expand(function: &Function, plan: Plan) -> TokenStream {
    let krate = &plan.krate;
    let private = quote!(#krate::__private);
    let local = |name: &str| Ident::new(name, Span::mixed_site());
    let (resilience, key, run, done) = (
        local("__resilience"),
        local("__key"),
        local("__run"),
        local("__done"),
    );

    let output = nameable(plan.output.clone(), syn::parse_quote!(_));
    let check = if crate::validate::error_type(&plan.output).is_some_and(is_opaque) {
        // `Result<T, impl ResilientError>`: nothing to name; the calls below check it.
        TokenStream::new()
    } else {
        // `impl Trait` in the success type is any type to the check: `()` stands for it.
        let output = nameable(plan.output.clone(), syn::parse_quote!(()));
        // Every token of the check at the error type: its one error is reported there,
        // and its result poisons the run when it fails (see `__private::Check`).
        let span = plan.output_span;
        let output = respan(quote!(#output), span);
        let private = respan(private.clone(), span);
        quote_spanned! {span=>
            let #run = {
                #[allow(unused_imports)]
                use #private::{CheckedRun as _, UncheckedRun as _};
                (&#private::Check::<#output>::new()).run(&mut #run)
            };
        }
    };
    let tracking = rebuild_tracking(&plan);
    let (key_binding, key_arg) = match &plan.key {
        Some(expr) => (
            quote!(let #key = #expr;),
            quote!(::core::option::Option::Some(::core::convert::AsRef::<str>::as_ref(&#key))),
        ),
        None => (quote!(), quote!(::core::option::Option::None)),
    };
    let name = &plan.name;
    let start = match receiver_ref(plan.receiver) {
        None => {
            let policy = plan
                .policy
                .as_ref()
                .expect("validated: a free function names its policy");
            quote! {
                #key_binding
                let mut #run = #private::Run::global(#policy, #key_arg, #name);
                #check
            }
        }
        Some(receiver) => {
            let policy = match &plan.policy {
                Some(policy) => quote!(::core::option::Option::Some(#policy)),
                None => quote!(::core::option::Option::None),
            };
            // A `&self` body borrows `self` as the run does, so the run borrows the
            // receiver's `Resilience`; any other body may move or mutably borrow `self`,
            // so the run holds a clone (one reference count).
            let resilience_value = if matches!(plan.receiver, Receiver::Shared(_)) {
                quote!(#private::Resilient::resilience(#receiver))
            } else {
                quote!(&::core::clone::Clone::clone(
                    #private::Resilient::resilience(#receiver),
                ))
            };
            quote! {
                let #resilience = #resilience_value;
                #key_binding
                let mut #run = #private::Run::method(#resilience, #policy, #key_arg, #name);
                #check
            }
        }
    };

    let body = &function.body;
    let body = quote_spanned!(function.brace.span.join()=> async { #body });
    function.with_body(quote! {
        #tracking
        #start
        loop {
            if let ::core::option::Option::Some(#done) = #run.step::<#output, _>(#body).await {
                return #done;
            }
        }
    })
}

/// `&self` or `&*self` (a `&Self` either way), with the user's `self` token so that it
/// resolves at the call site; `None` for a function without a receiver.
fn receiver_ref(receiver: Receiver) -> Option<TokenStream> {
    let (span, deref) = match receiver {
        Receiver::None => return None,
        Receiver::Value(span) => (span, quote!()),
        Receiver::Shared(span) | Receiver::Deref(span) => (span, quote_spanned!(span=> *)),
    };
    let this = Ident::new("self", span);
    Some(quote_spanned!(span=> &#deref #this))
}

/// Items that make cargo rebuild the crate when a policy file it was checked against
/// changes, or when `RESILIENCE_POLICY_DIR` points elsewhere.
fn rebuild_tracking(plan: &Plan) -> TokenStream {
    if plan.policy.is_none() {
        return TokenStream::new();
    }
    let files = plan
        .files
        .iter()
        .map(|file| LitStr::new(&file.to_string_lossy(), Span::call_site()));
    quote! {
        const _: ::core::option::Option<&str> = ::core::option_env!("RESILIENCE_POLICY_DIR");
        #(const _: &[u8] = ::core::include_bytes!(#files);)*
    }
}

/// `output` with every `impl Trait` replaced by `with`: an opaque return type cannot be
/// named inside the body; with `_`, inference fills it in from the body's value.
fn nameable(mut output: Type, with: Type) -> Type {
    struct ReplaceImplTrait(Type);
    impl VisitMut for ReplaceImplTrait {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::ImplTrait(_) = ty {
                *ty = self.0.clone();
            } else {
                syn::visit_mut::visit_type_mut(self, ty);
            }
        }
    }
    ReplaceImplTrait(with).visit_type_mut(&mut output);
    output
}

/// Whether `ty` holds an `impl Trait`.
fn is_opaque(ty: &Type) -> bool {
    nameable(ty.clone(), syn::parse_quote!(_)) != *ty
}

/// `tokens` with every span set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let proc_macro2::TokenTree::Group(group) = &tree {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                tree = proc_macro2::TokenTree::Group(inner);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}
