//! `Capsule.toml` parsing and validation (`Manifest::parse`), which reads what a capsule's
//! author wrote. Holds: no panic; a manifest that parses renders (`to_toml_string`) to text
//! that parses back to an equal manifest, so what install shows is what it enforces.
#![no_main]

use std::path::Path;

use astrid_types::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let origin = Path::new("fuzz/Capsule.toml");
    let Ok(manifest) = Manifest::parse(text, origin) else {
        return;
    };
    let rendered = manifest.to_toml_string();
    let again = Manifest::parse(&rendered, origin)
        .unwrap_or_else(|e| panic!("a manifest's own rendering does not parse: {e}\n{rendered}"));
    assert_eq!(again, manifest, "{rendered}");
});
