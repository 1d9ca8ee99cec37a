//! The page: hand-written HTML, CSS and JavaScript, embedded in the binary (nothing fetched
//! from elsewhere, no build step).

pub const INDEX: &str = include_str!("assets/index.html");
pub const SCRIPT: &str = include_str!("assets/app.js");
pub const STYLE: &str = include_str!("assets/app.css");
