//! XPBD stepping of a tet mesh with a stable Neo-Hookean material and a sphere tool.
//!
//! Real-time contract: [`step`] neither allocates nor locks; all buffers are sized by
//! [`Tissue::new`]. Deterministic: fixed iteration order, no threads.

use nalgebra::{Matrix3, Vector3};

use super::mesh::{signed_volume, TetMesh};

/// An isotropic hyperelastic material.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Material {
    /// Young's modulus, pascals.
    pub youngs_modulus_pa: f64,
    /// Poisson ratio (dimensionless, < 0.5).
    pub poisson_ratio: f64,
    /// Density, kg/m^3.
    pub density_kg_per_m3: f64,
}

impl Material {
    /// Liver parenchyma (E about 5.4 kPa, nu 0.45, 1060 kg/m^3; see shared/reference/tissue.md).
    pub const LIVER: Material = Material {
        youngs_modulus_pa: 5_400.0,
        poisson_ratio: 0.45,
        density_kg_per_m3: 1060.0,
    };

    /// Lamé parameters (mu, lambda), pascals.
    pub fn lame(&self) -> (f64, f64) {
        let (e, nu) = (self.youngs_modulus_pa, self.poisson_ratio);
        let mu = e / (2.0 * (1.0 + nu));
        let lambda = e * nu / ((1.0 + nu) * (1.0 - 2.0 * nu));
        (mu, lambda)
    }

    /// The hydrostatic stiffness of the stable Neo-Hookean energy
    /// `mu/2 (I_C - 3) + lambda_snh/2 (J - 1 - mu/lambda_snh)^2`, pascals. Linearised at rest that
    /// energy has Lamé parameters (mu, lambda_snh - mu), so `lambda_snh = lambda + mu` makes it
    /// agree with linear elasticity for small strains (Smith, de Goes, Kim 2018, section 3.4).
    pub fn stable_neo_hookean_lambda(&self) -> f64 {
        let (mu, lambda) = self.lame();
        lambda + mu
    }
}

/// A particle held to a world anchor by a zero-length spring.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Attachment {
    particle: u32,
    anchor_in_world_m: Vector3<f64>,
    compliance_m_per_n: f64,
}

/// Parameters of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepParams {
    /// Length of the step (one haptic tick), seconds.
    pub dt_s: f64,
    /// Substeps per step.
    pub substeps: u32,
    /// Constraint iterations per substep (multipliers kept across them).
    pub iterations: u32,
    /// Gravity in the world frame, m/s^2.
    pub gravity_m_per_s2: [f64; 3],
    /// Velocity damping rate, 1/s (velocity decays as exp(-rate t)).
    pub damping_per_s: f64,
    /// Coulomb friction coefficient between the tool and the tissue (0: frictionless).
    pub contact_friction: f64,
    /// Green-strain magnitude above which a tet accumulates damage (0: no damage tracking).
    pub damage_strain: f64,
}

impl Default for StepParams {
    fn default() -> Self {
        Self {
            dt_s: 1e-3,
            substeps: 2,
            iterations: 1,
            gravity_m_per_s2: [0.0, -9.81, 0.0],
            damping_per_s: 20.0,
            contact_friction: 0.0,
            damage_strain: 0.3,
        }
    }
}

/// A rigid tool shape: every point within `radius_m` of its core (a point, a segment) is
/// inside it. Moved kinematically by its centre.
pub trait ToolShape {
    /// Centre in the world frame, metres.
    fn center_in_world_m(&self) -> Vector3<f64>;
    /// Radius around the core, metres.
    fn radius_m(&self) -> f64;
    /// The point of the core nearest to `x`, with the tool centred at `center` (world frame).
    fn closest_core_point(&self, center: Vector3<f64>, x: Vector3<f64>) -> Vector3<f64>;
    /// Whether the shape's numbers are all finite.
    fn is_finite(&self) -> bool;
}

/// A rigid sphere tool (a probe tip), moved kinematically by the haptic loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SphereTool {
    /// Centre in the world frame, metres.
    pub center_in_world_m: Vector3<f64>,
    /// Radius, metres.
    pub radius_m: f64,
}

impl ToolShape for SphereTool {
    fn center_in_world_m(&self) -> Vector3<f64> {
        self.center_in_world_m
    }
    fn radius_m(&self) -> f64 {
        self.radius_m
    }
    #[inline]
    fn closest_core_point(&self, center: Vector3<f64>, _x: Vector3<f64>) -> Vector3<f64> {
        center
    }
    fn is_finite(&self) -> bool {
        self.center_in_world_m.iter().all(|v| v.is_finite()) && self.radius_m.is_finite()
    }
}

/// A rigid capsule tool (an instrument shaft, a jaw): a segment of half-length
/// `|half_axis_in_world_m|` through the centre, thickened by `radius_m`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapsuleTool {
    /// Centre of the segment in the world frame, metres.
    pub center_in_world_m: Vector3<f64>,
    /// From the centre to one end of the segment, world frame, metres.
    pub half_axis_in_world_m: Vector3<f64>,
    /// Radius, metres.
    pub radius_m: f64,
}

