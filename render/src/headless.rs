//! Keeps system graphics libraries quiet on a machine without a display.
//!
//! Mesa's Vulkan device-selection layer, loaded into every Vulkan instance, asks Wayland for the
//! default display. When `XDG_RUNTIME_DIR` is unset or not an absolute path, libwayland answers
//! by printing `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` to stderr —
//! before our logging starts, and worded as an error although rendering works. With the
//! variable pointing at an empty private directory, the connection fails quietly, as it does on
//! any machine whose user session has no display.

use std::ffi::OsStr;

/// The variable libwayland reads.
const VAR: &str = "XDG_RUNTIME_DIR";

/// Whether `value` of `XDG_RUNTIME_DIR` makes libwayland complain (unset, or not absolute).
#[must_use]
pub fn runtime_dir_is_unusable(value: Option<&OsStr>) -> bool {
    value.is_none_or(|v| !std::path::Path::new(v).is_absolute())
}

/// Points `XDG_RUNTIME_DIR` at a new private directory when it is unset or not absolute, and
/// returns that directory (removed when dropped; keep it until the process ends). Returns
/// `None` when the variable was usable.
///
/// # Safety
///
/// Changes the process environment, which is sound only while no other thread reads or writes
/// it: call it first thing in `main`, before any thread starts.
pub unsafe fn quiet_display_probe() -> std::io::Result<Option<tempfile::TempDir>> {
    if !runtime_dir_is_unusable(std::env::var_os(VAR).as_deref()) {
        return Ok(None);
    }
    // Private (mode 0700, as the XDG base directory specification asks of a runtime directory)
    // and empty.
    let dir = tempfile::Builder::new()
        .prefix("metaspatial-runtime-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()?;
    // SAFETY: the caller guarantees that no other thread touches the environment.
    unsafe { std::env::set_var(VAR, dir.path()) };
    Ok(Some(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_absolute_runtime_dir_is_usable() {
        assert!(runtime_dir_is_unusable(None));
        assert!(runtime_dir_is_unusable(Some(OsStr::new(""))));
        assert!(runtime_dir_is_unusable(Some(OsStr::new("run/user/0"))));
        assert!(!runtime_dir_is_unusable(Some(OsStr::new("/run/user/0"))));
    }
}
