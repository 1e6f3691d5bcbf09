//! Unit tests of the host that need no guest build: validation of bytes that
//! are not UDF components. Behaviour with real guests is in tests/it/wasm.rs.

use super::*;

fn host() -> WasmHost {
    WasmHost::new(HostConfig {
        max_instances: 4,
        max_module_bytes: 1024,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn rejects_what_is_not_a_component_with_a_precise_reason() {
    let h = host();
    let code = |b: &[u8]| h.validate(b).unwrap_err().code();
    assert_eq!(code(b"hello, world"), "not_wasm");
    assert_eq!(code(b""), "not_wasm");
    // The smallest valid core module: magic + version 1.
    assert_eq!(code(b"\0asm\x01\0\0\0"), "not_component");
    assert_eq!(code(&vec![0u8; 2048]), "too_large");
    // A component header with a garbage body does not compile.
    let err = h.validate(b"\0asm\x0d\0\x01\0\xff\xff").unwrap_err();
    assert_eq!(err.code(), "compile_failed", "{err}");
}

#[test]
fn an_empty_component_targets_the_wrong_world() {
    // Magic + component version/layer and nothing else: a valid, empty component.
    let err = host().validate(b"\0asm\x0d\0\x01\0").unwrap_err();
    assert_eq!(err.code(), "wrong_world", "{err}");
    assert!(err.to_string().contains("weir:udf/guest"), "{err}");
}

#[test]
fn limits_are_checked_against_the_host() {
    let h = host();
    let too_big = ModuleLimits {
        memory_bytes: h.config().max_memory_bytes + 1,
        ..Default::default()
    };
    assert!(too_big.check(h.config()).is_err());
    assert!(ModuleLimits::default().check(h.config()).is_ok());
}
