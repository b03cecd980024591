//! XPBD stepping of a tet mesh with a stable Neo-Hookean material, tool contact, grasping,
//! cutting, resection and tearing.
//!
//! Owns [`Tissue`] (particles, tets, materials, live surface) and [`step`]. The material
//! constraints are projected by the private `kernel` module; attachments, the grasp, the
//! needle (through [`SubstepHook`]) and contact are projected here, in that order, in every
//! substep.
//!
//! Real-time contract: [`step`], [`Tissue::cut`], [`Tissue::resect`], [`Tissue::grasp`] and
//! [`Tissue::release`] neither allocate nor lock; every buffer (the live surface included) is
//! sized by [`Tissue::new`]. Deterministic: fixed iteration order, no threads, no hashing after
//! set-up.

use nalgebra::{Matrix3, UnitQuaternion, Vector3};

use super::kernel::{MaterialBatches, TetRest};
use super::mesh::{signed_volume, TetMesh};
use super::topology::{
    closest_on_triangle, face_neighbours, point_in_tet, rebuild_surface, segment_hits_triangle,
};

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

/// A particle held to a world anchor by a zero-length spring, or (with a plane normal) to a
/// plane through the anchor, free to slide in it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Attachment {
    particle: u32,
    anchor_in_world_m: Vector3<f64>,
    compliance_m_per_n: f64,
    plane_normal: Option<Vector3<f64>>,
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
    /// Edge stretch (current / rest length) past which a tet tears and is removed (0: never).
    pub tear_stretch: f64,
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
            tear_stretch: 1.8,
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
    /// The direction of the tool's axis in the world frame (unit), for shapes that have one:
    /// grasped tissue turns with it. `None` (the default): the grasp only translates.
    fn axis_in_world(&self) -> Option<Vector3<f64>> {
        None
    }
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

impl CapsuleTool {
    /// A scalpel blade for contact: its cutting edge from `heel` to `tip` (world frame, metres),
    /// thickened to `thickness_m`. Cutting itself is [`Tissue::cut`].
    pub fn blade(heel: Vector3<f64>, tip: Vector3<f64>, thickness_m: f64) -> Self {
        Self {
            center_in_world_m: (heel + tip) / 2.0,
            half_axis_in_world_m: (tip - heel) / 2.0,
            radius_m: thickness_m / 2.0,
        }
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
    fn axis_in_world(&self) -> Option<Vector3<f64>> {
        self.half_axis_in_world_m.try_normalize(1e-12)
    }
}

/// What one step produced.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StepResult {
    /// Force the tissue exerts on the tool, newtons (average over the substeps).
    pub force_on_tool_n: Vector3<f64>,
    /// Particles and surface triangles in contact with the tool in the last substep.
    pub contacts: u32,
    /// Tets torn (removed for over-stretch) in this step.
    pub torn_tets: u32,
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

/// Extra constraints projected in every substep after the grasp and before contact (the
/// needle's shaft). Implementations must not allocate or lock.
pub trait SubstepHook {
    /// Projects the hook's constraints for the substep ending at fraction `f` of the step, of
    /// length `h_s`; returns the impulse the tissue exerted on the tool, newton-seconds.
    fn project(&mut self, tissue: &mut Tissue, f: f64, h_s: f64) -> Vector3<f64>;
}

/// The simulated tissue: particles, tets and their material, owned by the haptic thread.
#[derive(Debug, Clone)]
pub struct Tissue {
    /// Current positions, world frame, metres.
    pub positions_m: Vec<Vector3<f64>>,
    velocities_m_per_s: Vec<Vector3<f64>>,
    pub(crate) substep_start_m: Vec<Vector3<f64>>,
    last_good_m: Vec<Vector3<f64>>,
    pub(crate) inv_mass_per_kg: Vec<f64>,
    mass_kg: Vec<f64>,
    fixed: Vec<bool>,
    live_tets_of_particle: Vec<u32>,
    /// Constant external force on each particle (e.g. a load), world frame, newtons.
    external_force_n: Vec<Vector3<f64>>,
    tets: Vec<[u32; 4]>,
    tet_rest_volume_m3: Vec<f64>,
    tet_mass_kg: Vec<f64>,
    tet_material: Vec<u16>,
    rest_edge_m: Vec<[f64; 6]>,
    alive: Vec<bool>,
    live_tets: usize,
    neighbours: Vec<[u32; 4]>,
    material: MaterialBatches,
    surface_triangles: Vec<[u32; 3]>,
    /// The tet of each surface triangle.
    surface_owner: Vec<u32>,
    surface_revision: u64,
    surface_dirty: bool,
    /// Longest rest edge of the mesh, metres (broad phase of surface contact).
    longest_edge_m: f64,
    attachments: Vec<Attachment>,
    /// Grasped particles and their offsets from the tool centre (capacity: every particle, so
    /// grasping never allocates).
    grasped: Vec<(u32, Vector3<f64>)>,
    /// Whether each particle is held by the grasp (held particles skip the contact push-out).
    pub(crate) held: Vec<bool>,
    damage: Vec<f64>,
    /// The tool's axis when it grasped (see [`Tissue::grasp_tool`]).
    grasp_axis: Option<Vector3<f64>>,
    /// Tets past the tear bound in this step (capacity: every tet).
    tear_candidates: Vec<u32>,
    removed_volume_m3: Vec<f64>,
    torn_total: u64,
    last_tool_center_in_world_m: Option<Vector3<f64>>,
    /// The surface point the tool last pressed on (see [`contact_surface`]).
    proxy: Option<Proxy>,
}

/// A point of the surface held by the tool: a triangle, barycentric coordinates, and the
/// outward normal when it was touched.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Proxy {
    triangle: [u32; 3],
    bary: [f64; 3],
    normal: Vector3<f64>,
    /// The tet whose face it is: the proxy holds while that tet is live.
    owner: u32,
}

