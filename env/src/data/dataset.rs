//! Dataset directories: rooms, optional reference layouts and images, and a manifest.
//!
//! ```text
//! DIR/manifest.json              format, source, generator version and seed, counts per split
//! DIR/train.jsonl                one room per line (our `Room` JSON)
//! DIR/val.jsonl
//! DIR/test.jsonl
//! DIR/<split>.layouts.jsonl      optional: one reference layout per line (`data solve`)
//! DIR/images/<room id>.png       optional: a picture of the empty room (imports)
//! ```
//!
//! Splits are disjoint by construction: every room is written to exactly one split file, and
//! reading checks that no room id appears twice across splits and that every file holds exactly
//! the count the manifest promises (a dataset is never silently truncated). Generated room `i`
//! goes to [`Split::for_index`], a fixed function of `i`, so a room's split does not depend on
//! how many rooms were generated.
//!
//! Every error names the file, the line and the field; object sizes that are zero, negative or
//! non-finite are rejected with the object's id.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::layout::{Layout, Pose};
use crate::room::{LayoutElement, Room};

/// `format` value of every manifest.
pub const FORMAT: &str = "metaspatial-rl-dataset";
/// Version of this directory layout.
pub const FORMAT_VERSION: u32 = 1;

/// Why a dataset could not be read or written.
#[derive(Debug, Error)]
pub enum DatasetError {
    /// The file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error: in the message, not the error's source, so a chain prints it once.
        error: std::io::Error,
    },
    /// One line of a JSONL file is wrong.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong, naming the field and object.
        message: String,
    },
    /// The file as a whole is wrong (manifest, counts, duplicates across files).
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// One of the three splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Training rooms.
    Train,
    /// Validation rooms.
    Val,
    /// Held-out test rooms.
    Test,
}

impl Split {
    /// All splits, in file order.
    pub const ALL: [Self; 3] = [Self::Train, Self::Val, Self::Test];

    /// `train`, `val` or `test`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Val => "val",
            Self::Test => "test",
        }
    }

    /// The split with this name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The split of generated room `index`: 80 % train, 10 % val, 10 % test, interleaved so
    /// that every prefix of a dataset is split the same way.
    #[must_use]
    pub fn for_index(index: u64) -> Self {
        match index % 10 {
            0 => Self::Test,
            1 => Self::Val,
            _ => Self::Train,
        }
    }

    /// The rooms file of this split in `dir`.
    #[must_use]
    pub fn rooms_path(self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.jsonl", self.name()))
    }

    /// The reference layouts file of this split in `dir`.
    #[must_use]
    pub fn layouts_path(self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.layouts.jsonl", self.name()))
    }
}

/// How the rooms were made, for procedural datasets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratorInfo {
    /// [`super::generate::GENERATOR_VERSION`] at generation time.
    pub version: String,
    /// Master seed.
    pub seed: u64,
    /// Fewest objects per room asked for.
    pub min_objects: usize,
    /// Most objects per room asked for.
    pub max_objects: usize,
}

/// What one split holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitCounts {
    /// Rooms in `<split>.jsonl`.
    pub rooms: usize,
    /// Objects over all its rooms.
    pub objects: usize,
    /// Reference layouts in `<split>.layouts.jsonl` (0 when the file is absent).
    #[serde(default)]
    pub layouts: usize,
    /// Room images under `images/`.
    #[serde(default)]
    pub images: usize,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Where the rooms come from: `procedural`, `metaspatial` or `idesign`.
    pub source: String,
    /// Generator and seed, for procedural datasets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<GeneratorInfo>,
    /// Counts per split name.
    pub splits: BTreeMap<Split, SplitCounts>,
}

impl Manifest {
    /// An empty manifest for rooms from `source`.
    #[must_use]
    pub fn new(source: &str, generator: Option<GeneratorInfo>) -> Self {
        Self {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            source: source.to_owned(),
            generator,
            splits: Split::ALL
                .into_iter()
                .map(|s| (s, SplitCounts::default()))
                .collect(),
        }
    }
}

/// A known-good layout of one room, with what it does not satisfy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceLayout {
    /// The room's id.
    pub room: String,
    /// One pose per object, in room order.
    pub poses: Vec<Pose>,
    /// No collisions, nothing out of bounds, everything supported.
    pub valid: bool,
    /// Relations (placement and facing) that hold.
    pub relations_satisfied: usize,
    /// Relations in the room.
    pub relations_total: usize,
    /// The relations that do not hold, as `subject relation object`.
    pub unsatisfied: Vec<String>,
}

