//! `scripts/gpu-check.sh` on a machine without an NVIDIA GPU: it checks its inputs, says there
//! is no GPU and succeeds; a missing binary fails at the `inputs` step.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_metaspatial-rl");

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/gpu-check.sh")
}

/// Runs the check on `binary` with GPU listing done by a program that is not there, so that a
/// CI machine with a GPU takes the same path as one without.
fn gpu_check(binary: &str, out: &Path) -> Output {
    Command::new("bash")
        .arg(script())
        .arg(binary)
        .env("NVIDIA_SMI", out.join("no-such-nvidia-smi"))
        .env("GPU_CHECK_OUT", out.join("figures"))
        .output()
        .unwrap()
}

#[test]
fn without_a_gpu_the_check_verifies_its_inputs_and_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let out = gpu_check(BIN, tmp.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "inputs OK (metaspatial-rl {} at {BIN};",
            env!("CARGO_PKG_VERSION")
        )),
        "{stdout}"
    );
    assert!(stdout.contains("no NVIDIA GPU on this machine"), "{stdout}");
    // Nothing was measured, so nothing was written.
    assert!(!tmp.path().join("figures").exists());
}

#[test]
fn a_missing_binary_fails_at_the_inputs_step() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("metaspatial-rl");
    let out = gpu_check(missing.to_str().unwrap(), tmp.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("FAILED at step 'inputs'")
            && stderr.contains(&format!("no executable binary at {}", missing.display())),
        "{stderr}"
    );
}

#[test]
fn a_binary_that_does_not_run_fails_at_the_inputs_step() {
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("metaspatial-rl");
    std::fs::write(
        &broken,
        "#!/bin/sh\necho 'cannot load libtorch' >&2\nexit 127\n",
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&broken).unwrap().permissions();
    permissions.set_mode(0o755);
    std::fs::set_permissions(&broken, permissions).unwrap();
    let out = gpu_check(broken.to_str().unwrap(), tmp.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("FAILED at step 'inputs'") && stderr.contains("cannot load libtorch"),
        "{stderr}"
    );
}
