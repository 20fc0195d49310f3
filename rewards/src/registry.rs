//! Reward names to constructors: the built-ins, and rewards registered by other crates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ron::value::RawValue;
use serde::de::DeserializeOwned;

use crate::Reward;
use crate::builtin;
use crate::config::ron_options;

/// Builds a reward from its parameters; the error says what is wrong with them.
pub type Factory = Box<dyn Fn(&Params<'_>) -> Result<Box<dyn Reward>, String> + Send + Sync>;

/// The parameters of one config entry, and where the config lives.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    value: Option<&'a RawValue>,
    base_dir: &'a Path,
    label: &'a str,
}

impl<'a> Params<'a> {
    /// Parameters `value` (RON as written) of the entry named `label`, from a config in
    /// `base_dir`.
    #[must_use]
    pub fn new(value: Option<&'a RawValue>, base_dir: &'a Path, label: &'a str) -> Self {
        Self {
            value,
            base_dir,
            label,
        }
    }

    /// The parameters as `T`; absent parameters give `T::default()`. They are read from their
    /// text with the config's own RON options, so optional fields take plain values.
    pub fn parse<T: DeserializeOwned + Default>(&self) -> Result<T, String> {
        self.value.map_or_else(|| Ok(T::default()), read)
    }

    /// The parameters as `T`, which has required fields.
    pub fn parse_required<T: DeserializeOwned>(&self) -> Result<T, String> {
        read(self.value.ok_or("params are required")?)
    }

    /// A path from the config, relative paths taken from the config's directory.
    #[must_use]
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// The directory of the config file.
    #[must_use]
    pub fn base_dir(&self) -> &'a Path {
        self.base_dir
    }

    /// The entry's component name.
    #[must_use]
    pub fn label(&self) -> &'a str {
        self.label
    }
}

/// Reads parameters written as RON. The position is left out: it counts from the start of
/// `params`, not of the file, and would mislead.
fn read<T: DeserializeOwned>(raw: &RawValue) -> Result<T, String> {
    ron_options()
        .from_str(raw.get_ron())
        .map_err(|e| format!("params: {}", e.code))
}

/// Reward names and how to build each.
pub struct Registry {
    factories: BTreeMap<String, Factory>,
}

impl Registry {
    /// A registry with no rewards.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            factories: BTreeMap::new(),
        }
    }

    /// A registry with every built-in reward.
    #[must_use]
    pub fn with_builtins() -> Self {
        let mut r = Self::empty();
        builtin::register_all(&mut r);
        r
    }

    /// Registers (or replaces) a reward under `name`.
    pub fn register(
        &mut self,
        name: &str,
        factory: impl Fn(&Params<'_>) -> Result<Box<dyn Reward>, String> + Send + Sync + 'static,
    ) {
        self.factories.insert(name.to_owned(), Box::new(factory));
    }

    /// Builds the reward registered as `name`.
    pub fn build(&self, name: &str, params: &Params<'_>) -> Result<Box<dyn Reward>, String> {
        let factory = self.factories.get(name).ok_or_else(|| {
            format!(
                "unknown reward `{name}`; known: {}",
                self.names().collect::<Vec<_>>().join(", ")
            )
        })?;
        factory(params)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::with_builtins()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}