impl ReferenceLayout {
    /// The solver's solution for `room` as a stored reference layout.
    #[must_use]
    pub fn from_solution(room: &Room, s: &crate::data::solver::Solution) -> Self {
        let (ok, n) = s.relations();
        Self {
            room: room.id.clone(),
            poses: s.layout.poses.clone(),
            valid: s.valid,
            relations_satisfied: ok,
            relations_total: n,
            unsatisfied: s.unsatisfied(),
        }
    }

    /// The poses as a [`Layout`].
    #[must_use]
    pub fn layout(&self) -> Layout {
        Layout {
            poses: self.poses.clone(),
        }
    }
}

/// A whole dataset in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The manifest.
    pub manifest: Manifest,
    /// Rooms per split, in file order.
    pub rooms: BTreeMap<Split, Vec<Room>>,
    /// Reference layouts per split, where the file exists.
    pub layouts: BTreeMap<Split, Vec<ReferenceLayout>>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DatasetError + '_ {
    move |error| DatasetError::Io {
        path: path.to_owned(),
        error,
    }
}

/// Writes a file atomically: a temporary file beside it, flushed to disk, then a rename; a run
/// killed at any instant (or a full disk) leaves the old file or the new one, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DatasetError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn jsonl<T: Serialize>(items: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        // Serialising our own plain data types cannot fail.
        serde_json::to_writer(&mut out, item).expect("room data serialises");
        out.push(b'\n');
    }
    out
}

/// Writes rooms as JSONL.
pub fn write_rooms(path: &Path, rooms: &[Room]) -> Result<(), DatasetError> {
    write_atomic(path, &jsonl(rooms))
}

/// Writes reference layouts as JSONL.
pub fn write_layouts(path: &Path, layouts: &[ReferenceLayout]) -> Result<(), DatasetError> {
    write_atomic(path, &jsonl(layouts))
}

/// Writes `manifest.json`.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), DatasetError> {
    let mut text = serde_json::to_string_pretty(manifest).expect("manifest serialises");
    text.push('\n');
    write_atomic(&dir.join("manifest.json"), text.as_bytes())
}

/// Non-empty lines of a JSONL file with their 1-based numbers.
fn lines(path: &Path) -> Result<Vec<(usize, String)>, DatasetError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.to_owned()))
        .collect())
}

/// Reads a rooms file, checking every room (see [`check_room`]).
pub fn read_rooms(path: &Path) -> Result<Vec<Room>, DatasetError> {
    let mut seen = HashSet::new();
    let mut rooms = Vec::new();
    for (line, text) in lines(path)? {
        let fail = |message: String| DatasetError::Line {
            path: path.to_owned(),
            line,
            message,
        };
        let room = parse_room(&text).map_err(fail)?;
        if !seen.insert(room.id.clone()) {
            return Err(fail(format!(
                "room id `{}` appears twice in this file",
                room.id
            )));
        }
        rooms.push(room);
    }
    Ok(rooms)
}

/// Parses and checks one room line.
pub fn parse_room(text: &str) -> Result<Room, String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("invalid JSON at column {}: {e}", e.column()))?;
    let room = Room::deserialize(&value)
        .map_err(|e| locate_room_error(&value).unwrap_or_else(|| e.to_string()))?;
    check_room(&room)?;
    Ok(room)
}

