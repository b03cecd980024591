//! Segmentation when no label map is given: presets by intensity, and the voxel tools they are
//! built from (3-D connected components, ball morphology, hole filling).
//!
//! This module owns [`segment`] and its [`Preset`]s, and the mask tools in their public form.
//! Everything is a pure function of its inputs, deterministic, and gives the same bits whatever
//! the number of threads (the work is split by slices or by bands of rows, never by anything
//! that changes the arithmetic).
//!
//! - [`Preset::AbdomenCt`] (`abdomen-ct`): liver (parenchyma), lesions (tumour), vessels, fat
//!   and bone from a CT in HU. Thresholds alone cannot do it (liver and muscle share HU;
//!   contrast-filled vessels overlap cancellous bone, `shared/reference/imaging.md`), so the
//!   preset uses shape and connectivity too; see [`AbdomenCt`] for the steps and ranges.
//! - [`Preset::Threshold`]: a list of `label: min..=max` rules, first match wins, for MR or
//!   anything else (`threshold:parenchyma=40..110,bone=400..`).
//!
//! The tools work on [`Mask`]s (`Volume<bool>`, one byte a voxel):
//! - [`components`]: 6-connected components by runs along `i` and union-find; ids in the order
//!   of each component's first voxel (`i` fastest), so they are deterministic.
//! - [`dilate`], [`erode`], [`open`], [`close`]: morphology with a Euclidean ball of a radius in
//!   metres (anisotropic spacing respected), by a separable exact distance transform
//!   (Felzenszwalb–Huttenlocher lower envelopes, one pass per axis, distances capped at the
//!   radius). Outside the volume counts as neither foreground nor background: erosion does not
//!   eat in from the volume's faces.
//! - [`fill_holes`]: background not connected (6-connectivity) to the volume's faces becomes
//!   foreground.

use std::ops::Range;

use super::labels::Label;
use super::volume::{Grid, LabelVolume, ScalarVolume, Volume};

/// A binary mask on a grid.
pub type Mask = Volume<bool>;

/// Why a segmentation is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// No preset has this name.
    #[error("unknown segmentation preset {name:?}; the presets are: {known}")]
    UnknownPreset { name: String, known: &'static str },
    /// A threshold preset that cannot be read or makes no sense.
    #[error("bad threshold preset {spec:?}: {why}")]
    BadThreshold { spec: String, why: String },
    /// A CT preset on a volume that is not CT in HU.
    #[error("{preset}: the volume does not look like CT in HU: {why}")]
    NotCt { preset: &'static str, why: String },
    /// The CT preset found no liver-like region.
    #[error(
        "{preset}: no liver-like region found (HU {min}..{max}, at least {thick_mm} mm thick)"
    )]
    NoLiver {
        preset: &'static str,
        min: f32,
        max: f32,
        thick_mm: f64,
    },
}

/// The names [`Preset::from_name`] knows, for error messages and `--help`.
pub const PRESET_NAMES: &str = "abdomen-ct, bone-ct, threshold:LABEL=MIN..MAX[,LABEL=MIN..MAX...] \
     (LABEL one of parenchyma, tumour, vessel, fat, bone; MIN or MAX may be left out)";

/// A segmentation preset.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Preset {
    /// Abdominal CT in HU: liver, lesions, vessels, fat, bone.
    AbdomenCt(AbdomenCt),
    /// Intensity windows, first match wins; voxels no rule matches are background.
    Threshold(Vec<Threshold>),
}

/// One intensity window of a [`Preset::Threshold`]: voxels in `min..=max` get `label`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    /// The label given.
    pub label: Label,
    /// Lowest intensity (inclusive; `-inf` for none).
    pub min: f32,
    /// Highest intensity (inclusive; `inf` for none).
    pub max: f32,
}

/// The `abdomen-ct` preset's ranges and sizes (HU; metres; cubic metres).
///
/// Steps, on a CT in HU:
/// 1. Body: voxels above `body_min_hu`, the largest component, holes filled. A volume with no
///    voxel below `body_min_hu` (no air) is refused as not CT.
/// 2. Liver: the body's voxels whose 3x3x3 mean is in `liver_hu`. Eroded by `liver_core_m`,
///    what survives is at least twice that thick (muscle walls and thin bridges do not): of
///    those components, the largest whose centre lies on the patient's right of the body's
///    centre (the largest of all if none does) is the seed. The liver is the window opened by
///    `bridge_cut_m` (thin bridges to neighbours cut), the component that holds the seed.
/// 3. Vessels: components of the voxels in `vessel_hu` that touch the liver dilated by
///    `near_liver_m`. Components in `vessel_hu` away from the liver are bone when they touch
///    voxels above `bone_min_hu` (cancellous bone next to cortical), background otherwise.
/// 4. The liver's envelope: liver and its vessels, closed by `liver_close_m`, holes filled,
///    and the voxels next to it that are neither fat nor vessel (its partial-volume rim).
/// 5. Lesions: inside the envelope, neither vessel nor bone, on the 3x3x3 mean (noise down
///    five-fold), voxels between `fat_hu.1` and `vessel_hu.0` that differ from the liver's
///    median by more than `lesion_delta_hu` (hypo- or hyperdense) and are not next to a vessel,
///    bone or the envelope's edge, opened by `lesion_open_m` (at least 1.5 voxels),
///    components of at least `lesion_min_m3`: these seed the lesions, which are the voxels
///    within that radius of a seed whose mean lies past half-way from the liver's median to
///    the seeds' mean level (hypo- and hyperdense seeds apart).
/// 6. Labels: fat (body voxels in `fat_hu`), then parenchyma (envelope voxels above
///    `fat_hu.1`), tumour, vessel, bone (voxels above `bone_min_hu`, components of at least
///    `bone_min_m3`, with step 3's), later ones over earlier ones. Everything else
///    (air, muscle, other organs) is background.
#[derive(Debug, Clone, PartialEq)]
pub struct AbdomenCt {
    /// Above this is the patient (HU).
    pub body_min_hu: f32,
    /// Liver parenchyma, with or without contrast (HU, inclusive).
    pub liver_hu: (f32, f32),
    /// Contrast-filled vessels (HU, inclusive).
    pub vessel_hu: (f32, f32),
    /// Fat (HU, inclusive).
    pub fat_hu: (f32, f32),
    /// Bone is above this (HU).
    pub bone_min_hu: f32,
    /// A lesion differs from the liver's median by more than this (HU).
    pub lesion_delta_hu: f32,
    /// Erosion that finds the liver's core: what survives is at least twice as thick (m).
    pub liver_core_m: f64,
    /// Opening that cuts the liver from thin bridges to what touches it (m).
    pub bridge_cut_m: f64,
    /// Vessels are kept within this of the liver (m).
    pub near_liver_m: f64,
    /// Closing of the liver's envelope (m): more than the widest vessel's radius.
    pub liver_close_m: f64,
    /// Opening of the lesion candidates (m): removes the partial-volume rims.
    pub lesion_open_m: f64,
    /// Smallest lesion kept (m^3).
    pub lesion_min_m3: f64,
    /// Smallest bone component kept (m^3).
    pub bone_min_m3: f64,
}

