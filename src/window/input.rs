//! The window's input logic, free of any window system: the orbit camera (right drag, wheel,
//! reset) and the keyboard/mouse tool control (held keys move the tool target at a fixed
//! speed relative to the camera's heading; a left drag moves it in the plane facing the
//! camera; the target stays inside a workspace box around the table).
//!
//! Contract: plain data and arithmetic (no allocation, no I/O), so every rule here is unit
//! tested without a display. World frame: metres, +y up (see [`crate::render::Camera`]).

use crate::haptics::pointer::POINTER_START_IN_WORLD_M;
use crate::render::Camera;

/// The tool target's speed under a held movement key, m/s.
pub const TOOL_SPEED_M_PER_S: f64 = 0.05;
/// The speed factor while Shift is held.
pub const SLOW_FACTOR: f64 = 0.2;
/// The workspace the tool target is kept in: its lower corner (x, y, z), metres.
pub const WORKSPACE_MIN_M: [f64; 3] = [-0.15, -0.03, -0.15];
/// The workspace's upper corner (x, y, z), metres.
pub const WORKSPACE_MAX_M: [f64; 3] = [0.15, 0.12, 0.15];
/// The longest time step one [`ToolControl::step`] integrates (a stalled loop does not make
/// the tool jump further than this much key motion).
pub const MAX_STEP_S: f64 = 0.5;
/// Orbit speed, radians per pixel of right drag.
pub const ORBIT_RAD_PER_PX: f32 = 0.005;
/// Zoom factor per wheel line (the distance shrinks by this much per line forwards).
pub const ZOOM_PER_LINE: f32 = 0.9;
/// The nearest and farthest the orbit camera gets to its target, metres.
pub const ZOOM_RANGE_M: (f32, f32) = (0.05, 3.0);
/// The orbit camera's pitch limit (radians from horizontal), short of straight up or down.
pub const PITCH_LIMIT_RAD: f32 = 89.0 * std::f32::consts::PI / 180.0;

/// The keys that move the tool, as held now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeldKeys {
    /// W: away from the viewer (horizontal plane).
    pub forward: bool,
    /// S: towards the viewer.
    pub back: bool,
    /// A: left.
    pub left: bool,
    /// D: right.
    pub right: bool,
    /// Q: down.
    pub down: bool,
    /// E: up.
    pub up: bool,
    /// Shift: slow.
    pub slow: bool,
}

impl HeldKeys {
    /// Whether any movement key is held.
    pub fn moving(&self) -> bool {
        self.forward || self.back || self.left || self.right || self.down || self.up
    }
}

/// A camera orbiting its target around the world's vertical axis: yaw, pitch and distance,
/// starting at (and reset to) a home camera.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrbitCamera {
    home: Camera,
    yaw_rad: f32,
    pitch_rad: f32,
    distance_m: f32,
}

impl OrbitCamera {
    /// An orbit camera at `home` (its eye, target and lens).
    pub fn new(home: Camera) -> Self {
        let d = sub3(home.eye_m, home.target_m);
        let distance_m = len3(d).max(ZOOM_RANGE_M.0);
        let horizontal = (d[0] * d[0] + d[2] * d[2]).sqrt();
        Self {
            home,
            yaw_rad: d[0].atan2(d[2]),
            pitch_rad: d[1]
                .atan2(horizontal)
                .clamp(-PITCH_LIMIT_RAD, PITCH_LIMIT_RAD),
            distance_m,
        }
    }

    /// The camera now.
    pub fn camera(&self) -> Camera {
        let t = self.home.target_m;
        let (sy, cy) = self.yaw_rad.sin_cos();
        let (sp, cp) = self.pitch_rad.sin_cos();
        let r = self.distance_m;
        Camera {
            eye_m: [t[0] + r * cp * sy, t[1] + r * sp, t[2] + r * cp * cy],
            up: [0.0, 1.0, 0.0],
            ..self.home
        }
    }

