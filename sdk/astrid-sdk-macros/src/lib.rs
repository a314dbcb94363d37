//! `#[capsule]`: turns an inherent `impl` block into a capsule's guest export.
//!
//! Methods marked `#[astrid::tool]`, `#[astrid::handler]`, `#[astrid::install]`,
//! `#[astrid::upgrade]` or `#[astrid::run]` become the dispatch table of
//! `astrid_sdk::Capsule`; the marker attributes are removed and the impl is kept as written.
#![forbid(unsafe_code)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::spanned::Spanned;
use syn::{parse_macro_input, Attribute, FnArg, ImplItem, ImplItemFn, ItemImpl, LitStr};

/// Exports the annotated `impl` block's type (which must implement `Default`) as the capsule.
///
/// ```text
/// #[capsule]
/// impl Echo {
///     #[astrid::tool]
///     fn shout(&self, args: ShoutArgs) -> Result<ShoutReply, CapsuleError> { .. }
///
///     #[astrid::handler]
///     fn echo(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> { .. }
/// }
/// ```
///
/// The handler name is the method name unless given: `#[astrid::handler(name = "x")]`.
#[proc_macro_attribute]
pub fn capsule(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let attr = TokenStream2::from(attr);
        return syn::Error::new(attr.span(), "#[capsule] takes no arguments")
            .to_compile_error()
            .into();
    }
    let item = parse_macro_input!(item as ItemImpl);
    match expand(item) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tool,
    Handler,
    Install,
    Upgrade,
    Run,
}

impl Kind {
    fn from_attr(attr: &Attribute) -> Option<Kind> {
        let segs: Vec<String> = attr
            .path()
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect();
        if segs.len() != 2 || segs[0] != "astrid" {
            return None;
        }
        Some(match segs[1].as_str() {
            "tool" => Kind::Tool,
            "handler" => Kind::Handler,
            "install" => Kind::Install,
            "upgrade" => Kind::Upgrade,
            "run" => Kind::Run,
            _ => return None,
        })
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Handler => "handler",
            Kind::Install => "install",
            Kind::Upgrade => "upgrade",
            Kind::Run => "run",
        }
    }
}

/// One annotated method, as the dispatcher needs it.
struct Marked {
    kind: Kind,
    name: String,
    ident: syn::Ident,
    /// Arguments after `&self`.
    arity: usize,
    span: Span,
}