impl Default for AbdomenCt {
    fn default() -> Self {
        Self {
            body_min_hu: -500.0,
            liver_hu: (40.0, 110.0),
            vessel_hu: (150.0, 400.0),
            fat_hu: (-190.0, -30.0),
            bone_min_hu: 400.0,
            lesion_delta_hu: 20.0,
            liver_core_m: 0.010,
            bridge_cut_m: 0.003,
            near_liver_m: 0.010,
            liver_close_m: 0.008,
            lesion_open_m: 0.0025,
            lesion_min_m3: 1.0e-7,
            bone_min_m3: 1.0e-8,
        }
    }
}

impl Preset {
    /// The preset with this name (see [`PRESET_NAMES`]).
    pub fn from_name(name: &str) -> Result<Preset, SegmentError> {
        let name = name.trim();
        match name {
            "abdomen-ct" => return Ok(Preset::AbdomenCt(AbdomenCt::default())),
            "bone-ct" => {
                return Ok(Preset::Threshold(vec![Threshold {
                    label: Label::Bone,
                    min: 400.0,
                    max: f32::INFINITY,
                }]))
            }
            _ => {}
        }
        let Some(spec) = name.strip_prefix("threshold:") else {
            return Err(SegmentError::UnknownPreset {
                name: name.to_owned(),
                known: PRESET_NAMES,
            });
        };
        let bad = |why: String| SegmentError::BadThreshold {
            spec: name.to_owned(),
            why,
        };
        let mut rules = Vec::new();
        for rule in spec.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let (label, range) = rule
                .split_once('=')
                .ok_or_else(|| bad(format!("{rule:?} is not LABEL=MIN..MAX")))?;
            let label = Label::ALL
                .into_iter()
                .find(|l| l.name() == label.trim())
                .ok_or_else(|| bad(format!("unknown label {:?}", label.trim())))?;
            let (lo, hi) = range
                .split_once("..")
                .ok_or_else(|| bad(format!("{range:?} is not MIN..MAX")))?;
            let num = |s: &str, none: f32| -> Result<f32, SegmentError> {
                let s = s.trim();
                if s.is_empty() {
                    return Ok(none);
                }
                s.parse::<f32>()
                    .ok()
                    .filter(|v| !v.is_nan())
                    .ok_or_else(|| bad(format!("{s:?} is not a number")))
            };
            rules.push(Threshold {
                label,
                min: num(lo, f32::NEG_INFINITY)?,
                max: num(hi, f32::INFINITY)?,
            });
        }
        let preset = Preset::Threshold(rules);
        preset.check().map_err(|e| match e {
            SegmentError::BadThreshold { why, .. } => bad(why),
            other => other,
        })?;
        Ok(preset)
    }

    fn check(&self) -> Result<(), SegmentError> {
        if let Preset::Threshold(rules) = self {
            let bad = |why: String| SegmentError::BadThreshold {
                spec: format!("{rules:?}"),
                why,
            };
            if rules.is_empty() {
                return Err(bad("no rules".to_owned()));
            }
            for r in rules {
                if r.min.is_nan() || r.max.is_nan() || r.min > r.max {
                    return Err(bad(format!(
                        "{}: {}..{} is empty",
                        r.label.name(),
                        r.min,
                        r.max
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Segments a volume with a preset, on as many threads as the machine has (the result does not
/// depend on it).
pub fn segment(volume: &ScalarVolume, preset: &Preset) -> Result<LabelVolume, SegmentError> {
    segment_with(volume, preset, default_threads())
}

/// [`segment`] on `threads` threads (at least 1).
pub fn segment_with(
    volume: &ScalarVolume,
    preset: &Preset,
    threads: usize,
) -> Result<LabelVolume, SegmentError> {
    preset.check()?;
    let threads = threads.max(1);
    match preset {
        Preset::Threshold(rules) => Ok(threshold(volume, rules)),
        Preset::AbdomenCt(p) => abdomen_ct(volume, p, threads),
    }
}

/// The threads [`segment`] uses: the machine's parallelism.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn threshold(volume: &ScalarVolume, rules: &[Threshold]) -> LabelVolume {
    let data = volume
        .data
        .iter()
        .map(|&v| {
            rules
                .iter()
                .find(|r| v >= r.min && v <= r.max)
                .map_or(Label::Background as u8, |r| r.label as u8)
        })
        .collect();
    Volume {
        grid: volume.grid.clone(),
        data,
    }
}

const ABDOMEN: &str = "abdomen-ct";

fn abdomen_ct(
    volume: &ScalarVolume,
    p: &AbdomenCt,
    threads: usize,
) -> Result<LabelVolume, SegmentError> {
    let grid = &volume.grid;
    let hu = &volume.data;
    let mask_of = |f: &dyn Fn(f32) -> bool| Mask {
        grid: grid.clone(),
        data: hu.iter().map(|&v| f(v)).collect(),
    };
    let voxel_m3 = grid.spacing_m.iter().product::<f64>();

    // 1. Body.
    let air = hu.iter().filter(|&&v| v < p.body_min_hu).count();
    if air == 0 {
        return Err(SegmentError::NotCt {
            preset: ABDOMEN,
            why: format!("no voxel below {} HU (no air)", p.body_min_hu),
        });
    }
    let body = fill_holes(&keep_largest(&mask_of(&|v| v > p.body_min_hu)));

    // 2. Liver.
    let in_range = |v: f32, (lo, hi): (f32, f32)| v >= lo && v <= hi;
    // On the 3x3x3 mean: single voxels that the noise takes out of the window would otherwise
    // riddle the mask with holes that the erosion then widens.
    let smooth = box3_mean(volume, threads);
    let window = Mask {
        grid: grid.clone(),
        data: (0..hu.len())
            .map(|n| body.data[n] && in_range(smooth.data[n], p.liver_hu))
            .collect(),
    };
    let core = erode_t(&window, p.liver_core_m, threads);
    let comps = components(&core);
    let body_centre_x = centroid_x(&body);
    let pick = (0..comps.count())
        .filter(|&c| comps.centroid(c).is_some_and(|x| x < body_centre_x))
        .max_by_key(|&c| (comps.sizes[c], std::cmp::Reverse(c)))
        .or_else(|| comps.largest());
    let Some(pick) = pick else {
        return Err(SegmentError::NoLiver {
            preset: ABDOMEN,
            min: p.liver_hu.0,
            max: p.liver_hu.1,
            thick_mm: 2000.0 * p.liver_core_m,
        });
    };
    let seed = comps.mask(|c| c == pick);
    drop(core);
    // The liver: the window opened by a small ball (which cuts thin bridges to what touches
    // it), the component that holds the seed.
    let cut = erode_t(&window, p.bridge_cut_m, threads);
    let cut_comps = components(&cut);
    drop(cut);
    let holds_seed = cut_comps.touching(&seed);
    let liver = and(
        &dilate_t(&cut_comps.mask(|c| holds_seed[c]), p.bridge_cut_m, threads),
        &window,
    );
    drop((window, cut_comps, seed));
    let near = dilate_t(&liver, p.near_liver_m, threads);

    // 3. Vessels, and the bone they are not.
    let bone_hi = keep_above(
        &mask_of(&|v| v > p.bone_min_hu),
        (p.bone_min_m3 / voxel_m3).ceil() as u64,
    );
    let bone_touch = dilate_cross(&bone_hi);
    let vessel_range = mask_of(&|v| in_range(v, p.vessel_hu));
    let vcomps = components(&vessel_range);
    drop(vessel_range);
    let near_liver = vcomps.touching(&near);
    let near_bone = vcomps.touching(&bone_touch);
    drop((near, bone_touch));
    let vessel = vcomps.mask(|c| near_liver[c]);
    let bone_low = vcomps.mask(|c| !near_liver[c] && near_bone[c]);
    drop(vcomps);

    // 4. Envelope of the liver.
    let closed = fill_holes(&close_t(&or(&liver, &vessel), p.liver_close_m, threads));
    // And its partial-volume rim: neighbours that are neither fat nor vessel (the 3x3x3 mean
    // of the window took the outermost voxels below the window).
    let rim = dilate_cross(&closed);
    let envelope = Mask {
        grid: grid.clone(),
        data: (0..hu.len())
            .map(|n| closed.data[n] || rim.data[n] && hu[n] > p.fat_hu.1 && hu[n] < p.vessel_hu.0)
            .collect(),
    };
    drop((closed, rim));

    // 5. Lesions.
    let median = median_in(&smooth, &liver, p.liver_hu);
    // Strong candidates, opened and of a size, seed the lesions; the lesions are the weak
    // candidates (half the difference) near a seed, so that their edges, which the mean blurs
    // towards the liver, are not lost.
    // Strong candidates keep off the voxels next to vessels, bone and the envelope's edge:
    // there the mean mixes tissues, not a lesion.
    let mixed = or(
        &dilate_cross(&or(&vessel, &bone_hi)),
        &dilate_cross(&not(&envelope)),
    );
    let candidates = |delta: f32, strict: bool| Mask {
        grid: grid.clone(),
        data: (0..hu.len())
            .map(|n| {
                let s = smooth.data[n];
                envelope.data[n]
                    && !vessel.data[n]
                    && !bone_hi.data[n]
                    && (!strict || !mixed.data[n])
                    && s > p.fat_hu.1
                    && s < p.vessel_hu.0
                    && (s - median).abs() > delta
            })
            .collect(),
    };
    // At least one and a half voxels, so that it removes one-voxel shells.
    let min_spacing = grid.spacing_m.iter().cloned().fold(f64::INFINITY, f64::min);
    let open_r = p.lesion_open_m.max(1.5 * min_spacing);
    let seeds = keep_above(
        &open_t(&candidates(p.lesion_delta_hu, true), open_r, threads),
        (p.lesion_min_m3 / voxel_m3).ceil() as u64,
    );
    // The edge of a lesion is half-way between its level and the liver's: the mean level of
    // the hypodense seeds and of the hyperdense ones.
    let (mut lo, mut hi) = ((0.0f64, 0u64), (0.0f64, 0u64));
    for (&seed, &v) in seeds.data.iter().zip(&smooth.data) {
        if seed {
            let acc = if v < median { &mut lo } else { &mut hi };
            acc.0 += v as f64;
            acc.1 += 1;
        }
    }
    let edge = |(sum, n): (f64, u64)| {
        if n == 0 {
            p.lesion_delta_hu
        } else {
            (0.5 * (sum / n as f64 - median as f64).abs()) as f32
        }
    };
    let (edge_lo, edge_hi) = (edge(lo), edge(hi));
    let weak = candidates(0.0, false);
    let near_seed = dilate_t(&seeds, open_r, threads);
    let lesion = Mask {
        grid: grid.clone(),
        data: (0..hu.len())
            .map(|n| {
                let s = smooth.data[n];
                weak.data[n]
                    && near_seed.data[n]
                    && if s < median {
                        median - s > edge_lo
                    } else {
                        s - median > edge_hi
                    }
            })
            .collect(),
    };
    drop((weak, near_seed));
    drop((smooth, seeds));

    // 6. Labels.
    let mut out = vec![Label::Background as u8; hu.len()];
    for (n, o) in out.iter_mut().enumerate() {
        let v = hu[n];
        if body.data[n] && in_range(v, p.fat_hu) {
            *o = Label::Fat as u8;
        }
        if envelope.data[n] && v > p.fat_hu.1 {
            *o = Label::Parenchyma as u8;
        }
        if lesion.data[n] {
            *o = Label::Tumour as u8;
        }
        if vessel.data[n] {
            *o = Label::Vessel as u8;
        }
        if bone_hi.data[n] || bone_low.data[n] {
            *o = Label::Bone as u8;
        }
    }
    Ok(Volume {
        grid: grid.clone(),
        data: out,
    })
}

fn centroid_x(mask: &Mask) -> f64 {
    let comps = components(mask);
    let mut sum = 0.0;
    let mut n = 0u64;
    for c in 0..comps.count() {
        if let Some(x) = comps.centroid(c) {
            sum += x * comps.sizes[c] as f64;
            n += comps.sizes[c];
        }
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// The median (to 0.25 HU) of `values` over `mask`, within `range`.
fn median_in(values: &ScalarVolume, mask: &Mask, range: (f32, f32)) -> f32 {
    const BIN: f32 = 0.25;
    let bins = (((range.1 - range.0) / BIN).ceil() as usize).max(1) + 1;
    let mut hist = vec![0u64; bins];
    for (v, &m) in values.data.iter().zip(&mask.data) {
        if m && *v >= range.0 && *v <= range.1 {
            hist[(((*v - range.0) / BIN) as usize).min(bins - 1)] += 1;
        }
    }
    let total: u64 = hist.iter().sum();
    let mut seen = 0;
    for (b, &h) in hist.iter().enumerate() {
        seen += h;
        if 2 * seen >= total {
            return range.0 + (b as f32 + 0.5) * BIN;
        }
    }
    0.5 * (range.0 + range.1)
}

fn and(a: &Mask, b: &Mask) -> Mask {
    Mask {
        grid: a.grid.clone(),
        data: a.data.iter().zip(&b.data).map(|(x, y)| *x && *y).collect(),
    }
}

fn or(a: &Mask, b: &Mask) -> Mask {
    Mask {
        grid: a.grid.clone(),
        data: a.data.iter().zip(&b.data).map(|(x, y)| *x || *y).collect(),
    }
}

fn not(a: &Mask) -> Mask {
    Mask {
        grid: a.grid.clone(),
        data: a.data.iter().map(|x| !x).collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Connected components.

/// A run of foreground voxels along `i`: row `j + dims[1] * k`, `i` in `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    row: usize,
    start: usize,
    end: usize,
}

/// The 6-connected components of a mask.
#[derive(Debug, Clone)]
pub struct Components {
    grid: Grid,
    runs: Vec<Run>,
    comp: Vec<u32>,
    sizes: Vec<u64>,
}

/// Labels the 6-connected components of `mask`.
pub fn components(mask: &Mask) -> Components {
    let [nx, ny, nz] = mask.grid.dims;
    let mut runs = Vec::new();
    let mut row_first = Vec::with_capacity(ny * nz + 1);
    for row in 0..ny * nz {
        row_first.push(runs.len());
        let line = &mask.data[row * nx..(row + 1) * nx];
        let mut i = 0;
        while i < nx {
            if line[i] {
                let start = i;
                while i < nx && line[i] {
                    i += 1;
                }
                runs.push(Run { row, start, end: i });
            } else {
                i += 1;
            }
        }
    }
    row_first.push(runs.len());

    let mut parent: Vec<u32> = (0..runs.len() as u32).collect();
    fn find(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            let up = parent[parent[x as usize] as usize];
            parent[x as usize] = up;
            x = up;
        }
        x
    }
    let union = |parent: &mut [u32], a: u32, b: u32| {
        let (ra, rb) = (find(parent, a), find(parent, b));
        if ra != rb {
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            parent[hi as usize] = lo;
        }
    };
    for row in 0..ny * nz {
        let (j, k) = (row % ny, row / ny);
        let here = row_first[row]..row_first[row + 1];
        let mut neighbours = [None, None];
        if j > 0 {
            neighbours[0] = Some(row - 1);
        }
        if k > 0 {
            neighbours[1] = Some(row - ny);
        }
        for q in neighbours.into_iter().flatten() {
            let there = row_first[q]..row_first[q + 1];
            let (mut a, mut b) = (here.start, there.start);
            while a < here.end && b < there.end {
                let (ra, rb) = (runs[a], runs[b]);
                if ra.start < rb.end && rb.start < ra.end {
                    union(&mut parent, a as u32, b as u32);
                }
                if ra.end <= rb.end {
                    a += 1;
                } else {
                    b += 1;
                }
            }
        }
    }
    // Compact ids in order of first run.
    let mut id_of_root = vec![u32::MAX; runs.len()];
    let mut comp = Vec::with_capacity(runs.len());
    let mut sizes = Vec::new();
    for (r, run) in runs.iter().enumerate() {
        let root = find(&mut parent, r as u32) as usize;
        if id_of_root[root] == u32::MAX {
            id_of_root[root] = sizes.len() as u32;
            sizes.push(0);
        }
        let id = id_of_root[root];
        comp.push(id);
        sizes[id as usize] += (run.end - run.start) as u64;
    }
    Components {
        grid: mask.grid.clone(),
        runs,
        comp,
        sizes,
    }
}

impl Components {
    /// Number of components.
    pub fn count(&self) -> usize {
        self.sizes.len()
    }

    /// Voxels in each component, by id.
    pub fn sizes(&self) -> &[u64] {
        &self.sizes
    }

    /// The largest component (the first of equals), if any.
    pub fn largest(&self) -> Option<usize> {
        (0..self.count()).max_by_key(|&c| (self.sizes[c], std::cmp::Reverse(c)))
    }

    /// The mask of the components `keep` says yes to.
    pub fn mask(&self, keep: impl Fn(usize) -> bool) -> Mask {
        let keep: Vec<bool> = (0..self.count()).map(keep).collect();
        let nx = self.grid.dims[0];
        let mut data = vec![false; self.grid.len()];
        for (run, &c) in self.runs.iter().zip(&self.comp) {
            if keep[c as usize] {
                data[run.row * nx + run.start..run.row * nx + run.end].fill(true);
            }
        }
        Mask {
            grid: self.grid.clone(),
            data,
        }
    }

    /// For each component, whether any of its voxels is set in `other` (same grid).
    pub fn touching(&self, other: &Mask) -> Vec<bool> {
        let nx = self.grid.dims[0];
        let mut hit = vec![false; self.count()];
        for (run, &c) in self.runs.iter().zip(&self.comp) {
            if !hit[c as usize] {
                let at = run.row * nx;
                hit[c as usize] = other.data[at + run.start..at + run.end].iter().any(|&v| v);
            }
        }
        hit
    }

    /// For each component, whether it reaches a face of the volume.
    pub fn on_border(&self) -> Vec<bool> {
        let [nx, ny, nz] = self.grid.dims;
        let mut hit = vec![false; self.count()];
        for (run, &c) in self.runs.iter().zip(&self.comp) {
            let (j, k) = (run.row % ny, run.row / ny);
            if run.start == 0 || run.end == nx || j == 0 || j + 1 == ny || k == 0 || k + 1 == nz {
                hit[c as usize] = true;
            }
        }
        hit
    }

    /// Patient-frame x (LPS, metres) of a component's centre, if it exists.
    fn centroid(&self, c: usize) -> Option<f64> {
        if self.sizes.get(c).is_none_or(|&s| s == 0) {
            return None;
        }
        let ny = self.grid.dims[1];
        let mut sum = [0.0f64; 3];
        for (run, _) in self
            .runs
            .iter()
            .zip(&self.comp)
            .filter(|(_, &id)| id as usize == c)
        {
            let len = (run.end - run.start) as f64;
            let mid_i = 0.5 * (run.start + run.end - 1) as f64;
            sum[0] += mid_i * len;
            sum[1] += (run.row % ny) as f64 * len;
            sum[2] += (run.row / ny) as f64 * len;
        }
        let n = self.sizes[c] as f64;
        Some(self.grid.voxel_to_patient(sum.map(|s| s / n)).x)
    }
}

/// The largest 6-connected component of `mask` (empty if there is none).
pub fn keep_largest(mask: &Mask) -> Mask {
    let comps = components(mask);
    let largest = comps.largest();
    comps.mask(|c| Some(c) == largest)
}

/// The 6-connected components of `mask` with at least `min_voxels` voxels.
pub fn keep_above(mask: &Mask, min_voxels: u64) -> Mask {
    let comps = components(mask);
    comps.mask(|c| comps.sizes[c] >= min_voxels)
}

/// `mask` with its holes filled: background not 6-connected to a face of the volume.
pub fn fill_holes(mask: &Mask) -> Mask {
    let comps = components(&not(mask));
    let outside = comps.on_border();
    let holes = comps.mask(|c| !outside[c]);
    or(mask, &holes)
}

// ---------------------------------------------------------------------------------------------
// Morphology.

/// Voxels within `radius_m` (Euclidean, patient frame) of a set voxel of `mask`.
pub fn dilate(mask: &Mask, radius_m: f64) -> Mask {
    dilate_t(mask, radius_m, default_threads())
}

/// Voxels farther than `radius_m` from every unset voxel of `mask` (set voxels only).
pub fn erode(mask: &Mask, radius_m: f64) -> Mask {
    erode_t(mask, radius_m, default_threads())
}

/// Erosion then dilation: removes what a ball of `radius_m` does not fit in.
pub fn open(mask: &Mask, radius_m: f64) -> Mask {
    open_t(mask, radius_m, default_threads())
}

/// Dilation then erosion: fills gaps and dents narrower than a ball of `radius_m`.
pub fn close(mask: &Mask, radius_m: f64) -> Mask {
    close_t(mask, radius_m, default_threads())
}

fn dilate_t(mask: &Mask, radius_m: f64, threads: usize) -> Mask {
    // Only the mask's bounding box and the radius around it can change.
    let mut out = Mask {
        grid: mask.grid.clone(),
        data: vec![false; mask.data.len()],
    };
    if let Some(region) = bounding_box(mask, radius_m) {
        let w = within(&crop(mask, &region), radius_m, threads);
        paste(&mut out, &w, &region);
    }
    out
}

fn erode_t(mask: &Mask, radius_m: f64, threads: usize) -> Mask {
    // Background farther than the radius from the mask's bounding box cannot matter.
    let mut out = Mask {
        grid: mask.grid.clone(),
        data: vec![false; mask.data.len()],
    };
    if let Some(region) = bounding_box(mask, radius_m) {
        let inside = crop(mask, &region);
        let near_background = within(&not(&inside), radius_m, threads);
        let eroded = Mask {
            grid: inside.grid.clone(),
            data: inside
                .data
                .iter()
                .zip(&near_background.data)
                .map(|(&m, &b)| m && !b)
                .collect(),
        };
        paste(&mut out, &eroded, &region);
    }
    out
}

/// The bounding box of `mask`'s set voxels, grown by `radius_m` (and a voxel) on every side
/// and clipped to the volume; `None` for an empty mask.
fn bounding_box(mask: &Mask, radius_m: f64) -> Option<[Range<usize>; 3]> {
    let [nx, ny, nz] = mask.grid.dims;
    let (mut lo, mut hi) = ([usize::MAX; 3], [0usize; 3]);
    for k in 0..nz {
        for j in 0..ny {
            let row = &mask.data[(j + ny * k) * nx..(j + ny * k + 1) * nx];
            if let (Some(a), Some(b)) = (row.iter().position(|&v| v), row.iter().rposition(|&v| v))
            {
                lo = [lo[0].min(a), lo[1].min(j), lo[2].min(k)];
                hi = [hi[0].max(b), hi[1].max(j), hi[2].max(k)];
            }
        }
    }
    if lo[0] == usize::MAX {
        return None;
    }
    Some(std::array::from_fn(|a| {
        let m = (radius_m.max(0.0) / mask.grid.spacing_m[a]).ceil() as usize + 1;
        lo[a].saturating_sub(m)..(hi[a] + m + 1).min(mask.grid.dims[a])
    }))
}

/// The part of `mask` in `region`, as a mask of its own.
fn crop(mask: &Mask, region: &[Range<usize>; 3]) -> Mask {
    let dims = [region[0].len(), region[1].len(), region[2].len()];
    let mut data = Vec::with_capacity(dims.iter().product());
    for k in region[2].clone() {
        for j in region[1].clone() {
            let at = mask.grid.index(region[0].start, j, k);
            data.extend_from_slice(&mask.data[at..at + dims[0]]);
        }
    }
    Mask {
        grid: Grid {
            dims,
            ..mask.grid.clone()
        },
        data,
    }
}

/// Writes `part` (cropped at `region`) back into `into`.
fn paste(into: &mut Mask, part: &Mask, region: &[Range<usize>; 3]) {
    let [px, py, _] = part.grid.dims;
    for (dk, k) in region[2].clone().enumerate() {
        for (dj, j) in region[1].clone().enumerate() {
            let at = into.grid.index(region[0].start, j, k);
            let from = (dj + py * dk) * px;
            into.data[at..at + px].copy_from_slice(&part.data[from..from + px]);
        }
    }
}

fn open_t(mask: &Mask, radius_m: f64, threads: usize) -> Mask {
    dilate_t(&erode_t(mask, radius_m, threads), radius_m, threads)
}

fn close_t(mask: &Mask, radius_m: f64, threads: usize) -> Mask {
    erode_t(&dilate_t(mask, radius_m, threads), radius_m, threads)
}

/// Dilation by the 6-neighbour cross (one voxel).
fn dilate_cross(mask: &Mask) -> Mask {
    let [nx, ny, nz] = mask.grid.dims;
    let (sy, sz) = (nx, nx * ny);
    let d = &mask.data;
    let mut out = d.clone();
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let n = i + sy * j + sz * k;
                if d[n] {
                    continue;
                }
                out[n] = (i > 0 && d[n - 1])
                    || (i + 1 < nx && d[n + 1])
                    || (j > 0 && d[n - sy])
                    || (j + 1 < ny && d[n + sy])
                    || (k > 0 && d[n - sz])
                    || (k + 1 < nz && d[n + sz]);
            }
        }
    }
    Mask {
        grid: mask.grid.clone(),
        data: out,
    }
}

/// Voxels whose Euclidean distance to the nearest set voxel of `features` is at most
/// `radius_m`, by a separable distance transform capped at the radius.
fn within(features: &Mask, radius_m: f64, threads: usize) -> Mask {
    let grid = &features.grid;
    let [nx, ny, nz] = grid.dims;
    let unit = grid.spacing_m.iter().cloned().fold(f64::INFINITY, f64::min);
    let w = grid.spacing_m.map(|s| (s / unit) as f32);
    let r = (radius_m.max(0.0) / unit) as f32;
    // A hair over the radius, so that lattice distances equal to it count.
    let cap = r * r * (1.0 + 1e-5) + 1e-6;
    let mut d2 = vec![f32::INFINITY; grid.len()];
    let plane = nx * ny;

    // Along i, then j: slice by slice.
    par_slices(&mut d2, plane, threads, |k0, slab| {
        let mut lines = vec![0f32; BLOCK * ny];
        let mut scratch = Envelope::default();
        for (dk, slice) in slab.chunks_mut(plane).enumerate() {
            let k = k0 + dk;
            let feat = &features.data[k * plane..(k + 1) * plane];
            for j in 0..ny {
                let f = &feat[j * nx..(j + 1) * nx];
                let out = &mut slice[j * nx..(j + 1) * nx];
                distance_1d_binary(f, w[0], cap, out);
            }
            // Blocks of BLOCK lines along j, gathered row by row (contiguous reads).
            for i0 in (0..nx).step_by(BLOCK) {
                let b = BLOCK.min(nx - i0);
                for j in 0..ny {
                    for (n, v) in slice[i0 + j * nx..i0 + j * nx + b].iter().enumerate() {
                        lines[n * ny + j] = *v;
                    }
                }
                for n in 0..b {
                    let line = &mut lines[n * ny..(n + 1) * ny];
                    if scratch.run(line, w[1], cap) {
                        line.copy_from_slice(&scratch.out);
                    }
                }
                for j in 0..ny {
                    for (n, v) in slice[i0 + j * nx..i0 + j * nx + b].iter_mut().enumerate() {
                        *v = lines[n * ny + j];
                    }
                }
            }
        }
    });
    // Along k: bands of rows through every slice, blocks of BLOCK lines.
    par_bands(&mut d2, nx, ny, threads, |rows, slices| {
        let mut lines = vec![0f32; BLOCK * nz];
        let mut scratch = Envelope::default();
        for j in 0..rows.len() {
            for i0 in (0..nx).step_by(BLOCK) {
                let b = BLOCK.min(nx - i0);
                let at = j * nx + i0;
                for (k, s) in slices.iter().enumerate() {
                    for (n, v) in s[at..at + b].iter().enumerate() {
                        lines[n * nz + k] = *v;
                    }
                }
                for n in 0..b {
                    let line = &mut lines[n * nz..(n + 1) * nz];
                    if scratch.run(line, w[2], cap) {
                        line.copy_from_slice(&scratch.out);
                    }
                }
                for (k, s) in slices.iter_mut().enumerate() {
                    for (n, v) in s[at..at + b].iter_mut().enumerate() {
                        *v = lines[n * nz + k];
                    }
                }
            }
        }
    });
    Mask {
        grid: grid.clone(),
        data: d2.iter().map(|&d| d <= cap).collect(),
    }
}

/// Lines gathered at once by the distance transform's passes along `j` and `k`.
const BLOCK: usize = 16;

/// Squared distance along a line to the nearest set voxel (spacing `w`), infinite past `cap`.
fn distance_1d_binary(f: &[bool], w: f32, cap: f32, out: &mut [f32]) {
    let n = f.len();
    let mut last: Option<usize> = None;
    for i in 0..n {
        if f[i] {
            last = Some(i);
        }
        out[i] = last.map_or(f32::INFINITY, |l| {
            let d = (i - l) as f32 * w;
            d * d
        });
    }
    let mut next: Option<usize> = None;
    for i in (0..n).rev() {
        if f[i] {
            next = Some(i);
        }
        if let Some(nx) = next {
            let d = (nx - i) as f32 * w;
            out[i] = out[i].min(d * d);
        }
        if out[i] > cap {
            out[i] = f32::INFINITY;
        }
    }
}

/// Scratch space of the 1-D lower envelope of parabolas (Felzenszwalb & Huttenlocher).
#[derive(Default)]
struct Envelope {
    v: Vec<usize>,
    z: Vec<f32>,
    out: Vec<f32>,
}

impl Envelope {
    /// `out[i] = min_q (w (i - q))^2 + f[q]` over finite `f[q]`, infinite past `cap`. Returns
    /// `false` (and leaves `out` as it was) when `f` has no finite value or is all zero: then
    /// the answer is `f` itself.
    fn run(&mut self, f: &[f32], w: f32, cap: f32) -> bool {
        if f.iter().all(|v| !v.is_finite()) || f.iter().all(|&v| v == 0.0) {
            return false;
        }
        let n = f.len();
        self.out.clear();
        self.out.resize(n, f32::INFINITY);
        self.v.clear();
        self.z.clear();
        let x = |q: usize| q as f32 * w;
        for (q, &fq) in f.iter().enumerate() {
            if !fq.is_finite() {
                continue;
            }
            loop {
                let Some(&p) = self.v.last() else {
                    self.v.push(q);
                    self.z.push(f32::NEG_INFINITY);
                    break;
                };
                let (xq, xp) = (x(q), x(p));
                let s = ((fq + xq * xq) - (f[p] + xp * xp)) / (2.0 * (xq - xp));
                if self.z.last().is_some_and(|&zl| s <= zl) {
                    self.v.pop();
                    self.z.pop();
                } else {
                    self.v.push(q);
                    self.z.push(s);
                    break;
                }
            }
        }
        if self.v.is_empty() {
            return true;
        }
        let mut k = 0;
        for i in 0..n {
            let xi = x(i);
            while k + 1 < self.v.len() && self.z[k + 1] < xi {
                k += 1;
            }
            let d = xi - x(self.v[k]);
            let val = d * d + f[self.v[k]];
            self.out[i] = if val > cap { f32::INFINITY } else { val };
        }
        true
    }
}

/// The 3x3x3 mean (edges replicated), separable.
fn box3_mean(volume: &ScalarVolume, threads: usize) -> ScalarVolume {
    let [nx, ny, nz] = volume.grid.dims;
    let plane = nx * ny;
    let src = &volume.data;
    let mut a = vec![0f32; src.len()];
    // Along i and j within each slice.
    par_slices(&mut a, plane, threads, |k0, slab| {
        let mut tmp = vec![0f32; plane];
        for (dk, out) in slab.chunks_mut(plane).enumerate() {
            let s = &src[(k0 + dk) * plane..(k0 + dk + 1) * plane];
            for j in 0..ny {
                for i in 0..nx {
                    let (l, r) = (i.saturating_sub(1), (i + 1).min(nx - 1));
                    tmp[i + j * nx] = s[l + j * nx] + s[i + j * nx] + s[r + j * nx];
                }
            }
            for j in 0..ny {
                let (u, d) = (j.saturating_sub(1), (j + 1).min(ny - 1));
                for i in 0..nx {
                    out[i + j * nx] = tmp[i + u * nx] + tmp[i + j * nx] + tmp[i + d * nx];
                }
            }
        }
    });
    // Along k.
    let mut b = vec![0f32; src.len()];
    let a_ref = &a;
    par_slices(&mut b, plane, threads, |k0, slab| {
        for (dk, out) in slab.chunks_mut(plane).enumerate() {
            let k = k0 + dk;
            let (lo, hi) = (k.saturating_sub(1), (k + 1).min(nz - 1));
            for n in 0..plane {
                out[n] =
                    (a_ref[lo * plane + n] + a_ref[k * plane + n] + a_ref[hi * plane + n]) / 27.0;
            }
        }
    });
    Volume {
        grid: volume.grid.clone(),
        data: b,
    }
}

// ---------------------------------------------------------------------------------------------
// Threads.

/// Runs `f(first_slice, slab)` on up to `threads` threads, each on whole consecutive slices of
/// `plane` elements.
fn par_slices<T: Send>(
    data: &mut [T],
    plane: usize,
    threads: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let slices = data.len() / plane.max(1);
    let threads = threads.clamp(1, slices.max(1));
    if threads == 1 {
        f(0, data);
        return;
    }
    let per = slices.div_ceil(threads);
    std::thread::scope(|s| {
        for (t, slab) in data.chunks_mut(per * plane).enumerate() {
            let f = &f;
            s.spawn(move || f(t * per, slab));
        }
    });
}

/// Runs `f(rows, slices)` on up to `threads` threads, each on a band of rows `j` of every slice
/// (`slices[k]` holds rows `rows` of slice `k`, `nx` elements a row).
fn par_bands<T: Send>(
    data: &mut [T],
    nx: usize,
    ny: usize,
    threads: usize,
    f: impl Fn(Range<usize>, &mut [&mut [T]]) + Sync,
) {
    let threads = threads.clamp(1, ny.max(1));
    let per = ny.div_ceil(threads);
    let bands: Vec<Range<usize>> = (0..ny)
        .step_by(per)
        .map(|j0| j0..(j0 + per).min(ny))
        .collect();
    let mut parts: Vec<Vec<&mut [T]>> = bands.iter().map(|_| Vec::new()).collect();
    for slice in data.chunks_mut(nx * ny) {
        let mut rest = slice;
        for (b, band) in bands.iter().enumerate() {
            let (head, tail) = rest.split_at_mut(band.len() * nx);
            parts[b].push(head);
            rest = tail;
        }
    }
    if parts.len() == 1 {
        if let Some(part) = parts.first_mut() {
            f(bands[0].clone(), part);
        }
        return;
    }
    std::thread::scope(|s| {
        for (band, mut part) in bands.into_iter().zip(parts) {
            let f = &f;
            s.spawn(move || f(band, &mut part));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(dims: [usize; 3], spacing: f64) -> Grid {
        Grid::axis_aligned(dims, [spacing; 3], [0.0; 3])
    }

    fn mask_from(dims: [usize; 3], f: impl Fn(usize, usize, usize) -> bool) -> Mask {
        let g = grid(dims, 0.001);
        let mut data = Vec::with_capacity(g.len());
        for k in 0..dims[2] {
            for j in 0..dims[1] {
                for i in 0..dims[0] {
                    data.push(f(i, j, k));
                }
            }
        }
        Mask { grid: g, data }
    }

    /// Brute-force reference of `within`.
    fn within_brute(m: &Mask, r_vox: f64) -> Vec<bool> {
        let [nx, ny, nz] = m.grid.dims;
        let mut out = vec![false; m.data.len()];
        for k in 0..nz {
            for j in 0..ny {
                for i in 0..nx {
                    let mut hit = false;
                    'search: for c in 0..nz {
                        for b in 0..ny {
                            for a in 0..nx {
                                if m.data[m.grid.index(a, b, c)] {
                                    let d2 = (a as f64 - i as f64).powi(2)
                                        + (b as f64 - j as f64).powi(2)
                                        + (c as f64 - k as f64).powi(2);
                                    if d2 <= r_vox * r_vox + 1e-9 {
                                        hit = true;
                                        break 'search;
                                    }
                                }
                            }
                        }
                    }
                    out[m.grid.index(i, j, k)] = hit;
                }
            }
        }
        out
    }

    #[test]
    fn distance_transform_dilation_matches_brute_force_on_every_thread_count() {
        let m = mask_from([13, 11, 9], |i, j, k| {
            (i * 7 + j * 3 + k * 5) % 23 == 0 || (i == 6 && j == 5)
        });
        for r in [0.0, 1.0, 1.5, 2.3, 3.0] {
            let want = within_brute(&m, r);
            for t in [1, 2, 3, 8] {
                let got = within(&m, r * 0.001, t);
                assert_eq!(got.data, want, "radius {r} voxels, {t} threads");
            }
        }
    }

    #[test]
    fn cropped_dilation_and_erosion_equal_the_whole_volume_ones() {
        let m = mask_from([30, 24, 20], |i, j, k| {
            let blob =
                (i as i32 - 12).pow(2) + (j as i32 - 10).pow(2) + (k as i32 - 9).pow(2) <= 30;
            blob || (i == 20 && j == 5 && k == 4) || (i == 21 && j == 5 && k == 4)
        });
        for r in [0.0, 1.0, 1.7, 2.5, 4.2] {
            for t in [1, 2] {
                let want = within(&m, r * 0.001, t);
                assert_eq!(dilate_t(&m, r * 0.001, t).data, want.data, "dilate {r}");
                let want = not(&within(&not(&m), r * 0.001, t));
                assert_eq!(erode_t(&m, r * 0.001, t).data, want.data, "erode {r}");
            }
        }
        let empty = mask_from([5, 5, 5], |_, _, _| false);
        assert!(dilate(&empty, 0.003).data.iter().all(|&v| !v));
        assert!(erode(&empty, 0.003).data.iter().all(|&v| !v));
    }

    #[test]
    fn components_count_six_connectivity_and_order() {
        // Two cubes touching only along an edge (not 6-connected), and one far away.
        let m = mask_from([10, 10, 10], |i, j, k| {
            (i < 3 && j < 3 && k < 3)
                || ((3..5).contains(&i) && (3..5).contains(&j) && k < 3)
                || (i == 8 && j == 8 && k == 8)
        });
        let c = components(&m);
        assert_eq!(c.count(), 3);
        assert_eq!(c.sizes(), &[27, 12, 1]);
        assert_eq!(c.largest(), Some(0));
        assert_eq!(keep_above(&m, 5).data.iter().filter(|&&v| v).count(), 39);
        // A U shape joins at the bottom: one component.
        let u = mask_from([7, 7, 3], |i, j, _| {
            (i == 1 || i == 5) && j > 0 || j == 1 && (1..=5).contains(&i)
        });
        assert_eq!(components(&u).count(), 1);
    }

    #[test]
    fn holes_are_filled_but_tunnels_and_border_pockets_are_not() {
        // A hollow box with a hole in the middle, and a pocket open to the volume's face.
        let m = mask_from([9, 9, 9], |i, j, k| {
            let shell = (1..8).contains(&i) && (1..8).contains(&j) && (1..8).contains(&k);
            let hollow = (3..6).contains(&i) && (3..6).contains(&j) && (3..6).contains(&k);
            shell && !hollow
        });
        let f = fill_holes(&m);
        assert_eq!(f.data.iter().filter(|&&v| v).count(), 7 * 7 * 7);
        // Drill a tunnel from the cavity to the outside: no longer a hole.
        let mut t = m.clone();
        for i in 0..4 {
            t.set(i, 4, 4, false);
        }
        assert_eq!(fill_holes(&t).data, t.data);
    }

    #[test]
    fn opening_removes_thin_bridges_and_closing_fills_gaps() {
        // Two 7-voxel cubes joined by a one-voxel-thick bar.
        let m = mask_from([20, 9, 9], |i, j, k| {
            let cube =
                |lo: usize| (lo..lo + 7).contains(&i) && (1..8).contains(&j) && (1..8).contains(&k);
            cube(1) || cube(12) || (j == 4 && k == 4 && (8..12).contains(&i))
        });
        assert_eq!(components(&m).count(), 1);
        let o = open(&m, 0.0015);
        assert_eq!(components(&o).count(), 2);
        // Closing a one-voxel gap.
        let g = mask_from([15, 9, 9], |i, j, k| {
            (1..8).contains(&j) && (1..8).contains(&k) && (2..13).contains(&i) && i != 7
        });
        let c = close(&g, 0.0015);
        // Filled, but for the box's convex edges, where the ball does not reach across.
        assert!((2..7).all(|j| (2..7).all(|k| c.get(7, j, k) == Some(true))));
        assert_eq!(c.get(7, 1, 1), Some(false));
    }

    #[test]
    fn presets_by_name_and_bad_names() {
        assert!(matches!(
            Preset::from_name("abdomen-ct"),
            Ok(Preset::AbdomenCt(_))
        ));
        let p = Preset::from_name("threshold:fat=-190..-30, bone=400..").unwrap();
        assert_eq!(
            p,
            Preset::Threshold(vec![
                Threshold {
                    label: Label::Fat,
                    min: -190.0,
                    max: -30.0
                },
                Threshold {
                    label: Label::Bone,
                    min: 400.0,
                    max: f32::INFINITY
                }
            ])
        );
        let e = Preset::from_name("brain-mri").unwrap_err();
        assert!(e.to_string().contains("abdomen-ct"), "{e}");
        assert!(matches!(
            Preset::from_name("threshold:liver=1..2"),
            Err(SegmentError::BadThreshold { .. })
        ));
        assert!(matches!(
            Preset::from_name("threshold:bone=5..1"),
            Err(SegmentError::BadThreshold { .. })
        ));
        assert!(matches!(
            Preset::from_name("threshold:"),
            Err(SegmentError::BadThreshold { .. })
        ));
    }
}
