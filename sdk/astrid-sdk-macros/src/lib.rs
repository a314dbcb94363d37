//! `#[capsule]`: turns an inherent `impl` block into a capsule's guest export.
//!
//! Methods marked `#[astrid::tool]`, `#[astrid::handler]`, `#[astrid::hook]`,
//! `#[astrid::install]`, `#[astrid::upgrade]` or `#[astrid::run]` become the dispatch table of
//! `astrid_sdk::Capsule`; the marker attributes are removed and the impl is kept as written.
//!
//! When the crate has a `Capsule.toml` next to its `Cargo.toml`, its `[[tool]]` entries are
//! read at compile time and a handler `astrid.describe-tools` is generated that answers
//! `tool.v1.describe` with them, and each `#[astrid::hook]` must be the handler of one of its
//! `hook.v1.*` subscriptions.
#![forbid(unsafe_code)]

mod manifest;

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
/// A hook handler (`astrid_sdk::hooks`) takes the parsed hook:
/// `#[astrid::hook] fn on_commit(&self, hook: &Hook) -> Result<(), E>`, and `Capsule.toml`
/// must route a `hook.v1.*` topic to it (checked here when the manifest is found).
/// A tool may also take the call's context: `fn t(&self, args: A, ctx: &ToolContext)`.
///
/// `#[capsule(manifest = "path/Capsule.toml")]` reads the manifest from another path
/// (relative to the crate root) instead of `Capsule.toml`; mainly for tests.
#[proc_macro_attribute]
pub fn capsule(attr: TokenStream, item: TokenStream) -> TokenStream {
    let explicit = match parse_capsule_attr(attr.into()) {
        Ok(p) => p,
        Err(e) => return e.to_compile_error().into(),
    };
    let item = parse_macro_input!(item as ItemImpl);
    let found = match manifest::locate(explicit.as_ref().map(LitStr::value).as_deref()) {
        Ok(found) => found,
        Err(msg) => {
            let span = explicit.as_ref().map_or_else(Span::call_site, LitStr::span);
            return syn::Error::new(span, format!("#[capsule]: {msg}"))
                .to_compile_error()
                .into();
        }
    };
    match expand(item, found) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// The optional `manifest = "..."` argument of `#[capsule]`.
fn parse_capsule_attr(attr: TokenStream2) -> syn::Result<Option<LitStr>> {
    if attr.is_empty() {
        return Ok(None);
    }
    let mut path = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("manifest") {
            path = Some(meta.value()?.parse::<LitStr>()?);
            Ok(())
        } else {
            Err(meta.error("#[capsule] takes only `manifest = \"path\"`"))
        }
    });
    syn::parse::Parser::parse2(parser, attr)?;
    Ok(path)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tool,
    Handler,
    Hook,
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
            "hook" => Kind::Hook,
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
            Kind::Hook => "hook",
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

