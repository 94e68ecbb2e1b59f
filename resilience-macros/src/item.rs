//! The annotated function, parsed with its body kept as raw tokens.
//!
//! Only the signature is parsed into syntax. The body is carried through as the
//! tokens the user wrote: it is never re-printed (so spans, and with them error
//! messages, stay on the user's code), and a half-typed body in an editor still
//! gets through the macro to rustc's own, better, diagnostics.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Signature, Visibility, braced, token};

/// `#[attrs] vis sig { #![inner] body }`.
#[derive(Debug, Clone)]
pub(crate) struct Function {
    /// Outer attributes and doc comments, re-emitted unchanged.
    pub attrs: Vec<Attribute>,
    /// The visibility, re-emitted unchanged.
    pub vis: Visibility,
    /// The signature, re-emitted unchanged.
    pub sig: Signature,
    /// The body's braces, whose spans the new body reuses.
    pub brace: token::Brace,
    /// Inner attributes (`#![allow(..)]`) at the top of the body.
    pub inner_attrs: Vec<Attribute>,
    /// The body's statements, untouched.
    pub body: TokenStream,
}

impl Parse for Function {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let content;
        let brace = braced!(content in input);
        let inner_attrs = content.call(Attribute::parse_inner)?;
        let body = content.parse()?;
        Ok(Function {
            attrs,
            vis,
            sig,
            brace,
            inner_attrs,
            body,
        })
    }
}

impl Function {
    /// The function with `body` in place of its own (inner attributes kept at its top).
    pub(crate) fn with_body(&self, body: TokenStream) -> TokenStream {
        let mut tokens = TokenStream::new();
        for attr in &self.attrs {
            attr.to_tokens(&mut tokens);
        }
        self.vis.to_tokens(&mut tokens);
        self.sig.to_tokens(&mut tokens);
        self.brace.surround(&mut tokens, |tokens| {
            for attr in &self.inner_attrs {
                attr.to_tokens(tokens);
            }
            tokens.extend(body);
        });
        tokens
    }
}
