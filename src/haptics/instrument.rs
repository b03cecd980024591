//! The instrument in the trainee's hand: what the tool does to the tissue each tick.
//!
//! The devices haptwin drives report a tip position and buttons (3 degrees of freedom), so
//! every instrument is placed by its tip, and those with a shaft (scalpel, needle) point along a
//! fixed direction the scenario gives (by default straight down, -y in the world). Buttons:
//! bit 0 ([`ACTIVATE`]) closes the jaws, makes the blade or the cautery live; bit 1 ([`MARK`])
//! marks the tip's position (palpation).
//!
//! | instrument | contact shape | activate |
//! |---|---|---|
//! | probe | sphere | - |
//! | grasper | sphere | grasp what is within reach of the jaws, hold until released |
//! | scalpel | blade (capsule from the tip up the shaft) | cut along the swept edge |
//! | cautery | sphere | resect the tets whose centre lies inside the tip |
//! | needle | sphere tip, then the shaft (see [`crate::tissue::needle`]) | - (it punctures by force) |
//!
//! Each tick's events become [`tick_flags`] bits in the tick record (`INSTRUMENT_ACTIVE`, `CUT`,
//! `GRASP`, `RELEASE`, `PUNCTURE`, `MARK`, `NO_GO_CONTACT`, `CONTACT`), so the log holds every
//! event and a replay meets the same ones (the buttons are recorded inputs).
//!
//! Contract: [`InstrumentState::step`] neither allocates nor locks (the needle's and the no-go
//! list's storage is made by [`InstrumentState::new`]) and is deterministic. On a device fault
//! or a stop the instrument goes passive: the grasp lets go, nothing is cut.

use nalgebra::Vector3;

use crate::bus::tick_flags;
use crate::tissue::needle::{Needle, NeedleParams};
use crate::tissue::{self, CapsuleTool, SphereTool, StepParams, Tissue, TissueError};

/// Button bit that activates the instrument.
pub const ACTIVATE: u32 = 1 << 0;
/// Button bit that marks the tip's position.
pub const MARK: u32 = 1 << 1;
/// How far beyond its tip a live cautery removes tissue, metres.
pub const CAUTERY_REACH_M: f64 = 0.002;

/// Which instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstrumentKind {
    /// A blunt sphere probe (palpation, warm-up).
    #[default]
    Probe,
    /// Grasping forceps.
    Grasper,
    /// A scalpel blade.
    Scalpel,
    /// A cautery / ultrasonic dissector tip that removes tissue.
    Cautery,
    /// A biopsy needle.
    Needle,
}

impl InstrumentKind {
    /// The instrument's name, as scenarios and the command line spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Probe => "probe",
            Self::Grasper => "grasper",
            Self::Scalpel => "scalpel",
            Self::Cautery => "cautery",
            Self::Needle => "needle",
        }
    }
}

impl std::str::FromStr for InstrumentKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "probe" => Ok(Self::Probe),
            "grasper" => Ok(Self::Grasper),
            "scalpel" => Ok(Self::Scalpel),
            "cautery" => Ok(Self::Cautery),
            "needle" => Ok(Self::Needle),
            o => Err(format!(
                "unknown instrument {o:?}: use probe, grasper, scalpel, cautery or needle"
            )),
        }
    }
}

/// How an instrument is made.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InstrumentConfig {
    /// Which instrument.
    pub kind: InstrumentKind,
    /// Tip radius (probe, grasper, cautery), metres. The scalpel's blade and the needle's
    /// shaft have their own thickness.
    pub tip_radius_m: f64,
    /// Extra reach of the grasper's jaws beyond the tip, metres.
    pub grasp_reach_m: f64,
    /// Length of the scalpel's cutting edge, metres.
    pub blade_length_m: f64,
    /// Direction of a shaft from the hub to the tip, world frame (any length).
    pub direction_in_world: [f64; 3],
    /// Needle shaft length, metres.
    pub needle_length_m: f64,
}

impl Default for InstrumentConfig {
    fn default() -> Self {
        Self {
            kind: InstrumentKind::Probe,
            tip_radius_m: 0.012,
            grasp_reach_m: 0.004,
            blade_length_m: 0.02,
            direction_in_world: [0.0, -1.0, 0.0],
            needle_length_m: 0.15,
        }
    }
}

/// An instrument's state between ticks, on the haptic thread.
#[derive(Debug)]
pub struct InstrumentState {
    config: InstrumentConfig,
    needle: Option<Needle>,
    /// Particles of structures that must not be touched (vessels).
    no_go: Vec<u32>,
    last_buttons: u32,
    last_edge: Option<[Vector3<f64>; 2]>,
}

/// What the instrument did in one tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InstrumentStep {
    /// Force of the tissue on the tool, world frame, newtons.
    pub force_on_tool_n: Vector3<f64>,
    /// Event bits ([`tick_flags`]).
    pub flags: u32,
}

