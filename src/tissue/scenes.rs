//! Standard tissue scenes for validation and benchmarks: a tip-loaded cantilever bar and
//! blocks of a given size, built from lattice cells.
//!
//! Pure library, like the rest of [`crate::tissue`]. The cantilever compares the solver with the
//! beam formula `P L^3 / (3 E I)` (Euler-Bernoulli), with Timoshenko's shear term `P L / (k G A)`
//! reported beside it; see `shared/reference/tissue.md`.

use nalgebra::Vector3;

use super::mesh::TetMesh;
use super::xpbd::{step, Material, SphereTool, StepParams, Tissue, TissueError};

/// A square bar along +x from x = 0 to its length, clamped at x = 0: its mesh, tissue, length,
/// side and the particles of its free end face (x = L).
struct Bar {
    mesh: TetMesh,
    tissue: Tissue,
    length_m: f64,
    side_m: f64,
    end_particles: Vec<usize>,
}

impl Bar {
    fn new(cell_m: f64, cells_along: usize, cells_across: usize, material: Material) -> Self {
        let length_m = cell_m * cells_along as f64;
        let side_m = cell_m * cells_across as f64;
        let half = side_m / 2.0;
        let mesh = TetMesh::block(
            Vector3::new(0.0, -half, -half),
            Vector3::new(length_m, half, half),
            [cells_along, cells_across, cells_across],
        );
        let tissue = Tissue::new(&mesh, material, |p| p.x <= 1e-12);
        let end_particles = (0..mesh.rest_positions_m.len())
            .filter(|&q| mesh.rest_positions_m[q].x >= length_m - 1e-12)
            .collect();
        Self {
            mesh,
            tissue,
            length_m,
            side_m,
            end_particles,
        }
    }
}

/// A square bar along +x, clamped at x = 0, loaded downwards (-y) at its free end.
#[derive(Debug, Clone)]
pub struct Cantilever {
    /// The bar.
    pub tissue: Tissue,
    /// Particles of the loaded end face.
    pub tip_particles: Vec<usize>,
    /// Length, metres.
    pub length_m: f64,
    /// Side of the square cross-section, metres.
    pub side_m: f64,
    /// Total tip load, newtons.
    pub load_n: f64,
    /// The material.
    pub material: Material,
}

/// What a settled cantilever measured.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CantileverResult {
    /// Euler-Bernoulli tip deflection `P L^3 / (3 E I)`, metres.
    pub expected_m: f64,
    /// Euler-Bernoulli plus Timoshenko's shear deflection, metres.
    pub expected_with_shear_m: f64,
    /// Measured settled tip deflection (mean over the tip face), metres.
    pub measured_m: f64,
    /// `(measured - expected) / expected`, per cent (Euler-Bernoulli).
    pub error_pct: f64,
    /// Simulated seconds until settled (or the cap).
    pub settled_after_s: f64,
    /// Whether the deflection settled before the cap.
    pub settled: bool,
    /// Tets inverted at the end.
    pub inverted_tets: usize,
}

impl Cantilever {
    /// A bar of `cells_along` cells of side `cell_m` in length and `cells_across` x
    /// `cells_across` in section, loaded so that the beam formula gives a tip deflection of
    /// `deflection_fraction` of its length (keep it small: the formula is linear).
    pub fn new(
        cell_m: f64,
        cells_along: usize,
        cells_across: usize,
        material: Material,
        deflection_fraction: f64,
    ) -> Self {
        let Bar {
            mut tissue,
            length_m,
            side_m,
            end_particles: tip_particles,
            ..
        } = Bar::new(cell_m, cells_along, cells_across, material);
        let i_m4 = side_m.powi(4) / 12.0;
        // P L^3 / (3 E I) = fraction * L
        let load_n = 3.0 * material.youngs_modulus_pa * i_m4 * deflection_fraction * length_m
            / length_m.powi(3);
        let per_particle = load_n / tip_particles.len() as f64;
        for &q in &tip_particles {
            tissue.set_external_force(q, Vector3::new(0.0, -per_particle, 0.0));
        }
        Self {
            tissue,
            tip_particles,
            length_m,
            side_m,
            load_n,
            material,
        }
    }

