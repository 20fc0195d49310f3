//! The web app, embedded in the binary so the viewer needs nothing but the run directory.

/// One static file of the app.
pub(crate) struct Asset {
    /// File name, served at `/<name>` and exported as `<name>`.
    pub name: &'static str,
    /// Its content type.
    pub mime: &'static str,
    /// Its bytes.
    pub body: &'static str,
}

/// One embedded file of `assets/` with its content type.
macro_rules! asset {
    ($name:literal, $mime:expr) => {
        Asset {
            name: $name,
            mime: $mime,
            body: include_str!(concat!("../assets/", $name)),
        }
    };
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// Every file of the app; `index.html` loads the scripts in this order.
pub(crate) const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("data.js", JAVASCRIPT),
    asset!("chart.js", JAVASCRIPT),
    asset!("plan.js", JAVASCRIPT),
    asset!("view3d.js", JAVASCRIPT),
    asset!("app.js", JAVASCRIPT),
];

/// The asset served at `/<name>`.
pub(crate) fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.name == name)
}