impl InstrumentState {
    /// Set-up (allocates): the instrument for `tissue`, with `no_go` the particles it must not
    /// touch.
    pub fn new(config: InstrumentConfig, tissue: &Tissue, no_go: Vec<u32>, cell_m: f64) -> Self {
        let needle = (config.kind == InstrumentKind::Needle)
            .then(|| Needle::new(NeedleParams::biopsy(cell_m), config.needle_length_m, tissue));
        Self {
            config,
            needle,
            no_go,
            last_buttons: 0,
            last_edge: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &InstrumentConfig {
        &self.config
    }

    fn direction(&self) -> Vector3<f64> {
        Vector3::from(self.config.direction_in_world)
            .try_normalize(1e-12)
            .unwrap_or(-Vector3::y())
    }

    /// Steps the tissue one tick with the tool's tip at `tip_in_world_m`. `buttons` are the
    /// device's; `live` is false on a fault or stop (the instrument goes passive). Never
    /// allocates.
    pub fn step(
        &mut self,
        params: &StepParams,
        tissue: &mut Tissue,
        tip_in_world_m: Vector3<f64>,
        buttons: u32,
        live: bool,
    ) -> Result<InstrumentStep, TissueError> {
        let buttons = if live { buttons } else { 0 };
        let pressed = buttons & !self.last_buttons;
        let released = self.last_buttons & !buttons;
        self.last_buttons = buttons;
        let active = buttons & ACTIVATE != 0;
        let mut flags = if active {
            tick_flags::INSTRUMENT_ACTIVE
        } else {
            0
        };
        if pressed & MARK != 0 {
            flags |= tick_flags::MARK;
        }
        let r = self.config.tip_radius_m;
        let sphere = SphereTool {
            center_in_world_m: tip_in_world_m,
            radius_m: r,
        };
        let dir = self.direction();
        let (force, contacts, reach_m) = match self.config.kind {
            InstrumentKind::Probe => {
                let s = tissue::step(params, tissue, &sphere)?;
                (s.force_on_tool_n, s.contacts, r)
            }
            InstrumentKind::Grasper => {
                if pressed & ACTIVATE != 0
                    && tissue.grasp(tip_in_world_m, r + self.config.grasp_reach_m) > 0
                {
                    flags |= tick_flags::GRASP;
                }
                if released & ACTIVATE != 0 && tissue.grasped_count() > 0 {
                    tissue.release();
                    flags |= tick_flags::RELEASE;
                }
                let s = tissue::step(params, tissue, &sphere)?;
                (s.force_on_tool_n, s.contacts, r)
            }
            InstrumentKind::Cautery => {
                // The live tip ablates a little ahead of where it touches.
                let ablating = SphereTool {
                    radius_m: r + CAUTERY_REACH_M,
                    ..sphere
                };
                if active && tissue.resect(&ablating) > 0 {
                    flags |= tick_flags::CUT;
                }
                let s = tissue::step(params, tissue, &sphere)?;
                (s.force_on_tool_n, s.contacts, r)
            }
            InstrumentKind::Scalpel => {
                let heel = tip_in_world_m - dir * self.config.blade_length_m;
                let edge = [heel, tip_in_world_m];
                if active {
                    if let Some(before) = self.last_edge {
                        if tissue.cut(before, edge) > 0 {
                            flags |= tick_flags::CUT;
                        }
                    }
                    self.last_edge = Some(edge);
                } else {
                    self.last_edge = None;
                }
                let blade = CapsuleTool::blade(heel, tip_in_world_m, 0.001);
                let s = tissue::step(params, tissue, &blade)?;
                (s.force_on_tool_n, s.contacts, 0.0005)
            }
            InstrumentKind::Needle => {
                let needle = self
                    .needle
                    .as_mut()
                    .expect("a needle instrument is made with its needle");
                let rep = match needle.step(params, tissue, tip_in_world_m, dir) {
                    Ok(rep) => rep,
                    Err(crate::tissue::needle::NeedleError::Tissue(e)) => return Err(e),
                    Err(_) => return Err(TissueError::BadTool),
                };
                if rep.punctured_now {
                    flags |= tick_flags::PUNCTURE;
                }
                let touching = rep.inserted || rep.force_on_tool_n.norm_squared() > 0.0;
                (rep.force_on_tool_n, u32::from(touching), 0.0006)
            }
        };
        if !live {
            self.last_edge = None;
            if tissue.grasped_count() > 0 {
                tissue.release();
                flags |= tick_flags::RELEASE;
            }
        }
        if contacts > 0 {
            flags |= tick_flags::CONTACT;
        }
        if self.touches_no_go(tissue, tip_in_world_m, dir, reach_m) {
            flags |= tick_flags::NO_GO_CONTACT;
        }
        Ok(InstrumentStep {
            force_on_tool_n: force,
            flags,
        })
    }

    /// Whether any no-go particle is within the tool's reach (plus 1 mm): of the tip, or of
    /// the blade's edge or the needle's inserted shaft.
    fn touches_no_go(
        &self,
        tissue: &Tissue,
        tip: Vector3<f64>,
        dir: Vector3<f64>,
        reach_m: f64,
    ) -> bool {
        let reach2 = (reach_m + 0.001) * (reach_m + 0.001);
        let shaft_m = match self.config.kind {
            InstrumentKind::Scalpel => self.config.blade_length_m,
            InstrumentKind::Needle => self.config.needle_length_m,
            _ => 0.0,
        };
        self.no_go.iter().any(|&q| {
            let q = q as usize;
            if !tissue.is_particle_alive(q) {
                return false;
            }
            let x = tissue.positions_m[q];
            // Closest point on the shaft segment from the tip back along -dir.
            let s = (x - tip).dot(&-dir).clamp(0.0, shaft_m);
            (x - (tip - dir * s)).norm_squared() <= reach2
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tissue::scenes::block;
    use crate::tissue::Material;

    fn run(kind: InstrumentKind, path: &[(Vector3<f64>, u32)]) -> (u32, Tissue) {
        let mut tissue = block(0.01, [4, 2, 4], Material::LIVER);
        let config = InstrumentConfig {
            kind,
            tip_radius_m: 0.005,
            ..InstrumentConfig::default()
        };
        let mut inst = InstrumentState::new(config, &tissue, vec![0], 0.01);
        let params = StepParams::default();
        let mut all = 0;
        for &(p, b) in path {
            let s = inst.step(&params, &mut tissue, p, b, true).unwrap();
            all |= s.flags;
        }
        (all, tissue)
    }

    /// A straight line of `n` tips from `a` to `b`, holding `buttons`.
    fn line(a: [f64; 3], b: [f64; 3], n: usize, buttons: u32) -> Vec<(Vector3<f64>, u32)> {
        (0..n)
            .map(|i| {
                let u = i as f64 / (n - 1) as f64;
                (
                    Vector3::from(a) + (Vector3::from(b) - Vector3::from(a)) * u,
                    buttons,
                )
            })
            .collect()
    }

    #[test]
    fn cautery_resects_only_while_active() {
        // The block spans -0.02..0.02 in x and z, -0.02..0 in y (cell 1 cm).
        let (flags, t) = run(
            InstrumentKind::Cautery,
            &line([0.0, 0.001, 0.0], [0.0, 0.001, 0.0], 5, 0),
        );
        assert_eq!(flags & tick_flags::CUT, 0);
        assert_eq!(t.live_tet_count(), t.tet_count());
        let (flags, t) = run(
            InstrumentKind::Cautery,
            &line([0.0, 0.001, 0.0], [0.0, 0.001, 0.0], 5, ACTIVATE),
        );
        assert_ne!(flags & tick_flags::CUT, 0);
        assert_ne!(flags & tick_flags::INSTRUMENT_ACTIVE, 0);
        assert!(t.live_tet_count() < t.tet_count());
    }

    #[test]
    fn scalpel_cuts_along_its_sweep() {
        let mut path = line([-0.015, 0.03, 0.0], [-0.015, -0.008, 0.0], 100, 0);
        path.extend(line(
            [-0.015, -0.008, 0.0],
            [0.015, -0.008, 0.0],
            300,
            ACTIVATE,
        ));
        let (flags, t) = run(InstrumentKind::Scalpel, &path);
        assert_ne!(flags & tick_flags::CUT, 0);
        assert!(t.live_tet_count() < t.tet_count());
    }

    #[test]
    fn grasper_takes_and_lets_go() {
        let mut path = line([0.0, 0.01, 0.0], [0.0, 0.004, 0.0], 50, 0);
        path.extend(line([0.0, 0.004, 0.0], [0.0, 0.01, 0.0], 50, ACTIVATE));
        path.extend(line([0.0, 0.01, 0.0], [0.0, 0.01, 0.0], 5, 0));
        let (flags, t) = run(InstrumentKind::Grasper, &path);
        assert_ne!(flags & tick_flags::GRASP, 0);
        assert_ne!(flags & tick_flags::RELEASE, 0);
        assert_eq!(t.grasped_count(), 0);
    }

    #[test]
    fn marks_on_the_rising_edge_and_sees_no_go_particles() {
        let mut tissue = block(0.01, [4, 2, 4], Material::LIVER);
        let p0: [f64; 3] = tissue.positions_m[0].into();
        let mut path = line(p0, p0, 3, MARK);
        path.extend(line([0.0, 0.05, 0.0], [0.0, 0.05, 0.0], 3, 0));
        let mut inst = InstrumentState::new(InstrumentConfig::default(), &tissue, vec![0], 0.01);
        let params = StepParams::default();
        let flags: Vec<u32> = path
            .iter()
            .map(|&(p, b)| inst.step(&params, &mut tissue, p, b, true).unwrap().flags)
            .collect();
        assert_eq!(
            flags.iter().filter(|f| *f & tick_flags::MARK != 0).count(),
            1
        );
        // Particle 0 is touched at first, not from 5 cm above the block.
        assert_ne!(flags[0] & tick_flags::NO_GO_CONTACT, 0);
        assert_eq!(flags[5] & tick_flags::NO_GO_CONTACT, 0);
    }
}
