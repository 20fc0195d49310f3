//! Build script: links libtorch for this package's binaries and tests.

include!("../build-support/torch_link.rs");

fn main() {
    link_libtorch();
}