fn expand(mut item: ItemImpl, found: Option<manifest::Found>) -> syn::Result<TokenStream2> {
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
    if let Some(found) = &found {
        check_hooks_routed(&marked, &found.routes)?;
    }
    let describe = describe_arm(&marked, found)?;

    let self_ty = &item.self_ty;
    let arms = marked
        .iter()
        .filter(|m| matches!(m.kind, Kind::Tool | Kind::Handler | Kind::Hook))
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
                    #describe
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
        (Kind::Tool, 1) => quote! {
            #name => {
                let args = ::astrid_sdk::__private::tool_args(&event.payload)?;
                ::astrid_sdk::__private::tool_reply(self.#ident(args))
            }
        },
        (Kind::Tool, _) => quote! {
            #name => {
                let (args, ctx) = ::astrid_sdk::__private::tool_call(&event.payload)?;
                ::astrid_sdk::__private::tool_reply(self.#ident(args, &ctx))
            }
        },
        (Kind::Hook, _) => quote! {
            #name => {
                let hook = ::astrid_sdk::hooks::Hook::from_event(event)?;
                ::astrid_sdk::__private::reply(self.#ident(&hook))
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

/// The generated `astrid.describe-tools` arm, when the manifest declares tools. The
/// `include_bytes!` is there only so cargo rebuilds the crate when the manifest changes.
fn describe_arm(
    marked: &[Marked],
    found: Option<manifest::Found>,
) -> syn::Result<Option<TokenStream2>> {
    let Some(found) = found.filter(|f| !f.tools.is_empty()) else {
        return Ok(None);
    };
    if let Some(m) = marked.iter().find(|m| m.name == manifest::DESCRIBE_HANDLER) {
        return Err(syn::Error::new(
            m.span,
            format!(
                "`{}` is generated from Capsule.toml's [[tool]]s; do not define it",
                manifest::DESCRIBE_HANDLER
            ),
        ));
    }
    let path =
        manifest::path_str(&found.path).map_err(|e| syn::Error::new(Span::call_site(), e))?;
    let json = manifest::describe_json(&found.tools);
    let name = manifest::DESCRIBE_HANDLER;
    Ok(Some(quote! {
        #name => {
            const _: &[u8] = ::core::include_bytes!(#path);
            ::core::result::Result::Ok(::core::option::Option::Some(
                ::std::vec::Vec::from(#json.as_bytes()),
            ))
        }
    }))
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
        Kind::Tool => 2,
        Kind::Handler | Kind::Upgrade | Kind::Hook => 1,
        Kind::Install | Kind::Run => 0,
    };
    if arity > max || (matches!(kind, Kind::Upgrade | Kind::Hook) && arity != 1) {
        let expected = match kind {
            Kind::Tool => {
                "`fn name(&self, args: A) -> Result<R, E>` or \
                 `fn name(&self, args: A, ctx: &ToolContext) -> Result<R, E>`"
            }
            Kind::Handler => "`fn name(&self, event: &Event) -> Result<Option<Vec<u8>>, E>`",
            Kind::Hook => "`fn name(&self, hook: &Hook) -> Result<R, E>`",
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
    if !matches!(kind, Kind::Tool | Kind::Handler | Kind::Hook) {
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
            let named = |k: Kind| matches!(k, Kind::Tool | Kind::Handler | Kind::Hook);
            let clash = if named(m.kind) && named(earlier.kind) {
                m.name == earlier.name
            } else {
                m.kind == earlier.kind
            };
            if clash {
                let what = match m.kind {
                    Kind::Tool | Kind::Handler | Kind::Hook => {
                        format!("handler name `{}`", m.name)
                    }
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

/// Every `#[astrid::hook]` is the handler of a `hook.v1.*` subscription in the manifest: a
/// hook method nothing routes to would never run, which is a mistake to catch at build time.
fn check_hooks_routed(marked: &[Marked], routes: &[(String, String)]) -> syn::Result<()> {
    for m in marked.iter().filter(|m| m.kind == Kind::Hook) {
        let routed = routes
            .iter()
            .any(|(topic, handler)| *handler == m.name && topic.starts_with("hook.v1."));
        if !routed {
            return Err(syn::Error::new(
                m.span,
                format!(
                    "#[astrid::hook] `{0}`: Capsule.toml routes no `hook.v1.*` topic to it; \
                     add `[subscribe] \"hook.v1.<name>\" = {{ handler = \"{0}\" }}`",
                    m.name
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(item: ItemImpl) -> String {
        match expand(item, None) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn markers_are_stripped_and_other_attributes_kept() {
        let out = expand(
            syn::parse_quote! {
                impl C {
                    #[astrid::tool(name = "t-1")]
                    #[inline]
                    fn t(&self, a: A) -> Result<R, E> { unreachable!() }
                }
            },
            None,
        )
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

    fn found(text: &str) -> Option<manifest::Found> {
        Some(manifest::Found {
            path: "/abs/Capsule.toml".into(),
            tools: manifest::parse(text).unwrap(),
            routes: manifest::routes(text).unwrap(),
        })
    }

    #[test]
    fn hooks_get_the_parsed_hook_and_must_be_routed_from_a_hook_topic() {
        let item = || -> ItemImpl {
            syn::parse_quote! {
                impl C {
                    #[astrid::hook]
                    fn on_commit(&self, hook: &Hook) -> Result<(), E> { unreachable!() }
                }
            }
        };
        let routed = "[subscribe]\n\"hook.v1.git.post-commit\" = { handler = \"on_commit\" }\n";
        let out = expand(item(), found(routed)).unwrap().to_string();
        assert!(out.contains("\"on_commit\" =>"), "{out}");
        assert!(out.contains("hooks :: Hook :: from_event (event)"), "{out}");
        // Without a manifest nothing can be checked; with one, the route must exist and come
        // from a hook topic.
        assert!(expand(item(), None).is_ok());
        for text in [
            "[package]\nname = \"x\"\n",
            "[subscribe]\n\"ci.v1.done\" = { handler = \"on_commit\" }\n",
            "[subscribe]\n\"hook.v1.git.post-commit\" = { handler = \"other\" }\n",
        ] {
            let e = expand(item(), found(text)).err().unwrap().to_string();
            assert!(
                e.contains("routes no `hook.v1.*` topic to it"),
                "{text}: {e}"
            );
        }
        // A hook takes exactly the hook, and its name may be given.
        let e = error_of(syn::parse_quote! {
            impl C { #[astrid::hook] fn h(&self) -> Result<(), E> { unreachable!() } }
        });
        assert!(e.contains("hook: &Hook"), "{e}");
        let named: ItemImpl = syn::parse_quote! {
            impl C { #[astrid::hook(name = "on-commit")] fn h(&self, h: &Hook) -> Result<(), E> { unreachable!() } }
        };
        let out = expand(named, None).unwrap().to_string();
        assert!(out.contains("\"on-commit\" =>"), "{out}");
        // A hook's name clashes with a handler's like any two handler names.
        let e = error_of(syn::parse_quote! {
            impl C {
                #[astrid::hook(name = "x")] fn h(&self, h: &Hook) -> Result<(), E> { unreachable!() }
                #[astrid::handler(name = "x")] fn g(&self, e: &Event) -> Result<(), E> { unreachable!() }
            }
        });
        assert!(e.contains("duplicate handler name `x`"), "{e}");
    }

    const ONE_TOOL: &str = r#"
        [[tool]]
        name = "t"
        description = "a \"quoted\" tool"
        input_schema = { type = "object" }
    "#;

    #[test]
    fn two_argument_tools_get_the_context() {
        let out = expand(
            syn::parse_quote! {
                impl C {
                    #[astrid::tool] fn t(&self, a: A, ctx: &ToolContext) -> Result<R, E> { unreachable!() }
                    #[astrid::tool] fn u(&self, a: A) -> Result<R, E> { unreachable!() }
                }
            },
            None,
        )
        .unwrap()
        .to_string();
        assert!(out.contains("tool_call (& event . payload)"), "{out}");
        assert!(out.contains("self . t (args , & ctx)"), "{out}");
        assert!(out.contains("self . u (args)"), "{out}");
        let e = error_of(syn::parse_quote! {
            impl C { #[astrid::tool] fn t(&self, a: A, c: &ToolContext, x: X) -> Result<R, E> { unreachable!() } }
        });
        assert!(e.contains("ctx: &ToolContext"), "{e}");
    }

    #[test]
    fn manifest_tools_generate_the_describe_handler() {
        let out = expand(syn::parse_quote! { impl C {} }, found(ONE_TOOL))
            .unwrap()
            .to_string();
        assert!(out.contains("\"astrid.describe-tools\" =>"), "{out}");
        assert!(
            out.contains("include_bytes ! (\"/abs/Capsule.toml\")"),
            "{out}"
        );
        let json = manifest::describe_json(&manifest::parse(ONE_TOOL).unwrap());
        let lit = quote!(#json).to_string();
        assert!(out.contains(&lit), "{out}");
    }

    #[test]
    fn no_manifest_tools_means_no_describe_handler() {
        for f in [None, found("[package]\nname = \"x\"\n")] {
            let out = expand(syn::parse_quote! { impl C {} }, f)
                .unwrap()
                .to_string();
            assert!(!out.contains("describe-tools"), "{out}");
        }
    }

    #[test]
    fn a_hand_written_describe_handler_clashes_with_the_generated_one() {
        let item: ItemImpl = syn::parse_quote! {
            impl C {
                #[astrid::handler(name = "astrid.describe-tools")]
                fn d(&self) -> Result<(), E> { unreachable!() }
            }
        };
        let e = expand(item, found(ONE_TOOL)).err().unwrap().to_string();
        assert!(e.contains("generated from Capsule.toml"), "{e}");
    }

    #[test]
    fn capsule_attribute_takes_only_a_manifest_path() {
        let p = parse_capsule_attr(quote!(manifest = "tests/x.toml")).unwrap();
        assert_eq!(p.unwrap().value(), "tests/x.toml");
        assert!(parse_capsule_attr(quote!()).unwrap().is_none());
        let e = parse_capsule_attr(quote!(other = 1))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("manifest"), "{e}");
    }
}