/// The six edges of a tet as vertex-slot pairs.
const TET_EDGES: [(usize, usize); 6] = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)];

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
    /// Every tet is kept, however small: compliances are per unit of rest volume, so a
    /// millimetre tet is as well conditioned as a metre one.
    ///
    /// # Panics
    /// If `tet_material` does not have one entry per tet, an entry is out of range, or a tet has
    /// a non-positive rest volume.
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
        let n_tets = mesh.tets.len();
        let mut mass = vec![0.0f64; n];
        let mut live_tets_of_particle = vec![0u32; n];
        let mut rest = Vec::with_capacity(n_tets);
        let mut tet_rest_volume_m3 = Vec::with_capacity(n_tets);
        let mut tet_mass_kg = Vec::with_capacity(n_tets);
        let mut rest_edge_m = Vec::with_capacity(n_tets);
        let mut longest_edge_m = 0.0f64;
        for (t, &id) in mesh.tets.iter().zip(tet_material) {
            let material = materials[id as usize];
            let (mu, _) = material.lame();
            let lambda = material.stable_neo_hookean_lambda();
            let p = t.map(|q| &mesh.rest_positions_m[q as usize]);
            let vol = signed_volume(p);
            assert!(vol > 0.0, "tet with non-positive rest volume");
            let dm = Matrix3::from_columns(&[p[1] - p[0], p[2] - p[0], p[3] - p[0]]);
            rest.push(TetRest {
                idx: *t,
                inv_rest_shape: dm.try_inverse().expect("degenerate tet"),
                deviatoric_compliance: 1.0 / (mu * vol),
                hydrostatic_compliance: 1.0 / (lambda * vol),
                hydrostatic_rest: 1.0 + mu / lambda,
            });
            let edges = TET_EDGES.map(|(a, b)| (p[a] - p[b]).norm());
            longest_edge_m = edges.iter().copied().fold(longest_edge_m, f64::max);
            rest_edge_m.push(edges);
            tet_rest_volume_m3.push(vol);
            let m = material.density_kg_per_m3 * vol;
            tet_mass_kg.push(m);
            for &q in t {
                mass[q as usize] += m / 4.0;
                live_tets_of_particle[q as usize] += 1;
            }
        }
        let fixed: Vec<bool> = mesh.rest_positions_m.iter().map(&fixed).collect();
        let inv_mass = fixed
            .iter()
            .zip(&mass)
            .map(|(&f, &m)| if f || m <= 0.0 { 0.0 } else { 1.0 / m })
            .collect();
        let neighbours = face_neighbours(&mesh.tets);
        let alive = vec![true; n_tets];
        let mut surface_triangles = Vec::with_capacity(4 * n_tets);
        let mut surface_owner = Vec::with_capacity(4 * n_tets);
        rebuild_surface(
            &mesh.tets,
            &neighbours,
            &alive,
            &mut surface_triangles,
            &mut surface_owner,
        );
        Self {
            positions_m: mesh.rest_positions_m.clone(),
            velocities_m_per_s: vec![Vector3::zeros(); n],
            substep_start_m: mesh.rest_positions_m.clone(),
            last_good_m: mesh.rest_positions_m.clone(),
            inv_mass_per_kg: inv_mass,
            mass_kg: mass,
            fixed,
            live_tets_of_particle,
            external_force_n: vec![Vector3::zeros(); n],
            tets: mesh.tets.clone(),
            tet_rest_volume_m3,
            tet_mass_kg,
            tet_material: tet_material.to_vec(),
            rest_edge_m,
            alive,
            live_tets: n_tets,
            neighbours,
            material: MaterialBatches::new(&rest, &mesh.rest_positions_m),
            surface_triangles,
            surface_owner,
            surface_revision: 0,
            surface_dirty: false,
            longest_edge_m,
            attachments: Vec::new(),
            grasped: Vec::with_capacity(n),
            held: vec![false; n],
            damage: vec![0.0; n_tets],
            tear_candidates: Vec::with_capacity(n_tets),
            grasp_axis: None,
            removed_volume_m3: vec![0.0; materials.len()],
            torn_total: 0,
            last_tool_center_in_world_m: None,
            proxy: None,
        }
    }

    /// Makes sure the working buffers that cutting, tearing and grasping fill have room for
    /// the worst case (every face of every tet on the surface, every particle grasped), so
    /// those never allocate. A new tissue has it; a clone does not (`Vec::clone` keeps only
    /// the length): the haptic core calls this at set-up.
    pub fn reserve_working_capacity(&mut self) {
        let (n, n_tets) = (self.positions_m.len(), self.tets.len());
        self.surface_triangles
            .reserve((4 * n_tets).saturating_sub(self.surface_triangles.len()));
        self.surface_owner
            .reserve((4 * n_tets).saturating_sub(self.surface_owner.len()));
        self.grasped.reserve(n.saturating_sub(self.grasped.len()));
        self.tear_candidates
            .reserve(n_tets.saturating_sub(self.tear_candidates.len()));
    }

    /// Grasps: every free particle within `radius_m` of `tool_center_in_world_m` is held at its
    /// current offset from the tool centre until [`Tissue::release`], moving with the tool (the
    /// jaws). Replaces any earlier grasp. Returns how many particles were taken. Never allocates.
    pub fn grasp(&mut self, tool_center_in_world_m: Vector3<f64>, radius_m: f64) -> usize {
        self.release();
        self.grasp_axis = None;
        let r2 = radius_m * radius_m;
        for (q, p) in self.positions_m.iter().enumerate() {
            if self.inv_mass_per_kg[q] > 0.0 && (p - tool_center_in_world_m).norm_squared() <= r2 {
                self.grasped.push((q as u32, p - tool_center_in_world_m));
                self.held[q] = true;
            }
        }
        self.grasped.len()
    }

    /// Grasps with the jaws of `tool`: every free particle within `radius_m` of its centre is
    /// held in the tool's frame, so it follows the tool's centre and turns with its axis (for
    /// shapes with an axis, e.g. a capsule jaw: twisting the jaws twists the tissue; the roll
    /// about the axis itself is not seen). Returns how many particles were taken. Never
    /// allocates.
    pub fn grasp_tool<T: ToolShape>(&mut self, tool: &T, radius_m: f64) -> usize {
        let n = self.grasp(tool.center_in_world_m(), radius_m);
        self.grasp_axis = tool.axis_in_world();
        n
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

    /// Current volume of the live tets whose damage exceeds `min_damage`, m^3.
    pub fn damaged_volume_m3(&self, min_damage: f64) -> f64 {
        (0..self.tets.len())
            .filter(|&t| self.alive[t] && self.damage[t] > min_damage)
            .map(|t| self.tet_volume_m3(t))
            .sum()
    }

    fn tet_volume_m3(&self, t: usize) -> f64 {
        signed_volume(self.tets[t].map(|q| &self.positions_m[q as usize]))
    }

    /// The tets, four particle indices each (for [`super::embed::EmbeddedSurface::update`]),
    /// removed ones included (see [`Tissue::is_tet_alive`]).
    pub fn tets(&self) -> &[[u32; 4]] {
        &self.tets
    }

    /// Whether tet `t` is still part of the tissue (not cut, resected or torn).
    pub fn is_tet_alive(&self, t: usize) -> bool {
        self.alive[t]
    }

    /// The material id of each tet (an index into the materials the tissue was built with).
    pub fn tet_materials(&self) -> &[u16] {
        &self.tet_material
    }

    /// Rest volume removed so far (cut, resected or torn), per material id, m^3: how much
    /// tumour and how much healthy tissue came out.
    pub fn removed_volume_m3(&self) -> &[f64] {
        &self.removed_volume_m3
    }

    /// Rest volume of every tet (live or not), m^3.
    pub fn tet_rest_volumes_m3(&self) -> &[f64] {
        &self.tet_rest_volume_m3
    }

    /// Tets torn so far.
    pub fn torn_tets(&self) -> u64 {
        self.torn_total
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
            plane_normal: None,
        });
    }

    /// Holds particle `q` on the plane through `point_in_world_m` with normal `normal`, free to
    /// slide in it (a frictionless bed, a symmetry plane). Set-up only (it may allocate).
    ///
    /// # Panics
    /// If `q` is out of range or the normal is zero or not finite.
    pub fn constrain_to_plane(
        &mut self,
        q: usize,
        point_in_world_m: Vector3<f64>,
        normal: Vector3<f64>,
    ) {
        assert!(q < self.positions_m.len(), "particle {q} out of range");
        let len = normal.norm();
        assert!(
            len.is_finite() && len > 0.0,
            "plane normal must be finite and non-zero"
        );
        self.attachments.push(Attachment {
            particle: q as u32,
            anchor_in_world_m: point_in_world_m,
            compliance_m_per_n: 0.0,
            plane_normal: Some(normal / len),
        });
    }

    /// Whether particle `q` is fixed (infinite mass).
    pub fn is_fixed(&self, q: usize) -> bool {
        self.fixed[q]
    }

    /// Whether particle `q` still belongs to a live tet.
    pub fn is_particle_alive(&self, q: usize) -> bool {
        self.live_tets_of_particle[q] > 0
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

    /// Live tets whose signed volume is not positive now (inverted or flat).
    pub fn inverted_tets(&self) -> usize {
        (0..self.tets.len())
            .filter(|&t| self.alive[t] && self.tet_volume_m3(t) <= 0.0)
            .count()
    }

    /// Number of particles.
    pub fn particle_count(&self) -> usize {
        self.positions_m.len()
    }

    /// Number of tets the tissue was built with (removed ones included).
    pub fn tet_count(&self) -> usize {
        self.tets.len()
    }

    /// Number of live tets.
    pub fn live_tet_count(&self) -> usize {
        self.live_tets
    }

    /// Colours of the material sweep (tets of one colour share no particle).
    pub fn colour_count(&self) -> usize {
        self.material.colour_count()
    }

    /// The live boundary triangles (indices into the particles), counter-clockwise from
    /// outside. Changes when tets are removed; see [`Tissue::surface_revision`].
    pub fn surface_triangles(&self) -> &[[u32; 3]] {
        &self.surface_triangles
    }

    /// Increments every time the live surface changes (a cut, a resection, a tear).
    pub fn surface_revision(&self) -> u64 {
        self.surface_revision
    }

    /// Total mass of the free particles, kg.
    pub fn free_mass_kg(&self) -> f64 {
        self.inv_mass_per_kg
            .iter()
            .filter(|&&w| w > 0.0)
            .map(|w| 1.0 / w)
            .sum()
    }

    /// Current volume of the live tets, m^3.
    pub fn volume_m3(&self) -> f64 {
        (0..self.tets.len())
            .filter(|&t| self.alive[t])
            .map(|t| self.tet_volume_m3(t))
            .sum()
    }

    /// Removes tet `t`: out of the solve, its mass off its particles, its rest volume counted
    /// against its material. Particles left without a live tet stop moving. Never allocates.
    fn remove_tet(&mut self, t: usize) {
        if !self.alive[t] {
            return;
        }
        self.alive[t] = false;
        self.live_tets -= 1;
        self.material.deactivate(t);
        self.removed_volume_m3[self.tet_material[t] as usize] += self.tet_rest_volume_m3[t];
        for &q in &self.tets[t] {
            let q = q as usize;
            self.mass_kg[q] -= self.tet_mass_kg[t] / 4.0;
            self.live_tets_of_particle[q] -= 1;
            if self.live_tets_of_particle[q] == 0 || self.mass_kg[q] <= 0.0 {
                self.inv_mass_per_kg[q] = 0.0;
                self.velocities_m_per_s[q] = Vector3::zeros();
                self.held[q] = false;
            } else if !self.fixed[q] {
                self.inv_mass_per_kg[q] = 1.0 / self.mass_kg[q];
            }
        }
        self.surface_dirty = true;
    }

    fn refresh_surface(&mut self) {
        if self.surface_dirty {
            rebuild_surface(
                &self.tets,
                &self.neighbours,
                &self.alive,
                &mut self.surface_triangles,
                &mut self.surface_owner,
            );
            self.surface_revision += 1;
            self.surface_dirty = false;
        }
    }

    /// Cuts along a scalpel's swept edge: every live tet that the edge crossed while it moved
    /// from `edge_before` to `edge_now` (each the heel and tip of the cutting edge, world frame,
    /// metres) is removed, and the live surface is rebuilt so the render shows the incision.
    /// Call once per tick with the edge's previous and current pose: consecutive calls sweep a
    /// continuous surface, so no tet is skipped however fast the blade moves. Returns the number
    /// of tets removed. Never allocates.
    pub fn cut(&mut self, edge_before: [Vector3<f64>; 2], edge_now: [Vector3<f64>; 2]) -> usize {
        let pts = [edge_before[0], edge_before[1], edge_now[0], edge_now[1]];
        if !pts.iter().all(|p| p.iter().all(|v| v.is_finite())) {
            return 0;
        }
        let (lo, hi) = bounds(&pts);
        // The swept quad as two triangles.
        let sweep = [
            [edge_before[0], edge_before[1], edge_now[1]],
            [edge_before[0], edge_now[1], edge_now[0]],
        ];
        let mut removed = 0;
        for t in 0..self.tets.len() {
            if !self.alive[t] {
                continue;
            }
            let x = self.tets[t].map(|q| self.positions_m[q as usize]);
            let (tlo, thi) = bounds(&x);
            if (0..3).any(|a| thi[a] < lo[a] || tlo[a] > hi[a]) {
                continue;
            }
            let edge_crosses = TET_EDGES.iter().any(|&(a, b)| {
                sweep
                    .iter()
                    .any(|s| segment_hits_triangle(x[a], x[b], s[0], s[1], s[2]))
            });
            // A blade smaller than a tet can lie inside it without crossing an edge: then the
            // blade's edge (now) crosses one of the tet's faces, or ends inside it.
            let blade_inside = point_in_tet(edge_now[0], x)
                || point_in_tet(edge_now[1], x)
                || super::topology::tet_faces(&[0, 1, 2, 3]).iter().any(|f| {
                    let [a, b, c] = f.map(|k| x[k as usize]);
                    segment_hits_triangle(edge_now[0], edge_now[1], a, b, c)
                });
            if edge_crosses || blade_inside {
                self.remove_tet(t);
                removed += 1;
            }
        }
        self.refresh_surface();
        removed
    }

    /// Resects (cautery, an ultrasonic dissector): removes every live tet whose centroid lies
    /// inside `tool`. Returns the number removed. Never allocates.
    pub fn resect<T: ToolShape>(&mut self, tool: &T) -> usize {
        if !tool.is_finite() {
            return 0;
        }
        let center = tool.center_in_world_m();
        let r2 = tool.radius_m() * tool.radius_m();
        let mut removed = 0;
        for t in 0..self.tets.len() {
            if !self.alive[t] {
                continue;
            }
            let c = self.tets[t]
                .iter()
                .map(|&q| self.positions_m[q as usize])
                .sum::<Vector3<f64>>()
                / 4.0;
            if (c - tool.closest_core_point(center, c)).norm_squared() <= r2 {
                self.remove_tet(t);
                removed += 1;
            }
        }
        self.refresh_surface();
        removed
    }
}

