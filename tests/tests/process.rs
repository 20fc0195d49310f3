//! One process hosts libtorch and a Vulkan driver at once (the trainer does). Both bundle large
//! native runtimes (OpenMP, LLVM in Mesa's lavapipe), so their coexistence is checked for real.

use metaspatial_render::probe;

#[test]
fn torch_computes_and_a_frame_renders_in_the_same_process() {
    let a = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
    let dot = a.dot(&a).double_value(&[]);
    assert!((dot - 14.0).abs() < 1e-6, "dot = {dot}");

    let report = metaspatial_policy::device::torch_report();
    assert!(
        report.version.starts_with("2.11.0"),
        "libtorch {}",
        report.version
    );

    if probe::adapters().is_empty() {
        eprintln!("skipped the frame: no wgpu adapter on this machine");
        return;
    }
    probe::test_frame().expect("headless test frame after libtorch ran");
    // And torch still works after the Vulkan driver is loaded.
    assert!((a.sum(tch::Kind::Float).double_value(&[]) - 6.0).abs() < 1e-6);
}
