//! A needle: it presses on the surface until the force along its shaft passes the puncture
//! threshold, then slides into the tissue, which grips the shaft with friction.
//!
//! Before puncture the needle is a thin capsule in contact with the tissue (the surface
//! contact keeps its sharp tip from slipping between particles). At puncture the entry point is
//! recorded and contact stops; from then on every particle that comes within the capture radius
//! of the inserted part of the shaft is held to it, sideways rigidly (the shaft carries the
//! tissue with it) and along the shaft by Coulomb friction (it sticks until the force needed
//! passes its share of `friction_n_per_m` times the inserted depth, then slips). The forces of
//! those constraints are the force on the needle. Pulling the tip back out past the entry point
//! lets everything go.
//!
//! Contract: [`Needle::step`] neither allocates nor locks (capture capacity is one slot per
//! particle, reserved by [`Needle::new`]) and is deterministic.

use nalgebra::Vector3;

use super::xpbd::{step_with, NoHook, SphereTool, StepParams, SubstepHook, Tissue, TissueError};

/// Mechanical parameters of a needle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeedleParams {
    /// Shaft radius, metres.
    pub radius_m: f64,
    /// Force along the shaft at which the tip punctures the surface, newtons.
    pub puncture_force_n: f64,
    /// Sliding friction per metre of inserted shaft, newtons per metre.
    pub friction_n_per_m: f64,
    /// Particles within this distance of the inserted shaft are held by it, metres.
    pub capture_radius_m: f64,
    /// Force the tip needs to cut its way forward once through the surface, newtons: felt
    /// while the needle advances, pushing the tissue at the tip ahead of it.
    pub cutting_force_n: f64,
}

impl NeedleParams {
    /// An 18-gauge biopsy needle in liver (puncture about 0.5 N, cutting about 0.15 N, friction
    /// about 0.2 N per cm), for a mesh with cells of about `cell_m`.
    pub fn biopsy(cell_m: f64) -> Self {
        Self {
            radius_m: 0.0006,
            puncture_force_n: 0.5,
            friction_n_per_m: 20.0,
            capture_radius_m: 0.5 * cell_m,
            cutting_force_n: 0.15,
        }
    }
}

/// Where the needle is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NeedleState {
    /// Outside the tissue (possibly pressing on it).
    Outside,
    /// Through the surface since the recorded entry point.
    Inserted {
        /// Where the tip punctured the surface, world frame, metres.
        entry_in_world_m: Vector3<f64>,
    },
}

/// What one needle step measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeedleReport {
    /// Force of the tissue on the needle, world frame, newtons.
    pub force_on_tool_n: Vector3<f64>,
    /// Component of that force against the insertion direction, newtons (positive resists
    /// insertion).
    pub axial_resistance_n: f64,
    /// Whether the needle is through the surface.
    pub inserted: bool,
    /// Whether it punctured in this step.
    pub punctured_now: bool,
    /// Depth of the tip past the entry point along the shaft, metres (0 outside).
    pub depth_m: f64,
    /// Distance from the tip to the target, metres, when a target is set.
    pub distance_to_target_m: Option<f64>,
    /// Particles held by the shaft.
    pub captured: usize,
}

#[derive(Debug, Clone, Copy)]
struct Captured {
    particle: u32,
    /// Axial coordinate along the shaft from the tip (negative: behind the tip), metres.
    s_m: f64,
    /// Sideways offset from the shaft axis, world frame, metres.
    offset_m: Vector3<f64>,
}

/// A needle and its hold on the tissue.
#[derive(Debug, Clone)]
pub struct Needle {
    params: NeedleParams,
    length_m: f64,
    state: NeedleState,
    captured: Vec<Captured>,
    is_captured: Vec<bool>,
    target_in_world_m: Option<Vector3<f64>>,
    last_tip_in_world_m: Option<Vector3<f64>>,
}

/// Why a needle pose was refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum NeedleError {
    /// The tip or direction is not finite, or the direction has no length.
    #[error("needle pose is not finite or its direction is zero; step skipped")]
    BadPose,
    /// The tissue step failed.
    #[error(transparent)]
    Tissue(#[from] TissueError),
}

impl Needle {
    /// A needle of shaft `length_m` for `tissue`. Set-up: allocates its capture slots.
    pub fn new(params: NeedleParams, length_m: f64, tissue: &Tissue) -> Self {
        let n = tissue.particle_count();
        Self {
            params,
            length_m,
            state: NeedleState::Outside,
            captured: Vec::with_capacity(n),
            is_captured: vec![false; n],
            target_in_world_m: None,
            last_tip_in_world_m: None,
        }
    }