fn bounds(p: &[Vector3<f64>]) -> (Vector3<f64>, Vector3<f64>) {
    let mut lo = p[0];
    let mut hi = p[0];
    for x in &p[1..] {
        lo = lo.inf(x);
        hi = hi.sup(x);
    }
    (lo, hi)
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
    step_with(params, tissue, Some(tool), None::<&mut NoHook>)
}

/// A hook that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHook;

impl SubstepHook for NoHook {
    fn project(&mut self, _: &mut Tissue, _: f64, _: f64) -> Vector3<f64> {
        Vector3::zeros()
    }
}

/// [`step`] with an optional contact tool (`None`: nothing pushes the tissue) and an optional
/// hook projected every substep (e.g. a needle's shaft).
pub fn step_with<T: ToolShape, H: SubstepHook>(
    params: &StepParams,
    tissue: &mut Tissue,
    tool: Option<&T>,
    mut hook: Option<&mut H>,
) -> Result<StepResult, TissueError> {
    if let Some(tool) = tool {
        if !tool.is_finite() {
            return Err(TissueError::BadTool);
        }
    }
    let n_sub = params.substeps.max(1);
    let h = params.dt_s / n_sub as f64;
    let h2 = h * h;
    let gravity = Vector3::from(params.gravity_m_per_s2);
    let damping = (-params.damping_per_s * h).exp();
    let tool_center_now = tool.map(|t| t.center_in_world_m());
    let tool_from = tissue.last_tool_center_in_world_m.or(tool_center_now);
    let want_strain = params.damage_strain > 0.0 || params.tear_stretch > 0.0;

    let mut impulse_sum = Vector3::zeros();
    let mut contacts = 0u32;
    for s in 0..n_sub {
        let f = (s + 1) as f64 / n_sub as f64;

        // Predict.
        for q in 0..tissue.positions_m.len() {
            tissue.substep_start_m[q] = tissue.positions_m[q];
            let w = tissue.inv_mass_per_kg[q];
            if w > 0.0 {
                tissue.velocities_m_per_s[q] += (gravity + tissue.external_force_n[q] * w) * h;
                tissue.positions_m[q] += tissue.velocities_m_per_s[q] * h;
            }
        }

        // Material: `iterations` coloured Gauss-Seidel sweeps with the multipliers kept across
        // them (reset each substep).
        tissue.material.reset_multipliers();
        let iterations = params.iterations.max(1);
        for it in 0..iterations {
            let last = s + 1 == n_sub && it + 1 == iterations;
            let record_strain = last && want_strain;
            tissue.material.project(
                &mut tissue.positions_m,
                &tissue.inv_mass_per_kg,
                h2,
                record_strain,
            );
        }

        // Attachments: zero-length springs from particles to fixed anchors (ligaments), one
        // projection per substep (the attachment's multiplier starts at zero each substep).
        for a in 0..tissue.attachments.len() {
            let Attachment {
                particle,
                anchor_in_world_m,
                compliance_m_per_n,
                plane_normal,
            } = tissue.attachments[a];
            let q = particle as usize;
            let w = tissue.inv_mass_per_kg[q];
            let d = tissue.positions_m[q] - anchor_in_world_m;
            // C = |d| (a point) or d . n (a plane), with unit gradient d/|d| or n.
            let (c, grad) = match plane_normal {
                Some(n) => (d.dot(&n), n),
                None => {
                    let c = d.norm();
                    (c, if c > 0.0 { d / c } else { Vector3::zeros() })
                }
            };
            if w <= 0.0 || c.abs() < 1e-15 {
                continue;
            }
            let a_tilde = compliance_m_per_n / h2;
            let dlambda = -c / (w + a_tilde);
            tissue.positions_m[q] += grad * (w * dlambda);
        }

        if let (Some(tool), Some(from), Some(now)) = (tool, tool_from, tool_center_now) {
            let center = from + (now - from) * f;
            let tool_step = (now - from) / n_sub as f64;
            // Grasp: held particles go where the jaws are (zero compliance), turned with the
            // jaws' axis since the grasp; the tissue pulls back on the tool with the impulse
            // that took them there.
            let turn = match (tissue.grasp_axis, tool.axis_in_world()) {
                (Some(from), Some(to)) => UnitQuaternion::rotation_between(&from, &to)
                    .unwrap_or_else(|| {
                        // Turned right round: half a turn about any axis across it.
                        let across = from
                            .cross(&Vector3::x())
                            .try_normalize(1e-6)
                            .unwrap_or_else(|| from.cross(&Vector3::y()).normalize());
                        UnitQuaternion::from_axis_angle(
                            &nalgebra::Unit::new_unchecked(across),
                            std::f64::consts::PI,
                        )
                    }),
                _ => UnitQuaternion::identity(),
            };
            for g in 0..tissue.grasped.len() {
                let (q, offset) = tissue.grasped[g];
                let q = q as usize;
                let w = tissue.inv_mass_per_kg[q];
                if w <= 0.0 {
                    continue;
                }
                let correction = center + turn * offset - tissue.positions_m[q];
                tissue.positions_m[q] += correction;
                impulse_sum -= correction / (w * h);
            }
            if let Some(hook) = hook.as_deref_mut() {
                impulse_sum += hook.project(tissue, f, h);
            }
            contacts =
                contact_particles(params, tissue, tool, center, tool_step, h, &mut impulse_sum)
                    + contact_surface(params, tissue, tool, center, tool_step, h, &mut impulse_sum);
        } else if let Some(hook) = hook.as_deref_mut() {
            impulse_sum += hook.project(tissue, f, h);
        }

        // Velocities from positions, then damping.
        for q in 0..tissue.positions_m.len() {
            if tissue.inv_mass_per_kg[q] > 0.0 {
                tissue.velocities_m_per_s[q] =
                    (tissue.positions_m[q] - tissue.substep_start_m[q]) / h * damping;
            }
        }
    }
    // Without a tool nothing sweeps: the next tool starts where it is given.
    tissue.last_tool_center_in_world_m = tool_center_now;

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

    let torn_tets = if want_strain {
        damage_and_tear(params, tissue)
    } else {
        0
    };
    tissue.refresh_surface();
    Ok(StepResult {
        // Total impulse over the tick divided by the tick length.
        force_on_tool_n: impulse_sum / params.dt_s,
        contacts,
        torn_tets,
    })
}

