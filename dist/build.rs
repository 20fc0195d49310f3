//! Build script: compiles the c10d shim against the libtorch headers (with NCCL when the CUDA
//! header wheels are installed) and links libtorch for this package's tests.

use std::path::{Path, PathBuf};

include!("../build-support/torch_link.rs");

fn main() {
    link_libtorch();
    println!("cargo:rerun-if-changed=src/shim.cpp");
    let Some(root) = std::env::var_os("LIBTORCH").map(PathBuf::from) else {
        panic!(
            "LIBTORCH is not set: the c10d shim needs the torch headers (run `cargo xtask setup`)"
        );
    };
    let include = root.join("include");
    assert!(
        include
            .join("torch/csrc/distributed/c10d/ProcessGroupGloo.hpp")
            .exists(),
        "{} has no c10d headers: the torch in LIBTORCH was built without distributed support",
        include.display()
    );
    assert!(
        Path::new("/usr/include/gloo/context.h").exists(),
        "the Gloo headers are missing (Debian package libgloo-dev; `cargo xtask setup` installs it)"
    );
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file("src/shim.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        // The PyPI wheels are built with the C++11 string ABI; a mismatch breaks every
        // std::string crossing into libtorch.
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .define("USE_C10D_GLOO", None)
        .warnings(false)
        .flag_if_supported("-Wno-unused-parameter");
    if let Some(cuda_includes) = nccl_includes(&root) {
        build
            .define("USE_C10D_NCCL", None)
            .define("METASPATIAL_NCCL", None);
        for dir in cuda_includes {
            build.include(dir);
        }
        println!(
            "cargo:rustc-link-search=native={}",
            root.join("lib").display()
        );
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
    }
    build.compile("metaspatial_dist_shim");
}

/// The include directories NCCL's process group needs — `nccl.h`, the CUDA runtime headers and
/// those of the `nvidia-cuda-crt` and `nvidia-cuda-cccl` wheels — when the torch wheel has CUDA
/// and all of them are installed beside it.
fn nccl_includes(torch: &Path) -> Option<Vec<PathBuf>> {
    if !torch.join("lib/libtorch_cuda.so").exists() {
        return None;
    }
    let nvidia = torch.canonicalize().ok()?.parent()?.join("nvidia");
    println!("cargo:rerun-if-changed={}", nvidia.display());
    let dirs: Vec<PathBuf> = std::fs::read_dir(&nvidia)
        .ok()?
        .flatten()
        .map(|entry| entry.path().join("include"))
        .filter(|dir| dir.is_dir())
        .collect();
    let needed = [
        "nccl.h",
        "cuda_runtime_api.h",
        "crt/host_defines.h",
        "cuda/std/cstdint",
    ];
    let mut out = Vec::new();
    for file in needed {
        let dir = dirs.iter().find(|d| d.join(file).exists())?;
        if !out.contains(dir) {
            out.push(dir.clone());
        }
    }
    Some(out)
}