fn expand(mut item: ItemImpl) -> syn::Result<TokenStream2> {
    if let Some((_, path, _)) = &item.trait_ {
        return Err(syn::Error::new(
            path.span(),
            "#[capsule] goes on an inherent impl block (`impl MyCapsule { .. }`), not a trait impl",
        ));
    }
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new(
            item.generics.span(),
            "#[capsule] types cannot be generic",
        ));
    }

    let mut marked = Vec::new();
    for impl_item in &mut item.items {
        if let ImplItem::Fn(f) = impl_item {
            if let Some(m) = take_marker(f)? {
                marked.push(m);
            }
        }
    }
    check_unique(&marked)?;

    let self_ty = &item.self_ty;
    let arms = marked
        .iter()
        .filter(|m| matches!(m.kind, Kind::Tool | Kind::Handler))
        .map(dispatch_arm);
    let lifecycle = |kind: Kind, args: TokenStream2| -> Option<TokenStream2> {
        marked.iter().find(|m| m.kind == kind).map(|m| {
            let ident = &m.ident;
            quote! { ::astrid_sdk::__private::lifecycle(self.#ident(#args)) }
        })
    };
    let install = lifecycle(Kind::Install, quote!()).map(|call| {
        quote! {
            fn install(&self) -> ::core::result::Result<(), ::astrid_sdk::CapsuleError> { #call }
        }
    });
    let upgrade = lifecycle(Kind::Upgrade, quote!(previous_version)).map(|call| {
        quote! {
            fn upgrade(&self, previous_version: &str)
                -> ::core::result::Result<(), ::astrid_sdk::CapsuleError> { #call }
        }
    });
    let run = lifecycle(Kind::Run, quote!()).map(|call| {
        quote! {
            fn run(&self) -> ::core::result::Result<(), ::astrid_sdk::CapsuleError> { #call }
        }
    });

    Ok(quote! {
        #item

        impl ::astrid_sdk::Capsule for #self_ty {
            #install
            #upgrade
            #run

            #[allow(unused_variables)]
            fn handle(
                &self,
                handler: &str,
                event: &::astrid_sdk::Event,
            ) -> ::core::result::Result<
                ::core::option::Option<::std::vec::Vec<u8>>,
                ::astrid_sdk::CapsuleError,
            > {
                match handler {
                    #(#arms)*
                    other => ::core::result::Result::Err(
                        ::astrid_sdk::CapsuleError::UnknownHandler(::std::string::String::from(other)),
                    ),
                }
            }
        }

        ::astrid_sdk::export_capsule!(#self_ty);
    })
}

fn dispatch_arm(m: &Marked) -> TokenStream2 {
    let name = &m.name;
    let ident = &m.ident;
    match (m.kind, m.arity) {
        (Kind::Tool, 0) => quote! {
            #name => ::astrid_sdk::__private::tool_reply(self.#ident()),
        },
        (Kind::Tool, _) => quote! {
            #name => {
                let args = ::astrid_sdk::__private::tool_args(&event.payload)?;
                ::astrid_sdk::__private::tool_reply(self.#ident(args))
            }
        },
        (_, 0) => quote! {
            #name => ::astrid_sdk::__private::reply(self.#ident()),
        },
        _ => quote! {
            #name => ::astrid_sdk::__private::reply(self.#ident(event)),
        },
    }
}

/// Removes the `#[astrid::..]` marker from `f`, if any, and describes the method.
fn take_marker(f: &mut ImplItemFn) -> syn::Result<Option<Marked>> {
    let mut found: Option<(Kind, Option<String>, Span)> = None;
    let mut kept = Vec::with_capacity(f.attrs.len());
    for attr in f.attrs.drain(..) {
        let Some(kind) = Kind::from_attr(&attr) else {
            kept.push(attr);
            continue;
        };
        if found.is_some() {
            return Err(syn::Error::new(
                attr.span(),
                "a method can carry only one #[astrid::..] attribute",
            ));
        }
        let name = parse_name(&attr, kind)?;
        found = Some((kind, name, attr.span()));
    }
    f.attrs = kept;
    let Some((kind, name, span)) = found else {
        return Ok(None);
    };

    let sig = &f.sig;
    match sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() => {}
        _ => {
            return Err(syn::Error::new(
                sig.span(),
                format!("#[astrid::{}] methods take `&self`", kind.label()),
            ))
        }
    }
    let arity = sig.inputs.len() - 1;
    let max = match kind {
        Kind::Tool | Kind::Handler | Kind::Upgrade => 1,
        Kind::Install | Kind::Run => 0,
    };
    if arity > max || (kind == Kind::Upgrade && arity != 1) {
        let expected = match kind {
            Kind::Tool => "`fn name(&self, args: A) -> Result<R, E>`",
            Kind::Handler => "`fn name(&self, event: &Event) -> Result<Option<Vec<u8>>, E>`",
            Kind::Upgrade => "`fn name(&self, previous: &str) -> Result<(), E>`",
            Kind::Install | Kind::Run => "`fn name(&self) -> Result<(), E>`",
        };
        return Err(syn::Error::new(
            sig.inputs.span(),
            format!("#[astrid::{}] expects {expected}", kind.label()),
        ));
    }
    if sig.asyncness.is_some() || !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.span(),
            "capsule methods cannot be async or generic",
        ));
    }
    Ok(Some(Marked {
        kind,
        name: name.unwrap_or_else(|| sig.ident.to_string()),
        ident: sig.ident.clone(),
        arity,
        span,
    }))
}