/// Accumulates damage from the last sweep's strains and tears over-stretched tets.
fn damage_and_tear(params: &StepParams, tissue: &mut Tissue) -> u32 {
    // A stretch ratio s along some edge gives a Green strain of at least (s^2 - 1) / 2, so
    // only tets past that bound need their edges measured. Squared norms are compared, in the
    // batches' order (removed tets are inactive there and report nothing).
    let damage_sq = (params.damage_strain * params.damage_strain) as f32;
    let tear = params.tear_stretch;
    let tear_bound = 0.5 * (tear * tear - 1.0);
    let tear_sq = if tear > 0.0 {
        (tear_bound * tear_bound) as f32
    } else {
        f32::INFINITY
    };
    let damage = &mut tissue.damage;
    let candidates = &mut tissue.tear_candidates;
    candidates.clear();
    let above = if params.damage_strain > 0.0 {
        damage_sq.min(tear_sq)
    } else {
        tear_sq
    };
    tissue.material.for_each_strain_above(above, |t, green_sq| {
        if params.damage_strain > 0.0 && green_sq > damage_sq {
            let excess = (green_sq as f64).sqrt() / params.damage_strain - 1.0;
            if excess > 0.0 {
                damage[t] += excess * params.dt_s;
            }
        }
        if green_sq >= tear_sq {
            candidates.push(t as u32);
        }
    });
    let mut torn = 0;
    for i in 0..tissue.tear_candidates.len() {
        let t = tissue.tear_candidates[i] as usize;
        let x = tissue.tets[t].map(|q| tissue.positions_m[q as usize]);
        let over = TET_EDGES
            .iter()
            .zip(&tissue.rest_edge_m[t])
            .any(|(&(a, b), &rest)| (x[a] - x[b]).norm() > tear * rest);
        if over {
            tissue.remove_tet(t);
            tissue.torn_total += 1;
            torn += 1;
        }
    }
    torn
}

