//! Scenario outcome metrics: what the session did to the tissue and how well it met the
//! scenario's goals, from the tick records and the tissue as the session left it.
//!
//! - palpation: `localisation_error_mm` (horizontal distance from the last mark to the
//!   tumour's centre; without a mark, the largest horizontal distance in the tissue) and
//!   `marked`;
//! - resection: `tumour_removed_pct`, `margin_removed_pct` (the healthy shell within the
//!   scenario's margin of the tumour), `healthy_removed_cm3` (healthy tissue removed beyond the
//!   margin), `vessel_contact_s`;
//! - biopsy: `tip_error_mm` (distance from the tumour's centre to the needle tip at its
//!   deepest point in the last pass), `attempts` (punctures of the surface), `vessel_contact_s`;
//! - warm-up: `targets_touched` (tip within 4 mm of the tip radius of a target while pressing
//!   at least 0.1 N), `force_on_target_error_n` (mean distance of the force from the scenario's
//!   band while on a target);
//! - every scenario: `damaged_volume_cm3` (live tissue strained past the damage threshold) and
//!   `errors` (episodes of touching a no-go structure or of force above the safe force).
//!
//! Contract: pure and deterministic.

use nalgebra::Vector3;

use crate::bus::{tick_flags, TickRecord};
use crate::session::scenario::{CaseGeometry, Scenario};
use crate::tissue::Tissue;
use crate::twin::labels::Label;

/// Force on a target that counts as touching it, newtons.
pub const TOUCH_FORCE_N: f64 = 0.1;
/// How far beyond the tip radius a target still counts as touched, metres.
pub const TOUCH_REACH_M: f64 = 0.004;

fn norm(v: [f64; 3]) -> f64 {
    Vector3::from(v).norm()
}

/// Rising edges of `flag` in `records`.
fn episodes(records: &[TickRecord], on: impl Fn(&TickRecord) -> bool) -> u32 {
    let mut n = 0;
    let mut prev = false;
    for r in records {
        let now = on(r);
        if now && !prev {
            n += 1;
        }
        prev = now;
    }
    n
}