    /// Orbits by a drag of `dx`, `dy` pixels (right: the camera swings left around the
    /// target, so the scene turns with the cursor; down: the camera rises).
    pub fn orbit(&mut self, dx_px: f32, dy_px: f32) {
        if !(dx_px.is_finite() && dy_px.is_finite()) {
            return;
        }
        self.yaw_rad = (self.yaw_rad - dx_px * ORBIT_RAD_PER_PX) % std::f32::consts::TAU;
        self.pitch_rad =
            (self.pitch_rad + dy_px * ORBIT_RAD_PER_PX).clamp(-PITCH_LIMIT_RAD, PITCH_LIMIT_RAD);
    }

    /// Zooms by `lines` wheel lines (positive: closer).
    pub fn zoom(&mut self, lines: f32) {
        if !lines.is_finite() {
            return;
        }
        self.distance_m =
            (self.distance_m * ZOOM_PER_LINE.powf(lines)).clamp(ZOOM_RANGE_M.0, ZOOM_RANGE_M.1);
    }

    /// Back to the home camera.
    pub fn reset(&mut self) {
        *self = Self::new(self.home);
    }

    /// The camera's heading in the horizontal plane: (forward, right), unit vectors (forward
    /// points away from the viewer).
    pub fn heading(&self) -> ([f64; 3], [f64; 3]) {
        let (sy, cy) = (f64::from(self.yaw_rad)).sin_cos();
        // The eye sits at +(sin yaw, cos yaw) from the target: forward is the opposite.
        let forward = [-sy, 0.0, -cy];
        // right = forward x up.
        let right = [cy, 0.0, -sy];
        (forward, right)
    }
}

/// Where the keyboard and mouse put the tool: a target in the world, published to the
/// haptic thread as a [`crate::haptics::pointer::PointerState`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToolControl {
    target_m: [f64; 3],
}

impl Default for ToolControl {
    fn default() -> Self {
        Self {
            target_m: clamp_to_workspace(POINTER_START_IN_WORLD_M),
        }
    }
}

impl ToolControl {
    /// The target now, world frame, metres.
    pub fn target_m(&self) -> [f64; 3] {
        self.target_m
    }

    /// The velocity the held keys ask for, m/s: forward/right from the camera's
    /// [`OrbitCamera::heading`], up along +y; diagonals are no faster than straight moves.
    pub fn key_velocity(keys: &HeldKeys, heading: ([f64; 3], [f64; 3])) -> [f64; 3] {
        let axis = |plus: bool, minus: bool| f64::from(i8::from(plus) - i8::from(minus));
        let (f, r) = heading;
        let (a, b, c) = (
            axis(keys.forward, keys.back),
            axis(keys.right, keys.left),
            axis(keys.up, keys.down),
        );
        let dir = [
            a * f[0] + b * r[0],
            a * f[1] + b * r[1] + c,
            a * f[2] + b * r[2],
        ];
        let n = len3d(dir);
        if n < 1e-12 {
            return [0.0; 3];
        }
        let speed = TOOL_SPEED_M_PER_S * if keys.slow { SLOW_FACTOR } else { 1.0 };
        dir.map(|v| v / n * speed)
    }

    /// Moves the target for the keys held over `dt_s` seconds (at most [`MAX_STEP_S`]).
    /// Returns whether it moved.
    pub fn step(&mut self, keys: &HeldKeys, heading: ([f64; 3], [f64; 3]), dt_s: f64) -> bool {
        if !dt_s.is_finite() || dt_s <= 0.0 {
            return false;
        }
        let v = Self::key_velocity(keys, heading);
        let dt = dt_s.min(MAX_STEP_S);
        self.translate([v[0] * dt, v[1] * dt, v[2] * dt])
    }