    /// Euler-Bernoulli and Timoshenko tip deflections for this bar and load, metres.
    pub fn expected_m(&self) -> (f64, f64) {
        let e = self.material.youngs_modulus_pa;
        let (mu, _) = self.material.lame();
        let nu = self.material.poisson_ratio;
        let a = self.side_m;
        let i = a.powi(4) / 12.0;
        let bending = self.load_n * self.length_m.powi(3) / (3.0 * e * i);
        let kappa = 10.0 * (1.0 + nu) / (12.0 + 11.0 * nu);
        let shear = self.load_n * self.length_m / (kappa * mu * a * a);
        (bending, bending + shear)
    }

    /// Angular frequency of the bar's first bending mode, rad/s (Euler-Bernoulli:
    /// `1.875^2 sqrt(E I / (rho A L^4))`). Settling with a velocity damping rate of twice this
    /// is about critical for that mode: the static sag comes soonest.
    pub fn first_mode_rad_per_s(&self) -> f64 {
        let a = self.side_m;
        let i = a.powi(4) / 12.0;
        let rho_a = self.material.density_kg_per_m3 * a * a;
        1.875f64.powi(2)
            * (self.material.youngs_modulus_pa * i / (rho_a * self.length_m.powi(4))).sqrt()
    }

    /// Mean downward displacement of the tip face, metres.
    pub fn tip_deflection_m(&self, rest_y_m: &[f64]) -> f64 {
        let sum: f64 = self
            .tip_particles
            .iter()
            .map(|&q| rest_y_m[q] - self.tissue.positions_m[q].y)
            .sum();
        sum / self.tip_particles.len() as f64
    }

    /// Steps the bar (gravity off, no tool) with `params` until the tip deflection changes by
    /// less than 1e-5 of itself over 0.1 s, or `max_s` simulated seconds pass.
    pub fn settle(
        mut self,
        params: &StepParams,
        max_s: f64,
    ) -> Result<CantileverResult, TissueError> {
        let params = StepParams {
            gravity_m_per_s2: [0.0; 3],
            ..*params
        };
        let rest_y: Vec<f64> = self.tissue.positions_m.iter().map(|p| p.y).collect();
        let away = SphereTool {
            center_in_world_m: Vector3::new(0.0, 10.0, 0.0),
            radius_m: 0.001,
        };
        let window = (0.1 / params.dt_s).round().max(1.0) as usize;
        let max_steps = (max_s / params.dt_s).round() as usize;
        let min_steps = (0.5 / params.dt_s).round() as usize;
        let mut last = f64::NAN;
        let mut steps = 0;
        let mut settled = false;
        while steps < max_steps {
            for _ in 0..window {
                step(&params, &mut self.tissue, &away)?;
            }
            steps += window;
            let now = self.tip_deflection_m(&rest_y);
            if steps >= min_steps && (now - last).abs() <= 1e-5 * now.abs() {
                settled = true;
                break;
            }
            last = now;
        }
        let measured_m = self.tip_deflection_m(&rest_y);
        let (expected_m, expected_with_shear_m) = self.expected_m();
        Ok(CantileverResult {
            expected_m,
            expected_with_shear_m,
            measured_m,
            error_pct: (measured_m - expected_m) / expected_m * 100.0,
            settled_after_s: steps as f64 * params.dt_s,
            settled,
            inverted_tets: self.tissue.inverted_tets(),
        })
    }
}

/// The mesh of a block of `cells` lattice cells of side `cell_m` (five tets each), top face at
/// y = 0, centred on x = z = 0.
pub fn block_mesh(cell_m: f64, cells: [usize; 3]) -> TetMesh {
    let size = Vector3::new(
        cells[0] as f64 * cell_m,
        cells[1] as f64 * cell_m,
        cells[2] as f64 * cell_m,
    );
    let min = Vector3::new(-size.x / 2.0, -size.y, -size.z / 2.0);
    let max = Vector3::new(size.x / 2.0, 0.0, size.z / 2.0);
    TetMesh::block(min, max, cells)
}

