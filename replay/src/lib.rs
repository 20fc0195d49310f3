//! The run directory's record formats (written by the trainer, read by the viewer) and the
//! rollout replay viewer.

pub mod record;
