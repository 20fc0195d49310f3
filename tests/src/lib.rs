//! End-to-end tests across the metaspatial-rl crates live in `tests/`; this library is empty on
//! purpose so that they can be compiled as one package.
