//! Layouts: where each object of a room goes.

use serde::{Deserialize, Serialize};

/// Position and heading of one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pose {
    /// The object's id in its room.
    pub id: String,
    /// Centre of the object's box, in room coordinates (metres).
    pub position: [f64; 3],
    /// Heading in degrees, clockwise seen from above: 0 faces +y (north), 90 faces +x (east).
    pub rotation: f64,
}

/// A placement of a room's objects, one [`Pose`] per placed object.
///
/// Poses are kept in the order they were given; an object of the room that has no pose is
/// simply not placed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    /// The placed objects.
    pub poses: Vec<Pose>,
}

impl Layout {
    /// The pose of the object with this id, if it is placed.
    #[must_use]
    pub fn pose(&self, id: &str) -> Option<&Pose> {
        self.poses.iter().find(|p| p.id == id)
    }
}
