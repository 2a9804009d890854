//! What every cloon tool shares, and nothing that belongs to one tool: the document and its parts,
//! the error object and its codes, name validation, the `--netns NAME|PATH` convention, the state directory, host checks, the
//! undo stack that makes `up` all or nothing, the stdin-to-stdout driver of `main`, the report of
//! the `gc` subcommands, progress lines, and the document's JSON Schema (with the feature
//! `schema`, which only `cargo xtask` turns on).

pub mod cgroups;
pub mod cli;
pub mod complete;
pub mod doc;
pub mod error;
pub mod explain;
pub mod gc;
pub mod host;
pub mod inuse;
pub mod mounts;
pub mod name;
pub mod netns;
pub mod progress;
pub mod shared;
pub mod stage;
pub mod state;
pub mod table;
pub mod undo;

pub use doc::Document;
pub use error::{Code, Context, Error, Result};
pub use state::StateDir;
pub use undo::Undo;
