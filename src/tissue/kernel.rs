//! The material kernel: stable Neo-Hookean tets projected in coloured batches of [`LANES`].
//!
//! Owns the per-tet solver data in structure-of-arrays batches. Tets are greedily coloured so
//! that no two tets of one colour share a particle; each colour is cut into batches of
//! [`LANES`] tets that are projected together, lane by lane, with the same arithmetic in every
//! lane (the compiler turns the lane loops into SIMD; the particle loads use AVX2 gathers when
//! the CPU has them). Colours run one after another, so the sweep is still Gauss-Seidel across
//! colours, and within a colour the order does not matter (its tets are independent).
//!
//! The arithmetic is f32 on a structure-of-arrays copy of the particles (start positions
//! relative to the mesh centre, displacements kept apart, inverse masses), made before a sweep
//! and added back to the f64 positions after it. Padding lanes name a sentinel slot past the
//! last particle, so no two lanes of a batch name the same particle.
//!
//! Per tet, the deviatoric constraint `C_D = |F|` (compliance `1/(mu V)`) and the hydrostatic
//! constraint `C_H = det F - 1 - mu/lambda` (compliance `1/(lambda V)`) are solved together as
//! one 2x2 system (as Macklin & Müller 2021 suggest): solving them one after the other leaves a
//! bias between two constraints that share all four particles, which made the tets too soft
//! in volume (Poisson ratio 0.35 measured for 0.45); the coupled solve measures 0.42 at the
//! same cost.
//!
//! Contract: [`MaterialBatches::project`] neither allocates nor locks. It is deterministic, and
//! gives the same bits with and without the AVX2 path: every lane does the same IEEE operations
//! in the same order, and no fused multiply-add is written.

// Index loops over lanes and matrix entries are the clearest form of this arithmetic.
#![allow(clippy::needless_range_loop)]

use nalgebra::{Matrix3, Vector3};

/// Tets per batch.
pub const LANES: usize = 8;

/// The kernel's arithmetic precision (positions stay f64; see the module docs).
type R = f32;
type Lane = [R; LANES];

/// One batch of up to [`LANES`] tets of the same colour.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    /// Particle indices, `idx[k][lane]` is vertex `k` of the lane's tet.
    idx: [[u32; LANES]; 4],
    /// Tet id per lane (`u32::MAX` for a padding lane).
    pub(crate) tet: [u32; LANES],
    /// `M = Dm^-1 Dm^-T` (symmetric) of the rest shape `Dm`, entries 00, 11, 22, 01, 02, 12.
    metric: [Lane; 6],
    /// `1 / det Dm` (`1 / (6 V)`).
    inv_det_dm: Lane,
    deviatoric_compliance: Lane,
    hydrostatic_compliance: Lane,
    hydrostatic_rest: Lane,
    /// 1 for a live tet, 0 for padding or a removed tet.
    active: Lane,
    lambda_deviatoric: Lane,
    lambda_hydrostatic: Lane,
    /// Squared Frobenius norm of the Green strain `(F^T F - I) / 2` at the last sweep that
    /// recorded strain.
    green_norm_sq: Lane,
}

/// Per-tet rest data handed to [`MaterialBatches::new`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct TetRest {
    pub idx: [u32; 4],
    pub inv_rest_shape: Matrix3<f64>,
    pub deviatoric_compliance: f64,
    pub hydrostatic_compliance: f64,
    pub hydrostatic_rest: f64,
}

/// Where a tet lives among the batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    batch: u32,
    lane: u8,
}

/// All tets in coloured batches.
#[derive(Debug, Clone)]
pub(crate) struct MaterialBatches {
    batches: Vec<Batch>,
    soa: Soa,
    /// `[start, end)` batch ranges of each colour.
    colours: Vec<(u32, u32)>,
    slot_of_tet: Vec<Slot>,
}

