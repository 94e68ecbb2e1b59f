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
use syn::spanned::Spanned;
use syn::{
    Error, Expr, ExprLit, GenericArgument, Lit, LitStr, Path, PathArguments, ReceiverKind,
    ReturnType, Type, TypePath,
};

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
    /// Where a return type that is not a `Result` of a `ResilientError` is reported: the
    /// error type of `Result<T, E>`, else the last segment of the path (an alias).
    pub output_span: Span,
    /// The path of `resilience-core`: `::resilience_core`, or the `crate` argument.
    pub krate: Path,
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
    let krate = match args.krate {
        None => Some(syn::parse_quote!(::resilience_core)),
        Some(arg) => crate_path(arg, errors),
    };
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
        output_span: error_type_span(output.as_ref()?),
        output: output?,
        krate: krate?,
        files,
    })
}

/// The return type when it is a path (`Result<T, E>`, `io::Result<T>`, `PgResult<T>`).
///
/// Whether the path names a `Result` whose error type implements `ResilientError` is
/// left to the compiler: the expansion checks it with one trait bound at the return
/// type, which sees through aliases.
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
    if as_path(ty).is_some() {
        Some((**ty).clone())
    } else {
        errors.push(Error::new_spanned(
            ty,
            format!("expected a `Result` return type: {WRITE}"),
        ));
        None
    }
}

fn as_path(ty: &Type) -> Option<&TypePath> {
    match ty {
        Type::Group(group) => as_path(&group.elem),
        Type::Paren(paren) => as_path(&paren.elem),
        Type::Path(path) if path.qself.is_none() => Some(path),
        _ => None,
    }
}

/// The error type `E` of `...Result<T, E>`, else the last segment of the path.
fn error_type_span(ty: &Type) -> Span {
    if let Some(error) = error_type(ty) {
        return error.span();
    }
    match as_path(ty).and_then(|path| path.path.segments.last()) {
        Some(last) => last.ident.span(),
        None => ty.span(),
    }
}

/// `E` of a path type with two type arguments, `...Result<T, E>`.
pub(crate) fn error_type(ty: &Type) -> Option<&Type> {
    let last = as_path(ty)?.path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let types: Vec<&Type> = args
        .args
        .iter()
        .filter_map(|arg| match arg {
            GenericArgument::Type(ty) => Some(ty),
            _ => None,
        })
        .collect();
    match types[..] {
        [_, error] => Some(error),
        _ => None,
    }
}

/// The `crate = "path"` argument as a path, or an error saying what to write.
fn crate_path(arg: Arg, errors: &mut Errors) -> Option<Path> {
    const EXAMPLE: &str = "crate = \"my_facade::resilience\"";
    let lit = string_literal(arg, EXAMPLE, errors)?;
    match lit.parse::<Path>() {
        Ok(path) => Some(path),
        Err(_) => {
            errors.push_at(
                lit.span(),
                format!(
                    "`crate` takes the path `resilience_core` is re-exported under: write `{EXAMPLE}`"
                ),
            );
            None
        }
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
