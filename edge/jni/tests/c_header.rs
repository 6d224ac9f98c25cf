//! `include/smsguard.h` must be exactly what cbindgen generates from `src/c_api.rs`.

use std::path::Path;

const BLESS_VAR: &str = "SMSGUARD_BLESS_HEADER";

#[test]
fn committed_c_header_matches_cbindgen_output() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("read cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/c_api.rs"))
        .generate()
        .expect("cbindgen parses src/c_api.rs");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let header_path = crate_dir.join("include/smsguard.h");

    if std::env::var_os(BLESS_VAR).is_some() {
        std::fs::write(&header_path, &generated).expect("write include/smsguard.h");
        return;
    }
    let committed = std::fs::read(&header_path).unwrap_or_default();
    assert!(
        committed == generated,
        "edge/jni/include/smsguard.h is out of date with src/c_api.rs.\n\
         Regenerate it with:\n    {BLESS_VAR}=1 cargo test -p smsguard-jni --test c_header\n\
         --- generated ---\n{}",
        String::from_utf8_lossy(&generated)
    );
}