/// Reads the optional `name = "..."` argument of a tool or handler marker.
fn parse_name(attr: &Attribute, kind: Kind) -> syn::Result<Option<String>> {
    if matches!(attr.meta, syn::Meta::Path(_)) {
        return Ok(None);
    }
    if !matches!(kind, Kind::Tool | Kind::Handler) {
        return Err(syn::Error::new(
            attr.span(),
            format!("#[astrid::{}] takes no arguments", kind.label()),
        ));
    }
    let mut name = None;
    attr.parse_nested_meta(|meta| {
        if meta.path.is_ident("name") {
            let lit: LitStr = meta.value()?.parse()?;
            if lit.value().is_empty() {
                return Err(meta.error("the name cannot be empty"));
            }
            name = Some(lit.value());
            Ok(())
        } else {
            Err(meta.error("expected `name = \"...\"`"))
        }
    })?;
    Ok(name)
}

fn check_unique(marked: &[Marked]) -> syn::Result<()> {
    for (i, m) in marked.iter().enumerate() {
        for earlier in &marked[..i] {
            let clash = match (m.kind, earlier.kind) {
                (Kind::Tool | Kind::Handler, Kind::Tool | Kind::Handler) => m.name == earlier.name,
                (a, b) => a == b,
            };
            if clash {
                let what = match m.kind {
                    Kind::Tool | Kind::Handler => format!("handler name `{}`", m.name),
                    other => format!("#[astrid::{}] method", other.label()),
                };
                return Err(syn::Error::new(
                    m.span,
                    format!("duplicate {what} in this #[capsule] impl"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(item: ItemImpl) -> String {
        match expand(item) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn markers_are_stripped_and_other_attributes_kept() {
        let out = expand(syn::parse_quote! {
            impl C {
                #[astrid::tool(name = "t-1")]
                #[inline]
                fn t(&self, a: A) -> Result<R, E> { unreachable!() }
            }
        })
        .unwrap()
        .to_string();
        assert!(!out.contains("astrid :: tool"), "{out}");
        assert!(out.contains("# [inline]"), "{out}");
        assert!(out.contains("\"t-1\""), "{out}");
        assert!(out.contains("export_capsule"), "{out}");
    }

    #[test]
    fn receivers_other_than_shared_ref_are_refused() {
        let e = error_of(syn::parse_quote! {
            impl C { #[astrid::handler] fn h(&mut self, e: &Event) -> Result<(), E> { unreachable!() } }
        });
        assert!(e.contains("take `&self`"), "{e}");
    }

    #[test]
    fn duplicate_handler_names_are_refused() {
        let e = error_of(syn::parse_quote! {
            impl C {
                #[astrid::handler] fn a(&self) -> Result<(), E> { unreachable!() }
                #[astrid::tool(name = "a")] fn b(&self) -> Result<(), E> { unreachable!() }
            }
        });
        assert!(e.contains("duplicate handler name `a`"), "{e}");
    }

    #[test]
    fn generics_trait_impls_and_bad_arity_are_refused() {
        let e = error_of(syn::parse_quote! { impl<T> C<T> {} });
        assert!(e.contains("generic"), "{e}");
        let e = error_of(syn::parse_quote! { impl Default for C {} });
        assert!(e.contains("inherent impl"), "{e}");
        let e = error_of(syn::parse_quote! {
            impl C { #[astrid::upgrade] fn u(&self) -> Result<(), E> { unreachable!() } }
        });
        assert!(e.contains("previous"), "{e}");
        let e = error_of(syn::parse_quote! {
            impl C { #[astrid::run(name = "x")] fn r(&self) -> Result<(), E> { unreachable!() } }
        });
        assert!(e.contains("takes no arguments"), "{e}");
    }
}
