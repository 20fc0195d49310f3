//! Reward names to constructors: the built-ins, and rewards registered by other crates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ron::value::RawValue;
use serde::de::DeserializeOwned;

use crate::Reward;
use crate::builtin;
use crate::config::ron_options;

/// Builds a reward from its parameters; the error says what is wrong with them.
pub type Factory = Box<dyn Fn(&Params<'_>) -> Result<Box<dyn Reward>, BuildError> + Send + Sync>;

/// Why a config entry could not be built into a reward.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// No reward is registered under the entry's name.
    #[error("unknown reward `{name}`; known: {}", known.join(", "))]
    Unknown {
        /// The name asked for.
        name: String,
        /// The registered names, sorted.
        known: Vec<String>,
    },
    /// The reward needs parameters and the entry has none.
    #[error("params are required")]
    MissingParams,
    /// The parameters are not what the reward reads (the RON error, without its position).
    #[error("params: {0}")]
    Params(String),
    /// A parameter is out of its range, or something it names cannot be used.
    #[error("{0}")]
    Invalid(String),
}

impl From<&str> for BuildError {
    fn from(why: &str) -> Self {
        Self::Invalid(why.to_owned())
    }
}

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
    pub fn parse<T: DeserializeOwned + Default>(&self) -> Result<T, BuildError> {
        self.value.map_or_else(|| Ok(T::default()), read)
    }

    /// The parameters as `T`, which has required fields.
    pub fn parse_required<T: DeserializeOwned>(&self) -> Result<T, BuildError> {
        read(self.value.ok_or(BuildError::MissingParams)?)
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
fn read<T: DeserializeOwned>(raw: &RawValue) -> Result<T, BuildError> {
    ron_options()
        .from_str(raw.get_ron())
        .map_err(|e| BuildError::Params(e.code.to_string()))
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
        factory: impl Fn(&Params<'_>) -> Result<Box<dyn Reward>, BuildError> + Send + Sync + 'static,
    ) {
        self.factories.insert(name.to_owned(), Box::new(factory));
    }

    /// Builds the reward registered as `name`.
    pub fn build(&self, name: &str, params: &Params<'_>) -> Result<Box<dyn Reward>, BuildError> {
        let factory = self
            .factories
            .get(name)
            .ok_or_else(|| BuildError::Unknown {
                name: name.to_owned(),
                known: self.names().map(str::to_owned).collect(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn build(name: &str, params: Option<&str>) -> Result<Box<dyn Reward>, BuildError> {
        let raw = params.map(|p| RawValue::from_ron(p).unwrap());
        Registry::with_builtins().build(name, &Params::new(raw, Path::new("."), name))
    }

    #[test]
    fn each_way_an_entry_fails_has_its_own_variant() {
        assert!(matches!(
            build("colision", None),
            Err(BuildError::Unknown { name, known }) if name == "colision" && known.contains(&"collision".to_owned())
        ));
        assert_eq!(build("judge", None).err(), Some(BuildError::MissingParams));
        assert!(matches!(
            build("collision", Some("(depth_scal: 1.0)")),
            Err(BuildError::Params(why)) if why.contains("depth_scal")
        ));
        assert!(matches!(
            build("collision", Some("(depth_scale: -1.0)")),
            Err(BuildError::Invalid(why)) if why.contains("depth_scale")
        ));
        assert!(build("collision", Some("(depth_scale: 0.5)")).is_ok());
    }
}
