// Shared by the build scripts of every package whose binaries, tests or benches load libtorch
// (`include!`d, since build scripts cannot share a library without a crate of their own).

/// Links libtorch the way our binaries need it.
///
/// - Keeps `libtorch_cuda.so` linked: Rust links with `--as-needed`, and since no Rust symbol
///   refers to it the linker drops it, after which CUDA silently reports unavailable.
/// - Records the libtorch directory as RUNPATH (not RPATH), so binaries run with no environment
///   variables while `LD_LIBRARY_PATH` still takes precedence on machines with their own torch.
fn link_libtorch() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Some(root) = std::env::var_os("LIBTORCH") else {
        println!(
            "cargo:warning=LIBTORCH is not set: binaries will need LD_LIBRARY_PATH to find \
             libtorch (run `cargo xtask setup`)"
        );
        return;
    };
    let lib = std::path::Path::new(&root).join("lib");
    let lib = lib.canonicalize().unwrap_or(lib);
    println!("cargo:rustc-link-arg=-Wl,--enable-new-dtags,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