    /// Moves the target by a left drag of `dx`, `dy` pixels in the plane through it that
    /// faces `camera`, so that it follows the cursor in a `viewport_height_px` tall view.
    /// Returns whether it moved.
    pub fn drag(
        &mut self,
        dx_px: f64,
        dy_px: f64,
        camera: &Camera,
        viewport_height_px: f64,
    ) -> bool {
        let Some((right, up, forward)) = camera_basis(camera) else {
            return false;
        };
        if !(dx_px.is_finite() && dy_px.is_finite()) || viewport_height_px < 1.0 {
            return false;
        }
        let eye = camera.eye_m.map(f64::from);
        let to_tool = [
            self.target_m[0] - eye[0],
            self.target_m[1] - eye[1],
            self.target_m[2] - eye[2],
        ];
        let depth = dot3d(to_tool, forward).max(f64::from(camera.near_m));
        let m_per_px = 2.0 * depth * (f64::from(camera.fov_y_rad) / 2.0).tan() / viewport_height_px;
        // Screen y grows downwards.
        let d = std::array::from_fn(|i| (dx_px * right[i] - dy_px * up[i]) * m_per_px);
        self.translate(d)
    }

    /// Moves the target by `d` metres, kept in the workspace. Returns whether it moved.
    pub fn translate(&mut self, d: [f64; 3]) -> bool {
        if !d.iter().all(|v| v.is_finite()) {
            return false;
        }
        let next = clamp_to_workspace([
            self.target_m[0] + d[0],
            self.target_m[1] + d[1],
            self.target_m[2] + d[2],
        ]);
        let moved = next != self.target_m;
        self.target_m = next;
        moved
    }
}

/// `p` clamped into the workspace box ([`WORKSPACE_MIN_M`]..[`WORKSPACE_MAX_M`]).
pub fn clamp_to_workspace(p: [f64; 3]) -> [f64; 3] {
    std::array::from_fn(|i| p[i].clamp(WORKSPACE_MIN_M[i], WORKSPACE_MAX_M[i]))
}

/// The camera's right, up and forward unit vectors (f64), or `None` for a degenerate camera.
fn camera_basis(camera: &Camera) -> Option<([f64; 3], [f64; 3], [f64; 3])> {
    let eye = camera.eye_m.map(f64::from);
    let target = camera.target_m.map(f64::from);
    let up = camera.up.map(f64::from);
    let f = norm3d([target[0] - eye[0], target[1] - eye[1], target[2] - eye[2]])?;
    let r = norm3d(cross3d(f, up))?;
    let u = cross3d(r, f);
    Some((r, u, f))
}

