//! Attribute macros that turn a plain function into a Weir UDF component.
//! Re-exported by `weir-udf-sdk`; see its docs. Each macro keeps the function
//! as written and adds the WIT export glue next to it.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{parse_macro_input, Ident, ItemFn, Meta, Token};

/// `#[map] fn f(record: &Record) -> Result<impl IntoOutput, E>`: one output per input.
/// A second leading parameter `cx: &mut Context` gives access to keyed state.
#[proc_macro_attribute]
pub fn map(attr: TokenStream, item: TokenStream) -> TokenStream {
    shape(attr, item, "map", "Map")
}

/// `#[filter] fn f(record: &Record) -> Result<bool, E>`: keep the input or drop it.
#[proc_macro_attribute]
pub fn filter(attr: TokenStream, item: TokenStream) -> TokenStream {
    shape(attr, item, "filter", "Filter")
}

/// `#[flat_map] fn f(record: &Record) -> Result<impl IntoIterator<Item: IntoOutput>, E>`.
#[proc_macro_attribute]
pub fn flat_map(attr: TokenStream, item: TokenStream) -> TokenStream {
    shape(attr, item, "flat_map", "FlatMap")
}

/// `#[process] fn f(cx: &mut Context, record: &Record, out: &mut Emitter) -> Result<(), E>`:
/// keyed processing with state. `#[process(on_timer = g)]` names a timer handler
/// `fn g(cx: &mut Context, timer: &Timer, out: &mut Emitter) -> Result<(), E>`.
#[proc_macro_attribute]
pub fn process(attr: TokenStream, item: TokenStream) -> TokenStream {
    shape(attr, item, "process", "Process")
}

fn shape(attr: TokenStream, item: TokenStream, runner: &str, kind: &str) -> TokenStream {
    let func = parse_macro_input!(item as ItemFn);
    let args = match Punctuated::<Meta, Token![,]>::parse_terminated.parse(attr) {
        Ok(a) => a,
        Err(e) => return e.to_compile_error().into(),
    };
    match expand(&func, &args, runner, kind) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(
    func: &ItemFn,
    args: &Punctuated<Meta, Token![,]>,
    runner: &str,
    kind: &str,
) -> syn::Result<Tokens> {
    let name = &func.sig.ident;
    let arity = func.sig.inputs.len();
    let mut on_timer: Option<syn::Path> = None;
    for a in args {
        match a {
            Meta::NameValue(nv) if nv.path.is_ident("on_timer") && runner == "process" => {
                match &nv.value {
                    syn::Expr::Path(p) => on_timer = Some(p.path.clone()),
                    other => {
                        return Err(syn::Error::new_spanned(
                            other,
                            "on_timer takes a function name",
                        ))
                    }
                }
            }
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    if runner == "process" {
                        "unknown argument; expected `on_timer = function`"
                    } else {
                        "this attribute takes no arguments"
                    },
                ))
            }
        }
    }
    let kind = Ident::new(kind, Span::call_site());
    let wrap = Ident::new(
        match runner {
            "map" => "one",
            "filter" => "keep",
            "flat_map" => "many",
            _ => "emitted",
        },
        Span::call_site(),
    );
    let call = match (runner, arity) {
        ("process", 3) => {
            quote! { |cx, r, w| ::weir_udf_sdk::__private::emitted(w, r, |out| #name(cx, r, out)) }
        }
        ("process", _) => {
            return Err(syn::Error::new_spanned(
                &func.sig,
                "#[process] functions take (cx: &mut Context, record: &Record, out: &mut Emitter)",
            ))
        }
        (_, 1) => quote! { |_cx, r, w| ::weir_udf_sdk::__private::#wrap(w, r, #name(r)) },
        (_, 2) => quote! { |cx, r, w| ::weir_udf_sdk::__private::#wrap(w, r, #name(cx, r)) },
        _ => {
            return Err(syn::Error::new_spanned(
                &func.sig,
                "expected (record: &Record) or (cx: &mut Context, record: &Record)",
            ))
        }
    };
    let timer_body = match &on_timer {
        Some(t) => {
            quote! { ::weir_udf_sdk::__private::timers(&batch, |cx, t, out| #t(cx, t, out)) }
        }
        None => quote! { ::weir_udf_sdk::__private::no_timers(&batch) },
    };
    // The glue exists only in wasm builds: a native build of a UDF crate (e.g.
    // `cargo test --workspace` compiling the examples) must neither export
    // WIT-named symbols nor warn that the function is unused.
    let timer_ref = on_timer.as_ref().map(|t| quote! { let _ = #t; });
    Ok(quote! {
        #func

        // Keeps the functions "used" where the glue is compiled out.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = #name;
            #timer_ref
        };

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct WeirUdfExport;
            impl ::weir_udf_sdk::bindings::exports::weir::udf::guest::Guest for WeirUdfExport {
                fn describe() -> ::weir_udf_sdk::bindings::exports::weir::udf::guest::Descriptor {
                    ::weir_udf_sdk::__private::descriptor(::weir_udf_sdk::Kind::#kind)
                }
                fn process(batch: ::std::vec::Vec<u8>) -> ::std::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                    ::weir_udf_sdk::__private::records(&batch, #call)
                }
                fn on_timer(batch: ::std::vec::Vec<u8>) -> ::std::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                    #timer_body
                }
            }
            ::weir_udf_sdk::bindings::export_udf!(WeirUdfExport with_types_in ::weir_udf_sdk::bindings);
        };
    })
}