    /// Sets the point the trainee is aiming for (a lesion's centre), world frame, metres.
    pub fn set_target(&mut self, target_in_world_m: Option<Vector3<f64>>) {
        self.target_in_world_m = target_in_world_m;
    }

    /// The current state.
    pub fn state(&self) -> NeedleState {
        self.state
    }

    fn release_all(&mut self) {
        for c in &self.captured {
            self.is_captured[c.particle as usize] = false;
        }
        self.captured.clear();
    }

    /// Steps the tissue by one tick with the needle's tip at `tip_in_world_m`, pointing along
    /// `direction` (from the hub to the tip; any length).
    pub fn step(
        &mut self,
        params: &StepParams,
        tissue: &mut Tissue,
        tip_in_world_m: Vector3<f64>,
        direction: Vector3<f64>,
    ) -> Result<NeedleReport, NeedleError> {
        let len = direction.norm();
        if !(len.is_finite() && len > 0.0 && tip_in_world_m.iter().all(|v| v.is_finite())) {
            return Err(NeedleError::BadPose);
        }
        let dir = direction / len;
        let tip_from = self.last_tip_in_world_m.unwrap_or(tip_in_world_m);
        self.last_tip_in_world_m = Some(tip_in_world_m);
        let mut punctured_now = false;
        let force_on_tool_n = match self.state {
            NeedleState::Outside => {
                // Before puncture only the tip touches (the shaft trails behind it, out of the
                // tissue).
                let tip = SphereTool {
                    center_in_world_m: tip_in_world_m,
                    radius_m: self.params.radius_m,
                };
                // The needle models its own puncture: the tip does not tear the tissue first.
                let pressing = StepParams {
                    tear_stretch: 0.0,
                    ..*params
                };
                let r = step_with(&pressing, tissue, Some(&tip), None::<&mut NoHook>)?;
                // Only an advancing tip punctures: tissue dragged up against a tip being
                // drawn back out is not a new pass.
                let advancing = (tip_in_world_m - tip_from).dot(&dir) >= 0.0;
                if advancing && -r.force_on_tool_n.dot(&dir) > self.params.puncture_force_n {
                    self.state = NeedleState::Inserted {
                        entry_in_world_m: tip_in_world_m,
                    };
                    punctured_now = true;
                }
                r.force_on_tool_n
            }
            NeedleState::Inserted { entry_in_world_m } => {
                let depth = (tip_in_world_m - entry_in_world_m).dot(&dir);
                if depth <= 0.0 {
                    self.release_all();
                    self.state = NeedleState::Outside;
                    step_with::<SphereTool, NoHook>(params, tissue, None, None)?.force_on_tool_n
                } else {
                    let shaft_depth_m = depth.min(self.length_m);
                    let mut hook = ShaftHook {
                        needle: self,
                        tip_from,
                        tip_now: tip_in_world_m,
                        dir,
                        // Past the hub there is no shaft to hold the tissue.
                        depth_m: shaft_depth_m,
                    };
                    step_with::<SphereTool, _>(params, tissue, None, Some(&mut hook))?
                        .force_on_tool_n
                }
            }
        };
        let depth_m = match self.state {
            NeedleState::Outside => 0.0,
            NeedleState::Inserted { entry_in_world_m } => {
                (tip_in_world_m - entry_in_world_m).dot(&dir).max(0.0)
            }
        };
        Ok(NeedleReport {
            force_on_tool_n,
            axial_resistance_n: -force_on_tool_n.dot(&dir),
            inserted: matches!(self.state, NeedleState::Inserted { .. }),
            punctured_now,
            depth_m,
            distance_to_target_m: self.target_in_world_m.map(|t| (t - tip_in_world_m).norm()),
            captured: self.captured.len(),
        })
    }
}

struct ShaftHook<'a> {
    needle: &'a mut Needle,
    tip_from: Vector3<f64>,
    tip_now: Vector3<f64>,
    dir: Vector3<f64>,
    depth_m: f64,
}