/// Position-based Coulomb friction for a contact point that slid by `slide` relative to the tool
/// in this substep while pushed `depth` along `normal`: the tangential slide and the fraction of
/// it to cancel (all of it while stuck, `friction * depth / |slide|` once slipping); `None`
/// when there is no tangential slide.
fn coulomb_slip(
    slide: Vector3<f64>,
    normal: Vector3<f64>,
    friction: f64,
    depth: f64,
) -> Option<(Vector3<f64>, f64)> {
    let tangential = slide - normal * slide.dot(&normal);
    let t_len = tangential.norm();
    (t_len > 1e-15).then(|| (tangential, (friction * depth / t_len).min(1.0)))
}

/// Pushes particles out of the tool (hard, zero compliance), with Coulomb friction. Returns the
/// particles in contact.
fn contact_particles<T: ToolShape>(
    params: &StepParams,
    tissue: &mut Tissue,
    tool: &T,
    center: Vector3<f64>,
    tool_step: Vector3<f64>,
    h: f64,
    impulse_sum: &mut Vector3<f64>,
) -> u32 {
    let r = tool.radius_m();
    let r2 = r * r;
    let mut contacts = 0;
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
                let moved = x + correction - tissue.substep_start_m[q];
                if let Some((tangential, frac)) =
                    coulomb_slip(moved - tool_step, normal, params.contact_friction, depth)
                {
                    correction -= tangential * frac;
                }
            }
            tissue.positions_m[q] += correction;
            // Reaction on the tool: the impulse that moved the particle, opposite.
            *impulse_sum -= correction / (w * h);
            contacts += 1;
        }
    }
    contacts
}

