//! The tissue model: a tetrahedral mesh stepped with XPBD, and tool contact.
//!
//! A pure library: no threads, no I/O, no clocks. State is passed explicitly:
//! `step(&params, &mut tissue, &tool)` advances the tissue by one haptic tick and returns the
//! contact force on the tool.
//!
//! # Model (first version)
//! - [`mesh`]: a lattice block of tetrahedra (five per cube, alternating so faces match) and its
//!   outward boundary triangles.
//! - [`embed`]: a finer visual surface carried by the tets through barycentric coordinates.
//! - [`scenes`]: standard scenes for validation and benchmarks (cantilever, stretch, blocks).
//! - [`xpbd`]: extended position-based dynamics with substeps ("small steps"), gravity,
//!   velocity damping and fixed particles; per tet the stable Neo-Hookean material as a
//!   deviatoric and a hydrostatic constraint (Macklin & Müller 2021) with compliances
//!   1/(mu V) and 1/(lambda V) from Young's modulus, Poisson ratio and rest volume; a sphere tool
//!   in contact with the particles, whose force comes from the contact corrections
//!   (F = m * correction / h^2 per substep, averaged over the tick).
//!
//! # Real-time contract
//! [`xpbd::step`] neither allocates nor locks: every buffer is sized in [`xpbd::Tissue::new`].
//! It is deterministic: the same inputs give the same bits (no threads, no hashing, fixed
//! iteration order).

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