/// Checks what every consumer relies on: a non-empty id, a finite positive room size, object
/// sizes finite and strictly positive, unique object ids that are not layout-element names,
/// finite headings and positions, and relation targets and facings that exist.
pub fn check_room(room: &Room) -> Result<(), String> {
    if room.id.trim().is_empty() {
        return Err("field `id`: the room id is empty".into());
    }
    let s = room.size;
    for (name, v) in [
        ("length", s.length),
        ("width", s.width),
        ("height", s.height),
    ] {
        if !v.is_finite() || v <= 0.0 {
            return Err(format!(
                "room `{}`: field `size.{name}` must be finite and positive, got {v}",
                room.id
            ));
        }
    }
    let ids: HashSet<&str> = room.objects.iter().map(|o| o.id.as_str()).collect();
    let mut seen = HashSet::new();
    for (i, o) in room.objects.iter().enumerate() {
        let at = format!("room `{}`, object `{}` (objects[{i}])", room.id, o.id);
        if o.id.trim().is_empty() {
            return Err(format!(
                "room `{}`: objects[{i}]: field `id` is empty",
                room.id
            ));
        }
        if !seen.insert(o.id.as_str()) {
            return Err(format!("{at}: the id appears twice"));
        }
        if LayoutElement::from_name(&o.id).is_some() {
            return Err(format!("{at}: the id is the name of a layout element"));
        }
        for (name, v) in [
            ("length", o.size.length),
            ("width", o.size.width),
            ("height", o.size.height),
        ] {
            if !v.is_finite() || v <= 0.0 {
                return Err(format!(
                    "{at}: field `size.{name}` must be finite and positive, got {v}"
                ));
            }
        }
        if o.rotation.is_some_and(|r| !r.is_finite()) {
            return Err(format!("{at}: field `rotation` is not finite"));
        }
        if o.position.is_some_and(|p| p.iter().any(|v| !v.is_finite())) {
            return Err(format!("{at}: field `position` is not finite"));
        }
        for (j, r) in o.placement.objects.iter().enumerate() {
            if !ids.contains(r.target.as_str()) || r.target == o.id {
                return Err(format!(
                    "{at}: field `placement.objects[{j}].target`: `{}` is not another object of the room",
                    r.target
                ));
            }
        }
        if let Some(f) = &o.facing
            && LayoutElement::from_name(f).is_none()
            && !ids.contains(f.as_str())
        {
            return Err(format!(
                "{at}: field `facing`: `{f}` is neither a layout element nor an object"
            ));
        }
    }
    Ok(())
}

/// Finds the first field of a room JSON that does not deserialise, as `field `path`: why`.
fn locate_room_error(v: &Value) -> Option<String> {
    let Value::Object(_) = v else {
        return Some("expected a JSON object (a room)".into());
    };
    let mut out = None;
    let mut try_field = |value: Option<&Value>,
                         path: &str,
                         required: bool,
                         check: &dyn Fn(&Value) -> Option<String>| {
        if out.is_some() {
            return;
        }
        match value {
            None if required => out = Some(format!("missing field `{path}`")),
            None => {}
            Some(v) => out = check(v).map(|e| format!("field `{path}`: {e}")),
        }
    };
    try_field(v.get("id"), "id", true, &is::<String>);
    try_field(v.get("description"), "description", false, &is::<String>);
    try_field(
        v.get("size"),
        "size",
        true,
        &is::<serde_json::Map<String, Value>>,
    );
    for k in ["length", "width", "height"] {
        try_field(
            v.get("size").and_then(|s| s.get(k)),
            &format!("size.{k}"),
            true,
            &is::<f64>,
        );
    }
    try_field(v.get("objects"), "objects", true, &is::<Vec<Value>>);
    try_field(
        v.get("openings"),
        "openings",
        false,
        &is::<Vec<crate::room::Opening>>,
    );
    if let Some(e) = out {
        return Some(e);
    }
    let objects = v.get("objects").and_then(Value::as_array)?;
    objects.iter().enumerate().find_map(|(i, o)| {
        locate_object_error(o).map(|e| {
            let id = o.get("id").and_then(Value::as_str).unwrap_or("?");
            format!("objects[{i}] (`{id}`): {e}")
        })
    })
}

fn locate_object_error(o: &Value) -> Option<String> {
    if !o.is_object() {
        return Some("expected a JSON object".into());
    }
    let fields: [FieldCheck<'_>; 11] = [
        ("id", true, &is::<String>),
        ("category", true, &is::<String>),
        ("on_floor", true, &is::<bool>),
        ("facing", false, &is::<Option<String>>),
        ("rotation", false, &is::<Option<f64>>),
        ("position", false, &is::<Option<[f64; 3]>>),
        ("style", false, &is::<Option<String>>),
        ("material", false, &is::<Option<String>>),
        ("asset", false, &is::<Option<String>>),
        ("size", true, &is::<serde_json::Map<String, Value>>),
        ("placement", false, &is::<serde_json::Map<String, Value>>),
    ];
    for (name, required, check) in fields {
        match o.get(name) {
            None if required => return Some(format!("missing field `{name}`")),
            None => {}
            Some(v) => {
                if let Some(e) = check(v) {
                    return Some(format!("field `{name}`: {e}"));
                }
            }
        }
    }
    for k in ["length", "width", "height"] {
        match o["size"].get(k) {
            None => return Some(format!("missing field `size.{k}`")),
            Some(v) => {
                if let Some(e) = is::<f64>(v) {
                    return Some(format!("field `size.{k}`: {e}"));
                }
            }
        }
    }
    let placement = o.get("placement")?;
    for (key, check) in [
        (
            "room",
            &is::<crate::room::RoomRelation> as &dyn Fn(&Value) -> Option<String>,
        ),
        ("objects", &is::<crate::room::ObjectRelation>),
    ] {
        let Some(list) = placement.get(key) else {
            continue;
        };
        let Some(items) = list.as_array() else {
            return Some(format!("field `placement.{key}`: expected a list"));
        };
        for (j, item) in items.iter().enumerate() {
            if let Some(e) = check(item) {
                return Some(format!("field `placement.{key}[{j}]`: {e}"));
            }
        }
    }
    None
}

