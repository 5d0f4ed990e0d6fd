//! Link settings for the wasm32 build only: a 64 KiB stack instead of rustc's default
//! 1 MiB, so the module starts with 2 pages of linear memory (Mini Programs run on
//! phones). The engine's stack peaks at about 17 KiB (js/test/module.test.js measures it
//! and fails above 32 KiB). The stack sits below the statics, so an overflow traps
//! instead of overwriting them.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo::rustc-link-arg-cdylib=-zstack-size=65536");
    }
}
