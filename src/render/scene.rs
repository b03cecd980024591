//! What the renderer draws and from where: cameras (a desktop [`Camera`], per-eye
//! [`ViewCamera`]s), the per-frame [`RenderScene`] snapshot, in-world [`Panel`]s, and the
//! material table.
//!
//! Contract: plain data, no Vulkan. World frame: metres, y up (the simulation's frame). A
//! [`RenderScene`] borrows everything and the renderer keeps nothing of it after a frame.

use super::math::{self, Mat4};
use super::RenderError;

/// Background colour (sRGB-encoded bytes) where nothing is drawn.
pub const BACKGROUND_SRGB: [u8; 3] = [30, 34, 40];

/// Materials the tissue's vertices may name (index into the frame's material table). The
/// first six are the twin's labels (`twin::labels::Label` values).
pub mod material {
    /// A vertex of no particular label (the generic tissue block).
    pub const DEFAULT: u8 = 0;
    /// Organ parenchyma (liver-like red-brown).
    pub const PARENCHYMA: u8 = 1;
    /// Tumour (pale yellow-white).
    pub const TUMOUR: u8 = 2;
    /// Vessel (dark blue-purple).
    pub const VESSEL: u8 = 3;
    /// Fat (yellow).
    pub const FAT: u8 = 4;
    /// Bone (ivory).
    pub const BONE: u8 = 5;
    /// A cut surface: the inside of the parenchyma, exposed by the scalpel (paler, wet).
    pub const CUT: u8 = 6;
    /// Number of entries in the table.
    pub const COUNT: usize = 8;
}

/// The material table: linear RGB and specular strength per [`material`] index.
pub const MATERIALS: [[f32; 4]; material::COUNT] = [
    [0.55, 0.18, 0.14, 0.25], // default (the liver-like colour the block always had)
    [0.55, 0.18, 0.14, 0.25], // parenchyma
    [0.80, 0.72, 0.45, 0.15], // tumour
    [0.16, 0.06, 0.30, 0.45], // vessel
    [0.85, 0.70, 0.25, 0.20], // fat
    [0.85, 0.82, 0.72, 0.10], // bone
    [0.78, 0.30, 0.26, 0.70], // cut surface
    [0.50, 0.50, 0.50, 0.20], // spare
];

/// Tissue base colour (linear RGB) of the default material.
pub const TISSUE_COLOR: [f32; 3] = [0.55, 0.18, 0.14];

/// A perspective camera in the world frame (metres, y up).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Camera {
    /// Eye position (m).
    pub eye_m: [f32; 3],
    /// Point looked at (m).
    pub target_m: [f32; 3],
    /// Up direction (need not be unit length or orthogonal to the view direction).
    pub up: [f32; 3],
    /// Vertical field of view (radians, in (0, π)).
    pub fov_y_rad: f32,
    /// Near plane distance (m, > 0).
    pub near_m: f32,
    /// Far plane distance (m, > near).
    pub far_m: f32,
}

/// The interpupillary distance used for headless stereo, metres (the adult median).
pub const DEFAULT_IPD_M: f32 = 0.063;

impl Camera {
    /// A view of a ~10 cm tissue block lying on the operating table (top of the tissue at
    /// y = 0, centred on the origin), from the front and above, with the whole table in view
    /// so that the image border shows background.
    pub fn default_for_block() -> Self {
        Self {
            eye_m: [0.0, 0.30, 0.36],
            target_m: [0.0, -0.02, 0.0],
            up: [0.0, 1.0, 0.0],
            fov_y_rad: 40f32.to_radians(),
            near_m: 0.01,
            far_m: 5.0,
        }
    }

    pub(crate) fn check(&self) -> Result<(), RenderError> {
        let ok = self.fov_y_rad > 0.0
            && self.fov_y_rad < std::f32::consts::PI
            && self.near_m > 0.0
            && self.far_m > self.near_m
            && self
                .eye_m
                .iter()
                .chain(&self.target_m)
                .chain(&self.up)
                .all(|v| v.is_finite())
            && math::normalize(math::sub(self.target_m, self.eye_m)).is_some();
        if ok {
            Ok(())
        } else {
            Err(RenderError::InvalidScene {
                reason: format!("unusable camera {self:?}"),
            })
        }
    }

    /// World -> Vulkan clip space for an image of the given aspect ratio.
    pub(crate) fn view_proj(&self, aspect: f32) -> Mat4 {
        let view = math::look_at(self.eye_m, self.target_m, self.up);
        let proj = math::perspective_vk(self.fov_y_rad, aspect, self.near_m, self.far_m);
        math::mul(&proj, &view)
    }

    /// This camera as one rendered view.
    pub fn view(&self, aspect: f32) -> Result<ViewCamera, RenderError> {
        self.check()?;
        Ok(ViewCamera {
            view_proj: self.view_proj(aspect),
            eye_m: self.eye_m,
        })
    }

    /// The camera's right direction (unit), from its view and up directions.
    pub fn right(&self) -> [f32; 3] {
        let f = math::normalize(math::sub(self.target_m, self.eye_m)).unwrap_or([0.0, 0.0, -1.0]);
        math::normalize(math::cross(f, self.up)).unwrap_or([1.0, 0.0, 0.0])
    }