/// `None` when `v` deserialises as `T`, else serde's reason.
fn is<T: DeserializeOwned>(v: &Value) -> Option<String> {
    T::deserialize(v).err().map(|e| e.to_string())
}

/// Reads reference layouts, checking each against its room: the room exists, every pose names
/// one of its objects once, and every number is finite.
pub fn read_layouts(path: &Path, rooms: &[Room]) -> Result<Vec<ReferenceLayout>, DatasetError> {
    let by_id: HashMap<&str, &Room> = rooms.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (line, text) in lines(path)? {
        let fail = |message: String| DatasetError::Line {
            path: path.to_owned(),
            line,
            message,
        };
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| fail(format!("invalid JSON at column {}: {e}", e.column())))?;
        let layout = ReferenceLayout::deserialize(&value).map_err(|e| {
            let field = [
                "room",
                "poses",
                "valid",
                "relations_satisfied",
                "relations_total",
                "unsatisfied",
            ]
            .into_iter()
            .find(|k| value.get(k).is_none())
            .map_or_else(|| e.to_string(), |k| format!("missing field `{k}`"));
            fail(field)
        })?;
        let room = by_id.get(layout.room.as_str()).ok_or_else(|| {
            fail(format!(
                "field `room`: no room `{}` in this split",
                layout.room
            ))
        })?;
        if !seen.insert(layout.room.clone()) {
            return Err(fail(format!("room `{}` has two layouts", layout.room)));
        }
        let mut placed = HashSet::new();
        for (i, p) in layout.poses.iter().enumerate() {
            if room.object(&p.id).is_none() {
                return Err(fail(format!(
                    "field `poses[{i}].id`: room `{}` has no object `{}`",
                    room.id, p.id
                )));
            }
            if !placed.insert(p.id.as_str()) {
                return Err(fail(format!(
                    "field `poses[{i}].id`: object `{}` is placed twice",
                    p.id
                )));
            }
            if p.position.iter().any(|v| !v.is_finite()) || !p.rotation.is_finite() {
                return Err(fail(format!(
                    "field `poses[{i}]`: object `{}` has a non-finite position or rotation",
                    p.id
                )));
            }
        }
        out.push(layout);
    }
    Ok(out)
}

/// Reads `manifest.json`.
pub fn read_manifest(dir: &Path) -> Result<Manifest, DatasetError> {
    let path = dir.join("manifest.json");
    // Said about the directory the user named, rather than as an OS error on a file in it.
    let problem = if !dir.exists() {
        Some("no such dataset directory")
    } else if !dir.is_dir() {
        Some("not a directory; a dataset is a directory with a manifest.json")
    } else if !path.exists() {
        Some(
            "not a dataset: it has no manifest.json (`metaspatial-rl data gen` or `data import` makes one)",
        )
    } else {
        None
    };
    if let Some(message) = problem {
        return Err(DatasetError::File {
            path: dir.to_owned(),
            message: message.to_owned(),
        });
    }
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| DatasetError::Line {
        path: path.clone(),
        line: e.line(),
        message: e.to_string(),
    })?;
    if manifest.format != FORMAT || manifest.format_version > FORMAT_VERSION {
        return Err(DatasetError::File {
            path,
            message: format!(
                "not a dataset this build can read: format `{}` version {} (expected `{FORMAT}` ≤ {FORMAT_VERSION})",
                manifest.format, manifest.format_version
            ),
        });
    }
    Ok(manifest)
}

impl Dataset {
    /// An empty dataset.
    #[must_use]
    pub fn new(manifest: Manifest) -> Self {
        Self {
            manifest,
            rooms: BTreeMap::new(),
            layouts: BTreeMap::new(),
        }
    }

