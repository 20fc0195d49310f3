//! Data: the furniture catalogue, procedural rooms, dataset directories, the reference solver
//! and the random and solver baselines.
//!
//! A dataset is a directory (see [`dataset`]); rooms come from [`generate::generate`] or from
//! imported MetaSpatial / IDesign scene graphs; [`solver::solve`] lays a room out validly and
//! reports what it could not satisfy; [`baseline`] measures layouts the way trained policies
//! are measured.

pub mod baseline;
pub mod catalogue;
pub mod dataset;
pub mod describe;
pub mod generate;
pub mod procedural;
pub mod rng;
pub mod solver;
pub mod templates;