/// Whether a particle of a [`block_mesh`] of `cells` cells lies on its bottom face.
fn on_bottom(cell_m: f64, cells: [usize; 3]) -> impl Fn(&Vector3<f64>) -> bool {
    let bottom = -(cells[1] as f64) * cell_m;
    move |p| p.y <= bottom + 1e-12
}

/// A [`block_mesh`] of one material, bottom face fixed.
pub fn block(cell_m: f64, cells: [usize; 3], material: Material) -> Tissue {
    Tissue::new(
        &block_mesh(cell_m, cells),
        material,
        on_bottom(cell_m, cells),
    )
}

/// A [`block_mesh`] with a material per tet, `material_at(centroid)` indexing `materials`,
/// bottom face fixed.
pub fn block_with_materials(
    cell_m: f64,
    cells: [usize; 3],
    materials: &[Material],
    material_at: impl Fn(&Vector3<f64>) -> u16,
) -> Tissue {
    let mesh = block_mesh(cell_m, cells);
    let ids: Vec<u16> = mesh
        .tets
        .iter()
        .map(|t| {
            let c = t
                .iter()
                .map(|&q| mesh.rest_positions_m[q as usize])
                .sum::<Vector3<f64>>()
                / 4.0;
            material_at(&c)
        })
        .collect();
    Tissue::with_materials(&mesh, materials, &ids, on_bottom(cell_m, cells))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cantilever_load_matches_the_requested_deflection() {
        let c = Cantilever::new(0.005, 16, 2, Material::LIVER, 0.01);
        let (eb, with_shear) = c.expected_m();
        assert!((eb - 0.01 * c.length_m).abs() < 1e-12);
        assert!(with_shear > eb && with_shear < 1.05 * eb);
        assert_eq!(c.tip_particles.len(), 9);
    }

    #[test]
    fn block_has_five_tets_per_cell_and_a_fixed_bottom() {
        let t = block(0.005, [4, 2, 3], Material::LIVER);
        assert_eq!(t.tet_count(), 4 * 2 * 3 * 5);
        let fixed = (0..t.particle_count()).filter(|&q| t.is_fixed(q)).count();
        assert_eq!(fixed, 5 * 4);
    }
}

/// A square bar along +x pulled at its free end: for Poisson-ratio and volume checks.
#[derive(Debug, Clone)]
pub struct Stretch {
    /// The bar (clamped at x = 0).
    pub tissue: Tissue,
    /// Length, metres.
    pub length_m: f64,
    /// Side of the cross-section, metres.
    pub side_m: f64,
    rest_m: Vec<Vector3<f64>>,
}

/// What a settled stretch measured, in the middle half of the bar (away from the clamp).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct StretchResult {
    /// Axial strain between the cross-sections at L/4 and 3L/4.
    pub axial_strain: f64,
    /// Lateral strain of the cross-section at L/2 (width in y and z, averaged).
    pub lateral_strain: f64,
    /// `-lateral / axial`.
    pub poisson_ratio: f64,
    /// `(V - V0) / V0` of the whole bar.
    pub volume_change: f64,
    /// Tets inverted at the end.
    pub inverted_tets: usize,
}

impl Stretch {
    /// A bar `cells_along` x `cells_across` x `cells_across` cells of side `cell_m`, pulled at
    /// x = L by a total force giving a nominal axial stress of `stress_pa`.
    pub fn new(
        cell_m: f64,
        cells_along: usize,
        cells_across: usize,
        material: Material,
        stress_pa: f64,
    ) -> Self {
        let Bar {
            mesh,
            mut tissue,
            length_m,
            side_m,
            end_particles: tips,
        } = Bar::new(cell_m, cells_along, cells_across, material);
        let half = side_m / 2.0;
        // Load the end face by tributary area so the traction is uniform.
        let n = cells_across as f64;
        let weight = |v: f64| {
            let on_edge = (v.abs() - half).abs() < 1e-12;
            if on_edge {
                0.5
            } else {
                1.0
            }
        };
        let total_weight: f64 = tips
            .iter()
            .map(|&q| weight(mesh.rest_positions_m[q].y) * weight(mesh.rest_positions_m[q].z))
            .sum();
        debug_assert!((total_weight - n * n).abs() < 1e-9);
        let force = stress_pa * side_m * side_m;
        for &q in &tips {
            let p = mesh.rest_positions_m[q];
            let share = weight(p.y) * weight(p.z) / total_weight;
            tissue.set_external_force(q, Vector3::new(force * share, 0.0, 0.0));
        }
        Self {
            tissue,
            length_m,
            side_m,
            rest_m: mesh.rest_positions_m,
        }
    }

