//! Layers: entries → normalized tar → compressed blob + diff_id, in one pass.
pub mod compress;