    /// Reads and checks a whole dataset directory.
    pub fn open(dir: &Path) -> Result<Self, DatasetError> {
        let manifest = read_manifest(dir)?;
        let mut data = Self::new(manifest);
        let mut owner: HashMap<String, Split> = HashMap::new();
        for split in Split::ALL {
            let counts = data
                .manifest
                .splits
                .get(&split)
                .copied()
                .unwrap_or_default();
            let path = split.rooms_path(dir);
            let rooms = if path.exists() {
                read_rooms(&path)?
            } else {
                Vec::new()
            };
            if rooms.len() != counts.rooms {
                return Err(DatasetError::File {
                    path,
                    message: format!(
                        "manifest.json promises {} rooms, the file has {}",
                        counts.rooms,
                        rooms.len()
                    ),
                });
            }
            for r in &rooms {
                if let Some(other) = owner.insert(r.id.clone(), split) {
                    return Err(DatasetError::File {
                        path: path.clone(),
                        message: format!(
                            "room `{}` is also in the {} split: splits must be disjoint",
                            r.id,
                            other.name()
                        ),
                    });
                }
            }
            let lpath = split.layouts_path(dir);
            if lpath.exists() {
                let layouts = read_layouts(&lpath, &rooms)?;
                if layouts.len() != counts.layouts {
                    return Err(DatasetError::File {
                        path: lpath,
                        message: format!(
                            "manifest.json promises {} layouts, the file has {}",
                            counts.layouts,
                            layouts.len()
                        ),
                    });
                }
                data.layouts.insert(split, layouts);
            } else if counts.layouts > 0 {
                return Err(DatasetError::File {
                    path: lpath,
                    message: format!(
                        "manifest.json promises {} layouts but the file is missing",
                        counts.layouts
                    ),
                });
            }
            data.rooms.insert(split, rooms);
        }
        Ok(data)
    }

    /// The rooms of a split (empty when it has none).
    #[must_use]
    pub fn split(&self, split: Split) -> &[Room] {
        self.rooms.get(&split).map_or(&[], Vec::as_slice)
    }

    /// Writes every split, its layouts and the manifest (counts recomputed from the data;
    /// image counts are kept as they are).
    pub fn write(&mut self, dir: &Path) -> Result<(), DatasetError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        for split in Split::ALL {
            let rooms = self.rooms.get(&split).map_or(&[][..], Vec::as_slice);
            write_rooms(&split.rooms_path(dir), rooms)?;
            let counts = self.manifest.splits.entry(split).or_default();
            counts.rooms = rooms.len();
            counts.objects = rooms.iter().map(|r| r.objects.len()).sum();
            counts.layouts = 0;
            if let Some(layouts) = self.layouts.get(&split) {
                write_layouts(&split.layouts_path(dir), layouts)?;
                counts.layouts = layouts.len();
            }
        }
        write_manifest(dir, &self.manifest)
    }
}

/// A short multi-line summary of the manifest counts.
#[must_use]
pub fn summary(manifest: &Manifest) -> String {
    let mut s = String::new();
    for (split, c) in &manifest.splits {
        let _ = writeln!(
            s,
            "{:<5} {:>6} rooms {:>7} objects {:>6} layouts",
            split.name(),
            c.rooms,
            c.objects,
            c.layouts
        );
    }
    s
}

