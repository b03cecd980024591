//! The tissue model: a tetrahedral mesh stepped with XPBD, and tool contact.
//!
//! A pure library: no threads, no I/O, no clocks. State is passed explicitly:
//! `step(&params, &mut tissue, &tool)` advances the tissue by one haptic tick and returns the
//! contact force on the tool.
//!
//! # Modules
//! - [`mesh`]: lattice blocks and graded tensor grids of tetrahedra (five per box, alternating
//!   so faces match), outward boundary triangles.
//! - [`topology`]: face adjacency, the live boundary surface rebuilt in place after cuts, and
//!   the geometric tests cutting and contact need.
//! - `kernel` (private): the stable Neo-Hookean projection of coloured batches of 8 tets, f32
//!   lanes over a structure-of-arrays copy of the particles, AVX2 when the CPU has it.
//! - [`xpbd`]: [`Tissue`] and [`step`]: small-step XPBD, gravity, damping, fixed, attached and
//!   sliding particles; per tet the deviatoric and hydrostatic constraints solved together, with
//!   compliances 1/(mu V) and 1/(lambda V) from each tet's material; sphere, capsule and blade
//!   contact against particles, the live surface and a proxy, with friction, whose force on the
//!   tool is the contact impulse over the tick; grasp, cut, resect, damage and tearing.
//! - [`needle`]: puncture above a force threshold, then a shaft that holds the tissue with
//!   friction; depth and distance to a target.
//! - [`embed`]: a finer visual surface carried by the tets through barycentric coordinates.
//! - [`scenes`]: validation scenes (cantilever, stretch, Hertz indentation) and blocks.
//!
//! # Real-time contract
//! [`step`], [`Tissue::cut`], [`Tissue::resect`], [`Tissue::grasp`], [`Tissue::release`] and
//! [`needle::Needle::step`] neither allocate nor lock: every buffer, the live surface included,
//! is sized when the tissue (or needle) is built (a clone keeps only the lengths: call
//! [`Tissue::reserve_working_capacity`] on it, as the haptic core does at set-up). They are deterministic: the same inputs give
//! the same bits (one thread, no hashing after set-up, fixed order; the SIMD and portable
//! kernels give the same bits).

pub mod embed;
mod kernel;
pub mod mesh;
pub mod needle;
pub mod scenes;
pub mod topology;
pub mod xpbd;

pub use mesh::TetMesh;
pub use xpbd::{
    step, step_with, CapsuleTool, Material, NoHook, SphereTool, StepParams, StepResult,
    SubstepHook, Tissue, TissueError, ToolShape,
};
