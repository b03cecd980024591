//! Scripted performances of a scenario: an "expert" (direct, smooth, gentle, quick, on
//! target) and a "novice" (hesitant, wandering, with tremor, pressing harder, slower, off
//! target), as [`Script`]s of tool-tip positions and button presses in the world frame.
//!
//! They drive the simulated device in `haptwin demo`, build the shipped benchmarks from
//! several expert seeds, and give the scoring tests their evidence: both skills play the same
//! scenario on the same tissue through the whole simulator, and the metrics must separate them.
//!
//! Contract: deterministic (a seed varies a performance by small amounts through a fixed
//! pseudo-random sequence); pure.

use nalgebra::Vector3;

use crate::haptics::instrument::{InstrumentKind, ACTIVATE, MARK};
use crate::haptics::sim::{Script, Waypoint};
use crate::session::scenario::{CaseGeometry, Scenario};
use crate::tissue::Tissue;

/// Who plays the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skill {
    /// Smooth, direct, gentle, on target.
    #[default]
    Expert,
    /// Jerky, wandering, forceful, slower, off target.
    Novice,
}

impl std::str::FromStr for Skill {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "expert" => Ok(Self::Expert),
            "novice" => Ok(Self::Novice),
            o => Err(format!("unknown skill {o:?}: use expert or novice")),
        }
    }
}

/// A small deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [-a, a].
    fn sym(&mut self, a: f64) -> f64 {
        (2.0 * self.next() - 1.0) * a
    }
}

/// Builds a script: moves in time, buttons on and off.
struct Builder {
    t_s: f64,
    at: Vector3<f64>,
    waypoints: Vec<Waypoint>,
    buttons: Vec<(f64, u32)>,
    held: u32,
    /// Time stretch (the novice is slower).
    pace: f64,
    /// Tremor amplitude (metres) and the interval of its waypoints (seconds).
    tremor: Option<(f64, f64)>,
    rng: Rng,
}

impl Builder {
    fn new(start: Vector3<f64>, pace: f64, tremor: Option<(f64, f64)>, seed: u64) -> Self {
        Self {
            t_s: 0.0,
            at: start,
            waypoints: vec![Waypoint {
                t_s: 0.0,
                tip_in_device_m: start.into(),
            }],
            buttons: Vec::new(),
            held: 0,
            pace,
            tremor,
            rng: Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5EED),
        }
    }

    fn push(&mut self, t_s: f64, p: Vector3<f64>) {
        self.t_s = t_s;
        self.at = p;
        self.waypoints.push(Waypoint {
            t_s,
            tip_in_device_m: p.into(),
        });
    }

    /// Moves to `p` in `secs` (stretched by the pace); with tremor, through jittered
    /// intermediate points.
    fn to(&mut self, p: Vector3<f64>, secs: f64) {
        let secs = (secs * self.pace).max(0.01);
        let from = self.at;
        let t0 = self.t_s;
        if let Some((amp, every)) = self.tremor {
            let n = ((secs / every).round() as usize).max(1);
            for k in 1..n {
                let u = k as f64 / n as f64;
                let jitter = Vector3::new(self.rng.sym(amp), self.rng.sym(amp), self.rng.sym(amp));
                self.push(t0 + secs * u, from + (p - from) * u + jitter);
            }
        }
        self.push(t0 + secs, p);
    }

    /// Stays where it is for `secs`.
    fn hold(&mut self, secs: f64) {
        let p = self.at;
        self.to(p, secs);
    }

    fn press(&mut self, bits: u32) {
        self.held |= bits;
        self.buttons.push((self.t_s + 1e-3, self.held));
    }

    fn release(&mut self, bits: u32) {
        self.held &= !bits;
        self.buttons.push((self.t_s + 1e-3, self.held));
    }

    fn finish(mut self) -> Script {
        // End where it started a period later would loop back: hold still at the end instead.
        self.hold(0.3);
        // Button changes must be strictly increasing in time.
        let mut buttons: Vec<(f64, u32)> = Vec::new();
        for (t, b) in self.buttons {
            match buttons.last_mut() {
                Some(last) if t <= last.0 + 1e-9 => last.1 = b,
                _ => buttons.push((t, b)),
            }
        }
        Script::new(self.waypoints).with_buttons(buttons)
    }
}

