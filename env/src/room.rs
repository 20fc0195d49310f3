//! Rooms and the objects to place in them.
//!
//! Units and axes follow the project conventions: metres and degrees, z up, the room spans
//! `[0, L] × [0, W] × [0, H]` with x along the length and y along the width. The south wall is
//! `y = 0`, north `y = W`, west `x = 0`, east `x = L`.

use serde::{Deserialize, Serialize};

/// A room to furnish: its size, the user's description and the objects to place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Room {
    /// Stable identifier (dataset key, file stem, or MetaSpatial `room_name`).
    pub id: String,
    /// The user's description of the room they want (MetaSpatial's `user_preference`).
    #[serde(default)]
    pub description: String,
    /// Inner dimensions of the room.
    pub size: RoomSize,
    /// The objects to place, in room order (object index `i + 1` in id buffers is `objects[i]`).
    pub objects: Vec<ObjectSpec>,
    /// Doors and windows in the walls, if known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub openings: Vec<Opening>,
}

/// Inner dimensions of a room in metres: length along x, width along y, height along z.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RoomSize {
    /// Extent along x (the south and north walls' length).
    pub length: f64,
    /// Extent along y (the east and west walls' length).
    pub width: f64,
    /// Extent along z (wall height).
    pub height: f64,
}

/// Box size of an object in metres, in the object's own frame.
///
/// `length` runs along the object's left–right axis, `width` along its front–back axis,
/// `height` along z.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Size {
    /// Left–right extent.
    pub length: f64,
    /// Front–back extent.
    pub width: f64,
    /// Vertical extent.
    pub height: f64,
}

/// One object to place, as the scene graph states it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectSpec {
    /// Unique id within the room, e.g. `nightstand_2` (MetaSpatial's `new_object_id`).
    pub id: String,
    /// Furniture category, e.g. `nightstand`; drives colours and catalogue look-ups.
    pub category: String,
    /// Box size in the object's frame.
    pub size: Size,
    /// Whether the object stands on the floor (MetaSpatial's `is_on_the_floor`).
    pub on_floor: bool,
    /// What the object's front points at: a wall, `middle of the room`, or another object's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facing: Option<String>,
    /// Where the object should go, relative to the room and to other objects.
    #[serde(default)]
    pub placement: Placement,
    /// Heading in degrees given by the scene graph (`rotation.z_angle`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<f64>,
    /// Position given by the scene graph, if any (not used as an answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<[f64; 3]>,
    /// Style word from the scene graph (e.g. `modern`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    /// Material word from the scene graph (e.g. `wood`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub material: Option<String>,
    /// Path of a GLB/glTF asset scaled to the object's box when rendering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
}

/// Placement relations of one object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// Relations to the room's layout elements (walls, floor, ceiling).
    #[serde(default)]
    pub room: Vec<RoomRelation>,
    /// Relations to other objects.
    #[serde(default)]
    pub objects: Vec<ObjectRelation>,
}

/// One of the six layout elements of a MetaSpatial / IDesign scene graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LayoutElement {
    /// The wall at `y = 0`.
    #[serde(rename = "south_wall")]
    SouthWall,
    /// The wall at `y = W`.
    #[serde(rename = "north_wall")]
    NorthWall,
    /// The wall at `x = L`.
    #[serde(rename = "east_wall")]
    EastWall,
    /// The wall at `x = 0`.
    #[serde(rename = "west_wall")]
    WestWall,
    /// The floor area away from the walls.
    #[serde(rename = "middle of the room")]
    Middle,
    /// The ceiling at `z = H`.
    #[serde(rename = "ceiling")]
    Ceiling,
}

/// Preposition relating an object to a layout element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoomPreposition {
    /// Against (walls), standing in (middle) or hanging from (ceiling).
    #[serde(rename = "on")]
    On,
    /// In a corner formed by the named wall and an adjacent one.
    #[serde(rename = "in the corner")]
    InTheCorner,
}

