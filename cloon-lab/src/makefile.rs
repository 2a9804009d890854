//! `cloon-lab makefile` and `script` (filled in below).
use crate::plan::Plan;
pub fn makefile(_plan: &Plan) -> String {
    String::new()
}
pub fn script(_plan: &Plan) -> String {
    String::new()
}