/// The particles in the kernel's precision, structure of arrays: where each particle was when
/// the sweep began, relative to `origin_m` (the centre of the rest mesh), and the displacement
/// the sweep has made since, kept apart. A correction far below the f32 resolution of a
/// position (about 1e-8 m at 10 cm) is still exact in the displacement, so a slow static
/// settle is not stalled by rounding; the displacement is added back to the f64 positions.
#[derive(Debug, Clone)]
struct Soa {
    origin_m: Vector3<f64>,
    x: Vec<R>,
    y: Vec<R>,
    z: Vec<R>,
    dx: Vec<R>,
    dy: Vec<R>,
    dz: Vec<R>,
    w: Vec<R>,
}

impl Soa {
    fn new(rest_positions_m: &[Vector3<f64>]) -> Self {
        let n = rest_positions_m.len();
        let (mut lo, mut hi) = (Vector3::repeat(f64::MAX), Vector3::repeat(f64::MIN));
        for p in rest_positions_m {
            lo = lo.inf(p);
            hi = hi.sup(p);
        }
        let origin_m = if n > 0 {
            (lo + hi) / 2.0
        } else {
            Vector3::zeros()
        };
        // One slot more than there are particles: the sentinel that padding lanes point at
        // (at the origin, massless, never copied back).
        Self {
            origin_m,
            x: vec![0.0; n + 1],
            y: vec![0.0; n + 1],
            z: vec![0.0; n + 1],
            dx: vec![0.0; n + 1],
            dy: vec![0.0; n + 1],
            dz: vec![0.0; n + 1],
            w: vec![0.0; n + 1],
        }
    }

    fn load(&mut self, positions_m: &[Vector3<f64>], inv_mass_per_kg: &[f64]) {
        for (q, p) in positions_m.iter().enumerate() {
            let r = p - self.origin_m;
            self.x[q] = r.x as R;
            self.y[q] = r.y as R;
            self.z[q] = r.z as R;
            self.w[q] = inv_mass_per_kg[q] as R;
        }
        self.dx.fill(0.0);
        self.dy.fill(0.0);
        self.dz.fill(0.0);
    }

    fn store(&self, positions_m: &mut [Vector3<f64>]) {
        for (q, p) in positions_m.iter_mut().enumerate() {
            p.x += self.dx[q] as f64;
            p.y += self.dy[q] as f64;
            p.z += self.dz[q] as f64;
        }
    }
}

/// Greedy colouring: each tet takes the lowest colour not used by a tet sharing a particle.
fn colour(tets: &[[u32; 4]], particles: usize) -> Vec<u32> {
    // For each particle, a bit set of the colours of the tets that use it (up to 128 colours;
    // a lattice needs about 20).
    let mut used = vec![0u128; particles];
    let mut out = Vec::with_capacity(tets.len());
    for t in tets {
        let taken = t.iter().fold(0u128, |acc, &q| acc | used[q as usize]);
        let c = (!taken).trailing_zeros();
        assert!(c < 128, "tet mesh needs more than 128 colours");
        for &q in t {
            used[q as usize] |= 1u128 << c;
        }
        out.push(c);
    }
    out
}