/// A relation of an object to a layout element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoomRelation {
    /// The layout element.
    pub element: LayoutElement,
    /// How the object relates to it.
    pub preposition: RoomPreposition,
}

/// Preposition relating an object to another object, in the reference object's frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ObjectPreposition {
    /// Resting on top of the reference.
    #[serde(rename = "on")]
    On,
    /// Below the reference (e.g. a rug under a table).
    #[serde(rename = "under")]
    Under,
    /// To the reference's left.
    #[serde(rename = "left of")]
    LeftOf,
    /// To the reference's right.
    #[serde(rename = "right of")]
    RightOf,
    /// In front of the reference.
    #[serde(rename = "in front")]
    InFront,
    /// Behind the reference.
    #[serde(rename = "behind")]
    Behind,
    /// Above the reference without resting on it.
    #[serde(rename = "above")]
    Above,
}

/// A relation of an object to another object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectRelation {
    /// The reference object's id.
    pub target: String,
    /// How the object relates to the reference.
    pub preposition: ObjectPreposition,
    /// Whether the two should touch (within the adjacency tolerance).
    pub adjacent: bool,
}

/// A door or window cut into a wall.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Opening {
    /// Door or window.
    pub kind: OpeningKind,
    /// The wall it is in.
    pub wall: LayoutElement,
    /// Distance of its centre along the wall from the wall's left end seen from inside (m).
    pub offset: f64,
    /// Horizontal extent (m).
    pub width: f64,
    /// Vertical extent (m).
    pub height: f64,
    /// Height of its bottom edge above the floor (m); 0 for doors.
    #[serde(default)]
    pub sill: f64,
}

/// The kind of an [`Opening`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpeningKind {
    /// A door; its swing area should stay free.
    Door,
    /// A window.
    Window,
}

impl Room {
    /// The object with this id, if the room has one.
    #[must_use]
    pub fn object(&self, id: &str) -> Option<&ObjectSpec> {
        self.objects.iter().find(|o| o.id == id)
    }

    /// Room-order index of the object with this id.
    #[must_use]
    pub fn object_index(&self, id: &str) -> Option<usize> {
        self.objects.iter().position(|o| o.id == id)
    }
}

impl LayoutElement {
    /// The six layout elements in MetaSpatial's scene-graph order.
    pub const ALL: [Self; 6] = [
        Self::SouthWall,
        Self::NorthWall,
        Self::EastWall,
        Self::WestWall,
        Self::Middle,
        Self::Ceiling,
    ];

    /// The four walls.
    pub const WALLS: [Self; 4] = [
        Self::SouthWall,
        Self::NorthWall,
        Self::EastWall,
        Self::WestWall,
    ];

    /// The scene-graph name, e.g. `south_wall` or `middle of the room`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::SouthWall => "south_wall",
            Self::NorthWall => "north_wall",
            Self::EastWall => "east_wall",
            Self::WestWall => "west_wall",
            Self::Middle => "middle of the room",
            Self::Ceiling => "ceiling",
        }
    }

    /// The element with this scene-graph name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Whether this is one of the four walls.
    #[must_use]
    pub fn is_wall(self) -> bool {
        Self::WALLS.contains(&self)
    }
}

impl RoomPreposition {
    /// The scene-graph spelling.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::On => "on",
            Self::InTheCorner => "in the corner",
        }
    }
}

impl ObjectPreposition {
    /// All seven prepositions.
    pub const ALL: [Self; 7] = [
        Self::On,
        Self::Under,
        Self::LeftOf,
        Self::RightOf,
        Self::InFront,
        Self::Behind,
        Self::Above,
    ];

    /// The scene-graph spelling.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::On => "on",
            Self::Under => "under",
            Self::LeftOf => "left of",
            Self::RightOf => "right of",
            Self::InFront => "in front",
            Self::Behind => "behind",
            Self::Above => "above",
        }
    }

    /// The preposition with this scene-graph spelling.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl RoomSize {
    /// Floor area in square metres.
    #[must_use]
    pub fn floor_area(&self) -> f64 {
        self.length * self.width
    }
}