/// Pushes live surface triangles out of the tool along their outward normal, so a tool thinner
/// than the particle spacing cannot slip between the particles, and a fast one cannot pass
/// through the surface in one substep (it moves less than its radius per substep at 0.5 m/s
/// for radii down to a quarter millimetre). One-sided: a triangle only pushes a tool that is in
/// front of it or less than a radius plus one substep's travel behind it. Returns the
/// triangles in contact.
fn contact_surface<T: ToolShape>(
    params: &StepParams,
    tissue: &mut Tissue,
    tool: &T,
    center: Vector3<f64>,
    tool_step: Vector3<f64>,
    h: f64,
    impulse_sum: &mut Vector3<f64>,
) -> u32 {
    let r = tool.radius_m();
    let reach = r + 2.0 * tissue.longest_edge_m;
    let behind = r + tool_step.norm() + 1e-3;
    let mut contacts = 0;
    let mut deepest: Option<(f64, Proxy)> = None;
    for i in 0..tissue.surface_triangles.len() {
        let tri = tissue.surface_triangles[i];
        let [ia, ib, ic] = tri.map(|q| q as usize);
        let a = tissue.positions_m[ia];
        if (a - tool.closest_core_point(center, a)).norm_squared() > reach * reach {
            continue;
        }
        if tissue.held[ia] || tissue.held[ib] || tissue.held[ic] {
            continue;
        }
        let (b, c) = (tissue.positions_m[ib], tissue.positions_m[ic]);
        let centroid = (a + b + c) / 3.0;
        let core = tool.closest_core_point(center, centroid);
        let nrm = (b - a).cross(&(c - a));
        let area2 = nrm.norm();
        if area2 <= 1e-18 {
            continue;
        }
        let n = nrm / area2;
        let s = (core - a).dot(&n);
        if s >= r || s < -behind {
            continue;
        }
        // Barycentric coordinates of the core's projection on the plane; the triangle is hit
        // when the projection falls inside it (a small margin closes the seams).
        let p = core - n * s;
        let v0 = (b - p).cross(&(c - p)).dot(&n) / area2;
        let v1 = (c - p).cross(&(a - p)).dot(&n) / area2;
        let v2 = 1.0 - v0 - v1;
        if v0 < -0.02 || v1 < -0.02 || v2 < -0.02 {
            continue;
        }
        let (_, bary) = closest_on_triangle(p, a, b, c);
        if push_point(
            params,
            tissue,
            tri,
            bary,
            -n * (r - s),
            n,
            tool_step,
            h,
            impulse_sum,
        ) {
            contacts += 1;
            if deepest.is_none_or(|(d, _)| r - s > d) {
                deepest = Some((
                    r - s,
                    Proxy {
                        triangle: tri,
                        bary,
                        normal: n,
                        owner: tissue.surface_owner[i],
                    },
                ));
            }
        }
    }
    // The proxy (god-object) of the tool: the surface point it first pressed on. A thin tool
    // on a coarse mesh pushes a tent into the surface until the triangles under it turn
    // sideways and it slips between them; the point it pressed keeps holding it back, in the
    // direction the surface faced when touched, until the tool lifts off (1 mm clear), slides
    // away sideways, or the surface is cut.
    match tissue.proxy {
        Some(proxy) => {
            let [ia, ib, ic] = proxy.triangle.map(|q| q as usize);
            let p = tissue.positions_m[ia] * proxy.bary[0]
                + tissue.positions_m[ib] * proxy.bary[1]
                + tissue.positions_m[ic] * proxy.bary[2];
            let core = tool.closest_core_point(center, p);
            let s = (core - p).dot(&proxy.normal);
            let sideways = (core - p - proxy.normal * s).norm();
            if s >= r + 1e-3 || sideways > r + 1e-3 || !tissue.alive[proxy.owner as usize] {
                tissue.proxy = None;
            } else if s < r {
                // In front of the pressed plane the proxy only pushes along its normal; once the
                // tool is behind that plane (inside the tent) it also pulls the pressed point
                // back in front of the tool, so the tent cannot slide off a thin tip.
                let delta = if s < 0.0 {
                    core - proxy.normal * r - p
                } else {
                    -proxy.normal * (r - s)
                };
                if push_point(
                    params,
                    tissue,
                    proxy.triangle,
                    proxy.bary,
                    delta,
                    proxy.normal,
                    tool_step,
                    h,
                    impulse_sum,
                ) {
                    contacts += 1;
                } else {
                    tissue.proxy = None;
                }
            }
        }
        None => tissue.proxy = deepest.map(|(_, p)| p),
    }
    contacts
}

