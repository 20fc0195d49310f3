//! The metaspatial-rl environment: rooms, layouts, answer parsing, physics checks, placement
//! relations, feedback and multi-turn episodes.
//!
//! Everything here is plain data and CPU work; this crate knows nothing about tensors or GPUs.
//!
//! The usual path: [`load_room`] reads a room (our JSON or a MetaSpatial / IDesign scene graph);
//! [`assess`] parses a model response and checks the layout it describes (collisions, bounds,
//! support, relations, free space, MetaSpatial's ratios); [`feedback::feedback`] turns that
//! into words for the next turn; [`Episode`] runs multi-turn refinement.

pub mod answer;
pub mod assessment;
pub mod bounds;
pub mod collision;
pub mod data;
pub mod episode;
pub mod feedback;
pub mod free_space;
pub mod geometry;
pub mod heading;
pub mod layout;
pub mod metaspatial;
pub mod metrics;
pub mod physics;
pub mod relations;
pub mod room;
pub mod scene;
pub mod scene_graph;

pub use assessment::{
    AssessConfig, Assessment, assess, assess_answer, assess_layout, assess_parsed,
};
pub use episode::{
    Episode, EpisodeConfig, ImageRequest, Message, Observation, PromptStyle, StepResult,
};
pub use layout::{Layout, Pose};
pub use room::{
    LayoutElement, ObjectPreposition, ObjectRelation, ObjectSpec, Opening, OpeningKind, Placement,
    Room, RoomPreposition, RoomRelation, RoomSize, Size,
};
pub use scene_graph::{RoomError, load_room};
