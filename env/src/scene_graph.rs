//! Reading rooms: our own room JSON, and MetaSpatial / IDesign scene graphs.
//!
//! A scene graph is a JSON list of objects (`new_object_id`, `size_in_meters`,
//! `is_on_the_floor`, `facing`, `placement.room_layout_elements`, `placement.objects_in_room`,
//! optional `rotation.z_angle` and `position`, `style`, `material`) followed by the six layout
//! elements (`south_wall`, `north_wall`, `east_wall`, `west_wall`, `middle of the room`,
//! `ceiling`). The room's size comes from the elements (south wall length = L, east wall length
//! = W, wall height = H) unless it is given explicitly as MetaSpatial's `size_of_room`.
//!
//! Accepted documents:
//! - our [`Room`] JSON (`{"id", "size", "objects", …}`);
//! - a bare scene-graph list;
//! - `{"scene_graph": [...], "room": {"room_name", "user_preference", "size_of_room"}}`, the
//!   shape of MetaSpatial's dataset rows and of our example cases (other keys are ignored).
//!
//! Preposition spellings follow the scene graph; `in the middle of` (which MetaSpatial's reward
//! code evaluates exactly like `on`) is read as `on`.

use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

use crate::room::{
    LayoutElement, ObjectPreposition, ObjectRelation, ObjectSpec, Placement, Room, RoomPreposition,
    RoomRelation, RoomSize, Size,
};

/// Why a room could not be read; every variant names the document it came from.
#[derive(Debug, Error)]
pub enum RoomError {
    /// The text is not JSON.
    #[error("{origin}: invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// The document (file name or description).
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// `serde_json`'s description.
        message: String,
    },
    /// The JSON is not one of the accepted shapes, or a field is malformed.
    #[error("{origin}: {message}")]
    Shape {
        /// The document.
        origin: String,
        /// What is wrong and where.
        message: String,
    },
    /// One scene-graph entry is malformed.
    #[error("{origin}: scene-graph entry {index} (`{id}`): {message}")]
    Entry {
        /// The document.
        origin: String,
        /// 0-based position in the scene-graph list.
        index: usize,
        /// Its `new_object_id`, or `?` when missing.
        id: String,
        /// What is wrong.
        message: String,
    },
}

/// Reads a room from our room JSON or a MetaSpatial / IDesign scene graph.
///
/// `origin` names the document in errors (usually the file path).
pub fn load_room(text: &str, origin: &str) -> Result<Room, RoomError> {
    let value: Value = serde_json::from_str(text).map_err(|e| RoomError::Json {
        origin: origin.to_owned(),
        line: e.line(),
        column: e.column(),
        message: crate::answer::strip_position(&e.to_string()),
    })?;
    room_from_value(&value, origin)
}

/// Like [`load_room`], from parsed JSON.
pub fn room_from_value(value: &Value, origin: &str) -> Result<Room, RoomError> {
    let shape = |message: String| RoomError::Shape {
        origin: origin.to_owned(),
        message,
    };
    match value {
        Value::Array(entries) => from_scene_graph(entries, None, origin),
        Value::Object(map) if map.contains_key("scene_graph") => {
            let Some(Value::Array(entries)) = map.get("scene_graph") else {
                return Err(shape("`scene_graph` must be a list".into()));
            };
            let info = match map.get("room") {
                None | Some(Value::Null) => None,
                Some(v) => {
                    Some(RoomInfo::deserialize(v).map_err(|e| shape(format!("`room`: {e}")))?)
                }
            };
            from_scene_graph(entries, info, origin)
        }
        Value::Object(map) if map.contains_key("objects") => {
            let room = Room::deserialize(value).map_err(|e| shape(format!("room JSON: {e}")))?;
            validate(&room).map_err(shape)?;
            Ok(room)
        }
        _ => Err(shape(
            "expected our room JSON (with `objects`), a scene-graph list, or an object with \
             `scene_graph`"
                .into(),
        )),
    }
}

/// MetaSpatial's per-room metadata (the dataset's `answer` field).
#[derive(Debug, Deserialize)]
struct RoomInfo {
    #[serde(default)]
    room_name: Option<String>,
    #[serde(default)]
    user_preference: Option<String>,
    #[serde(default)]
    size_of_room: Option<SizeOfRoom>,
}