impl ToolShape for CapsuleTool {
    fn center_in_world_m(&self) -> Vector3<f64> {
        self.center_in_world_m
    }
    fn radius_m(&self) -> f64 {
        self.radius_m
    }
    #[inline]
    fn closest_core_point(&self, center: Vector3<f64>, x: Vector3<f64>) -> Vector3<f64> {
        let axis = self.half_axis_in_world_m;
        let len2 = axis.norm_squared();
        if len2 <= 0.0 {
            return center;
        }
        let t = ((x - center).dot(&axis) / len2).clamp(-1.0, 1.0);
        center + axis * t
    }
    fn is_finite(&self) -> bool {
        self.center_in_world_m.iter().all(|v| v.is_finite())
            && self.half_axis_in_world_m.iter().all(|v| v.is_finite())
            && self.radius_m.is_finite()
    }
}

/// What one step produced.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StepResult {
    /// Force the tissue exerts on the tool, newtons (average over the substeps).
    pub force_on_tool_n: Vector3<f64>,
    /// Particles in contact with the tool in the last substep.
    pub contacts: u32,
}

/// Errors from the tissue step.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TissueError {
    /// A particle position became NaN or infinite; the tissue was restored to its state after
    /// the last good step, at rest.
    #[error("tissue step produced a non-finite position at particle {particle} (tick restored)")]
    NonFinite {
        /// Index of the first bad particle.
        particle: usize,
    },
    /// The tool's pose or radius is NaN or infinite; the step was not taken.
    #[error("tool pose or radius is not finite; step skipped")]
    BadTool,
}

/// The simulated tissue: particles, tets and their material, owned by the haptic thread.
#[derive(Debug, Clone)]
pub struct Tissue {
    /// Current positions, world frame, metres.
    pub positions_m: Vec<Vector3<f64>>,
    velocities_m_per_s: Vec<Vector3<f64>>,
    substep_start_m: Vec<Vector3<f64>>,
    last_good_m: Vec<Vector3<f64>>,
    inv_mass_per_kg: Vec<f64>,
    /// Constant external force on each particle (e.g. a load), world frame, newtons.
    external_force_n: Vec<Vector3<f64>>,
    tets: Vec<[u32; 4]>,
    inv_rest_shape: Vec<Matrix3<f64>>,
    deviatoric_compliance: Vec<f64>,
    hydrostatic_compliance: Vec<f64>,
    hydrostatic_rest: Vec<f64>,
    lambda_deviatoric: Vec<f64>,
    lambda_hydrostatic: Vec<f64>,
    surface_triangles: Vec<[u32; 3]>,
    tet_material: Vec<u16>,
    attachments: Vec<Attachment>,
    /// Grasped particles and their offsets from the tool centre (capacity: every particle, so
    /// grasping never allocates).
    grasped: Vec<(u32, Vector3<f64>)>,
    /// Whether each particle is held by the grasp (held particles skip the contact push-out).
    held: Vec<bool>,
    damage: Vec<f64>,
    last_tool_center_in_world_m: Option<Vector3<f64>>,
}

impl Tissue {
    /// Builds the tissue from a mesh and one material; particles for which `fixed(rest_pos)` is
    /// true are held in place (infinite mass), e.g. the face lying on the table.
    pub fn new(mesh: &TetMesh, material: Material, fixed: impl Fn(&Vector3<f64>) -> bool) -> Self {
        let ids = vec![0u16; mesh.tets.len()];
        Self::with_materials(mesh, &[material], &ids, fixed)
    }

    /// Builds the tissue with a material per tet: `tet_material[t]` indexes `materials` (e.g.
    /// parenchyma, tumour, vessel). Masses come from each tet's density and volume.
    ///
    /// # Panics
    /// If `tet_material` does not have one entry per tet, or an entry is out of range.
    pub fn with_materials(
        mesh: &TetMesh,
        materials: &[Material],
        tet_material: &[u16],
        fixed: impl Fn(&Vector3<f64>) -> bool,
    ) -> Self {
        assert_eq!(
            tet_material.len(),
            mesh.tets.len(),
            "one material id per tet"
        );
        let n = mesh.rest_positions_m.len();
        let mut mass = vec![0.0f64; n];
        let mut inv_rest_shape = Vec::with_capacity(mesh.tets.len());
        let mut dev = Vec::with_capacity(mesh.tets.len());
        let mut hyd = Vec::with_capacity(mesh.tets.len());
        let mut hyd_rest = Vec::with_capacity(mesh.tets.len());
        for (t, &id) in mesh.tets.iter().zip(tet_material) {
            let material = materials[id as usize];
            let (mu, _) = material.lame();
            let lambda = material.stable_neo_hookean_lambda();
            let p = t.map(|q| &mesh.rest_positions_m[q as usize]);
            let vol = signed_volume(p);
            assert!(vol > 0.0, "tet with non-positive rest volume");
            let dm = Matrix3::from_columns(&[p[1] - p[0], p[2] - p[0], p[3] - p[0]]);
            inv_rest_shape.push(dm.try_inverse().expect("degenerate tet"));
            dev.push(1.0 / (mu * vol));
            hyd.push(1.0 / (lambda * vol));
            hyd_rest.push(1.0 + mu / lambda);
            for &q in t {
                mass[q as usize] += material.density_kg_per_m3 * vol / 4.0;
            }
        }
        let inv_mass = mesh
            .rest_positions_m
            .iter()
            .zip(&mass)
            .map(|(p, &m)| if fixed(p) || m <= 0.0 { 0.0 } else { 1.0 / m })
            .collect();
        Self {
            positions_m: mesh.rest_positions_m.clone(),
            velocities_m_per_s: vec![Vector3::zeros(); n],
            substep_start_m: mesh.rest_positions_m.clone(),
            last_good_m: mesh.rest_positions_m.clone(),
            inv_mass_per_kg: inv_mass,
            external_force_n: vec![Vector3::zeros(); n],
            tets: mesh.tets.clone(),
            inv_rest_shape,
            deviatoric_compliance: dev,
            hydrostatic_compliance: hyd,
            lambda_deviatoric: vec![0.0; mesh.tets.len()],
            lambda_hydrostatic: vec![0.0; mesh.tets.len()],
            hydrostatic_rest: hyd_rest,
            surface_triangles: mesh.surface_triangles.clone(),
            tet_material: tet_material.to_vec(),
            attachments: Vec::new(),
            grasped: Vec::with_capacity(n),
            held: vec![false; n],
            damage: vec![0.0; mesh.tets.len()],
            last_tool_center_in_world_m: None,
        }
    }