/// A field's name, whether it is required, and the check of its value.
type FieldCheck<'a> = (&'a str, bool, &'a dyn Fn(&Value) -> Option<String>);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::generate::{GenConfig, generate};

    #[test]
    fn a_directory_that_is_not_a_dataset_is_named_with_what_it_lacks() {
        let root = temp_dir("not-a-dataset");
        let file = root.join("rooms.txt");
        std::fs::write(&file, "").unwrap();
        let empty = root.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        for (dir, says) in [
            (root.join("nowhere"), "nowhere: no such dataset directory"),
            (file, "rooms.txt: not a directory"),
            (empty, "empty: not a dataset: it has no manifest.json"),
        ] {
            let error = Dataset::open(&dir).unwrap_err();
            let text = error.to_string();
            assert!(text.contains(says), "{text}");
            // Error chains (`{:#}` of anyhow) print the message and then each source.
            assert!(std::error::Error::source(&error).is_none());
        }
    }

    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("msrl-data-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn small() -> Dataset {
        let cfg = GenConfig {
            seed: 5,
            min_objects: 4,
            max_objects: 8,
        };
        let mut data = Dataset::new(Manifest::new("procedural", None));
        for i in 0..20 {
            data.rooms
                .entry(Split::for_index(i))
                .or_default()
                .push(generate(&cfg, i));
        }
        data
    }

    #[test]
    fn a_written_dataset_reads_back_identically() {
        let dir = temp_dir("roundtrip");
        let mut data = small();
        data.write(&dir).unwrap();
        let back = Dataset::open(&dir).unwrap();
        assert_eq!(back.rooms, data.rooms);
        assert_eq!(back.manifest.splits[&Split::Test].rooms, 2);
        assert_eq!(back.manifest.splits[&Split::Train].rooms, 16);
    }

    fn broken(name: &str, edit: impl Fn(&mut Value)) -> String {
        let dir = temp_dir(name);
        let mut data = small();
        data.write(&dir).unwrap();
        let path = Split::Train.rooms_path(&dir);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let mut v: Value = serde_json::from_str(&lines[2]).unwrap();
        edit(&mut v);
        lines[2] = v.to_string();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        Dataset::open(&dir).unwrap_err().to_string()
    }

    #[test]
    fn bad_fields_are_named_with_file_and_line() {
        let e = broken("bad-type", |v| {
            v["objects"][1]["size"]["width"] = "wide".into();
        });
        assert!(
            e.contains("train.jsonl:3:") && e.contains("objects[1]") && e.contains("size.width"),
            "{e}"
        );
        let e = broken("missing", |v| {
            v["objects"][0].as_object_mut().unwrap().remove("on_floor");
        });
        assert!(
            e.contains("train.jsonl:3:") && e.contains("missing field `on_floor`"),
            "{e}"
        );
        let e = broken("bad-prep", |v| {
            v["objects"][1]["placement"]["room"] =
                serde_json::json!([{"element": "attic", "preposition": "on"}]);
        });
        assert!(
            e.contains("placement.room[0]") && e.contains("attic"),
            "{e}"
        );
    }

    #[test]
    fn zero_negative_and_absurd_sizes_name_the_object() {
        for (name, value) in [("zero", Value::from(0.0)), ("negative", Value::from(-1.0))] {
            let id = std::cell::RefCell::new(String::new());
            let e = broken(name, |v| {
                *id.borrow_mut() = v["objects"][0]["id"].as_str().unwrap().to_owned();
                v["objects"][0]["size"]["height"] = value.clone();
            });
            let id = id.into_inner();
            assert!(
                e.contains(&format!("object `{id}`")) && e.contains("size.height"),
                "{e}"
            );
        }
        // JSON has no infinity: 1e999 overflows and is rejected where it stands.
        let dir = temp_dir("inf");
        small().write(&dir).unwrap();
        let path = Split::Train.rooms_path(&dir);
        let text = std::fs::read_to_string(&path).unwrap().replacen(
            "\"height\":",
            "\"height\":1e999,\"x\":",
            1,
        );
        std::fs::write(&path, text).unwrap();
        let e = Dataset::open(&dir).unwrap_err().to_string();
        assert!(e.contains("train.jsonl:1:"), "{e}");
    }

    #[test]
    fn truncation_duplicates_and_dangling_targets_are_errors() {
        let dir = temp_dir("truncated");
        small().write(&dir).unwrap();
        let path = Split::Train.rooms_path(&dir);
        let text = std::fs::read_to_string(&path).unwrap();
        let shorter: Vec<&str> = text.lines().take(15).collect();
        std::fs::write(&path, shorter.join("\n")).unwrap();
        let e = Dataset::open(&dir).unwrap_err().to_string();
        assert!(e.contains("promises 16 rooms, the file has 15"), "{e}");

        let dir = temp_dir("overlap");
        let mut data = small();
        let stolen = data.rooms[&Split::Test][0].clone();
        data.rooms
            .get_mut(&Split::Train)
            .unwrap()
            .push(stolen.clone());
        data.write(&dir).unwrap();
        let e = Dataset::open(&dir).unwrap_err().to_string();
        assert!(e.contains(&stolen.id) && e.contains("disjoint"), "{e}");

        let e = broken("dangling", |v| {
            v["objects"][0]["placement"]["objects"] = serde_json::json!([{"target": "unicorn_1", "preposition": "left of", "adjacent": true}]);
        });
        assert!(
            e.contains("unicorn_1") && e.contains("placement.objects[0].target"),
            "{e}"
        );
    }
}