impl MaterialBatches {
    /// Colours the tets and packs them into batches. Set-up: allocates.
    pub(crate) fn new(rest: &[TetRest], rest_positions_m: &[Vector3<f64>]) -> Self {
        let particles = rest_positions_m.len();
        assert!(
            rest.iter()
                .all(|r| r.idx.iter().all(|&q| (q as usize) < particles)),
            "tet refers to a particle that does not exist"
        );
        let tets: Vec<[u32; 4]> = rest.iter().map(|r| r.idx).collect();
        let colour_of = colour(&tets, particles);
        let n_colours = colour_of.iter().copied().max().map_or(0, |c| c + 1);
        let mut batches = Vec::new();
        let mut colours = Vec::new();
        let mut slot_of_tet = vec![
            Slot {
                batch: u32::MAX,
                lane: 0
            };
            rest.len()
        ];
        for c in 0..n_colours {
            let start = batches.len() as u32;
            let members: Vec<usize> = (0..rest.len()).filter(|&t| colour_of[t] == c).collect();
            for chunk in members.chunks(LANES) {
                // Padding lanes point at the sentinel slot past the last particle, so no two
                // lanes of a batch ever name the same particle, and are inactive.
                let sentinel = particles as u32;
                let mut b = Batch {
                    idx: [[sentinel; LANES]; 4],
                    tet: [u32::MAX; LANES],
                    metric: [[0.0; LANES]; 6],
                    inv_det_dm: [0.0; LANES],
                    deviatoric_compliance: [1.0; LANES],
                    hydrostatic_compliance: [1.0; LANES],
                    hydrostatic_rest: [1.0; LANES],
                    active: [0.0; LANES],
                    lambda_deviatoric: [0.0; LANES],
                    lambda_hydrostatic: [0.0; LANES],
                    green_norm_sq: [0.0; LANES],
                };
                for (lane, &t) in chunk.iter().enumerate() {
                    let r = &rest[t];
                    for k in 0..4 {
                        b.idx[k][lane] = r.idx[k];
                    }
                    b.tet[lane] = t as u32;
                    let m = r.inv_rest_shape * r.inv_rest_shape.transpose();
                    for (e, (row, col)) in [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]
                        .into_iter()
                        .enumerate()
                    {
                        b.metric[e][lane] = m[(row, col)] as R;
                    }
                    b.inv_det_dm[lane] = r.inv_rest_shape.determinant() as R;
                    b.deviatoric_compliance[lane] = r.deviatoric_compliance as R;
                    b.hydrostatic_compliance[lane] = r.hydrostatic_compliance as R;
                    b.hydrostatic_rest[lane] = r.hydrostatic_rest as R;
                    b.active[lane] = 1.0;
                    slot_of_tet[t] = Slot {
                        batch: batches.len() as u32,
                        lane: lane as u8,
                    };
                }
                batches.push(b);
            }
            colours.push((start, batches.len() as u32));
        }
        Self {
            batches,
            soa: Soa::new(rest_positions_m),
            colours,
            slot_of_tet,
        }
    }

    /// Number of colours.
    pub(crate) fn colour_count(&self) -> usize {
        self.colours.len()
    }

    /// Calls `f(tet, |E|^2)` for every live tet whose squared Green-strain norm at the last
    /// sweep that recorded strain exceeds `above_sq`, in batch order. Batches with no such lane
    /// are skipped after one vector comparison. Never allocates.
    pub(crate) fn for_each_strain_above(&self, above_sq: f32, mut f: impl FnMut(usize, f32)) {
        for b in &self.batches {
            let hot = (0..LANES).fold(false, |acc, l| {
                acc | (b.green_norm_sq[l] * b.active[l] > above_sq)
            });
            if !hot {
                continue;
            }
            for l in 0..LANES {
                if b.active[l] != 0.0 && b.green_norm_sq[l] > above_sq {
                    f(b.tet[l] as usize, b.green_norm_sq[l]);
                }
            }
        }
    }

    /// Frobenius norm of tet `t`'s Green strain at the last sweep that recorded strain.
    #[cfg(test)]
    pub(crate) fn green_norm(&self, t: usize) -> f64 {
        let s = self.slot_of_tet[t];
        (self.batches[s.batch as usize].green_norm_sq[s.lane as usize] as f64).sqrt()
    }

    /// Takes tet `t` out of the solve (cut, resected or torn). Never allocates.
    pub(crate) fn deactivate(&mut self, t: usize) {
        let s = self.slot_of_tet[t];
        self.batches[s.batch as usize].active[s.lane as usize] = 0.0;
    }

    /// Zeroes every multiplier (start of a substep).
    pub(crate) fn reset_multipliers(&mut self) {
        for b in &mut self.batches {
            b.lambda_deviatoric = [0.0; LANES];
            b.lambda_hydrostatic = [0.0; LANES];
        }
    }