impl SubstepHook for ShaftHook<'_> {
    fn project(&mut self, tissue: &mut Tissue, f: f64, h_s: f64) -> Vector3<f64> {
        let tip = self.tip_from + (self.tip_now - self.tip_from) * f;
        let dir = self.dir;
        let n = &mut *self.needle;
        let r2 = n.params.capture_radius_m * n.params.capture_radius_m;
        // Capture what the inserted shaft now passes through.
        for q in 0..tissue.positions_m.len() {
            if n.is_captured[q] || tissue.inv_mass_per_kg[q] <= 0.0 || tissue.held[q] {
                continue;
            }
            let x = tissue.positions_m[q];
            let s = (x - tip).dot(&dir);
            if s > 0.0 || s < -self.depth_m {
                continue;
            }
            let offset = x - (tip + dir * s);
            if offset.norm_squared() <= r2 && n.captured.len() < n.captured.capacity() {
                n.is_captured[q] = true;
                n.captured.push(Captured {
                    particle: q as u32,
                    s_m: s,
                    offset_m: offset,
                });
            }
        }
        // Let go of what is no longer on the inserted part (the needle was drawn back).
        let depth = self.depth_m;
        let mut k = 0;
        while k < n.captured.len() {
            let c = n.captured[k];
            if c.s_m < -depth || c.s_m > 0.0 {
                n.is_captured[c.particle as usize] = false;
                n.captured.swap_remove(k);
            } else {
                k += 1;
            }
        }
        if n.captured.is_empty() {
            return Vector3::zeros();
        }
        // Friction share of each held particle, as a largest position change this substep.
        let per_particle_n = n.params.friction_n_per_m * depth / n.captured.len() as f64;
        let mut impulse = Vector3::zeros();
        for c in n.captured.iter_mut() {
            let q = c.particle as usize;
            let w = tissue.inv_mass_per_kg[q];
            if w <= 0.0 {
                continue;
            }
            let x = tissue.positions_m[q];
            let target = tip + dir * c.s_m + c.offset_m;
            let d = target - x;
            let axial = d.dot(&dir);
            let lateral = d - dir * axial;
            let limit = per_particle_n * w * h_s * h_s;
            let applied = if axial.abs() <= limit {
                axial
            } else {
                // Slip: move as far as friction allows; the particle's place on the shaft moves.
                let a = limit.copysign(axial);
                c.s_m -= axial - a;
                a
            };
            let correction = lateral + dir * applied;
            tissue.positions_m[q] += correction;
            impulse -= correction / (w * h_s);
        }
        // Cutting: while the tip advances it pushes the uncut tissue just ahead of it (free
        // particles within the capture radius of the axis and two capture radii in front) with
        // the cutting force, shared equally, and the needle feels it back. Where no particle is
        // that close ahead (between particles of a coarse mesh), nothing is felt.
        if (self.tip_now - self.tip_from).dot(&dir) > 0.0 && n.params.cutting_force_n > 0.0 {
            let reach = 2.0 * n.params.capture_radius_m;
            let ahead = |tissue: &Tissue, q: usize| {
                let v = tissue.positions_m[q] - tip;
                let s = v.dot(&dir);
                tissue.inv_mass_per_kg[q] > 0.0
                    && !n.is_captured[q]
                    && !tissue.held[q]
                    && s > 0.0
                    && s <= reach
                    && (v - dir * s).norm_squared() <= r2
            };
            let count = (0..tissue.positions_m.len())
                .filter(|&q| ahead(tissue, q))
                .count();
            if count > 0 {
                let share_n = n.params.cutting_force_n / count as f64;
                for q in 0..tissue.positions_m.len() {
                    if ahead(tissue, q) {
                        let w = tissue.inv_mass_per_kg[q];
                        let push = dir * (share_n * w * h_s * h_s);
                        tissue.positions_m[q] += push;
                        impulse -= push / (w * h_s);
                    }
                }
            }
        }
        impulse
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tissue::scenes::block;
    use crate::tissue::Material;

    #[test]
    fn needle_presses_punctures_then_slides_with_friction() {
        let mut tissue = block(0.005, [8, 8, 8], Material::LIVER);
        let params = StepParams::default();
        let mut needle = Needle::new(NeedleParams::biopsy(0.005), 0.08, &tissue);
        let target = Vector3::new(0.0011, -0.02, 0.0013);
        needle.set_target(Some(target));
        let dir = Vector3::new(0.0, -1.0, 0.0);
        // Off the lattice lines, 5 mm above the surface, descending at 2 cm/s.
        let start = Vector3::new(0.0011, 0.005, 0.0013);
        let mut peak = 0.0f64;
        let mut after_puncture = None;
        let mut at_depth = Vec::new();
        let mut punctured_at = None;
        for i in 0..2000 {
            let tip = start + dir * (i as f64 * 2e-5);
            let r = needle.step(&params, &mut tissue, tip, dir).unwrap();
            if !r.inserted || r.punctured_now {
                peak = peak.max(r.axial_resistance_n);
            }
            if r.punctured_now {
                punctured_at = Some(i);
            }
            if let Some(p) = punctured_at {
                if i == p + 20 {
                    after_puncture = Some(r.axial_resistance_n);
                }
                if r.inserted {
                    let expected = (tip.y - tissue_entry_y(&needle)).abs();
                    assert!((r.depth_m - expected).abs() < 1e-12);
                }
            }
            if i == 1500 || i == 1999 {
                at_depth.push((r.depth_m, r.axial_resistance_n, r.captured));
                assert!((r.distance_to_target_m.unwrap() - (target - tip).norm()).abs() < 1e-15);
            }
        }
        let p = punctured_at.expect("the needle must puncture");
        assert!(
            peak > 0.5 && peak < 0.7,
            "puncture near 0.5 N, peaked {peak}"
        );
        let after = after_puncture.unwrap();
        assert!(
            after < 0.5 * peak,
            "force must drop at puncture: {after} after {peak}"
        );
        assert!(
            p > 250,
            "it must press the surface before puncturing (step {p})"
        );
        let (d1, f1, c1) = at_depth[0];
        let (d2, f2, c2) = at_depth[1];
        assert!(d2 > d1 && d1 > 0.005, "depths {d1} {d2}");
        assert!(c2 >= c1 && c1 > 0, "captured {c1} {c2}");
        assert!(
            f1 > 0.0 && f2 > f1,
            "friction grows with depth: {f1} N, {f2} N"
        );
        // Pull back: friction now drags the needle inwards.
        let mut back = 0.0;
        let deepest = start + dir * (1999.0 * 2e-5);
        for i in 1..=400 {
            let tip = deepest - dir * (i as f64 * 2e-5);
            let r = needle.step(&params, &mut tissue, tip, dir).unwrap();
            if i > 300 {
                back += r.axial_resistance_n / 100.0;
            }
        }
        assert!(back < 0.0, "withdrawal must be resisted: {back} N");
        // All the way out: released.
        for i in 0..2000 {
            let tip = deepest - dir * (0.008 + i as f64 * 2e-5);
            needle.step(&params, &mut tissue, tip, dir).unwrap();
        }
        assert_eq!(needle.state(), NeedleState::Outside);
        assert_eq!(tissue.inverted_tets(), 0);
    }

    fn tissue_entry_y(n: &Needle) -> f64 {
        match n.state() {
            NeedleState::Inserted { entry_in_world_m } => entry_in_world_m.y,
            NeedleState::Outside => f64::NAN,
        }
    }

    #[test]
    fn the_tip_cuts_its_way_in() {
        // The same insertion with and without a cutting force: once through the surface, the
        // needle that must cut is resisted more, by about the cutting force on average.
        let mean_after_puncture = |cutting_force_n: f64| {
            let mut tissue = block(0.005, [8, 8, 8], Material::LIVER);
            let params = StepParams::default();
            let needle_params = NeedleParams {
                cutting_force_n,
                ..NeedleParams::biopsy(0.005)
            };
            let mut needle = Needle::new(needle_params, 0.08, &tissue);
            let dir = Vector3::new(0.0, -1.0, 0.0);
            let start = Vector3::new(0.0011, 0.005, 0.0013);
            let (mut sum, mut n, mut since) = (0.0, 0, None);
            for i in 0..2000 {
                let tip = start + dir * (i as f64 * 2e-5);
                let r = needle.step(&params, &mut tissue, tip, dir).unwrap();
                if r.punctured_now {
                    since = Some(i);
                }
                if since.is_some_and(|p| i > p + 100 && i <= p + 600) {
                    sum += r.axial_resistance_n;
                    n += 1;
                }
            }
            assert!(n == 500, "the needle must puncture early enough");
            sum / n as f64
        };
        let (plain, cutting) = (mean_after_puncture(0.0), mean_after_puncture(0.15));
        assert!(
            cutting - plain > 0.05 && cutting - plain < 0.25,
            "cutting adds {} N (plain {plain} N)",
            cutting - plain
        );
    }

    #[test]
    fn bad_pose_is_refused() {
        let mut tissue = block(0.005, [2, 2, 2], Material::LIVER);
        let mut needle = Needle::new(NeedleParams::biopsy(0.005), 0.05, &tissue);
        let p = StepParams::default();
        assert_eq!(
            needle.step(&p, &mut tissue, Vector3::zeros(), Vector3::zeros()),
            Err(NeedleError::BadPose)
        );
        assert_eq!(
            needle.step(
                &p,
                &mut tissue,
                Vector3::new(f64::NAN, 0.0, 0.0),
                Vector3::y()
            ),
            Err(NeedleError::BadPose)
        );
    }
}
