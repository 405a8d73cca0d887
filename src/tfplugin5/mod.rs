//! tfplugin5: protocol code and conversions (temporary stub until branch `proto` is merged).

pub mod schema;