    /// One Gauss-Seidel sweep over all colours with `h2 = h^2` (substep length squared). With
    /// `record_strain`, each tet's Green strain before its projection is kept for
    /// [`MaterialBatches::green_norm`].
    pub(crate) fn project(
        &mut self,
        positions_m: &mut [Vector3<f64>],
        inv_mass_per_kg: &[f64],
        h2: f64,
        record_strain: bool,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above).
                unsafe { self.project_avx2(positions_m, inv_mass_per_kg, h2, record_strain) };
                return;
            }
        }
        self.project_portable(positions_m, inv_mass_per_kg, h2, record_strain);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn project_avx2(
        &mut self,
        positions_m: &mut [Vector3<f64>],
        inv_mass_per_kg: &[f64],
        h2: f64,
        record_strain: bool,
    ) {
        self.sweep::<Avx2Gather>(positions_m, inv_mass_per_kg, h2, record_strain);
    }

    fn project_portable(
        &mut self,
        positions_m: &mut [Vector3<f64>],
        inv_mass_per_kg: &[f64],
        h2: f64,
        record_strain: bool,
    ) {
        self.sweep::<PlainGather>(positions_m, inv_mass_per_kg, h2, record_strain);
    }

    #[inline(always)]
    fn sweep<G: Gather>(
        &mut self,
        positions_m: &mut [Vector3<f64>],
        inv_mass_per_kg: &[f64],
        h2: f64,
        record_strain: bool,
    ) {
        let inv_h2 = (1.0 / h2) as R;
        self.soa.load(positions_m, inv_mass_per_kg);
        for b in self.batches.iter_mut() {
            project_batch::<G>(b, &mut self.soa, inv_h2, record_strain);
        }
        self.soa.store(positions_m);
    }
}

macro_rules! lanes {
    (|$l:ident| $e:expr) => {{
        let mut out: Lane = [0.0 as R; LANES];
        for $l in 0..LANES {
            out[$l] = $e;
        }
        out
    }};
}

/// Loads `v[idx[l]]` into lane `l`.
trait Gather {
    /// # Safety
    /// Every index must be below `v.len()`, and the CPU must have the instructions the
    /// implementation uses.
    unsafe fn gather(v: &[R], idx: &[u32; LANES]) -> Lane;
}

/// One load per lane.
struct PlainGather;

impl Gather for PlainGather {
    #[inline(always)]
    unsafe fn gather(v: &[R], idx: &[u32; LANES]) -> Lane {
        // SAFETY: the caller guarantees the indices are in range.
        lanes!(|l| unsafe { *v.get_unchecked(idx[l] as usize) })
    }
}

/// AVX2's gather instruction (eight f32 lanes).
struct Avx2Gather;

impl Gather for Avx2Gather {
    #[inline(always)]
    unsafe fn gather(v: &[R], idx: &[u32; LANES]) -> Lane {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{
                __m256i, _mm256_i32gather_ps, _mm256_loadu_si256, _mm256_storeu_ps,
            };
            const _: () = assert!(LANES == 8 && std::mem::size_of::<R>() == 4);
            let mut out: Lane = [0.0; LANES];
            // SAFETY: the caller guarantees AVX2 and in-range indices (below 2^31, as u32
            // particle indices of a mesh that fits in memory are); the loads and stores are
            // unaligned-safe on arrays of exactly eight lanes.
            unsafe {
                let i = _mm256_loadu_si256(idx.as_ptr() as *const __m256i);
                let g = _mm256_i32gather_ps::<4>(v.as_ptr(), i);
                _mm256_storeu_ps(out.as_mut_ptr(), g);
            }
            out
        }
        #[cfg(not(target_arch = "x86_64"))]
        // SAFETY: forwarded.
        unsafe {
            PlainGather::gather(v, idx)
        }
    }
}