    fn section_mean(&self, x_m: f64, f: impl Fn(&Vector3<f64>) -> f64) -> (f64, usize) {
        let mut sum = 0.0;
        let mut n = 0;
        for (q, p) in self.rest_m.iter().enumerate() {
            if (p.x - x_m).abs() < 1e-9 {
                sum += f(&self.tissue.positions_m[q]);
                n += 1;
            }
        }
        (sum / n.max(1) as f64, n)
    }

    /// Steps for `seconds` (gravity off) and measures.
    pub fn settle(
        mut self,
        params: &StepParams,
        seconds: f64,
    ) -> Result<StretchResult, TissueError> {
        let params = StepParams {
            gravity_m_per_s2: [0.0; 3],
            ..*params
        };
        let v0 = self.tissue.volume_m3();
        let away = SphereTool {
            center_in_world_m: Vector3::new(0.0, 10.0, 0.0),
            radius_m: 0.001,
        };
        for _ in 0..(seconds / params.dt_s).round() as usize {
            step(&params, &mut self.tissue, &away)?;
        }
        let (x1, _) = self.section_mean(self.length_m / 4.0, |p| p.x);
        let (x3, _) = self.section_mean(self.length_m * 3.0 / 4.0, |p| p.x);
        let axial = (x3 - x1) / (self.length_m / 2.0) - 1.0;
        // Width at mid-length: mean |y| and |z| of the section's outer particles.
        let half = self.side_m / 2.0;
        let mid = self.length_m / 2.0;
        let mut widths = Vec::new();
        for axis in [1usize, 2] {
            let mut lo = 0.0;
            let mut hi = 0.0;
            let mut n = 0.0;
            for (q, p) in self.rest_m.iter().enumerate() {
                if (p.x - mid).abs() < 1e-9 && (p[axis].abs() - half).abs() < 1e-12 {
                    if p[axis] > 0.0 {
                        hi += self.tissue.positions_m[q][axis];
                    } else {
                        lo += self.tissue.positions_m[q][axis];
                    }
                    n += 0.5;
                }
            }
            widths.push((hi - lo) / n);
        }
        let lateral = (widths[0] + widths[1]) / 2.0 / self.side_m - 1.0;
        Ok(StretchResult {
            axial_strain: axial,
            lateral_strain: lateral,
            poisson_ratio: -lateral / axial,
            volume_change: (self.tissue.volume_m3() - v0) / v0,
            inverted_tets: self.tissue.inverted_tets(),
        })
    }
}

/// Hertz indentation: a rigid frictionless sphere pressed into a large block, against
/// `F = (4/3) E / (1 - nu^2) sqrt(R) d^(3/2)`. A quarter of the block is meshed (symmetry
/// planes x = 0 and z = 0, where the sphere's axis lies), graded: cells of `fine_cell_m` near
/// the contact, growing by a fixed ratio away from it, so the contact patch is resolved and the
/// block is still large against it. Gravity is off; the bottom is fixed.
#[derive(Debug, Clone)]
pub struct Indentation {
    /// The quarter block (top face y = 0, from x = z = 0 outwards).
    pub tissue: Tissue,
    /// Sphere radius, metres.
    pub radius_m: f64,
    /// The material.
    pub material: Material,
}

/// One depth of an indentation.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct IndentationPoint {
    /// Depth of the sphere's lowest point below the undeformed surface, metres.
    pub depth_m: f64,
    /// Measured force on the whole sphere (four quarters), newtons.
    pub force_n: f64,
    /// Hertz's force at that depth, newtons.
    pub hertz_n: f64,
    /// `(force - hertz) / hertz`, per cent.
    pub error_pct: f64,
}