/// Moves the point at `bary` of triangle `tri` by `delta`, with Coulomb friction (against the
/// tool's motion, tangential to `n`, up to the friction coefficient times the push along `-n`);
/// adds the reaction to `impulse_sum`. False when the triangle cannot move (all its particles
/// fixed or removed).
#[allow(clippy::too_many_arguments)]
fn push_point(
    params: &StepParams,
    tissue: &mut Tissue,
    tri: [u32; 3],
    bary: [f64; 3],
    delta: Vector3<f64>,
    n: Vector3<f64>,
    tool_step: Vector3<f64>,
    h: f64,
    impulse_sum: &mut Vector3<f64>,
) -> bool {
    let q = tri.map(|q| q as usize);
    // Held particles belong to the jaws: the push moves only the others.
    let w = q.map(|q| {
        if tissue.held[q] {
            0.0
        } else {
            tissue.inv_mass_per_kg[q]
        }
    });
    let wsum: f64 = (0..3).map(|k| w[k] * bary[k] * bary[k]).sum();
    if wsum <= 0.0 {
        return false;
    }
    // Constraint sum b_k x_k = target: vertex k moves by w_k b_k delta / wsum.
    let mut push = delta / wsum;
    let depth = -delta.dot(&n);
    if params.contact_friction > 0.0 && depth > 0.0 {
        let moved: Vector3<f64> = (0..3)
            .map(|k| {
                (tissue.positions_m[q[k]] + push * (w[k] * bary[k]) - tissue.substep_start_m[q[k]])
                    * bary[k]
            })
            .sum();
        if let Some((tangential, frac)) =
            coulomb_slip(moved - tool_step, n, params.contact_friction, depth)
        {
            push -= tangential * (frac / wsum);
        }
    }
    for k in 0..3 {
        if w[k] > 0.0 {
            let correction = push * (w[k] * bary[k]);
            tissue.positions_m[q[k]] += correction;
            *impulse_sum -= correction / (w[k] * h);
        }
    }
    true
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
    fn grasped_tissue_turns_with_the_jaws() {
        // A 2 cm jaw along x rests on the surface, grasps, then turns 30 degrees about the
        // vertical over 0.3 s while lifting 5 mm: the held particles turn with it.
        let mut t = block();
        let p = StepParams::default();
        let jaw = |angle: f64, y: f64| CapsuleTool {
            center_in_world_m: Vector3::new(0.0, y, 0.0),
            half_axis_in_world_m: Vector3::new(angle.cos(), 0.0, -angle.sin()) * 0.01,
            radius_m: 0.003,
        };
        for _ in 0..300 {
            step(&p, &mut t, &jaw(0.0, 0.0)).unwrap();
        }
        let taken = t.grasp_tool(&jaw(0.0, 0.0), 0.0135);
        assert!(taken >= 3, "took {taken}");
        let held: Vec<(usize, Vector3<f64>)> = t
            .grasped
            .iter()
            .map(|&(q, off)| (q as usize, off))
            .collect();
        let angle = 30f64.to_radians();
        for i in 1..=400 {
            let f = (i as f64 / 300.0).min(1.0);
            step(&p, &mut t, &jaw(angle * f, 0.005 * f)).unwrap();
        }
        let turn = UnitQuaternion::from_axis_angle(&Vector3::y_axis(), angle);
        for (q, off) in held {
            let expected = Vector3::new(0.0, 0.005, 0.0) + turn * off;
            let got = t.positions_m[q];
            assert!(
                (got - expected).norm() < 1e-9,
                "particle {q}: {got:?} vs {expected:?}"
            );
        }
        assert_eq!(t.inverted_tets(), 0);
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
