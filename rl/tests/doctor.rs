//! `metaspatial-rl doctor` run as a user runs it.

use std::process::Command;

#[test]
fn doctor_reports_libtorch_and_rendering_and_succeeds() {
    let out = Command::new(env!("CARGO_BIN_EXE_metaspatial-rl"))
        .arg("doctor")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("run metaspatial-rl doctor");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "doctor failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("libtorch   2.11.0"), "{stdout}");
    assert!(stdout.contains("CUDA"), "{stdout}");
    assert!(stdout.contains("c10d       gloo"), "{stdout}");
    assert!(stdout.contains("read back correctly"), "{stdout}");
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_metaspatial-rl"))
        .arg("no-such-command")
        .output()
        .expect("run metaspatial-rl");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand"));
}
