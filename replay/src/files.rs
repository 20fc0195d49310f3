//! Which files of a run directory the viewer hands out: images inside it, nothing else.

use std::path::{Path, PathBuf};

/// Why a file request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The path tries to leave the run directory or is malformed (HTTP 403).
    Forbidden,
    /// No such image in the run directory (HTTP 404).
    NotFound,
}

/// Image types the renderer writes; everything else in a run (weights, optimiser state,
/// configs) stays private.
const IMAGE_TYPES: &[(&str, &str)] = &[
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
];

/// The content type of an image path, if it is one the viewer serves.
pub(crate) fn image_type(path: &str) -> Option<&'static str> {
    let (_, extension) = path.rsplit_once('.')?;
    IMAGE_TYPES
        .iter()
        .find(|(ext, _)| extension.eq_ignore_ascii_case(ext))
        .map(|&(_, mime)| mime)
}

/// Decodes `%XX` escapes; `None` for a malformed escape or bytes that are not UTF-8.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Resolves `relative` (a run-relative path, already percent-decoded) to an image file inside
/// `root` (canonical).
///
/// Lexical checks refuse `..`, `.`, empty segments, absolute paths and backslashes before the
/// file system is touched; canonicalising afterwards catches symbolic links that point out.
pub(crate) fn resolve(root: &Path, relative: &str) -> Result<PathBuf, Refused> {
    let lexically_safe = !relative.is_empty()
        && !relative.contains(['\\', '\0', ':'])
        && relative
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..");
    if !lexically_safe {
        return Err(Refused::Forbidden);
    }
    if image_type(relative).is_none() {
        return Err(Refused::NotFound);
    }
    let path = root
        .join(relative)
        .canonicalize()
        .map_err(|_| Refused::NotFound)?;
    if !path.starts_with(root) {
        return Err(Refused::Forbidden);
    }
    if !path.is_file() {
        return Err(Refused::NotFound);
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode_and_bad_ones_are_refused() {
        assert_eq!(percent_decode("a%2e%2E/b%20c").as_deref(), Some("a../b c"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn only_images_inside_the_root_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("run");
        std::fs::create_dir_all(root.join("rollouts")).unwrap();
        std::fs::write(root.join("rollouts/a.png"), b"png").unwrap();
        std::fs::write(root.join("config.ron"), b"()").unwrap();
        std::fs::write(dir.path().join("secret.png"), b"png").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.png"), root.join("link.png")).unwrap();
        let root = root.canonicalize().unwrap();
        assert!(resolve(&root, "rollouts/a.png").is_ok());
        assert_eq!(
            resolve(&root, "rollouts/../rollouts/a.png"),
            Err(Refused::Forbidden)
        );
        assert_eq!(resolve(&root, "../secret.png"), Err(Refused::Forbidden));
        assert_eq!(resolve(&root, "/etc/passwd.png"), Err(Refused::Forbidden));
        assert_eq!(resolve(&root, "rollouts//a.png"), Err(Refused::Forbidden));
        assert_eq!(resolve(&root, "link.png"), Err(Refused::Forbidden));
        assert_eq!(resolve(&root, "config.ron"), Err(Refused::NotFound));
        assert_eq!(resolve(&root, "rollouts/b.png"), Err(Refused::NotFound));
    }
}
