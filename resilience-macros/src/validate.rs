//! Checking that the attribute can wrap the function, and turning arguments into a plan.
//!
//! Every check here reports against the user's own tokens and says what to write
//! instead. All checks run, and their errors are combined, so one build shows every
//! problem. The policy name is checked with the same loader the runtime uses
//! (`resilience-policy`), against every name the build's policy files can provide; which
//! of them exist at run time depends on the folder and profile selected then.

use std::path::PathBuf;

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::{Error, Expr, ExprLit, Lit, LitStr, ReceiverKind, ReturnType, Type};

use crate::Errors;
use crate::args::{Arg, Args};
use crate::catalog::Catalog;
use crate::item::Function;

/// How the function receives `self`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Receiver {
    /// No receiver: a free or associated function; runs on the process-wide engine.
    None,
    /// `self` or `mut self`: borrowed as `&self` to reach the engine. The span is the
    /// user's `self` token, so the expansion's `self` resolves at the call site.
    Value(Span),
    /// `&self`: the receiver's `Resilience` is borrowed for the call, not cloned (the
    /// body only borrows `self` too).
    Shared(Span),
    /// `&mut self` or `self: Box<Self>`-like: dereferenced as `&*self`.
    Deref(Span),
}

/// Everything the expansion needs, checked.
#[derive(Debug)]
pub(crate) struct Plan {
    /// How to reach the receiver's engine, if any.
    pub receiver: Receiver,
    /// The named policy; `None` means the receiver's default policy.
    pub policy: Option<LitStr>,
    /// The rate-limit key expression, if given.
    pub key: Option<Expr>,
    /// The operation name.
    pub name: LitStr,
    /// The function's `Result` return type.
    pub output: Type,
    /// Policy files to include for rebuild tracking (empty when no policy was checked).
    pub files: Vec<PathBuf>,
}

/// Checks `item` and `args`; `catalog` is asked for the known policies only when a
/// policy is named.
pub(crate) fn validate(
    args: Args,
    item: &Function,
    catalog: impl FnOnce() -> Result<Catalog, String>,
    errors: &mut Errors,
) -> Option<Plan> {
    let sig = &item.sig;

    if sig.asyncness.is_none() {
        errors.push_at(
            sig.fn_token.span,
            "#[resilient_operation] wraps only an `async fn`: write `async fn`, \
             each attempt awaits the body",
        );
    }
    let output = check_output(&sig.output, sig.paren_token.span.close(), errors);

    let receiver = match sig.receiver() {
        None => Receiver::None,
        Some(r) if matches!(r.kind, ReceiverKind::Value) => Receiver::Value(r.self_token.span),
        Some(r) if matches!(r.kind, ReceiverKind::Reference(_, _, None)) => {
            Receiver::Shared(r.self_token.span)
        }
        Some(r) => Receiver::Deref(r.self_token.span),
    };

    let policy_written = args.policy.is_some();
    let policy = args
        .policy
        .and_then(|arg| string_literal(arg, "policy = \"db\"", errors));
    let name = args
        .name
        .and_then(|arg| string_literal(arg, "name = \"fetch_page\"", errors));
    if matches!(receiver, Receiver::None) && !policy_written {
        errors.push_at(
            Span::call_site(),
            "a function without a `self` receiver must name its policy: \
             write `#[resilient_operation(policy = \"db\")]`",
        );
    }

    let mut files = Vec::new();
    if let Some(policy) = &policy {
        match catalog() {
            Err(message) => errors.push_at(Span::call_site(), message),
            Ok(catalog) => {
                if !catalog.names.contains(&policy.value()) {
                    let known: Vec<&str> = catalog.names.iter().map(String::as_str).collect();
                    let message = format!(
                        "unknown policy `{}`; known policies: {}",
                        policy.value(),
                        known.join(", ")
                    );
                    errors.push_at(policy.span(), message);
                }
                files = catalog.files;
            }
        }
    }

    if !errors.is_empty() {
        return None;
    }
    let name =
        name.unwrap_or_else(|| LitStr::new(&sig.ident.unraw().to_string(), sig.ident.span()));
    Some(Plan {
        receiver,
        policy,
        key: args.key.map(|arg| arg.value),
        name,
        output: output?,
        files,
    })
}

/// The return type when it is a `Result`-like path (`Result<T, E>`, `io::Result<T>`).
fn check_output(output: &ReturnType, close_paren: Span, errors: &mut Errors) -> Option<Type> {
    const WRITE: &str = "write `-> Result<T, E>` where `E: ResilientError`, \
                         so that failed attempts can be classified and retried";
    let ty = match output {
        ReturnType::Type(_, ty) => ty,
        ReturnType::Default => {
            errors.push_at(
                close_paren,
                format!("#[resilient_operation] needs a `Result` return type: {WRITE}"),
            );
            return None;
        }
    };
    if is_result(ty) {
        Some((**ty).clone())
    } else {
        errors.push(Error::new_spanned(
            ty,
            format!("expected a `Result` return type: {WRITE}"),
        ));
        None
    }
}

fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Group(group) => is_result(&group.elem),
        Type::Paren(paren) => is_result(&paren.elem),
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|last| last.ident == "Result"),
        _ => false,
    }
}

/// The value of `arg` as a string literal, or an error saying what to write.
fn string_literal(arg: Arg, example: &str, errors: &mut Errors) -> Option<LitStr> {
    let mut value = &arg.value;
    while let Expr::Group(group) = value {
        value = &group.expr;
    }
    if let Expr::Lit(ExprLit {
        lit: Lit::Str(lit), ..
    }) = value
    {
        return Some(lit.clone());
    }
    let message = format!("`{}` takes a string literal: write `{example}`", arg.ident);
    errors.push(Error::new_spanned(&arg.value, message));
    None
}