    /// Grasps: every free particle within `radius_m` of `tool_center_in_world_m` is held at its
    /// current offset from the tool centre until [`Tissue::release`], moving with the tool (the
    /// jaws). Replaces any earlier grasp. Returns how many particles were taken. Never allocates.
    pub fn grasp(&mut self, tool_center_in_world_m: Vector3<f64>, radius_m: f64) -> usize {
        self.release();
        let r2 = radius_m * radius_m;
        for (q, p) in self.positions_m.iter().enumerate() {
            if self.inv_mass_per_kg[q] > 0.0 && (p - tool_center_in_world_m).norm_squared() <= r2 {
                self.grasped.push((q as u32, p - tool_center_in_world_m));
                self.held[q] = true;
            }
        }
        self.grasped.len()
    }

    /// Lets go of every grasped particle.
    pub fn release(&mut self) {
        for &(q, _) in &self.grasped {
            self.held[q as usize] = false;
        }
        self.grasped.clear();
    }

    /// Particles held by the current grasp.
    pub fn grasped_count(&self) -> usize {
        self.grasped.len()
    }

    /// Accumulated over-strain damage per tet: the integral over time of
    /// `(|E| / damage_strain - 1)` while positive, where `E` is the Green strain; seconds. It only
    /// grows. A scoring input (how roughly the tissue was handled).
    pub fn damage(&self) -> &[f64] {
        &self.damage
    }

    /// Current volume of the tets whose damage exceeds `min_damage`, m^3.
    pub fn damaged_volume_m3(&self, min_damage: f64) -> f64 {
        self.tets
            .iter()
            .zip(&self.damage)
            .filter(|(_, &d)| d > min_damage)
            .map(|(t, _)| signed_volume(t.map(|q| &self.positions_m[q as usize])))
            .sum()
    }

    /// The tets, four particle indices each (for [`super::embed::EmbeddedSurface::update`]).
    pub fn tets(&self) -> &[[u32; 4]] {
        &self.tets
    }

    /// The material id of each tet (an index into the materials the tissue was built with).
    pub fn tet_materials(&self) -> &[u16] {
        &self.tet_material
    }

    /// Sets a constant external force on particle `q` (world frame, newtons), applied every
    /// substep until changed. Fixed particles ignore it.
    ///
    /// # Panics
    /// If `q` is out of range.
    pub fn set_external_force(&mut self, q: usize, force_n: Vector3<f64>) {
        self.external_force_n[q] = force_n;
    }

    /// Attaches particle `q` to a fixed point of the world by a zero-length spring of
    /// `compliance_m_per_n` (0: rigid), as a ligament holds an organ. Set-up only: call before
    /// stepping (it may allocate).
    ///
    /// # Panics
    /// If `q` is out of range or the compliance is negative or not finite.
    pub fn attach(&mut self, q: usize, anchor_in_world_m: Vector3<f64>, compliance_m_per_n: f64) {
        assert!(q < self.positions_m.len(), "particle {q} out of range");
        assert!(
            compliance_m_per_n.is_finite() && compliance_m_per_n >= 0.0,
            "compliance must be finite and non-negative"
        );
        self.attachments.push(Attachment {
            particle: q as u32,
            anchor_in_world_m,
            compliance_m_per_n,
        });
    }

    /// Whether particle `q` is fixed (infinite mass).
    pub fn is_fixed(&self, q: usize) -> bool {
        self.inv_mass_per_kg[q] == 0.0
    }

    /// Kinetic energy of the free particles, joules.
    pub fn kinetic_energy_j(&self) -> f64 {
        self.velocities_m_per_s
            .iter()
            .zip(&self.inv_mass_per_kg)
            .filter(|(_, &w)| w > 0.0)
            .map(|(v, &w)| 0.5 * v.norm_squared() / w)
            .sum()
    }

