//! Project chores: `cargo xtask setup | test | demo`.
//!
//! Set-up is idempotent and fast on a ready machine: every step first checks whether its result
//! is already there.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The `PyTorch` version tch 0.24 is built for.
const TORCH_VERSION: &str = "2.11.0";

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  setup   create the project virtualenv with torch, install headless Vulkan and Gloo's headers if needed
  test    setup, then check formatting, lint and run the whole test suite
  demo    setup, build in release mode and run the main job
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root)
        .with_context(|| format!("entering the workspace root {}", root.display()))?;
    match args.first().map(String::as_str) {
        Some("setup") => setup(&root),
        Some("test") => {
            setup(&root)?;
            test()
        }
        Some("demo") => {
            setup(&root)?;
            demo()
        }
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown xtask command `{other}`\n\n{USAGE}"),
        None => bail!("no xtask command given\n\n{USAGE}"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn setup(root: &Path) -> Result<()> {
    let venv = root.join(".venv");
    ensure_torch(&venv)?;
    ensure_libtorch_link(&venv)?;
    ensure_vulkan()?;
    ensure_gloo_headers()?;
    ensure_browser()?;
    println!("xtask: set-up complete");
    Ok(())
}

/// Creates `.venv` and installs the `PyPI` torch wheel unless that exact version is there.
fn ensure_torch(venv: &Path) -> Result<()> {
    let python = venv.join("bin/python");
    if !python.exists() {
        println!("xtask: creating the virtualenv {}", venv.display());
        if !run_status(Command::new("python3").args(["-m", "venv"]).arg(venv))? {
            // Debian's system python ships venv separately.
            apt_install(&["python3-venv"])?;
            run(Command::new("python3").args(["-m", "venv"]).arg(venv))?;
        }
    }
    if installed_torch(venv).as_deref() == Some(TORCH_VERSION) {
        return Ok(());
    }
    println!("xtask: installing torch=={TORCH_VERSION} into the virtualenv (a few minutes)");
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        &format!("torch=={TORCH_VERSION}"),
        // torch warns on import without numpy; the parity scripts use it too.
        "numpy",
    ]))?;
    match installed_torch(venv) {
        Some(v) if v == TORCH_VERSION => Ok(()),
        other => bail!("pip finished but torch {TORCH_VERSION} is not installed (found {other:?})"),
    }
}

/// The torch version installed in the virtualenv, read from its dist-info (no interpreter start).
fn installed_torch(venv: &Path) -> Option<String> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    for python_dir in lib.flatten() {
        let Ok(entries) = std::fs::read_dir(python_dir.path().join("site-packages")) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(version) = name
                .strip_prefix("torch-")
                .and_then(|rest| rest.strip_suffix(".dist-info"))
            {
                return Some(version.to_owned());
            }
        }
    }
    None
}

/// Points `.venv/libtorch` (what `.cargo/config.toml` names as LIBTORCH) at the wheel's torch.
fn ensure_libtorch_link(venv: &Path) -> Result<()> {
    let link = venv.join("libtorch");
    if link.join("lib/libtorch_cpu.so").exists() {
        return Ok(());
    }
    let lib = venv.join("lib");
    let torch_dir = std::fs::read_dir(&lib)
        .with_context(|| format!("reading {}", lib.display()))?
        .flatten()
        .map(|entry| entry.path().join("site-packages/torch"))
        .find(|dir| dir.join("lib/libtorch_cpu.so").exists())
        .with_context(|| {
            format!(
                "no torch package with lib/libtorch_cpu.so under {}",
                lib.display()
            )
        })?;
    if link.symlink_metadata().is_ok() {
        std::fs::remove_file(&link).with_context(|| format!("removing {}", link.display()))?;
    }
    std::os::unix::fs::symlink(&torch_dir, &link)
        .with_context(|| format!("linking {} to {}", link.display(), torch_dir.display()))?;
    Ok(())
}

/// Installs Mesa's software Vulkan when the machine has no Vulkan driver at all.
fn ensure_vulkan() -> Result<()> {
    let has_loader = [
        "/usr/lib/x86_64-linux-gnu/libvulkan.so.1",
        "/usr/lib/libvulkan.so.1",
    ]
    .iter()
    .any(|p| Path::new(p).exists());
    let has_driver = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(std::iter::Iterator::flatten)
        .any(|entry| entry.path().extension().is_some_and(|e| e == "json"));
    if has_loader && has_driver {
        return Ok(());
    }
    println!("xtask: no Vulkan driver found; installing Mesa's software Vulkan (lavapipe)");
    apt_install(&["mesa-vulkan-drivers", "libvulkan1"])
}

/// Installs Gloo's headers, which the c10d shim of `dist/` compiles against (the torch wheel
/// ships Gloo's library inside `libtorch_cpu.so` but not its headers).
fn ensure_gloo_headers() -> Result<()> {
    if Path::new("/usr/include/gloo/context.h").exists() {
        return Ok(());
    }
    println!("xtask: no Gloo headers found; installing libgloo-dev");
    apt_install(&["libgloo-dev"])
}

/// Installs Debian's headless-capable Chromium and its chromedriver, which the replay viewer's
/// browser test drives.
fn ensure_browser() -> Result<()> {
    if Path::new("/usr/bin/chromedriver").exists() {
        return Ok(());
    }
    println!("xtask: no chromedriver found; installing chromium and chromium-driver");
    apt_install(&["chromium", "chromium-driver"])
}

fn apt_install(packages: &[&str]) -> Result<()> {
    let sudo = !is_root();
    let apt = |args: &[&str]| {
        let mut command = if sudo {
            Command::new("sudo")
        } else {
            Command::new("apt-get")
        };
        if sudo {
            command.arg("apt-get");
        }
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        command
    };
    run(&mut apt(&["update", "-q"]))?;
    let mut install = apt(&["install", "-y", "-q", "--no-install-recommends"]);
    install.args(packages);
    run(&mut install)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn test() -> Result<()> {
    run(Command::new("cargo").args(["fmt", "--all", "--", "--check"]))?;
    run(Command::new("cargo").args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(Command::new("cargo").args(["test", "--workspace"]))
}

/// Builds in release mode, then trains the demo from nothing in `runs/demo` (a previous demo
/// run there is replaced): the build is kept apart so that the run's own time is what the
/// progress bars and the final table report.
fn demo() -> Result<()> {
    run(Command::new("cargo").args(["build", "--release", "--bin", "metaspatial-rl"]))?;
    let out = Path::new("runs/demo");
    if out.exists() {
        std::fs::remove_dir_all(out)
            .with_context(|| format!("removing the previous demo run {}", out.display()))?;
    }
    run(Command::new("target/release/metaspatial-rl").args([
        "run",
        "configs/demo.ron",
        "--out",
        "runs/demo",
    ]))
}

fn run(command: &mut Command) -> Result<()> {
    if run_status(command)? {
        Ok(())
    } else {
        bail!("command failed: {command:?}")
    }
}

fn run_status(command: &mut Command) -> Result<bool> {
    let status = command
        .status()
        .with_context(|| format!("could not start {command:?}"))?;
    Ok(status.success())
}
