#[path = "it/render.rs"]
mod render;