    /// Tets whose signed volume is not positive now (inverted or flat).
    pub fn inverted_tets(&self) -> usize {
        self.tets
            .iter()
            .filter(|t| signed_volume(t.map(|q| &self.positions_m[q as usize])) <= 0.0)
            .count()
    }

    /// Number of particles.
    pub fn particle_count(&self) -> usize {
        self.positions_m.len()
    }

    /// Number of tets.
    pub fn tet_count(&self) -> usize {
        self.tets.len()
    }

    /// Boundary triangles (indices into the particles), counter-clockwise from outside.
    pub fn surface_triangles(&self) -> &[[u32; 3]] {
        &self.surface_triangles
    }

    /// Total mass of the free particles, kg.
    pub fn free_mass_kg(&self) -> f64 {
        self.inv_mass_per_kg
            .iter()
            .filter(|&&w| w > 0.0)
            .map(|w| 1.0 / w)
            .sum()
    }

    /// Current volume, m^3.
    pub fn volume_m3(&self) -> f64 {
        self.tets
            .iter()
            .map(|t| signed_volume(t.map(|q| &self.positions_m[q as usize])))
            .sum()
    }
}

/// One constraint projection on tet `t` with gradient `dcdf` (w.r.t. F) and value `c`.
#[inline]
/// Returns the multiplier increment (0 when the constraint cannot move anything).
fn project(
    tissue: &mut Tissue,
    t: usize,
    c: f64,
    dcdf: &Matrix3<f64>,
    compliance_over_h2: f64,
    lambda: f64,
) -> f64 {
    let idx = tissue.tets[t];
    let g = dcdf * tissue.inv_rest_shape[t].transpose();
    let g1 = g.column(0).into_owned();
    let g2 = g.column(1).into_owned();
    let g3 = g.column(2).into_owned();
    let g0 = -(g1 + g2 + g3);
    let grads = [g0, g1, g2, g3];
    let mut denom = compliance_over_h2;
    for (k, gk) in grads.iter().enumerate() {
        denom += tissue.inv_mass_per_kg[idx[k] as usize] * gk.norm_squared();
    }
    if denom <= 0.0 {
        return 0.0;
    }
    // XPBD: the multiplier accumulated over this substep's iterations enters here, so the
    // stiffness does not depend on the iteration count.
    let dlambda = (-c - compliance_over_h2 * lambda) / denom;
    for (k, gk) in grads.iter().enumerate() {
        let q = idx[k] as usize;
        let w = tissue.inv_mass_per_kg[q];
        tissue.positions_m[q] += gk * (w * dlambda);
    }
    dlambda
}

#[inline]
fn deformation_gradient(tissue: &Tissue, t: usize) -> Matrix3<f64> {
    let [a, b, c, d] = tissue.tets[t].map(|q| tissue.positions_m[q as usize]);
    Matrix3::from_columns(&[b - a, c - a, d - a]) * tissue.inv_rest_shape[t]
}

