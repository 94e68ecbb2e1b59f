//! Parsing the attribute's arguments: `policy = "db", key = <expr>, name = "op"`,
//! `crate = "path"`.
//!
//! Parsing is purely syntactic and recovers after each argument, so that one
//! compile collects every mistake (an unknown argument *and* a repeated one) with
//! [`syn::Error::combine`] instead of making the user fix them one build at a time.
//! Whether a value has the right shape (a string literal for `policy` and `name`) is
//! decided by `validate`, next to the other semantic checks.

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Error, Expr, Ident, Token};

use crate::Errors;

/// The argument names, in the order the error messages list them.
const EXPECTED: &str = "expected one of: policy, key, name, crate";

/// One `name = value` argument as written.
#[derive(Debug, Clone)]
pub(crate) struct Arg {
    /// The argument's name, for spans.
    pub ident: Ident,
    /// The value expression (`"db"`, `self.host_key()`).
    pub value: Expr,
}

/// The attribute's arguments, each at most once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Args {
    /// `policy = "<name>"`: the policy to run under.
    pub policy: Option<Arg>,
    /// `key = <expr>`: the rate-limit key.
    pub key: Option<Arg>,
    /// `name = "<operation>"`: the operation name in logs, metrics and health.
    pub name: Option<Arg>,
    /// `crate = "<path>"`: where `resilience-core` is, for a facade crate re-exporting
    /// the macro.
    pub krate: Option<Arg>,
}

impl Args {
    /// Parses `tokens`: what could be parsed, with every error added to `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Args {
        let parser = |input: ParseStream| Ok(parse_all(input, errors));
        parser.parse2(tokens).unwrap_or_else(|error| {
            errors.push(error);
            Args::default()
        })
    }

    fn set(&mut self, arg: Arg) -> Result<(), Error> {
        let slot = match arg.ident.to_string().as_str() {
            "policy" => &mut self.policy,
            "key" => &mut self.key,
            "name" => &mut self.name,
            "crate" => &mut self.krate,
            other => {
                let message = format!("unknown argument `{other}`; {EXPECTED}");
                return Err(Error::new(arg.ident.span(), message));
            }
        };
        if slot.is_some() {
            let message = format!(
                "repeated argument `{}`; {EXPECTED}, each at most once",
                arg.ident
            );
            return Err(Error::new(arg.ident.span(), message));
        }
        *slot = Some(arg);
        Ok(())
    }
}

/// Parses `arg, arg, ...`, skipping to the next comma after a malformed argument.
fn parse_all(input: ParseStream, errors: &mut Errors) -> Args {
    let mut args = Args::default();
    while !input.is_empty() {
        match parse_one(input) {
            Ok(arg) => {
                if let Err(error) = args.set(arg) {
                    errors.push(error);
                }
            }
            Err(error) => {
                errors.push(error);
                skip_to_comma(input);
            }
        }
        if input.is_empty() {
            break;
        }
        if let Err(error) = input.parse::<Token![,]>() {
            errors.push(Error::new(
                error.span(),
                format!("expected `,` between arguments; {EXPECTED}"),
            ));
            skip_to_comma(input);
            let _ = input.parse::<Option<Token![,]>>();
        }
    }
    args
}

fn parse_one(input: ParseStream) -> syn::Result<Arg> {
    if !input.peek(Ident::peek_any) {
        return Err(Error::new(
            input.span(),
            format!("expected an argument; {EXPECTED}"),
        ));
    }
    let ident = input.call(Ident::parse_any)?;
    if !input.peek(Token![=]) {
        let hint = match ident.to_string().as_str() {
            "policy" => "write `policy = \"<policy name>\"`".to_owned(),
            "key" => "write `key = <expression>`".to_owned(),
            "name" => "write `name = \"<operation name>\"`".to_owned(),
            "crate" => "write `crate = \"<path to resilience_core>\"`".to_owned(),
            other => format!("unknown argument `{other}`; {EXPECTED}"),
        };
        return Err(Error::new(ident.span(), hint));
    }
    input.parse::<Token![=]>()?;
    let value = input.parse::<Expr>()?;
    Ok(Arg { ident, value })
}

fn skip_to_comma(input: ParseStream) {
    let _ = input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            if matches!(&tt, proc_macro2::TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            rest = next;
        }
        Ok(((), rest))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: TokenStream) -> (Args, Option<Error>) {
        let mut errors = Errors::default();
        let args = Args::parse(tokens, &mut errors);
        (args, errors.into_inner())
    }

    fn messages(tokens: TokenStream) -> Vec<String> {
        let (_, error) = parse(tokens);
        error
            .into_iter()
            .flat_map(|e| e.into_iter().map(|e| e.to_string()))
            .collect()
    }

    #[test]
    fn empty_arguments_parse_to_nothing() {
        let (args, error) = parse(TokenStream::new());
        assert!(error.is_none());
        assert!(args.policy.is_none() && args.key.is_none() && args.name.is_none());
    }

    #[test]
    fn all_arguments_parse_with_a_trailing_comma() {
        let (args, error) = parse(quote!(
            policy = "db",
            key = self.host_key(),
            name = "op",
            crate = "facade::resilience",
        ));
        assert!(error.is_none(), "{error:?}");
        assert_eq!(args.policy.unwrap().ident, "policy");
        assert!(matches!(args.key.unwrap().value, Expr::MethodCall(_)));
        assert_eq!(args.name.unwrap().ident, "name");
        assert_eq!(args.krate.unwrap().ident, "crate");
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let found = messages(quote!(polcy = "db", name = "a", name = "b", type = 1, key));
        assert_eq!(
            found,
            [
                "unknown argument `polcy`; expected one of: policy, key, name, crate",
                "repeated argument `name`; expected one of: policy, key, name, crate, each at most once",
                "unknown argument `type`; expected one of: policy, key, name, crate",
                "write `key = <expression>`",
            ]
        );
    }

    #[test]
    fn a_malformed_value_does_not_hide_later_arguments() {
        let (args, error) = parse(quote!(key = , policy = "db"));
        assert_eq!(error.into_iter().count(), 1);
        assert!(args.policy.is_some());
    }

    #[test]
    fn a_missing_comma_is_reported() {
        let found = messages(quote!(policy = "db" name = "x"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("expected `,`"), "{found:?}");
    }
}