fn sub3(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn len3(a: [f32; 3]) -> f32 {
    (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt()
}

fn dot3d(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn len3d(a: [f64; 3]) -> f64 {
    dot3d(a, a).sqrt()
}

fn cross3d(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn norm3d(a: [f64; 3]) -> Option<[f64; 3]> {
    let l = len3d(a);
    (l.is_finite() && l > 1e-12).then(|| a.map(|v| v / l))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [f64; 3], b: [f64; 3], tol: f64) -> bool {
        a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= tol)
    }

    fn close32(a: [f32; 3], b: [f32; 3], tol: f32) -> bool {
        a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn the_orbit_camera_starts_at_home_and_resets_there() {
        let home = Camera::default_for_block();
        let mut orbit = OrbitCamera::new(home);
        assert!(close32(orbit.camera().eye_m, home.eye_m, 1e-6));
        assert_eq!(orbit.camera().target_m, home.target_m);
        orbit.orbit(120.0, -40.0);
        orbit.zoom(3.0);
        assert!(!close32(orbit.camera().eye_m, home.eye_m, 1e-3));
        orbit.reset();
        assert!(close32(orbit.camera().eye_m, home.eye_m, 1e-6));
    }

    #[test]
    fn orbiting_keeps_the_distance_and_zoom_changes_only_it() {
        let home = Camera::default_for_block();
        let mut orbit = OrbitCamera::new(home);
        let dist = |c: Camera| len3(sub3(c.eye_m, c.target_m));
        let d0 = dist(orbit.camera());
        orbit.orbit(300.0, 50.0);
        assert!((dist(orbit.camera()) - d0).abs() < 1e-5);
        // A quarter turn to the right: pi/2 of yaw is 314 px.
        let mut quarter = OrbitCamera::new(home);
        quarter.orbit(std::f32::consts::FRAC_PI_2 / ORBIT_RAD_PER_PX, 0.0);
        let e = quarter.camera().eye_m;
        assert!(e[0] < -0.3 && e[2].abs() < 1e-3, "{e:?}");
        let before = orbit.camera();
        orbit.zoom(2.0);
        let after = orbit.camera();
        assert!((dist(after) - d0 * 0.81).abs() < 1e-4);
        // Same direction.
        let dir = |c: Camera| {
            let d = sub3(c.eye_m, c.target_m);
            let l = len3(d);
            d.map(|v| v / l)
        };
        assert!(close32(dir(before), dir(after), 1e-5));
        // The zoom stops at its limits.
        orbit.zoom(1000.0);
        assert!((dist(orbit.camera()) - ZOOM_RANGE_M.0).abs() < 1e-5);
        orbit.zoom(-1000.0);
        assert!((dist(orbit.camera()) - ZOOM_RANGE_M.1).abs() < 1e-4);
    }

    #[test]
    fn the_pitch_stops_short_of_the_pole_and_the_camera_stays_usable() {
        let mut orbit = OrbitCamera::new(Camera::default_for_block());
        orbit.orbit(0.0, 1e6);
        let c = orbit.camera();
        assert!(c.view(4.0 / 3.0).is_ok());
        assert!(c.eye_m[1] > c.target_m[1]);
        orbit.orbit(0.0, -1e7);
        assert!(orbit.camera().view(1.0).is_ok());
        orbit.orbit(f32::NAN, 1.0);
        orbit.zoom(f32::INFINITY);
        assert!(orbit.camera().view(1.0).is_ok());
    }

    #[test]
    fn keys_move_relative_to_the_camera_heading() {
        // The default camera looks down -z from +z: W = -z, A = -x, E = +y.
        let orbit = OrbitCamera::new(Camera::default_for_block());
        let h = orbit.heading();
        assert!(close(h.0, [0.0, 0.0, -1.0], 1e-9));
        assert!(close(h.1, [1.0, 0.0, 0.0], 1e-9));
        let v = |k: HeldKeys| ToolControl::key_velocity(&k, h);
        let s = TOOL_SPEED_M_PER_S;
        let forward = HeldKeys {
            forward: true,
            ..HeldKeys::default()
        };
        assert!(close(v(forward), [0.0, 0.0, -s], 1e-12));
        let left = HeldKeys {
            left: true,
            ..HeldKeys::default()
        };
        assert!(close(v(left), [-s, 0.0, 0.0], 1e-12));
        let up = HeldKeys {
            up: true,
            ..HeldKeys::default()
        };
        assert!(close(v(up), [0.0, s, 0.0], 1e-12));
        let slow_down = HeldKeys {
            down: true,
            slow: true,
            ..HeldKeys::default()
        };
        assert!(close(v(slow_down), [0.0, -s * SLOW_FACTOR, 0.0], 1e-12));
        // Opposite keys cancel; diagonals keep the speed.
        let both = HeldKeys {
            left: true,
            right: true,
            ..HeldKeys::default()
        };
        assert_eq!(v(both), [0.0; 3]);
        assert!(both.moving() && !HeldKeys::default().moving());
        let diag = HeldKeys {
            forward: true,
            right: true,
            ..HeldKeys::default()
        };
        assert!((len3d(v(diag)) - s).abs() < 1e-12);
        // After a quarter turn of the camera (looking down +x), W moves along +x.
        let mut turned = OrbitCamera::new(Camera::default_for_block());
        turned.orbit(std::f32::consts::FRAC_PI_2 / ORBIT_RAD_PER_PX, 0.0);
        let w = ToolControl::key_velocity(&forward, turned.heading());
        assert!(close(w, [s, 0.0, 0.0], 1e-3 * s), "{w:?}");
    }

    #[test]
    fn stepping_integrates_time_and_stays_in_the_workspace() {
        let h = OrbitCamera::new(Camera::default_for_block()).heading();
        let mut tool = ToolControl::default();
        assert_eq!(tool.target_m(), POINTER_START_IN_WORLD_M);
        let left = HeldKeys {
            left: true,
            ..HeldKeys::default()
        };
        assert!(tool.step(&left, h, 0.2));
        assert!(close(tool.target_m(), [-0.01, 0.04, 0.0], 1e-12));
        // Nothing held, no time or a bad time: no motion.
        assert!(!tool.step(&HeldKeys::default(), h, 1.0));
        assert!(!tool.step(&left, h, 0.0));
        assert!(!tool.step(&left, h, f64::NAN));
        // One long stall moves at most MAX_STEP_S of key motion.
        let before = tool.target_m();
        tool.step(&left, h, 100.0);
        assert!((before[0] - tool.target_m()[0] - TOOL_SPEED_M_PER_S * MAX_STEP_S).abs() < 1e-12);
        // Held long enough, the tool stops at the workspace's walls.
        for _ in 0..100 {
            tool.step(&left, h, 0.5);
        }
        assert_eq!(tool.target_m()[0], WORKSPACE_MIN_M[0]);
        assert!(
            !tool.step(&left, h, 0.5),
            "at the wall: no change, no publish"
        );
        let down = HeldKeys {
            down: true,
            ..HeldKeys::default()
        };
        for _ in 0..100 {
            tool.step(&down, h, 0.5);
        }
        assert_eq!(tool.target_m()[1], WORKSPACE_MIN_M[1]);
        assert_eq!(
            clamp_to_workspace([1.0, 1.0, -1.0]),
            [WORKSPACE_MAX_M[0], WORKSPACE_MAX_M[1], WORKSPACE_MIN_M[2]]
        );
        assert!(!tool.translate([f64::NAN, 0.0, 0.0]));
    }

    #[test]
    fn a_left_drag_follows_the_cursor_in_the_plane_facing_the_camera() {
        let cam = Camera::default_for_block();
        let mut tool = ToolControl::default();
        let start = tool.target_m();
        // 100 px right in a 480 px tall view.
        assert!(tool.drag(100.0, 0.0, &cam, 480.0));
        let moved = tool.target_m();
        let d = [
            moved[0] - start[0],
            moved[1] - start[1],
            moved[2] - start[2],
        ];
        assert!(
            d[0] > 0.0 && d[1].abs() < 1e-12 && d[2].abs() < 1e-12,
            "{d:?}"
        );
        // It moved as far as 100 px spans at the tool's depth.
        let eye = cam.eye_m.map(f64::from);
        let f = norm3d(sub3(cam.target_m, cam.eye_m).map(f64::from)).unwrap();
        let depth = dot3d([start[0] - eye[0], start[1] - eye[1], start[2] - eye[2]], f);
        let want = 100.0 * 2.0 * depth * (f64::from(cam.fov_y_rad) / 2.0).tan() / 480.0;
        assert!((d[0] - want).abs() < 1e-9, "{} vs {want}", d[0]);
        // Dragging up moves the tool up and away (the camera looks down on the table), in
        // the plane facing the camera: perpendicular to the view direction.
        let mut up = ToolControl::default();
        assert!(up.drag(0.0, -50.0, &cam, 480.0));
        let u = up.target_m();
        let du = [u[0] - start[0], u[1] - start[1], u[2] - start[2]];
        assert!(du[1] > 0.0 && du[2] < 0.0, "{du:?}");
        assert!(dot3d(du, f).abs() < 1e-9);
        // Degenerate input does nothing.
        assert!(!up.drag(f64::NAN, 0.0, &cam, 480.0));
        assert!(!up.drag(10.0, 0.0, &cam, 0.0));
    }
}