#[derive(Debug, Deserialize)]
struct SizeOfRoom {
    x: f64,
    y: f64,
    z: f64,
}

#[derive(Debug, Deserialize)]
struct RawEntry {
    new_object_id: String,
    #[serde(default)]
    style: Option<String>,
    #[serde(default)]
    material: Option<String>,
    size_in_meters: RawSize,
    #[serde(default)]
    is_on_the_floor: Option<bool>,
    #[serde(default)]
    facing: Option<String>,
    #[serde(default)]
    placement: Option<RawPlacement>,
    #[serde(default)]
    rotation: Option<RawRotation>,
    #[serde(default)]
    position: Option<RawPosition>,
    #[serde(default, alias = "asset_path")]
    asset: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawSize {
    length: f64,
    width: f64,
    height: f64,
}

#[derive(Debug, Default, Deserialize)]
struct RawPlacement {
    #[serde(default)]
    room_layout_elements: Vec<RawRoomRelation>,
    #[serde(default)]
    objects_in_room: Vec<RawObjectRelation>,
}

#[derive(Debug, Deserialize)]
struct RawRoomRelation {
    layout_element_id: String,
    preposition: String,
}

#[derive(Debug, Deserialize)]
struct RawObjectRelation {
    object_id: String,
    preposition: String,
    #[serde(default)]
    is_adjacent: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct RawRotation {
    z_angle: f64,
}

#[derive(Debug, Deserialize)]
struct RawPosition {
    x: f64,
    y: f64,
    z: f64,
}

fn from_scene_graph(
    entries: &[Value],
    info: Option<RoomInfo>,
    origin: &str,
) -> Result<Room, RoomError> {
    let mut objects = Vec::new();
    let mut elements: Vec<(LayoutElement, RawSize)> = Vec::new();
    for (index, value) in entries.iter().enumerate() {
        let id_hint = value
            .get("new_object_id")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let entry_error = |message: String| RoomError::Entry {
            origin: origin.to_owned(),
            index,
            id: id_hint.clone(),
            message,
        };
        let raw = RawEntry::deserialize(value).map_err(|e| entry_error(e.to_string()))?;
        if let Some(element) = LayoutElement::from_name(&raw.new_object_id) {
            elements.push((element, raw.size_in_meters));
            continue;
        }
        objects.push(object_from_raw(raw).map_err(entry_error)?);
    }
    let size = match info.as_ref().and_then(|i| i.size_of_room.as_ref()) {
        Some(s) => RoomSize {
            length: s.x,
            width: s.y,
            height: s.z,
        },
        None => size_from_elements(&elements).map_err(|message| RoomError::Shape {
            origin: origin.to_owned(),
            message,
        })?,
    };
    let room = Room {
        id: info
            .as_ref()
            .and_then(|i| i.room_name.clone())
            .unwrap_or_else(|| {
                std::path::Path::new(origin)
                    .file_stem()
                    .map_or_else(|| origin.to_owned(), |s| s.to_string_lossy().into_owned())
            }),
        description: info.and_then(|i| i.user_preference).unwrap_or_default(),
        size,
        objects,
        openings: Vec::new(),
    };
    validate(&room).map_err(|message| RoomError::Shape {
        origin: origin.to_owned(),
        message,
    })?;
    Ok(room)
}

fn size_from_elements(elements: &[(LayoutElement, RawSize)]) -> Result<RoomSize, String> {
    let find = |e: LayoutElement| elements.iter().find(|(el, _)| *el == e).map(|(_, s)| s);
    let south = find(LayoutElement::SouthWall).ok_or(
        "no `south_wall` layout element and no `size_of_room`: the room length is unknown",
    )?;
    let east = find(LayoutElement::EastWall)
        .ok_or("no `east_wall` layout element and no `size_of_room`: the room width is unknown")?;
    Ok(RoomSize {
        length: south.length,
        width: east.length,
        height: south.height,
    })
}

fn object_from_raw(raw: RawEntry) -> Result<ObjectSpec, String> {
    let placement = raw.placement.unwrap_or_default();
    let room = placement
        .room_layout_elements
        .iter()
        .map(|r| {
            let element = LayoutElement::from_name(&r.layout_element_id).ok_or_else(|| {
                format!(
                    "unknown layout element `{}` in room_layout_elements",
                    r.layout_element_id
                )
            })?;
            let preposition = match r.preposition.as_str() {
                "on" | "in the middle of" => RoomPreposition::On,
                "in the corner" => RoomPreposition::InTheCorner,
                other => {
                    return Err(format!(
                        "unknown preposition `{other}` for layout element `{}`",
                        r.layout_element_id
                    ));
                }
            };
            Ok(RoomRelation {
                element,
                preposition,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let objects = placement
        .objects_in_room
        .iter()
        .map(|r| {
            let preposition = ObjectPreposition::from_name(&r.preposition).ok_or_else(|| {
                format!(
                    "unknown preposition `{}` relative to `{}`",
                    r.preposition, r.object_id
                )
            })?;
            Ok(ObjectRelation {
                target: r.object_id.clone(),
                preposition,
                // MetaSpatial's reward code treats a missing flag as adjacent.
                adjacent: r.is_adjacent.unwrap_or(true),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(ObjectSpec {
        category: category_of(&raw.new_object_id),
        id: raw.new_object_id,
        size: Size {
            length: raw.size_in_meters.length,
            width: raw.size_in_meters.width,
            height: raw.size_in_meters.height,
        },
        on_floor: raw.is_on_the_floor.ok_or("`is_on_the_floor` is missing")?,
        facing: raw.facing,
        placement: Placement { room, objects },
        rotation: raw.rotation.map(|r| r.z_angle),
        position: raw.position.map(|p| [p.x, p.y, p.z]),
        style: raw.style,
        material: raw.material,
        asset: raw.asset,
    })
}

/// The category of an id: the id without a trailing `_<number>` (`nightstand_2` → `nightstand`).
#[must_use]
pub fn category_of(id: &str) -> String {
    match id.rsplit_once('_') {
        Some((stem, n))
            if !stem.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            stem.to_owned()
        }
        _ => id.to_owned(),
    }
}

/// Checks what every later stage relies on: finite positive room size, finite non-negative
/// object sizes, unique ids that are not layout-element names.
fn validate(room: &Room) -> Result<(), String> {
    let s = room.size;
    if !(s.length.is_finite() && s.width.is_finite() && s.height.is_finite())
        || s.length <= 0.0
        || s.width <= 0.0
        || s.height <= 0.0
    {
        return Err(format!(
            "room size must be finite and positive, got {} × {} × {}",
            s.length, s.width, s.height
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for o in &room.objects {
        let z = o.size;
        if !(z.length.is_finite() && z.width.is_finite() && z.height.is_finite())
            || z.length < 0.0
            || z.width < 0.0
            || z.height < 0.0
        {
            return Err(format!(
                "object `{}`: size must be finite and non-negative, got {} × {} × {}",
                o.id, z.length, z.width, z.height
            ));
        }
        if o.rotation.is_some_and(|r| !r.is_finite()) {
            return Err(format!("object `{}`: rotation must be finite", o.id));
        }
        if LayoutElement::from_name(&o.id).is_some() {
            return Err(format!(
                "object id `{}` is the name of a layout element",
                o.id
            ));
        }
        if !seen.insert(o.id.as_str()) {
            return Err(format!("object id `{}` appears twice", o.id));
        }
    }
    Ok(())
}

/// The room as a MetaSpatial scene graph: the objects (without positions, as in their prompts)
/// followed by the six layout elements, generated from the room size exactly as their data has
/// them.
#[must_use]
pub fn to_scene_graph(room: &Room) -> Value {
    let mut list: Vec<Value> = room.objects.iter().map(object_to_value).collect();
    list.extend(
        LayoutElement::ALL
            .iter()
            .map(|&e| element_to_value(room.size, e)),
    );
    Value::Array(list)
}

fn object_to_value(o: &ObjectSpec) -> Value {
    let mut map = serde_json::Map::new();
    map.insert("new_object_id".into(), o.id.clone().into());
    if let Some(style) = &o.style {
        map.insert("style".into(), style.clone().into());
    }
    if let Some(material) = &o.material {
        map.insert("material".into(), material.clone().into());
    }
    map.insert(
        "size_in_meters".into(),
        serde_json::json!({"length": o.size.length, "width": o.size.width, "height": o.size.height}),
    );
    map.insert("is_on_the_floor".into(), o.on_floor.into());
    if let Some(facing) = &o.facing {
        map.insert("facing".into(), facing.clone().into());
    }
    let room: Vec<Value> = o
        .placement
        .room
        .iter()
        .map(|r| serde_json::json!({"layout_element_id": r.element.name(), "preposition": r.preposition.name()}))
        .collect();
    let objects: Vec<Value> = o
        .placement
        .objects
        .iter()
        .map(|r| {
            serde_json::json!({"object_id": r.target, "preposition": r.preposition.name(), "is_adjacent": r.adjacent})
        })
        .collect();
    map.insert(
        "placement".into(),
        serde_json::json!({"room_layout_elements": room, "objects_in_room": objects}),
    );
    if let Some(z) = o.rotation {
        map.insert("rotation".into(), serde_json::json!({"z_angle": z}));
    }
    Value::Object(map)
}

/// Position, size (length, width, height) and `rotation.z_angle` of a layout element in
/// MetaSpatial's data for a room of this size.
#[must_use]
pub fn element_geometry(size: RoomSize, element: LayoutElement) -> ([f64; 3], [f64; 3], f64) {
    let RoomSize {
        length: l,
        width: w,
        height: h,
    } = size;
    match element {
        LayoutElement::SouthWall => ([l / 2.0, 0.0, h / 2.0], [l, 0.0, h], 0.0),
        LayoutElement::NorthWall => ([l / 2.0, w, h / 2.0], [l, 0.0, h], 180.0),
        LayoutElement::EastWall => ([l, w / 2.0, h / 2.0], [w, 0.0, h], 270.0),
        LayoutElement::WestWall => ([0.0, w / 2.0, h / 2.0], [w, 0.0, h], 90.0),
        LayoutElement::Middle => ([l / 2.0, w / 2.0, 0.0], [l, w, 0.0], 0.0),
        LayoutElement::Ceiling => ([l / 2.0, w / 2.0, h], [l, w, 0.0], 0.0),
    }
}

fn element_to_value(size: RoomSize, element: LayoutElement) -> Value {
    let (p, s, rot) = element_geometry(size, element);
    let item_type = match element {
        LayoutElement::Middle => "floor",
        LayoutElement::Ceiling => "ceiling",
        _ => "wall",
    };
    serde_json::json!({
        "new_object_id": element.name(),
        "itemType": item_type,
        "position": {"x": p[0], "y": p[1], "z": p[2]},
        "size_in_meters": {"length": s[0], "width": s[1], "height": s[2]},
        "rotation": {"z_angle": rot},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_drop_the_instance_number() {
        assert_eq!(category_of("nightstand_2"), "nightstand");
        assert_eq!(category_of("tv_stand_1"), "tv_stand");
        assert_eq!(category_of("lamp"), "lamp");
        assert_eq!(category_of("lamp_x"), "lamp_x");
    }

    #[test]
    fn scene_graph_round_trips_through_export() {
        let text = include_str!("../tests/fixtures/case_001.json");
        let room = load_room(text, "case_001.json").unwrap();
        assert_eq!(
            room.size,
            RoomSize {
                length: 5.0,
                width: 3.0,
                height: 3.0
            }
        );
        assert_eq!(room.objects.len(), 7);
        let again = room_from_value(&to_scene_graph(&room), "export").unwrap();
        assert_eq!(again.objects, room.objects);
        assert_eq!(again.size, room.size);
    }

    #[test]
    fn bad_entries_are_named() {
        let err = load_room(
            r#"[{"new_object_id": "sofa_1", "size_in_meters": {"length": 1}}]"#,
            "x.json",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("x.json") && err.contains("sofa_1") && err.contains("width"),
            "{err}"
        );
        let err = load_room("[1, 2", "y.json").unwrap_err().to_string();
        assert!(err.contains("y.json: invalid JSON at line 1"), "{err}");
        // The position is given once, not again in serde_json's words.
        assert!(!err.contains(" at line 1 column"), "{err}");
    }
}