/// Grid lines from 0 to `extent_m`: `fine_cell_m` steps up to `fine_extent_m`, then steps
/// growing by `ratio`; the last line is exactly `extent_m`.
fn graded_lines(fine_cell_m: f64, fine_extent_m: f64, extent_m: f64, ratio: f64) -> Vec<f64> {
    let mut lines = vec![0.0];
    let mut step = fine_cell_m;
    let mut x = 0.0;
    while x + 1e-12 < extent_m {
        if x + 1e-12 >= fine_extent_m {
            step *= ratio;
        }
        x = (x + step).min(extent_m);
        // Fold a sliver of a last cell into the one before it.
        if extent_m - x < 0.3 * step {
            x = extent_m;
        }
        lines.push(x);
    }
    lines
}

impl Indentation {
    /// A quarter block `extent_m` wide (each way from the axis) and deep, with cells of
    /// `fine_cell_m` within `fine_extent_m` of the contact and growing by `ratio` beyond, under
    /// a sphere of `radius_m`.
    pub fn new(
        material: Material,
        radius_m: f64,
        fine_cell_m: f64,
        fine_extent_m: f64,
        extent_m: f64,
        ratio: f64,
    ) -> Self {
        let across = graded_lines(fine_cell_m, fine_extent_m, extent_m, ratio);
        let down: Vec<f64> = graded_lines(fine_cell_m, fine_extent_m, extent_m, ratio)
            .iter()
            .rev()
            .map(|d| -d)
            .collect();
        let mesh = TetMesh::grid(&across, &down, &across);
        let mut tissue = Tissue::new(&mesh, material, |p| p.y <= -extent_m + 1e-12);
        for (q, p) in mesh.rest_positions_m.iter().enumerate() {
            if tissue.is_fixed(q) {
                continue;
            }
            if p.x.abs() < 1e-12 {
                tissue.constrain_to_plane(q, Vector3::zeros(), Vector3::x());
            }
            if p.z.abs() < 1e-12 {
                tissue.constrain_to_plane(q, Vector3::zeros(), Vector3::z());
            }
        }
        Self {
            tissue,
            radius_m,
            material,
        }
    }

    /// Hertz's force at depth `depth_m`, newtons.
    pub fn hertz_force_n(&self, depth_m: f64) -> f64 {
        let e_star = self.material.youngs_modulus_pa / (1.0 - self.material.poisson_ratio.powi(2));
        4.0 / 3.0 * e_star * self.radius_m.sqrt() * depth_m.powf(1.5)
    }

    /// Lowers the sphere at `speed_m_per_s` to each of `depths_m` in turn (increasing), holds
    /// it there for `hold_s` and averages the force over the last fifth of the hold.
    pub fn measure(
        mut self,
        params: &StepParams,
        depths_m: &[f64],
        speed_m_per_s: f64,
        hold_s: f64,
    ) -> Result<Vec<IndentationPoint>, TissueError> {
        let params = StepParams {
            gravity_m_per_s2: [0.0; 3],
            contact_friction: 0.0,
            ..*params
        };
        let mut out = Vec::new();
        let mut depth = -0.002f64;
        let hold_steps = (hold_s / params.dt_s).round() as usize;
        for &target in depths_m {
            let mut held = 0;
            let mut sum = 0.0;
            let mut n = 0;
            while held < hold_steps {
                if depth < target {
                    depth = (depth + speed_m_per_s * params.dt_s).min(target);
                } else {
                    held += 1;
                }
                let tool = SphereTool {
                    center_in_world_m: Vector3::new(0.0, self.radius_m - depth, 0.0),
                    radius_m: self.radius_m,
                };
                let r = step(&params, &mut self.tissue, &tool)?;
                if held * 5 > hold_steps * 4 {
                    sum += r.force_on_tool_n.y;
                    n += 1;
                }
            }
            let force_n = 4.0 * sum / n.max(1) as f64;
            let hertz_n = self.hertz_force_n(target);
            out.push(IndentationPoint {
                depth_m: target,
                force_n,
                hertz_n,
                error_pct: (force_n - hertz_n) / hertz_n * 100.0,
            });
        }
        Ok(out)
    }
}