    /// Two eyes `ipd_m` apart along [`Self::right`], looking parallel (the target moves with
    /// each eye), as a headset's eyes do: left first. A point in front of both eyes appears
    /// further right in the left eye's image than in the right eye's (parallax).
    pub fn stereo(&self, aspect: f32, ipd_m: f32) -> Result<[ViewCamera; 2], RenderError> {
        let r = self.right();
        let half = 0.5 * ipd_m;
        let eye = |s: f32| {
            let d = [r[0] * s, r[1] * s, r[2] * s];
            Camera {
                eye_m: math::add(self.eye_m, d),
                target_m: math::add(self.target_m, d),
                ..*self
            }
        };
        Ok([eye(-half).view(aspect)?, eye(half).view(aspect)?])
    }
}

/// One rendered view: world -> Vulkan clip space, and where the eye is (for lighting).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViewCamera {
    /// World -> Vulkan clip space (column-major).
    pub view_proj: [[f32; 4]; 4],
    /// Eye position, world frame, metres.
    pub eye_m: [f32; 3],
}

impl ViewCamera {
    /// An OpenXR-style view: the eye's pose (position, orientation quaternion `[x, y, z, w]`,
    /// eye -> world, looking down -z) and the tangents of its four field-of-view half-angles.
    pub fn from_pose_fov(
        position_m: [f32; 3],
        orientation: [f32; 4],
        angles_rad: [f32; 4],
        near_m: f32,
        far_m: f32,
    ) -> Self {
        let [l, r, u, d] = angles_rad.map(f32::tan);
        let proj = math::frustum_vk(l, r, u, d, near_m, far_m);
        let view = math::view_from_pose(position_m, orientation);
        Self {
            view_proj: math::mul(&proj, &view),
            eye_m: position_m,
        }
    }

    /// Projects a world point to pixel coordinates in an image of `width` x `height` (x
    /// right, y down); `None` behind the eye or outside the depth range.
    pub fn project(&self, width: u32, height: u32, p_m: [f32; 3]) -> Option<[f32; 2]> {
        let c = math::transform(&self.view_proj, [p_m[0], p_m[1], p_m[2], 1.0]);
        if c[3] <= 1e-9 {
            return None;
        }
        let ndc = [c[0] / c[3], c[1] / c[3], c[2] / c[3]];
        if !(0.0..=1.0).contains(&ndc[2]) {
            return None;
        }
        Some([
            (ndc[0] * 0.5 + 0.5) * width as f32,
            (ndc[1] * 0.5 + 0.5) * height as f32,
        ])
    }
}

/// An in-world panel: lines of text (instructions, the task timer) and a force gauge, on an
/// upright board standing behind the work area.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Panel<'a> {
    /// The text; lines split on `'\n'`. Characters outside printable ASCII show as a box.
    pub text: &'a str,
    /// The force on the hand, newtons (the gauge's bar).
    pub force_n: f32,
    /// The gauge's full scale, newtons (the device's limit).
    pub force_max_n: f32,
    /// Top-left corner of the board, world frame, metres.
    pub top_left_m: [f32; 3],
    /// Width of the board, metres (it faces +z, leaning back by `lean_rad`).
    pub width_m: f32,
    /// Height of a text cell, metres (capitals are 0.7 of it; see [`crate::render::font`]).
    pub glyph_height_m: f32,
    /// How far the board leans back from upright, radians.
    pub lean_rad: f32,
}

impl<'a> Panel<'a> {
    /// The standard board behind the phantom: 28 cm wide, its top 7 cm above the table's
    /// centre, 16 cm behind it, leaning back 20 degrees towards a seated trainee.
    pub fn behind_the_table(text: &'a str, force_n: f32, force_max_n: f32) -> Self {
        Self {
            text,
            force_n,
            force_max_n,
            top_left_m: [-0.14, 0.07, -0.16],
            width_m: 0.28,
            glyph_height_m: 0.009,
            lean_rad: 20f32.to_radians(),
        }
    }
}

/// One frame's worth of things to draw (borrowed; nothing is kept after the frame).
#[derive(Clone, Copy, Debug, Default)]
pub struct RenderScene<'a> {
    /// Tissue vertex positions in the world frame (m); changes every frame.
    pub tissue_positions_m: &'a [[f32; 3]],
    /// Boundary triangles, counter-clockwise seen from outside, indices into
    /// `tissue_positions_m`. Usually fixed per session, but any set is accepted each frame.
    pub tissue_triangles: &'a [[u32; 3]],
    /// Names the triangle set: while it stays the same non-zero number, the renderer may keep
    /// the indices it uploaded earlier (0: unknown, upload every frame).
    pub tissue_topology: u64,
    /// Material of each tissue vertex ([`material`]); missing entries are
    /// [`material::DEFAULT`].
    pub tissue_materials: &'a [u8],
    /// Overlay value of each tissue vertex, 0..1 (e.g. strain over its full scale); empty:
    /// no overlay.
    pub tissue_overlay: &'a [f32],
    /// Centre of the spherical tool tip (m).
    pub tool_center_m: [f32; 3],
    /// Radius of the tool tip (m); no tool is drawn when ≤ 0.
    pub tool_radius_m: f32,
    /// Direction from the tip to the handle (any length; zero: [`crate::render::DEFAULT_TOOL_AXIS`]).
    pub tool_axis: [f32; 3],
    /// Contact force on the tool (N); tints the tip from grey (0 N) to red (≥ 5 N).
    pub tool_force_n: [f32; 3],
    /// The in-world board with instructions, timer and force gauge, if any.
    pub panel: Option<Panel<'a>>,
}