/// The outcome metrics of a session as `(key, value)` pairs, for the keys `scenario` lists
/// (motion and force metrics are not computed here).
pub fn outcome_metrics(
    scenario: &Scenario,
    geometry: &CaseGeometry,
    rest: &Tissue,
    after: &Tissue,
    tet_labels: &[u8],
    records: &[TickRecord],
    dt_s: f64,
) -> Vec<(String, f64)> {
    let vol = rest.tet_rest_volumes_m3();
    let label = |t: usize| {
        tet_labels
            .get(t)
            .copied()
            .unwrap_or(Label::Parenchyma as u8)
    };
    let removed = |t: usize| !after.is_tet_alive(t);
    let centroid = |t: usize| {
        rest.tets()[t]
            .iter()
            .map(|&q| rest.positions_m[q as usize])
            .sum::<Vector3<f64>>()
            / 4.0
    };
    let tumour = geometry.tumour_centre_m;
    let no_go_s = records
        .iter()
        .filter(|r| r.flags & tick_flags::NO_GO_CONTACT != 0)
        .count() as f64
        * dt_s;
    let mut out = Vec::new();
    for key in &scenario.metrics {
        let value = match key.as_str() {
            "damaged_volume_cm3" => after.damaged_volume_m3(0.0) * 1e6,
            "errors" => {
                let no_go = episodes(records, |r| r.flags & tick_flags::NO_GO_CONTACT != 0);
                let over = episodes(records, |r| {
                    norm(r.force_out_in_world_n) > scenario.safe_force_n
                });
                f64::from(no_go + over)
            }
            "vessel_contact_s" => no_go_s,
            "marked" => {
                let marked = records.iter().any(|r| r.flags & tick_flags::MARK != 0);
                f64::from(u8::from(marked))
            }
            "localisation_error_mm" => {
                let Some(c) = tumour else { continue };
                let mark = records
                    .iter()
                    .rev()
                    .find(|r| r.flags & tick_flags::MARK != 0);
                match mark {
                    Some(r) => {
                        let p = r.tool_pos_in_world_m;
                        ((p[0] - c.x).powi(2) + (p[2] - c.z).powi(2)).sqrt() * 1e3
                    }
                    None => {
                        let [lo, hi] = geometry.bounds_m;
                        let dx = (c.x - lo.x).abs().max((hi.x - c.x).abs());
                        let dz = (c.z - lo.z).abs().max((hi.z - c.z).abs());
                        (dx * dx + dz * dz).sqrt() * 1e3
                    }
                }
            }
            "tumour_removed_pct" | "margin_removed_pct" | "healthy_removed_cm3" => {
                let Some(c) = tumour else { continue };
                let shell_m = geometry.tumour_radius_m + scenario.margin_m.unwrap_or(0.0);
                let (mut tumour_all, mut tumour_gone) = (0.0, 0.0);
                let (mut shell_all, mut shell_gone, mut beyond_gone) = (0.0, 0.0, 0.0);
                for (t, &v) in vol.iter().enumerate() {
                    let l = label(t);
                    if l == Label::Tumour as u8 {
                        tumour_all += v;
                        if removed(t) {
                            tumour_gone += v;
                        }
                    } else if (centroid(t) - c).norm() <= shell_m {
                        shell_all += v;
                        if removed(t) {
                            shell_gone += v;
                        }
                    } else if removed(t) {
                        beyond_gone += v;
                    }
                }
                match key.as_str() {
                    "tumour_removed_pct" if tumour_all > 0.0 => 100.0 * tumour_gone / tumour_all,
                    "margin_removed_pct" if shell_all > 0.0 => 100.0 * shell_gone / shell_all,
                    "healthy_removed_cm3" => beyond_gone * 1e6,
                    _ => continue,
                }
            }
            "attempts" => f64::from(episodes(records, |r| r.flags & tick_flags::PUNCTURE != 0)),
            "tip_error_mm" => {
                let Some(c) = tumour else { continue };
                let dir = Vector3::from(scenario.direction_in_world)
                    .try_normalize(1e-12)
                    .unwrap_or(-Vector3::y());
                let last_pass = records
                    .iter()
                    .rposition(|r| r.flags & tick_flags::PUNCTURE != 0)
                    .unwrap_or(0);
                let deepest = records[last_pass.min(records.len())..]
                    .iter()
                    .max_by(|a, b| {
                        let d = |r: &TickRecord| Vector3::from(r.tool_pos_in_world_m).dot(&dir);
                        d(a).total_cmp(&d(b))
                    });
                match deepest {
                    Some(r) => (Vector3::from(r.tool_pos_in_world_m) - c).norm() * 1e3,
                    None => continue,
                }
            }
            "targets_touched" | "force_on_target_error_n" => {
                let targets = geometry.warmup_targets(rest, scenario.targets.unwrap_or(5));
                let reach = scenario.tip_radius_m + TOUCH_REACH_M;
                let band = scenario.force_band_n.unwrap_or([0.5, 1.5]);
                let mut touched = vec![false; targets.len()];
                let (mut err_sum, mut err_n) = (0.0, 0u64);
                for r in records {
                    let f = norm(r.force_out_in_world_n);
                    if f < TOUCH_FORCE_N {
                        continue;
                    }
                    let p = Vector3::from(r.tool_pos_in_world_m);
                    if let Some(k) = targets.iter().position(|t| (p - t).norm() <= reach) {
                        touched[k] = true;
                        err_sum += (band[0] - f).max(f - band[1]).max(0.0);
                        err_n += 1;
                    }
                }
                if key == "targets_touched" {
                    touched.iter().filter(|&&t| t).count() as f64
                } else if err_n > 0 {
                    err_sum / err_n as f64
                } else {
                    band[1]
                }
            }
            _ => continue,
        };
        out.push((key.clone(), value));
    }
    out
}