/// A performance of `scenario` on `tissue` (at rest, world frame) by `skill`, varied by
/// `seed`.
pub fn performance(
    scenario: &Scenario,
    tissue: &Tissue,
    geometry: &CaseGeometry,
    skill: Skill,
    seed: u64,
) -> Script {
    let mut rng = Rng(seed ^ 0xA11CE);
    let novice = skill == Skill::Novice;
    let [lo, hi] = geometry.bounds_m;
    let centre = (lo + hi) / 2.0;
    // Where the scenario aims: the tumour, or the middle of the tissue without one.
    let target = geometry
        .tumour_centre_m
        .unwrap_or(Vector3::new(centre.x, hi.y, centre.z));
    let r = scenario.tip_radius_m;
    let surface = |x: f64, z: f64| geometry.surface_y_at(tissue, x, z, 0.008);
    let jitter = |rng: &mut Rng, a: f64| Vector3::new(rng.sym(a), 0.0, rng.sym(a));
    let (pace, tremor) = if novice {
        (1.7, Some((0.0015, 0.12)))
    } else {
        (1.0 + rng.sym(0.05), None)
    };
    let above = |p: Vector3<f64>, h: f64| Vector3::new(p.x, surface(p.x, p.z) + r + h, p.z);
    // A sphere tip's centre pressing `depth` into the surface at (x, z).
    let pressing = |x: f64, z: f64, depth: f64| Vector3::new(x, surface(x, z) + r - depth, z);
    let start = above(target + Vector3::new(-0.03, 0.0, 0.0), 0.03);
    let mut b = Builder::new(start, pace, tremor, seed);
    match scenario.name.as_str() {
        "resection" => {
            let margin = scenario.margin_m.unwrap_or(0.003);
            let reach = geometry.tumour_radius_m + margin;
            let top = surface(target.x, target.z);
            let bottom = target.y - reach;
            let t = target
                + if novice {
                    jitter(&mut rng, 0.006)
                } else {
                    jitter(&mut rng, 0.0005)
                };
            b.to(Vector3::new(t.x, top + r + 0.005, t.z), 1.0);
            b.press(ACTIVATE);
            // Layers from the surface down through the tumour and its margin; on each, a
            // circle just inside the section of the margin sphere, and the centre.
            let layer_m = if novice { 0.008 } else { 0.005 };
            let mut y = top + r - 0.002;
            let mut k = 0;
            while y > bottom + 0.5 * r {
                let dy = (y - target.y).abs();
                let section = (reach * reach - dy * dy).max(0.0).sqrt();
                let ring = (section - 0.6 * r).max(0.0);
                let sides = 8;
                b.to(Vector3::new(t.x, y, t.z), 0.4);
                if ring > 0.001 {
                    for s in 0..=sides {
                        let a = std::f64::consts::TAU * (s as f64 + 0.5 * k as f64) / sides as f64;
                        // The novice strays outwards into healthy tissue now and then.
                        let stray = if novice && rng.next() < 0.3 {
                            0.006
                        } else {
                            0.0
                        };
                        let rr = ring + stray;
                        b.to(
                            Vector3::new(t.x + rr * a.cos(), y, t.z + rr * a.sin()),
                            if novice { 0.35 } else { 0.22 },
                        );
                    }
                }
                b.to(Vector3::new(t.x, y, t.z), 0.3);
                y -= layer_m;
                k += 1;
            }
            b.release(ACTIVATE);
            b.to(Vector3::new(t.x, top + r + 0.03, t.z), 1.0);
        }
        "biopsy" => {
            let entry = target
                + if novice {
                    Vector3::new(0.007 + rng.sym(0.001), 0.0, rng.sym(0.003))
                } else {
                    jitter(&mut rng, 0.0005)
                };
            let top = surface(entry.x, entry.z);
            b.to(Vector3::new(entry.x, top + 0.01, entry.z), 1.0);
            if novice {
                // A first pass off target, drawn back, and a second one.
                b.to(Vector3::new(entry.x, target.y - 0.004, entry.z), 0.9);
                b.hold(0.4);
                b.to(Vector3::new(entry.x, top + 0.01, entry.z), 0.6);
                let second = target + Vector3::new(0.004, 0.0, rng.sym(0.002));
                b.to(Vector3::new(second.x, top + 0.01, second.z), 0.5);
                b.to(Vector3::new(second.x, target.y + 0.003, second.z), 0.8);
            } else {
                b.to(
                    Vector3::new(entry.x, target.y + rng.sym(0.0005), entry.z),
                    1.6,
                );
            }
            b.hold(0.8);
            let now = b.at;
            b.to(Vector3::new(now.x, top + 0.03, now.z), 1.2);
        }
        "warmup" => {
            let targets = geometry.warmup_targets(tissue, scenario.targets.unwrap_or(5));
            let skip = if novice { Some(3) } else { None };
            for (i, p) in targets.iter().enumerate() {
                if Some(i) == skip {
                    continue;
                }
                let p = p + if novice {
                    jitter(&mut rng, 0.003)
                } else {
                    jitter(&mut rng, 0.0005)
                };
                // Expert: about 0.5 N; novice: now too light, now far too hard.
                let depth = if novice {
                    [0.002, 0.013, 0.005, 0.016, 0.003][i % 5]
                } else {
                    0.007 + rng.sym(0.0003)
                };
                if novice {
                    // A detour on the way.
                    let d = b.at + (p - b.at) * 0.5 + Vector3::new(0.0, 0.015, rng.sym(0.02));
                    b.to(d, 0.6);
                }
                b.to(Vector3::new(p.x, p.y + r + 0.008, p.z), 0.7);
                b.to(Vector3::new(p.x, p.y + r - depth, p.z), 0.35);
                b.hold(0.5);
                b.to(Vector3::new(p.x, p.y + r + 0.008, p.z), 0.3);
            }
            let end = b.at + Vector3::new(0.0, 0.02, 0.0);
            b.to(end, 0.6);
        }
        // Palpation (and any other scenario): sweep across the target both ways, come back
        // to where it felt stiffest and mark it.
        _ => {
            let depth = if novice { 0.015 } else { 0.0035 };
            let half = 0.025;
            let (tx, tz) = (target.x, target.z);
            b.to(pressing(tx - half, tz, depth * 0.5), 0.8);
            if novice {
                // Wandering sweeps with extra stops.
                for k in 1..=5 {
                    let x = tx - half + 2.0 * half * k as f64 / 5.0;
                    b.to(pressing(x, tz + rng.sym(0.008), depth), 0.55);
                }
            } else {
                b.to(pressing(tx + half, tz, depth), 1.8);
            }
            b.to(above(Vector3::new(tx, 0.0, tz - half), 0.008), 0.6);
            if novice {
                for k in 1..=5 {
                    let z = tz - half + 2.0 * half * k as f64 / 5.0;
                    b.to(pressing(tx + rng.sym(0.008), z, depth), 0.55);
                }
            } else {
                b.to(pressing(tx, tz - half, depth), 0.4);
                b.to(pressing(tx, tz + half, depth), 1.8);
            }
            let mark_at = if novice {
                let a = rng.next() * std::f64::consts::TAU;
                let off = 0.009 + rng.next() * 0.004;
                (tx + off * a.cos(), tz + off * a.sin())
            } else {
                (tx + rng.sym(0.001), tz + rng.sym(0.001))
            };
            b.to(above(Vector3::new(mark_at.0, 0.0, mark_at.1), 0.008), 0.7);
            b.to(pressing(mark_at.0, mark_at.1, depth * 0.6), 0.5);
            b.press(MARK);
            b.hold(0.15);
            b.release(MARK);
            b.hold(0.2);
            if scenario.instrument == InstrumentKind::Grasper {
                // Take hold where it was marked, lift the tissue a centimetre, let go.
                b.press(ACTIVATE);
                b.hold(0.2);
                let lift = b.at + Vector3::new(0.0, 0.01, 0.0);
                b.to(lift, 0.6);
                b.hold(0.3);
                b.release(ACTIVATE);
                b.hold(0.3);
            }
            if scenario.instrument == InstrumentKind::Scalpel {
                // Cut a 2 cm incision, 5 mm deep, from the mark, then lift the blade out.
                let from = b.at;
                let y = surface(from.x, from.z) - 0.005;
                b.to(Vector3::new(from.x, y, from.z), 0.4);
                b.press(ACTIVATE);
                b.to(Vector3::new(from.x + 0.02, y, from.z), 1.2);
                b.release(ACTIVATE);
                b.to(from, 0.4);
            }
            let end = above(Vector3::new(mark_at.0, 0.0, mark_at.1), 0.03);
            b.to(end, 0.8);
        }
    }
    b.finish()
}
