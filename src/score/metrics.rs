//! Motion and force metrics of a session, from its tick records: the ones with evidence
//! behind them (`../shared/reference/scoring.md`): time, tool-tip path length, number of
//! movements, idle time, smoothness as log dimensionless jerk (LDLJ), and peak, RMS and
//! integral force, force rate, and time above a tissue-safe force.
//!
//! Contract: pure functions of the records (world frame, metres, newtons, the tick period);
//! deterministic; no I/O. The tool-tip trajectory is resampled to [`ANALYSIS_RATE_HZ`] by
//! averaging whole blocks of ticks before it is differentiated, so that 1 kHz quantisation
//! does not dominate the derivatives (velocity, acceleration, jerk by central differences);
//! [`resampled_tip`] is that resampling, shared with the report's speed plot.
//! Metrics that need a movement (LDLJ) are `None` when the tool never moved.

use crate::bus::TickRecord;

/// Rate the trajectory is analysed at, hertz (blocks of ticks averaged).
pub const ANALYSIS_RATE_HZ: f64 = 100.0;
/// Tool speed above which the tool is moving, metres per second (ICSAD-style movement count).
pub const MOVING_SPEED_M_PER_S: f64 = 0.02;
/// Tool speed below which the tool is idle, metres per second.
pub const IDLE_SPEED_M_PER_S: f64 = 0.005;
/// The tissue-safe force used unless a scenario gives its own, newtons.
pub const DEFAULT_SAFE_FORCE_N: f64 = 3.0;

/// The metrics of one session.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MotionForceMetrics {
    /// Session length, seconds.
    pub duration_s: f64,
    /// Length of the tool tip's path, metres.
    pub path_length_m: f64,
    /// Movements: times the tip's speed rose above [`MOVING_SPEED_M_PER_S`].
    pub movements: u32,
    /// Time with the tip's speed below [`IDLE_SPEED_M_PER_S`], seconds.
    pub idle_s: f64,
    /// Log dimensionless jerk over the whole session (higher, i.e. less negative, is
    /// smoother); `None` when the tool never moved.
    pub ldlj: Option<f64>,
    /// Largest force on the hand, newtons.
    pub peak_force_n: f64,
    /// Root mean square force on the hand, newtons.
    pub rms_force_n: f64,
    /// Integral of the force magnitude over time, newton-seconds.
    pub force_integral_ns: f64,
    /// Mean magnitude of the force's rate of change, newtons per second.
    pub mean_force_rate_n_per_s: f64,
    /// Time above the tissue-safe force, seconds.
    pub time_above_safe_s: f64,
    /// The safe force used, newtons.
    pub safe_force_n: f64,
}