/// Advances `tissue` by `params.dt_s` with `tool` in contact; returns the force on the tool.
///
/// The tool moves linearly from where it was at the last step to `tool` across the substeps.
/// On a non-finite result the tissue is restored to its state after the last good step.
pub fn step<T: ToolShape>(
    params: &StepParams,
    tissue: &mut Tissue,
    tool: &T,
) -> Result<StepResult, TissueError> {
    if !tool.is_finite() {
        return Err(TissueError::BadTool);
    }
    let tool_center_now = tool.center_in_world_m();
    let n_sub = params.substeps.max(1);
    let h = params.dt_s / n_sub as f64;
    let h2 = h * h;
    let gravity = Vector3::from(params.gravity_m_per_s2);
    let damping = (-params.damping_per_s * h).exp();
    let tool_from = tissue
        .last_tool_center_in_world_m
        .unwrap_or(tool_center_now);
    let r = tool.radius_m();
    let r2 = r * r;

    let mut impulse_sum = Vector3::zeros();
    let mut contacts = 0u32;
    for s in 0..n_sub {
        let f = (s + 1) as f64 / n_sub as f64;
        let center = tool_from + (tool_center_now - tool_from) * f;
        let tool_step = (tool_center_now - tool_from) / n_sub as f64;

        // Predict.
        for q in 0..tissue.positions_m.len() {
            tissue.substep_start_m[q] = tissue.positions_m[q];
            let w = tissue.inv_mass_per_kg[q];
            if w > 0.0 {
                tissue.velocities_m_per_s[q] += (gravity + tissue.external_force_n[q] * w) * h;
                tissue.positions_m[q] += tissue.velocities_m_per_s[q] * h;
            }
        }

        // Material: stable Neo-Hookean, deviatoric then hydrostatic per tet, `iterations`
        // Gauss-Seidel sweeps with the multipliers kept across them (reset each substep).
        tissue.lambda_deviatoric.fill(0.0);
        tissue.lambda_hydrostatic.fill(0.0);
        let iterations = params.iterations.max(1);
        for it in 0..iterations {
            let last_iteration = it + 1 == iterations;
            for t in 0..tissue.tets.len() {
                let f_mat = deformation_gradient(tissue, t);
                if last_iteration && params.damage_strain > 0.0 {
                    // Damage: time spent above the strain threshold, weighted by the excess.
                    let green = (f_mat.transpose() * f_mat - Matrix3::identity()) * 0.5;
                    let excess = green.norm() / params.damage_strain - 1.0;
                    if excess > 0.0 {
                        tissue.damage[t] += excess * h;
                    }
                }
                let norm = f_mat.norm();
                if norm > 1e-12 {
                    let a = tissue.deviatoric_compliance[t] / h2;
                    let l = tissue.lambda_deviatoric[t];
                    tissue.lambda_deviatoric[t] += project(tissue, t, norm, &(f_mat / norm), a, l);
                }
                let f_mat = deformation_gradient(tissue, t);
                let (f0, f1, f2) = (f_mat.column(0), f_mat.column(1), f_mat.column(2));
                let cof = Matrix3::from_columns(&[f1.cross(&f2), f2.cross(&f0), f0.cross(&f1)]);
                let c = f_mat.determinant() - tissue.hydrostatic_rest[t];
                let a = tissue.hydrostatic_compliance[t] / h2;
                let l = tissue.lambda_hydrostatic[t];
                tissue.lambda_hydrostatic[t] += project(tissue, t, c, &cof, a, l);
            }
        }

        // Attachments: zero-length springs from particles to fixed anchors (ligaments), one
        // projection per substep (the attachment's multiplier starts at zero each substep).
        for a in 0..tissue.attachments.len() {
            let Attachment {
                particle,
                anchor_in_world_m,
                compliance_m_per_n,
            } = tissue.attachments[a];
            let q = particle as usize;
            let w = tissue.inv_mass_per_kg[q];
            let d = tissue.positions_m[q] - anchor_in_world_m;
            let c = d.norm();
            if w <= 0.0 || c < 1e-15 {
                continue;
            }
            let a_tilde = compliance_m_per_n / h2;
            let dlambda = -c / (w + a_tilde);
            tissue.positions_m[q] += d / c * (w * dlambda);
        }

        // Grasp: held particles go where the jaws are (zero compliance); the tissue pulls back on
        // the tool with the impulse that took them there.
        for g in 0..tissue.grasped.len() {
            let (q, offset) = tissue.grasped[g];
            let q = q as usize;
            let w = tissue.inv_mass_per_kg[q];
            let correction = center + offset - tissue.positions_m[q];
            tissue.positions_m[q] += correction;
            impulse_sum -= correction / (w * h);
        }

        // Tool contact: push particles out of the sphere (hard, zero compliance).
        contacts = 0;
        for q in 0..tissue.positions_m.len() {
            let w = tissue.inv_mass_per_kg[q];
            if w <= 0.0 || tissue.held[q] {
                continue;
            }
            let x = tissue.positions_m[q];
            let d = x - tool.closest_core_point(center, x);
            let d2 = d.norm_squared();
            if d2 < r2 {
                let dist = d2.sqrt();
                let normal = if dist > 1e-12 { d / dist } else { Vector3::y() };
                let depth = r - dist;
                let mut correction = normal * depth;
                if params.contact_friction > 0.0 {
                    // Coulomb friction, position-based: cancel the particle's sliding relative
                    // to the tool during this substep, up to friction * penetration.
                    let moved = tissue.positions_m[q] + correction - tissue.substep_start_m[q];
                    let slide = moved - tool_step;
                    let tangential = slide - normal * slide.dot(&normal);
                    let t_len = tangential.norm();
                    let limit = params.contact_friction * depth;
                    if t_len > 1e-15 {
                        correction -= tangential * (limit / t_len).min(1.0);
                    }
                }
                tissue.positions_m[q] += correction;
                // Reaction on the tool: the impulse that moved the particle, opposite.
                impulse_sum -= correction / (w * h);
                contacts += 1;
            }
        }

        // Velocities from positions, then damping.
        for q in 0..tissue.positions_m.len() {
            if tissue.inv_mass_per_kg[q] > 0.0 {
                tissue.velocities_m_per_s[q] =
                    (tissue.positions_m[q] - tissue.substep_start_m[q]) / h * damping;
            }
        }
    }
    tissue.last_tool_center_in_world_m = Some(tool_center_now);

    if let Some(bad) = tissue
        .positions_m
        .iter()
        .position(|p| !p.iter().all(|v| v.is_finite()))
    {
        tissue.positions_m.copy_from_slice(&tissue.last_good_m);
        for v in tissue.velocities_m_per_s.iter_mut() {
            *v = Vector3::zeros();
        }
        return Err(TissueError::NonFinite { particle: bad });
    }
    tissue.last_good_m.copy_from_slice(&tissue.positions_m);
    Ok(StepResult {
        // Total impulse over the tick divided by the tick length.
        force_on_tool_n: impulse_sum / params.dt_s,
        contacts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> Tissue {
        let mesh = TetMesh::block(
            Vector3::new(-0.05, -0.0375, -0.05),
            Vector3::new(0.05, 0.0, 0.05),
            [8, 3, 8],
        );
        Tissue::new(&mesh, Material::LIVER, |p| p.y < -0.0374)
    }

    fn far_tool() -> SphereTool {
        SphereTool {
            center_in_world_m: Vector3::new(0.0, 0.2, 0.0),
            radius_m: 0.012,
        }
    }

    #[test]
    fn linearised_stable_neo_hookean_matches_the_lame_parameters() {
        // Second derivative of the energy density along a small uniaxial strain eps
        // (F = diag(1 + eps, 1, 1)) must be lambda + 2 mu, the linear P-wave modulus.
        let m = Material::LIVER;
        let (mu, lambda) = m.lame();
        let l = m.stable_neo_hookean_lambda();
        let psi = |e: f64| {
            let f = Matrix3::from_diagonal(&Vector3::new(1.0 + e, 1.0, 1.0));
            let ic = f.norm_squared();
            let j = f.determinant();
            0.5 * mu * (ic - 3.0) + 0.5 * l * (j - 1.0 - mu / l).powi(2)
        };
        let h = 1e-4;
        let second = (psi(h) - 2.0 * psi(0.0) + psi(-h)) / (h * h);
        let expected = lambda + 2.0 * mu;
        assert!(
            (second - expected).abs() / expected < 1e-4,
            "{second} vs {expected}"
        );
        // And the rest state is stress-free: first derivative zero.
        let first = (psi(h) - psi(-h)) / (2.0 * h);
        assert!(first.abs() < 1e-6 * expected, "rest stress {first}");
    }

    #[test]
    fn multipliers_kept_across_iterations_converge_instead_of_stiffening() {
        // Static sag of a short tip-loaded bar for 1, 2, ..., 16 iterations per substep. With
        // the multipliers kept across iterations the sag converges to the compliant solution
        // (one iteration is a little soft: it solves with compliance alpha + w|grad C|^2).
        // Dropping them would make every extra iteration stiffer, towards a rigid bar.
        use crate::tissue::scenes::Cantilever;
        let sag = |iterations| {
            let bar = Cantilever::new(0.005, 8, 2, Material::LIVER, 0.01);
            let params = StepParams {
                iterations,
                ..StepParams::default()
            };
            let r = bar.settle(&params, 30.0).unwrap();
            assert!(r.settled, "{iterations} iterations: {r:?}");
            r.measured_m
        };
        let s: Vec<f64> = [1, 2, 4, 8, 16].into_iter().map(sag).collect();
        assert!(
            s[4] > 0.8 * s[0],
            "more iterations must not stiffen the bar: {s:?}"
        );
        let first_gap = (s[1] - s[0]).abs();
        let last_gap = (s[4] - s[3]).abs();
        assert!(last_gap < 0.25 * first_gap, "the sag must converge: {s:?}");
    }

    #[test]
    fn a_stiffer_region_pushes_back_harder() {
        // Left half liver, right half five times stiffer (tumour-like): the same press gives a
        // larger force over the stiff half.
        let mesh = TetMesh::block(
            Vector3::new(-0.05, -0.0375, -0.05),
            Vector3::new(0.05, 0.0, 0.05),
            [8, 3, 8],
        );
        let tumour = Material {
            youngs_modulus_pa: 5.0 * Material::LIVER.youngs_modulus_pa,
            ..Material::LIVER
        };
        let ids: Vec<u16> = mesh
            .tets
            .iter()
            .map(|t| {
                let cx: f64 = t.iter().map(|&q| mesh.rest_positions_m[q as usize].x).sum();
                u16::from(cx > 0.0)
            })
            .collect();
        let press = |x: f64| {
            let mut t =
                Tissue::with_materials(&mesh, &[Material::LIVER, tumour], &ids, |p| p.y < -0.0374);
            let p = StepParams::default();
            let mut f = Vector3::zeros();
            for i in 0..2500 {
                let y = (0.022 - i as f64 * 1e-5).max(0.006);
                let tool = SphereTool {
                    center_in_world_m: Vector3::new(x, y, 0.0),
                    radius_m: 0.012,
                };
                let r = step(&p, &mut t, &tool).unwrap();
                if i >= 2300 {
                    f += r.force_on_tool_n / 200.0;
                }
            }
            f.y
        };
        let (soft, stiff) = (press(-0.025), press(0.025));
        assert!(soft > 0.0);
        assert!(stiff > 2.0 * soft, "soft {soft} N, stiff {stiff} N");
    }

    #[test]
    fn attached_block_hangs_from_its_anchors() {
        // A block with nothing fixed, its top face attached rigidly: it hangs, the attached
        // particles stay at their anchors, and the block stretches downwards a little.
        let mesh = TetMesh::block(
            Vector3::new(-0.02, -0.02, -0.02),
            Vector3::new(0.02, 0.0, 0.02),
            [4, 2, 4],
        );
        let mut t = Tissue::new(&mesh, Material::LIVER, |_| false);
        let top: Vec<usize> = (0..t.particle_count())
            .filter(|&q| mesh.rest_positions_m[q].y > -1e-9)
            .collect();
        for &q in &top {
            t.attach(q, mesh.rest_positions_m[q], 0.0);
        }
        let p = StepParams::default();
        for _ in 0..3000 {
            step(&p, &mut t, &far_tool()).unwrap();
        }
        for &q in &top {
            let off = (t.positions_m[q] - mesh.rest_positions_m[q]).norm();
            assert!(off < 1e-6, "attached particle {q} drifted {off} m");
        }
        let bottom_y = t
            .positions_m
            .iter()
            .map(|p| p.y)
            .fold(f64::INFINITY, f64::min);
        assert!(
            bottom_y < -0.0201 && bottom_y > -0.03,
            "bottom at {bottom_y}"
        );
        assert_eq!(t.inverted_tets(), 0);
    }

    #[test]
    fn friction_resists_sliding() {
        // Press the sphere 8 mm in, then slide it along +x at 5 cm/s: friction adds a force
        // against the motion.
        let drag = |mu: f64| {
            let mut t = block();
            let p = StepParams {
                contact_friction: mu,
                ..StepParams::default()
            };
            let mut fx = 0.0;
            for i in 0..2300 {
                let y = (0.022 - i as f64 * 1e-5).max(0.004);
                let x = if i < 2000 {
                    0.0
                } else {
                    (i - 2000) as f64 * 5e-5
                };
                let tool = SphereTool {
                    center_in_world_m: Vector3::new(x - 0.0075, y, 0.0),
                    radius_m: 0.012,
                };
                let r = step(&p, &mut t, &tool).unwrap();
                if i >= 2200 {
                    fx += r.force_on_tool_n.x / 100.0;
                }
            }
            fx
        };
        let (free, rough) = (drag(0.0), drag(0.5));
        assert!(
            rough < free - 0.02,
            "friction should pull back on the tool: {free} vs {rough} N"
        );
    }

    #[test]
    fn rough_handling_damages_and_gentle_does_not() {
        let run = |depth_m: f64| {
            let mut t = block();
            let p = StepParams::default();
            let mut history = Vec::new();
            for i in 0..2500 {
                let y = (0.022 - i as f64 * 2e-5).max(0.012 - depth_m);
                let tool = SphereTool {
                    center_in_world_m: Vector3::new(0.0, y, 0.0),
                    radius_m: 0.012,
                };
                step(&p, &mut t, &tool).unwrap();
                if i % 100 == 0 {
                    history.push(t.damage().iter().sum::<f64>());
                }
            }
            (t.damage().iter().filter(|&&d| d > 0.0).count(), history)
        };
        let (gentle, _) = run(0.004);
        let (rough, history) = run(0.025);
        assert_eq!(gentle, 0, "a 4 mm press must not damage");
        assert!(rough > 0, "a 25 mm stab must damage some tets");
        assert!(
            history.windows(2).all(|w| w[1] >= w[0]),
            "damage only grows"
        );
    }

    #[test]
    fn grasp_lifts_tissue_pulls_back_and_releases() {
        let mut t = block();
        let p = StepParams::default();
        // Rest the jaws on the surface over the centre vertex, grasp what is within 8 mm.
        let mut tool = SphereTool {
            center_in_world_m: Vector3::new(0.0, 0.0, 0.0),
            radius_m: 0.004,
        };
        for _ in 0..500 {
            step(&p, &mut t, &tool).unwrap();
        }
        let capacity = t.grasped.capacity();
        let taken = t.grasp(tool.center_in_world_m, 0.008);
        assert!(taken >= 1);
        assert_eq!(t.grasped.capacity(), capacity, "grasping must not allocate");
        let rest_y = t
            .positions_m
            .iter()
            .map(|p| p.y)
            .fold(f64::NEG_INFINITY, f64::max);
        let held: Vec<usize> = t.grasped.iter().map(|&(q, _)| q as usize).collect();
        let held_y =
            |t: &Tissue| held.iter().map(|&q| t.positions_m[q].y).sum::<f64>() / held.len() as f64;
        let before = held_y(&t);
        // Lift by 1 cm over 0.5 s, then hold.
        let mut force = Vector3::zeros();
        for i in 0..1000 {
            tool.center_in_world_m.y = 0.01 * (i as f64 / 500.0).min(1.0);
            let r = step(&p, &mut t, &tool).unwrap();
            if i >= 900 {
                force += r.force_on_tool_n / 100.0;
            }
        }
        let lifted = held_y(&t) - before;
        assert!(
            (lifted - 0.01).abs() < 1e-6,
            "the grasped tissue must come up with the jaws: {lifted}"
        );
        assert!(
            force.y < -0.05,
            "the tissue must pull the jaws down: {force:?}"
        );
        t.release();
        assert_eq!(t.grasped_count(), 0);
        for _ in 0..2000 {
            step(&p, &mut t, &tool).unwrap();
        }
        let after = t
            .positions_m
            .iter()
            .map(|p| p.y)
            .fold(f64::NEG_INFINITY, f64::max);
        assert!(
            after < rest_y + 0.002,
            "released tissue must fall back: {after}"
        );
    }

    #[test]
    fn capsule_presses_along_its_length() {
        // A 4 cm shaft of 8 mm radius laid across the surface and pressed 4 mm in pushes back
        // harder than an 8 mm sphere pressed as deep, and straight up. (Contact is against the
        // particles, 12.5 mm apart here: a much thinner tool would slip between them.)
        let press = |shape: &dyn Fn(f64) -> (Vector3<f64>, f64)| {
            let mut t = block();
            let p = StepParams::default();
            let mut f = Vector3::zeros();
            for i in 0..2500 {
                let (c, _) = shape((0.025 - i as f64 * 1e-5).max(0.004));
                let r = if shape(0.0).1 > 0.0 {
                    step(
                        &p,
                        &mut t,
                        &CapsuleTool {
                            center_in_world_m: c,
                            half_axis_in_world_m: Vector3::new(shape(0.0).1, 0.0, 0.0),
                            radius_m: 0.008,
                        },
                    )
                } else {
                    step(
                        &p,
                        &mut t,
                        &SphereTool {
                            center_in_world_m: c,
                            radius_m: 0.008,
                        },
                    )
                }
                .unwrap();
                if i >= 2300 {
                    f += r.force_on_tool_n / 200.0;
                }
            }
            f
        };
        let sphere = press(&|y| (Vector3::new(0.0, y, 0.0), 0.0));
        let capsule = press(&|y| (Vector3::new(0.0, y, 0.0), 0.02));
        assert!(
            sphere.y > 0.0 && capsule.y > 2.0 * sphere.y,
            "sphere {sphere:?}, capsule {capsule:?}"
        );
        assert!(capsule.x.abs() < 0.1 * capsule.y && capsule.z.abs() < 0.1 * capsule.y);
    }

    #[test]
    fn capsule_closest_point_clamps_to_the_segment() {
        let c = CapsuleTool {
            center_in_world_m: Vector3::zeros(),
            half_axis_in_world_m: Vector3::new(0.01, 0.0, 0.0),
            radius_m: 0.002,
        };
        let z = Vector3::zeros();
        assert_eq!(
            c.closest_core_point(z, Vector3::new(0.005, 0.003, 0.0)),
            Vector3::new(0.005, 0.0, 0.0)
        );
        assert_eq!(
            c.closest_core_point(z, Vector3::new(0.05, 0.0, 0.0)),
            Vector3::new(0.01, 0.0, 0.0)
        );
        assert_eq!(
            c.closest_core_point(z, Vector3::new(-0.05, 0.1, 0.0)),
            Vector3::new(-0.01, 0.0, 0.0)
        );
    }

    #[test]
    fn rests_under_gravity_without_collapse() {
        let mut t = block();
        let v0 = t.volume_m3();
        let p = StepParams::default();
        for _ in 0..1000 {
            step(&p, &mut t, &far_tool()).unwrap();
        }
        let v1 = t.volume_m3();
        assert!((v1 - v0).abs() / v0 < 0.05, "volume changed {v0} -> {v1}");
        let top_sag = t
            .positions_m
            .iter()
            .map(|p| p.y)
            .fold(f64::NEG_INFINITY, f64::max);
        assert!(top_sag < 0.0 && top_sag > -0.01, "top at {top_sag}");
    }

    #[test]
    fn pressing_gives_upward_force_that_grows_with_depth() {
        let p = StepParams::default();
        let mut forces = Vec::new();
        for depth in [0.004, 0.008] {
            let mut t = block();
            let r = 0.012;
            let mut tool = far_tool();
            // Lower the tool slowly to the depth, then hold.
            for i in 0..2500 {
                let y = (r + 0.01 - i as f64 * 1e-5).max(r - depth);
                tool.center_in_world_m = Vector3::new(0.0, y, 0.0);
                step(&p, &mut t, &tool).unwrap();
            }
            let mut avg = Vector3::zeros();
            for _ in 0..200 {
                avg += step(&p, &mut t, &tool).unwrap().force_on_tool_n / 200.0;
            }
            assert!(avg.y > 0.0, "force should push the tool up: {avg:?}");
            assert!(avg.x.abs() < 0.2 * avg.y && avg.z.abs() < 0.2 * avg.y);
            forces.push(avg.y);
        }
        assert!(forces[1] > 1.5 * forces[0], "force not growing: {forces:?}");
    }

    #[test]
    fn same_inputs_same_bits() {
        let run = || {
            let mut t = block();
            let p = StepParams::default();
            let mut out = Vec::new();
            for i in 0..300 {
                let tool = SphereTool {
                    center_in_world_m: Vector3::new(0.0, 0.02 - i as f64 * 1e-4, 0.0),
                    radius_m: 0.012,
                };
                let r = step(&p, &mut t, &tool).unwrap();
                out.extend(r.force_on_tool_n.iter().map(|v| v.to_bits()));
            }
            out.extend(
                t.positions_m
                    .iter()
                    .flat_map(|p| p.iter().map(|v| v.to_bits())),
            );
            out
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn nan_tool_is_refused_and_nan_state_is_restored() {
        let mut t = block();
        let p = StepParams::default();
        let mut tool = far_tool();
        tool.center_in_world_m.x = f64::NAN;
        assert_eq!(step(&p, &mut t, &tool), Err(TissueError::BadTool));
        let before = t.positions_m.clone();
        t.positions_m[5].x = f64::NAN;
        let err = step(&p, &mut t, &far_tool()).unwrap_err();
        assert!(matches!(err, TissueError::NonFinite { .. }));
        // Restored to the last good state, the injected NaN included.
        assert_eq!(t.positions_m, before);
        step(&p, &mut t, &far_tool()).unwrap();
    }
}