#[inline(always)]
fn project_batch<G: Gather>(b: &mut Batch, soa: &mut Soa, inv_h2: R, record_strain: bool) {
    // Gather. Every index was checked against the particle count in `MaterialBatches::new`.
    let mut x = [[[0.0 as R; LANES]; 3]; 4];
    let mut u = [[[0.0 as R; LANES]; 3]; 4];
    let mut w = [[0.0 as R; LANES]; 4];
    for k in 0..4 {
        // SAFETY: indices in range (see above); the CPU check was made by the caller.
        unsafe {
            x[k][0] = G::gather(&soa.x, &b.idx[k]);
            x[k][1] = G::gather(&soa.y, &b.idx[k]);
            x[k][2] = G::gather(&soa.z, &b.idx[k]);
            u[k][0] = G::gather(&soa.dx, &b.idx[k]);
            u[k][1] = G::gather(&soa.dy, &b.idx[k]);
            u[k][2] = G::gather(&soa.dz, &b.idx[k]);
            let wk = G::gather(&soa.w, &b.idx[k]);
            w[k] = lanes!(|l| wk[l] * b.active[l]);
        }
    }
    // Edge vectors d_j = x_{j+1} - x_0 (columns of Ds), component i: start positions and
    // displacements differenced separately.
    let mut d = [[[0.0 as R; LANES]; 3]; 3];
    for j in 0..3 {
        for i in 0..3 {
            d[j][i] = lanes!(|l| (x[j + 1][i][l] - x[0][i][l]) + (u[j + 1][i][l] - u[0][i][l]));
        }
    }
    // Everything is written in terms of the edge vectors, with the rest shape folded into
    // M = Dm^-1 Dm^-T and 1/det Dm (F = Ds Dm^-1 itself is never formed):
    //   |F|^2 = tr(F^T F) = tr(C M) with C = Ds^T Ds,
    //   d|F|/dx_j = (Ds M)_j / |F|           (column j, vertex j+1),
    //   det F = det Ds / det Dm,  d det F/dx_j = cof(Ds)_j / det Dm.
    let dot = |a: usize, c: usize| -> Lane {
        lanes!(|l| d[a][0][l] * d[c][0][l] + d[a][1][l] * d[c][1][l] + d[a][2][l] * d[c][2][l])
    };
    let (c00, c11, c22) = (dot(0, 0), dot(1, 1), dot(2, 2));
    let (c01, c02, c12) = (dot(0, 1), dot(0, 2), dot(1, 2));
    let m = &b.metric;
    let norm2 = lanes!(|l| c00[l] * m[0][l]
        + c11[l] * m[1][l]
        + c22[l] * m[2][l]
        + 2.0 * (c01[l] * m[3][l] + c02[l] * m[4][l] + c12[l] * m[5][l]));
    if record_strain {
        // |E|^2 = (tr((C M)^2) - 2 tr(C M) + 3) / 4 for E = (F^T F - I) / 2. Only large strains
        // matter here (damage and tearing thresholds), where f32 cancellation is harmless.
        let c = [[c00, c01, c02], [c01, c11, c12], [c02, c12, c22]];
        let mm = |r: usize, k: usize| -> usize {
            match (r.min(k), r.max(k)) {
                (0, 0) => 0,
                (1, 1) => 1,
                (2, 2) => 2,
                (0, 1) => 3,
                (0, 2) => 4,
                _ => 5,
            }
        };
        let mut p = [[[0.0 as R; LANES]; 3]; 3];
        for r in 0..3 {
            for k in 0..3 {
                p[r][k] = lanes!(|l| c[r][0][l] * m[mm(0, k)][l]
                    + c[r][1][l] * m[mm(1, k)][l]
                    + c[r][2][l] * m[mm(2, k)][l]);
            }
        }
        let mut tr_p2 = [0.0 as R; LANES];
        for r in 0..3 {
            for k in 0..3 {
                tr_p2 = lanes!(|l| tr_p2[l] + p[r][k][l] * p[k][r][l]);
            }
        }
        b.green_norm_sq = lanes!(|l| (0.25 * (tr_p2[l] - 2.0 * norm2[l] + 3.0)).max(0.0));
    }
    let norm = lanes!(|l| norm2[l].sqrt().max(1e-12));
    let inv_norm = lanes!(|l| 1.0 / norm[l]);
    // Cofactor columns of Ds: d1 x d2, d2 x d0, d0 x d1.
    let mut cross = [[[0.0 as R; LANES]; 3]; 3];
    for (j, (a, c)) in [(1usize, 2usize), (2, 0), (0, 1)].into_iter().enumerate() {
        cross[j][0] = lanes!(|l| d[a][1][l] * d[c][2][l] - d[a][2][l] * d[c][1][l]);
        cross[j][1] = lanes!(|l| d[a][2][l] * d[c][0][l] - d[a][0][l] * d[c][2][l]);
        cross[j][2] = lanes!(|l| d[a][0][l] * d[c][1][l] - d[a][1][l] * d[c][0][l]);
    }
    let det = lanes!(|l| (d[0][0][l] * cross[0][0][l]
        + d[0][1][l] * cross[0][1][l]
        + d[0][2][l] * cross[0][2][l])
        * b.inv_det_dm[l]);
    // Particle gradients, vertex j+1 for j = 0..3; vertex 0 takes minus their sum.
    let mut gd = [[[0.0 as R; LANES]; 3]; 4];
    let mut gh = [[[0.0 as R; LANES]; 3]; 4];
    let col = [[0usize, 3, 4], [3, 1, 5], [4, 5, 2]];
    for j in 0..3 {
        let [m0, m1, m2] = col[j];
        for i in 0..3 {
            gd[j + 1][i] = lanes!(|l| (d[0][i][l] * m[m0][l]
                + d[1][i][l] * m[m1][l]
                + d[2][i][l] * m[m2][l])
                * inv_norm[l]);
            gh[j + 1][i] = lanes!(|l| cross[j][i][l] * b.inv_det_dm[l]);
        }
    }
    for i in 0..3 {
        gd[0][i] = lanes!(|l| -(gd[1][i][l] + gd[2][i][l] + gd[3][i][l]));
        gh[0][i] = lanes!(|l| -(gh[1][i][l] + gh[2][i][l] + gh[3][i][l]));
    }
    let mut add = [0.0 as R; LANES];
    let mut ahh = [0.0 as R; LANES];
    let mut adh = [0.0 as R; LANES];
    for k in 0..4 {
        for i in 0..3 {
            add = lanes!(|l| add[l] + w[k][l] * gd[k][i][l] * gd[k][i][l]);
            ahh = lanes!(|l| ahh[l] + w[k][l] * gh[k][i][l] * gh[k][i][l]);
            adh = lanes!(|l| adh[l] + w[k][l] * gd[k][i][l] * gh[k][i][l]);
        }
    }
    let alpha_d = lanes!(|l| b.deviatoric_compliance[l] * inv_h2);
    let alpha_h = lanes!(|l| b.hydrostatic_compliance[l] * inv_h2);
    let a11 = lanes!(|l| add[l] + alpha_d[l]);
    let a22 = lanes!(|l| ahh[l] + alpha_h[l]);
    let det_a = lanes!(|l| a11[l] * a22[l] - adh[l] * adh[l]);
    let r1 = lanes!(|l| -norm[l] - alpha_d[l] * b.lambda_deviatoric[l]);
    let r2 = lanes!(|l| -(det[l] - b.hydrostatic_rest[l]) - alpha_h[l] * b.lambda_hydrostatic[l]);
    // A positive-definite 2x2 system has det > 0; anything else (all masses zero in the lane,
    // a removed tet) moves nothing.
    let ok = lanes!(|l| if det_a[l] > 0.0 { b.active[l] } else { 0.0 });
    let inv_det = lanes!(|l| if det_a[l] > 0.0 { 1.0 / det_a[l] } else { 0.0 });
    let dl_d = lanes!(|l| (r1[l] * a22[l] - adh[l] * r2[l]) * inv_det[l] * ok[l]);
    let dl_h = lanes!(|l| (a11[l] * r2[l] - adh[l] * r1[l]) * inv_det[l] * ok[l]);
    b.lambda_deviatoric = lanes!(|l| b.lambda_deviatoric[l] + dl_d[l]);
    b.lambda_hydrostatic = lanes!(|l| b.lambda_hydrostatic[l] + dl_h[l]);
    // Scatter: the tets of one batch share no particle (padding lanes name the sentinel), so
    // each lane's particles were changed by no other lane since the gather: the new
    // displacement is the gathered one plus this correction, written with plain stores. Lanes
    // that must not move anything (padding, removed tets) add an exact zero, selected rather
    // than multiplied so that nothing non-finite in them can leak out.
    for k in 0..4 {
        let mut out = [[0.0 as R; LANES]; 3];
        for (i, o) in out.iter_mut().enumerate() {
            *o = lanes!(|l| {
                let v = (gd[k][i][l] * dl_d[l] + gh[k][i][l] * dl_h[l]) * w[k][l];
                u[k][i][l] + if ok[l] != 0.0 { v } else { 0.0 }
            });
        }
        for l in 0..LANES {
            let q = b.idx[k][l] as usize;
            debug_assert!(q < soa.dx.len());
            // SAFETY: as for the gather, every index is at most the sentinel's, below the
            // length of all three arrays.
            unsafe {
                *soa.dx.get_unchecked_mut(q) = out[0][l];
                *soa.dy.get_unchecked_mut(q) = out[1][l];
                *soa.dz.get_unchecked_mut(q) = out[2][l];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tissue::TetMesh;

    #[test]
    fn simd_and_portable_paths_give_the_same_bits() {
        let mesh = TetMesh::block(Vector3::zeros(), Vector3::new(0.04, 0.02, 0.03), [8, 4, 6]);
        let rest: Vec<TetRest> = mesh
            .tets
            .iter()
            .map(|t| {
                let p = t.map(|q| mesh.rest_positions_m[q as usize]);
                let dm = Matrix3::from_columns(&[p[1] - p[0], p[2] - p[0], p[3] - p[0]]);
                let v = dm.determinant() / 6.0;
                TetRest {
                    idx: *t,
                    inv_rest_shape: dm.try_inverse().unwrap(),
                    deviatoric_compliance: 1.0 / (1800.0 * v),
                    hydrostatic_compliance: 1.0 / (18000.0 * v),
                    hydrostatic_rest: 1.1,
                }
            })
            .collect();
        let mut a = MaterialBatches::new(&rest, &mesh.rest_positions_m);
        let mut b = a.clone();
        // A twisted, squashed state.
        let start: Vec<Vector3<f64>> = mesh
            .rest_positions_m
            .iter()
            .map(|p| {
                Vector3::new(
                    p.x + 0.3 * p.y * p.y,
                    0.8 * p.y + 0.1 * p.z,
                    p.z - 0.2 * p.x,
                )
            })
            .collect();
        let w = vec![7000.0; start.len()];
        let (mut pa, mut pb) = (start.clone(), start);
        for _ in 0..5 {
            a.project(&mut pa, &w, 2.5e-7, true);
            b.project_portable(&mut pb, &w, 2.5e-7, true);
        }
        let bits = |p: &[Vector3<f64>]| -> Vec<u64> {
            p.iter()
                .flat_map(|v| v.iter().map(|c| c.to_bits()))
                .collect()
        };
        assert_eq!(bits(&pa), bits(&pb));
        for t in 0..rest.len() {
            assert_eq!(a.green_norm(t).to_bits(), b.green_norm(t).to_bits());
        }
    }

    #[test]
    fn colours_never_share_a_particle() {
        let mesh = TetMesh::block(Vector3::zeros(), Vector3::new(0.05, 0.02, 0.04), [5, 2, 4]);
        let c = colour(&mesh.tets, mesh.rest_positions_m.len());
        for (a, ta) in mesh.tets.iter().enumerate() {
            for (b, tb) in mesh.tets.iter().enumerate().skip(a + 1) {
                if c[a] == c[b] {
                    assert!(ta.iter().all(|q| !tb.contains(q)), "tets {a} and {b}");
                }
            }
        }
        assert!(c.iter().copied().max().unwrap() < 40);
    }
}