fn norm(v: [f64; 3]) -> f64 {
    (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// The metrics of `records` (consecutive ticks of `dt_s` seconds), with force measured on the
/// force sent to the hand and `safe_force_n` as the tissue-safe threshold.
pub fn motion_force_metrics(
    records: &[TickRecord],
    dt_s: f64,
    safe_force_n: f64,
) -> MotionForceMetrics {
    let duration_s = records.len() as f64 * dt_s;
    // Force: per tick, on the force written to the device.
    let forces: Vec<f64> = records
        .iter()
        .map(|r| norm(r.force_out_in_world_n))
        .collect();
    let peak_force_n = forces.iter().copied().fold(0.0, f64::max);
    let rms_force_n = if forces.is_empty() {
        0.0
    } else {
        (forces.iter().map(|f| f * f).sum::<f64>() / forces.len() as f64).sqrt()
    };
    let force_integral_ns = forces.iter().sum::<f64>() * dt_s;
    let time_above_safe_s = forces.iter().filter(|&&f| f > safe_force_n).count() as f64 * dt_s;
    let mean_force_rate_n_per_s = if records.len() > 1 {
        records
            .windows(2)
            .map(|w| norm(sub(w[1].force_out_in_world_n, w[0].force_out_in_world_n)) / dt_s)
            .sum::<f64>()
            / (records.len() - 1) as f64
    } else {
        0.0
    };

    // Motion: the tip resampled to the analysis rate.
    let (h, tip) = resampled_tip(records, dt_s);
    let path_length_m: f64 = tip.windows(2).map(|w| norm(sub(w[1], w[0]))).sum();
    let velocity: Vec<[f64; 3]> = tip
        .windows(2)
        .map(|w| sub(w[1], w[0]).map(|d| d / h))
        .collect();
    let speed: Vec<f64> = velocity.iter().map(|&v| norm(v)).collect();
    let mut movements = 0;
    let mut moving = false;
    for &s in &speed {
        if !moving && s > MOVING_SPEED_M_PER_S {
            movements += 1;
            moving = true;
        } else if moving && s < 0.5 * MOVING_SPEED_M_PER_S {
            moving = false;
        }
    }
    let idle_s = speed.iter().filter(|&&s| s < IDLE_SPEED_M_PER_S).count() as f64 * h;
    let ldlj = log_dimensionless_jerk(&velocity, h);
    MotionForceMetrics {
        duration_s,
        path_length_m,
        movements,
        idle_s,
        ldlj,
        peak_force_n,
        rms_force_n,
        force_integral_ns,
        mean_force_rate_n_per_s,
        time_above_safe_s,
        safe_force_n,
    }
}

/// Ticks averaged into one sample of the resampled tip: the tick period's share of
/// 1 / [`ANALYSIS_RATE_HZ`], at least one.
pub fn resample_block(dt_s: f64) -> usize {
    ((1.0 / ANALYSIS_RATE_HZ) / dt_s).round().max(1.0) as usize
}

/// The tool tip resampled to [`ANALYSIS_RATE_HZ`]: the mean tool position of each whole block
/// of [`resample_block`] ticks (a trailing partial block is dropped), with the sample period
/// `h_s` (block × `dt_s`). Sample `k` covers records `k * block .. (k + 1) * block`.
pub fn resampled_tip(records: &[TickRecord], dt_s: f64) -> (f64, Vec<[f64; 3]>) {
    let block = resample_block(dt_s);
    let h = block as f64 * dt_s;
    let tip = records
        .chunks(block)
        .filter(|c| c.len() == block)
        .map(|c| {
            let mut m = [0.0; 3];
            for r in c {
                for (a, v) in m.iter_mut().zip(r.tool_pos_in_world_m) {
                    *a += v;
                }
            }
            m.map(|a| a / block as f64)
        })
        .collect();
    (h, tip)
}

/// LDLJ of a velocity profile sampled every `h` seconds (Balasubramanian et al.):
/// `-ln((T³ / v_peak²) ∫ |d²v/dt²|² dt)`; `None` without motion.
pub fn log_dimensionless_jerk(velocity: &[[f64; 3]], h: f64) -> Option<f64> {
    if velocity.len() < 5 {
        return None;
    }
    let v_peak = velocity.iter().map(|&v| norm(v)).fold(0.0, f64::max);
    if v_peak < 1e-6 {
        return None;
    }
    let t = velocity.len() as f64 * h;
    let jerk_sq: f64 = velocity
        .windows(3)
        .map(|w| {
            let j = [0, 1, 2].map(|k| (w[2][k] - 2.0 * w[1][k] + w[0][k]) / (h * h));
            j[0] * j[0] + j[1] * j[1] + j[2] * j[2]
        })
        .sum::<f64>()
        * h;
    let dimensionless = t.powi(3) / (v_peak * v_peak) * jerk_sq;
    (dimensionless > 0.0).then(|| -dimensionless.ln())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DT: f64 = 1e-3;

    fn records(
        tip: impl Fn(f64) -> [f64; 3],
        force: impl Fn(f64) -> f64,
        s: f64,
    ) -> Vec<TickRecord> {
        let n = (s / DT) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 * DT;
                TickRecord {
                    tick: i as u64,
                    tool_pos_in_world_m: tip(t),
                    force_out_in_world_n: [0.0, force(t), 0.0],
                    ..TickRecord::default()
                }
            })
            .collect()
    }

    /// Minimum-jerk position from 0 to 1 over `tau` in [0, 1].
    fn min_jerk(tau: f64) -> f64 {
        let t = tau.clamp(0.0, 1.0);
        10.0 * t.powi(3) - 15.0 * t.powi(4) + 6.0 * t.powi(5)
    }

    /// A small deterministic noise in [-1, 1].
    fn noise(k: u64) -> f64 {
        let mut x = k.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
        x ^= x >> 29;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 32;
        (x % 2001) as f64 / 1000.0 - 1.0
    }

    /// An expert: one smooth, direct 8 cm reach in 2 s, then a gentle 1.5 N press.
    fn expert() -> Vec<TickRecord> {
        records(
            |t| [0.08 * min_jerk(t / 2.0), 0.0, 0.0],
            |t| {
                if t > 2.0 {
                    1.5 * ((t - 2.0) / 0.5).min(1.0)
                } else {
                    0.0
                }
            },
            3.0,
        )
    }

    /// A novice: the same reach in five hesitant sub-movements with a detour and tremor over
    /// 4.5 s, then a hard, uneven 4.5 N press.
    fn novice() -> Vec<TickRecord> {
        records(
            |t| {
                let tau = t / 4.0;
                let steps = 5.0;
                let k = (tau * steps).floor().min(steps - 1.0);
                let x = 0.08 * (k + min_jerk(tau * steps - k)) / steps;
                let detour = 0.02 * (std::f64::consts::PI * tau.min(1.0)).sin();
                let tremor = 0.0004 * noise((t / DT) as u64 / 20);
                [x + tremor, 0.0, detour]
            },
            |t| {
                if t > 4.0 {
                    4.5 * ((t - 4.0) / 0.1).min(1.0) + 0.8 * (t * 40.0).sin()
                } else {
                    0.0
                }
            },
            4.5,
        )
    }

    #[test]
    fn an_expert_and_a_novice_separate_on_every_metric() {
        let e = motion_force_metrics(&expert(), DT, DEFAULT_SAFE_FORCE_N);
        let n = motion_force_metrics(&novice(), DT, DEFAULT_SAFE_FORCE_N);
        assert!(e.duration_s < n.duration_s, "{e:?}\n{n:?}");
        assert!(e.path_length_m < n.path_length_m, "{e:?}\n{n:?}");
        assert!(e.movements < n.movements, "{e:?}\n{n:?}");
        assert!(
            e.ldlj.unwrap() > n.ldlj.unwrap(),
            "smoother is higher: {:?} vs {:?}",
            e.ldlj,
            n.ldlj
        );
        assert!(e.peak_force_n < n.peak_force_n);
        assert!(e.rms_force_n < n.rms_force_n);
        assert!(e.force_integral_ns < n.force_integral_ns);
        assert!(e.mean_force_rate_n_per_s < n.mean_force_rate_n_per_s);
        assert!(e.time_above_safe_s < n.time_above_safe_s);
        assert_eq!(e.time_above_safe_s, 0.0);
        // The expert's path is the 8 cm reach; the novice's detour and tremor add to it.
        assert!(
            (e.path_length_m - 0.08).abs() < 0.002,
            "{}",
            e.path_length_m
        );
        assert_eq!(e.movements, 1);
    }

    #[test]
    fn known_values() {
        // A constant 2 N for 1 s at rest.
        let r = records(|_| [0.0, 0.01, 0.0], |_| 2.0, 1.0);
        let m = motion_force_metrics(&r, DT, 3.0);
        assert!((m.duration_s - 1.0).abs() < 1e-12);
        assert_eq!(m.path_length_m, 0.0);
        assert_eq!(m.movements, 0);
        assert!((m.idle_s - 0.99).abs() < 1e-9, "{}", m.idle_s);
        assert_eq!(m.ldlj, None);
        assert!((m.peak_force_n - 2.0).abs() < 1e-12);
        assert!((m.rms_force_n - 2.0).abs() < 1e-12);
        assert!((m.force_integral_ns - 2.0).abs() < 1e-9);
        assert_eq!(m.mean_force_rate_n_per_s, 0.0);
        assert_eq!(m.time_above_safe_s, 0.0);
        // The same, above a 1.5 N threshold: the whole second.
        let m = motion_force_metrics(&r, DT, 1.5);
        assert!((m.time_above_safe_s - 1.0).abs() < 1e-9);
        // Empty input is all zeros.
        let m = motion_force_metrics(&[], DT, 3.0);
        assert_eq!((m.duration_s, m.peak_force_n, m.movements), (0.0, 0.0, 0));
    }

    #[test]
    fn the_resampled_tip_averages_whole_blocks() {
        // 25 ticks at 1 kHz: two whole blocks of 10, the trailing 5 dropped.
        let r = records(|t| [t, 2.0 * t, 0.0], |_| 0.0, 0.025);
        assert_eq!(resample_block(DT), 10);
        let (h, tip) = resampled_tip(&r, DT);
        assert!((h - 0.01).abs() < 1e-15);
        assert_eq!(tip.len(), 2);
        assert!((tip[0][0] - 0.0045).abs() < 1e-12, "{:?}", tip[0]);
        assert!((tip[1][1] - 2.0 * 0.0145).abs() < 1e-12, "{:?}", tip[1]);
        assert!(resampled_tip(&[], DT).1.is_empty());
    }

    #[test]
    fn ldlj_of_a_minimum_jerk_reach_does_not_depend_on_its_size_or_duration() {
        let ldlj = |dist: f64, dur: f64| {
            let r = records(|t| [dist * min_jerk(t / dur), 0.0, 0.0], |_| 0.0, dur);
            motion_force_metrics(&r, DT, 3.0).ldlj.unwrap()
        };
        let a = ldlj(0.05, 1.0);
        let b = ldlj(0.20, 3.0);
        assert!((a - b).abs() < 0.2, "{a} vs {b}");
        // Deterministic: same input, same bits.
        assert_eq!(ldlj(0.05, 1.0).to_bits(), a.to_bits());
    }
}
