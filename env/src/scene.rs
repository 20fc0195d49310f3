//! A room with a layout applied: every placed object as an oriented box.

use crate::geometry::OrientedBox;
use crate::heading::HeadingSource;
use crate::layout::{Layout, Pose};
use crate::room::{ObjectSpec, Room};

/// One placed object.
#[derive(Debug, Clone)]
pub struct Placed<'a> {
    /// What the scene graph says about it.
    pub spec: &'a ObjectSpec,
    /// Its index in `room.objects`.
    pub index: usize,
    /// Where it is.
    pub pose: &'a Pose,
    /// Where its heading came from.
    pub heading_source: HeadingSource,
    /// Its box.
    pub bounds: OrientedBox,
}

/// A room and the objects placed in it, in room order.
#[derive(Debug, Clone)]
pub struct Scene<'a> {
    /// The room.
    pub room: &'a Room,
    /// The placed objects, in room order; objects without a pose are absent.
    pub placed: Vec<Placed<'a>>,
}

impl<'a> Scene<'a> {
    /// Places the room's objects by the layout's poses (the first pose of an id wins; poses of
    /// ids the room does not have are ignored). `sources` gives each pose's heading source, in
    /// layout order; missing entries count as [`HeadingSource::Answer`].
    #[must_use]
    pub fn new(room: &'a Room, layout: &'a Layout, sources: &[HeadingSource]) -> Self {
        let placed = room
            .objects
            .iter()
            .enumerate()
            .filter_map(|(index, spec)| {
                let (k, pose) = layout
                    .poses
                    .iter()
                    .enumerate()
                    .find(|(_, p)| p.id == spec.id)?;
                Some(Placed {
                    spec,
                    index,
                    pose,
                    heading_source: sources.get(k).copied().unwrap_or(HeadingSource::Answer),
                    bounds: OrientedBox::new(pose.position, spec.size, pose.rotation),
                })
            })
            .collect();
        Self { room, placed }
    }

    /// The placed object with this id.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<&Placed<'a>> {
        self.placed.iter().find(|p| p.spec.id == id)
    }
}
