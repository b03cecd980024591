//! Integration tests of the headless renderer (`haptwin::render`), through its public API.
//!
//! Contract: these tests need a Vulkan loader, a device (Mesa lavapipe is enough), the
//! Khronos validation layer and `spirv-val`; when any is missing they FAIL (never skip) and
//! say to run `scripts/install-deps.sh`. `scripts/test.sh` points `VK_DRIVER_FILES` at lavapipe
//! (unless it is already set) so the results do not depend on whatever GPU the machine has; the
//! tests never change the environment themselves (other test threads spawn processes).

use std::path::PathBuf;

use haptwin::render::{
    list_devices, Camera, HeadlessRenderer, Panel, RenderError, RenderOptions, RenderScene,
    RgbaImage, DEFAULT_IPD_M, SHADER_SPIRV,
};

const BACKGROUND: [u8; 3] = [30, 34, 40];
const HINT: &str = "the renderer tests need Vulkan (loader, lavapipe, validation layers): run scripts/install-deps.sh";

fn renderer(width: u32, height: u32) -> HeadlessRenderer {
    let opts = RenderOptions {
        width,
        height,
        validation: true,
        ..RenderOptions::default()
    };
    match HeadlessRenderer::new(&opts) {
        Ok(r) => r,
        Err(e) => panic!("cannot create the headless renderer: {e}\n{HINT}"),
    }
}

/// A 10 cm x 10 cm block of tissue, top at y = 0, bottom at y = -0.0375, as a shared-vertex
/// surface: `n x n` grid cells on top and bottom, side walls between the boundary rings;
/// triangles counter-clockwise seen from outside.
fn tissue_block(n: u32) -> (Vec<[f32; 3]>, Vec<[u32; 3]>) {
    let (half, bottom) = (0.05f32, -0.0375f32);
    let row = n + 1;
    let mut pos = Vec::new();
    for y in [0.0, bottom] {
        for i in 0..row {
            for j in 0..row {
                pos.push([
                    -half + 0.1 * i as f32 / n as f32,
                    y,
                    -half + 0.1 * j as f32 / n as f32,
                ]);
            }
        }
    }
    let top = |i: u32, j: u32| i * row + j;
    let bot = |i: u32, j: u32| row * row + i * row + j;
    let mut tris = Vec::new();
    for i in 0..n {
        for j in 0..n {
            // Top faces +y: (p00, p01, p10), (p10, p01, p11); bottom reversed.
            tris.push([top(i, j), top(i, j + 1), top(i + 1, j)]);
            tris.push([top(i + 1, j), top(i, j + 1), top(i + 1, j + 1)]);
            tris.push([bot(i, j), bot(i + 1, j), bot(i, j + 1)]);
            tris.push([bot(i + 1, j), bot(i + 1, j + 1), bot(i, j + 1)]);
        }
    }
    // Side walls along the four boundary edges; orient each triangle outwards.
    let mut ring = Vec::new();
    for k in 0..n {
        ring.push(((k, 0), (k + 1, 0)));
        ring.push(((k, n), (k + 1, n)));
        ring.push(((0, k), (0, k + 1)));
        ring.push(((n, k), (n, k + 1)));
    }
    for ((ai, aj), (bi, bj)) in ring {
        let (ta, tb, ba, bb) = (top(ai, aj), top(bi, bj), bot(ai, aj), bot(bi, bj));
        for mut t in [[ta, ba, tb], [tb, ba, bb]] {
            let [a, b, c] = t.map(|i| pos[i as usize]);
            let u = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
            let v = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
            let nrm = [
                u[1] * v[2] - u[2] * v[1],
                u[2] * v[0] - u[0] * v[2],
                u[0] * v[1] - u[1] * v[0],
            ];
            let centre = [(a[0] + b[0] + c[0]) / 3.0, (a[2] + b[2] + c[2]) / 3.0];
            if nrm[0] * centre[0] + nrm[2] * centre[1] < 0.0 {
                t.swap(1, 2);
            }
            tris.push(t);
        }
    }
    (pos, tris)
}

fn scene<'a>(
    pos: &'a [[f32; 3]],
    tris: &'a [[u32; 3]],
    tool: [f32; 3],
    force: [f32; 3],
) -> RenderScene<'a> {
    RenderScene {
        tissue_positions_m: pos,
        tissue_triangles: tris,
        tool_center_m: tool,
        tool_radius_m: 0.012,
        tool_force_n: force,
        ..RenderScene::default()
    }
}

fn pixel_at(img: &RgbaImage, p: [f32; 2]) -> [u8; 4] {
    assert!(
        p[0] >= 0.0 && p[1] >= 0.0 && (p[0] as u32) < img.width && (p[1] as u32) < img.height,
        "projected point {p:?} is outside the {}x{} image",
        img.width,
        img.height
    );
    img.pixel(p[0] as u32, p[1] as u32)
}

fn is_background(c: [u8; 4]) -> bool {
    (0..3).all(|i| c[i].abs_diff(BACKGROUND[i]) <= 2)
}

fn is_tissue(c: [u8; 4]) -> bool {
    let [r, g, b, _] = c.map(i32::from);
    r > g + 40 && r > b + 40 && g < 200
}

fn is_grey_tool(c: [u8; 4]) -> bool {
    let [r, g, b, _] = c.map(i32::from);
    let spread = r.max(g).max(b) - r.min(g).min(b);
    spread < 30 && !is_background(c) && !is_tissue(c) && r.max(g).max(b) > 80
}

fn assert_clean(r: &HeadlessRenderer, when: &str) {
    let v = r.validation();
    assert!(v.enabled, "validation should be enabled");
    assert!(
        v.errors == 0 && v.warnings == 0,
        "validation {when}: {} errors, {} warnings: {:#?}",
        v.errors,
        v.warnings,
        v.messages
    );
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("haptwin-render-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

#[test]
fn renders_block_and_tool_with_clean_validation() {
    let mut r = renderer(320, 240);
    let cam = Camera::default_for_block();
    let (pos, tris) = tissue_block(10);
    let tool = [0.02, 0.015, 0.0];
    let img = r
        .render(&scene(&pos, &tris, tool, [0.0; 3]), &cam)
        .expect("render");
    assert_eq!(
        (img.width, img.height, img.pixels.len()),
        (320, 240, 320 * 240 * 4)
    );
    assert_clean(&r, "after one frame");

    for (x, y) in [(0, 0), (319, 0), (0, 239), (319, 239)] {
        assert!(
            is_background(img.pixel(x, y)),
            "corner ({x},{y}) is {:?}, not background",
            img.pixel(x, y)
        );
    }
    let centre = r
        .project(&cam, [0.0, 0.0, 0.0])
        .expect("tissue centre in front of camera");
    let c = pixel_at(&img, centre);
    assert!(
        is_tissue(c),
        "tissue top centre at {centre:?} is {c:?}, not tissue-coloured"
    );
    let tp = r.project(&cam, tool).expect("tool in front of camera");
    let t = pixel_at(&img, tp);
    assert!(
        is_grey_tool(t),
        "tool centre at {tp:?} is {t:?}, not grey tool colour"
    );

    let dir = temp_dir("png");
    let path = dir.join("block.png");
    img.save_png(&path).expect("save png");
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&path).expect("open png"),
    ));
    let reader = decoder.read_info().expect("png header");
    let info = reader.info();
    assert_eq!((info.width, info.height), (320, 240));
    let _ = std::fs::remove_dir_all(&dir);

    // Every object is named.
    let names = r.object_names().join("\n");
    for want in [
        "color target",
        "msaa color target",
        "depth target",
        "color target memory",
        "frame slot 0 readback",
        "frame slot 0 tissue vertices",
        "frame slot 0 uniforms",
        "frame slot 1 fence",
        "tool tip sphere indices",
        "tool shaft vertices",
        "panel quad vertices",
        "font atlas",
        "font atlas sampler",
        "mesh pipeline",
        "text pipeline",
        "scene pipeline layout",
        "mesh shader module",
        "text shader module",
        "frame descriptor set layout",
        "frame slot 0 command pool",
        "frame slot 0 command buffer",
        "frame timestamps",
    ] {
        assert!(
            names.contains(want),
            "no object named '{want}' in:\n{names}"
        );
    }
    let final_report = r.finish();
    assert!(
        final_report.is_clean(),
        "validation at teardown: {:#?}",
        final_report.messages
    );
}

#[test]
fn moving_tool_changes_frames_and_stays_clean() {
    let mut r = renderer(320, 240);
    let cam = Camera::default_for_block();
    let (pos, tris) = tissue_block(8);
    let tool_at = |k: u32| [-0.03 + 0.06 * k as f32 / 19.0, 0.02, 0.01];
    let mut frames = Vec::new();
    for k in 0..20 {
        frames.push(
            r.render(&scene(&pos, &tris, tool_at(k), [0.0; 3]), &cam)
                .expect("render"),
        );
    }
    assert_clean(&r, "after 20 frames");
    let (first, last) = (&frames[0], &frames[19]);
    let p0 = r.project(&cam, tool_at(0)).unwrap();
    let p19 = r.project(&cam, tool_at(19)).unwrap();
    assert!(
        is_grey_tool(pixel_at(first, p0)),
        "tool missing at start: {:?}",
        pixel_at(first, p0)
    );
    assert_ne!(
        pixel_at(first, p0),
        pixel_at(last, p0),
        "pixel the tool left did not change"
    );
    assert_ne!(
        pixel_at(first, p19),
        pixel_at(last, p19),
        "pixel the tool reached did not change"
    );
    assert!(
        frames.windows(2).all(|w| w[0] != w[1]),
        "consecutive frames should differ as the tool moves"
    );

    // A 5 N contact force tints the tool red.
    let img = r
        .render(&scene(&pos, &tris, tool_at(19), [0.0, 5.0, 0.0]), &cam)
        .unwrap();
    let [red, g, b, _] = pixel_at(&img, p19).map(i32::from);
    assert!(
        red > g + 60 && red > b + 60,
        "tool under 5 N is not red: {:?}",
        [red, g, b]
    );
    assert_clean(&r, "after the force frame");
    assert_eq!(r.frames_rendered(), 21);
}

#[test]
fn tissue_buffers_grow_and_renderer_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<HeadlessRenderer>();
    let mut r = renderer(160, 120);
    let cam = Camera::default_for_block();
    for n in [2, 30, 4] {
        let (pos, tris) = tissue_block(n);
        let img = r
            .render(&scene(&pos, &tris, [0.03, 0.02, 0.03], [0.0; 3]), &cam)
            .expect("render");
        let c = pixel_at(&img, r.project(&cam, [0.0, 0.0, 0.0]).unwrap());
        assert!(is_tissue(c), "{n}x{n} block: centre is {c:?}");
    }
    assert_clean(&r, "after growing the tissue buffers");
    assert!(r.finish().is_clean());
}

#[test]
fn built_spirv_passes_spirv_val() {
    assert!(
        SHADER_SPIRV.iter().any(|(n, _)| *n == "mesh"),
        "mesh shader not built"
    );
    let dir = temp_dir("spv");
    for (name, bytes) in SHADER_SPIRV {
        assert!(
            bytes.len() > 20 && bytes.len() % 4 == 0,
            "{name}: {} bytes is not SPIR-V",
            bytes.len()
        );
        assert_eq!(
            &bytes[..4],
            &0x0723_0203u32.to_le_bytes(),
            "{name}: bad SPIR-V magic"
        );
        let path = dir.join(format!("{name}.spv"));
        std::fs::write(&path, bytes).unwrap();
        let out = match std::process::Command::new("spirv-val").arg("--target-env").arg("vulkan1.1").arg(&path).output() {
            Ok(o) => o,
            Err(e) => panic!("cannot run spirv-val ({e}); install the package spirv-tools (scripts/install-deps.sh)"),
        };
        assert!(
            out.status.success(),
            "spirv-val rejects {name}.spv:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn list_devices_finds_one() {
    let devices = list_devices().unwrap_or_else(|e| panic!("list_devices: {e}\n{HINT}"));
    assert!(!devices.is_empty(), "no Vulkan device found; {HINT}");
    assert!(
        devices.iter().any(|d| d.unusable_reason.is_none()),
        "no usable device among {devices:#?}"
    );
}

#[test]
fn bad_filter_and_bad_scene_are_errors() {
    let opts = RenderOptions {
        device_filter: Some("no-such-gpu-xyz".into()),
        ..RenderOptions::default()
    };
    match HeadlessRenderer::new(&opts) {
        Err(RenderError::NoDevice { filter, found }) => {
            assert_eq!(filter.as_deref(), Some("no-such-gpu-xyz"));
            assert!(!found.is_empty());
        }
        Err(e) => panic!("expected NoDevice, got {e}\n{HINT}"),
        Ok(_) => panic!("a device matched a nonsense filter"),
    }
    let mut r = renderer(64, 48);
    let pos = [[0.0f32; 3]; 3];
    let err = r.render(
        &scene(&pos, &[[0, 1, 3]], [0.0; 3], [0.0; 3]),
        &Camera::default_for_block(),
    );
    assert!(
        matches!(err, Err(RenderError::InvalidScene { .. })),
        "{err:?}"
    );
    // The renderer still works afterwards, and an empty scene is fine.
    let img = r
        .render(
            &scene(&[], &[], [0.0, 0.02, 0.0], [0.0; 3]),
            &Camera::default_for_block(),
        )
        .unwrap();
    assert!(is_background(img.pixel(0, 0)));
    assert_clean(&r, "after error paths");
}

/// The render shows a cut: the phantom's live surface, as the haptic core publishes it, drawn
/// before and after a trench is resected across its top. The frames differ over the trench
/// (its walls and floor), and rendering the same surface twice gives the same image.
#[test]
fn a_resected_trench_shows_in_the_render() {
    use haptwin::demo::phantom_block;
    use haptwin::haptics::haptic_loop::SceneSnapshot;
    use haptwin::tissue::CapsuleTool;
    use nalgebra::Vector3;

    let mut r = renderer(320, 240);
    let cam = Camera::default_for_block();
    let mut tissue = phantom_block();
    let draw = |r: &mut HeadlessRenderer, snap: &SceneSnapshot| {
        r.render(
            &RenderScene {
                tissue_positions_m: &snap.tissue_positions_m,
                tissue_triangles: &snap.surface_triangles,
                tool_center_m: [0.045, 0.04, 0.045],
                tool_radius_m: 0.005,
                tool_force_n: [0.0; 3],
                ..RenderScene::default()
            },
            &cam,
        )
        .expect("render")
    };
    let before = SceneSnapshot::for_tissue(&tissue);
    let a = draw(&mut r, &before);
    assert_eq!(
        a,
        draw(&mut r, &before),
        "the same surface must give the same image"
    );
    let removed = tissue.resect(&CapsuleTool {
        center_in_world_m: Vector3::zeros(),
        half_axis_in_world_m: Vector3::new(0.04, 0.0, 0.0),
        radius_m: 0.013,
    });
    assert!(removed > 0);
    let after = SceneSnapshot::for_tissue(&tissue);
    assert_ne!(after.surface_triangles, before.surface_triangles);
    let b = draw(&mut r, &after);
    assert_clean(&r, "after drawing the trench");
    if let Ok(dir) = std::env::var("HAPTWIN_KEEP_FRAMES") {
        let dir = std::path::Path::new(&dir);
        a.save_png(&dir.join("trench_before.png")).unwrap();
        b.save_png(&dir.join("trench_after.png")).unwrap();
    }
    let changed = a
        .pixels
        .chunks(4)
        .zip(b.pixels.chunks(4))
        .filter(|(p, q)| p.iter().zip(q.iter()).any(|(x, y)| x.abs_diff(*y) > 8))
        .count();
    // About 1,000 of the 76,800 pixels change on lavapipe (the trench is 2.5 cm wide).
    assert!(changed > 400, "only {changed} pixels changed");
    // Where the trench crosses the middle of the top face, the picture changed.
    let centre = r.project(&cam, [0.0, 0.0, 0.0]).unwrap();
    let (p, q) = (pixel_at(&a, centre), pixel_at(&b, centre));
    assert!(is_tissue(p), "the top face before: {p:?}");
    assert_ne!(p, q, "the trench does not show at the centre");
}

fn stereo_renderer(width: u32, height: u32, samples: u32) -> HeadlessRenderer {
    let opts = RenderOptions {
        width,
        height,
        validation: true,
        views: 2,
        samples,
        ..RenderOptions::default()
    };
    match HeadlessRenderer::new(&opts) {
        Ok(r) => r,
        Err(e) => panic!("cannot create the stereo renderer: {e}\n{HINT}"),
    }
}

/// Centroid (x, y) of the pixels `pred` picks, and how many there were.
fn centroid(img: &RgbaImage, pred: impl Fn([u8; 4]) -> bool) -> ([f32; 2], usize) {
    let (mut sx, mut sy, mut n) = (0f64, 0f64, 0usize);
    for y in 0..img.height {
        for x in 0..img.width {
            if pred(img.pixel(x, y)) {
                sx += f64::from(x) + 0.5;
                sy += f64::from(y) + 0.5;
                n += 1;
            }
        }
    }
    let n1 = n.max(1) as f64;
    ([(sx / n1) as f32, (sy / n1) as f32], n)
}

fn is_red_tool(c: [u8; 4]) -> bool {
    let [r, g, b, _] = c.map(i32::from);
    r > 150 && g < 70 && b < 70
}

/// Pixels whose channels differ by more than `threshold`, and the mean absolute difference.
fn image_difference(a: &RgbaImage, b: &RgbaImage, threshold: u8) -> (usize, f64) {
    assert_eq!(
        (a.width, a.height),
        (b.width, b.height),
        "image sizes differ"
    );
    let mut over = 0;
    let mut sum = 0u64;
    for (pa, pb) in a.pixels.chunks_exact(4).zip(b.pixels.chunks_exact(4)) {
        let d = (0..3).map(|i| pa[i].abs_diff(pb[i])).max().unwrap_or(0);
        if d > threshold {
            over += 1;
        }
        sum += (0..3)
            .map(|i| u64::from(pa[i].abs_diff(pb[i])))
            .sum::<u64>();
    }
    (over, sum as f64 / (a.pixels.len() / 4 * 3) as f64)
}

#[test]
fn stereo_eyes_show_parallax_and_each_matches_its_own_mono_render() {
    let (w, h) = (320, 240);
    let (pos, tris) = tissue_block(12);
    // A red (5 N) tool tip in front of the block: the object whose parallax is measured.
    let tool = [0.0, 0.03, 0.06];
    let s = scene(&pos, &tris, tool, [0.0, 5.0, 0.0]);
    let cam = Camera::default_for_block();
    let mut stereo = stereo_renderer(w, h, 4);
    assert_eq!(stereo.views(), 2);
    let (left, right) = stereo
        .render_stereo(&s, &cam, DEFAULT_IPD_M)
        .expect("stereo frame");
    let eyes = cam.stereo(w as f32 / h as f32, DEFAULT_IPD_M).unwrap();
    let centre = cam.view(w as f32 / h as f32).unwrap();
    let expect_l = eyes[0].project(w, h, tool).unwrap();
    let expect_r = eyes[1].project(w, h, tool).unwrap();
    let expect_c = centre.project(w, h, tool).unwrap();
    let (got_l, nl) = centroid(&left, is_red_tool);
    let (got_r, nr) = centroid(&right, is_red_tool);
    assert!(nl > 30 && nr > 30, "tool not found: {nl} / {nr} red pixels");
    // Opposite shifts around the centre view: the left eye sees it further right.
    assert!(
        expect_l[0] > expect_c[0] + 2.0 && expect_r[0] < expect_c[0] - 2.0,
        "projected x: left {expect_l:?} centre {expect_c:?} right {expect_r:?}"
    );
    assert!(
        got_l[0] > got_r[0] + 4.0,
        "left eye x {} should be right of the right eye's {}",
        got_l[0],
        got_r[0]
    );
    // The shaft hides part of the tip, so the centroid sits within a couple of pixels.
    for (got, want, eye) in [(got_l, expect_l, "left"), (got_r, expect_r, "right")] {
        assert!(
            (got[0] - want[0]).abs() < 3.0 && (got[1] - want[1]).abs() < 3.0,
            "{eye} eye: tool at {got:?}, projected at {want:?}"
        );
    }
    // Vertical positions agree (eyes side by side).
    assert!((got_l[1] - got_r[1]).abs() < 1.0, "{got_l:?} {got_r:?}");
    assert_clean(&stereo, "after the stereo frame");

    // Each eye equals a single-view render from the same eye.
    let mut mono = renderer(w, h);
    for (eye, image, name) in [(eyes[0], &left, "left"), (eyes[1], &right, "right")] {
        let single = mono.render_views(&s, &[eye]).expect("mono frame").remove(0);
        let (over, mean) = image_difference(&single, image, 8);
        assert!(
            over <= (w * h / 200) as usize && mean < 1.0,
            "{name} eye differs from its mono render: {over} pixels over 8, mean {mean:.3}"
        );
    }
    // And the two eyes differ from each other (not one view copied into both layers).
    let (over, _) = image_difference(&left, &right, 8);
    assert!(
        over > 200,
        "the eyes are nearly identical ({over} pixels differ)"
    );
    assert_clean(&mono, "after the mono frames");
}

#[test]
fn stereo_hundred_frames_with_board_and_overlay_are_validation_clean() {
    let (pos, tris) = tissue_block(10);
    let materials: Vec<u8> = (0..pos.len()).map(|i| (i % 7) as u8).collect();
    let overlay: Vec<f32> = (0..pos.len()).map(|i| (i % 11) as f32 / 10.0).collect();
    let mut r = stereo_renderer(256, 192, 4);
    let cam = Camera::default_for_block();
    let mut gpu_frames = 0;
    for k in 0..100u32 {
        let t = k as f32 / 100.0;
        let text = format!("FRAME {k}\nFORCE {:.1} N", 8.0 * t);
        let mut s = scene(
            &pos,
            &tris,
            [0.04 * (t * 6.3).sin(), 0.02, 0.04 * (t * 6.3).cos()],
            [0.0, 6.0 * t, 0.0],
        );
        s.tissue_materials = &materials;
        s.tissue_overlay = &overlay;
        s.panel = Some(Panel::behind_the_table(&text, 8.0 * t, 8.0));
        r.render_stereo(&s, &cam, DEFAULT_IPD_M).expect("frame");
        if r.last_gpu_ms().is_some_and(|ms| ms > 0.0) {
            gpu_frames += 1;
        }
    }
    assert_eq!(r.frames_rendered(), 100);
    assert_eq!(gpu_frames, 100, "every frame should report its GPU time");
    assert_clean(&r, "over 100 stereo frames");
    let report = r.finish();
    assert!(
        report.is_clean(),
        "validation at teardown: {:#?}",
        report.messages
    );
}

/// The scene of the golden images: the block with labelled vertices, a strain overlay
/// stripe, the tool pressing at 3 N, and the board.
fn golden_scene<'a>(
    pos: &'a [[f32; 3]],
    tris: &'a [[u32; 3]],
    materials: &'a [u8],
    overlay: &'a [f32],
) -> RenderScene<'a> {
    let mut s = scene(pos, tris, [0.02, 0.012, 0.01], [0.0, 3.0, 0.0]);
    s.tissue_materials = materials;
    s.tissue_overlay = overlay;
    s.panel = Some(Panel::behind_the_table(
        "PALPATE THE BLOCK\nTIME 00:12.5\nFORCE 3.00 N OF 8.0 N",
        3.0,
        8.0,
    ));
    s
}

#[test]
fn golden_stereo_images_match_within_tolerance() {
    let (pos, tris) = tissue_block(12);
    // A tumour patch and a vessel line on the top, an overlay gradient along x.
    let materials: Vec<u8> = pos
        .iter()
        .map(|p| {
            if p[1] == 0.0 && (p[0] + 0.02).hypot(p[2] + 0.015) < 0.018 {
                2
            } else if p[1] == 0.0 && (p[2] - 0.025).abs() < 0.004 {
                3
            } else {
                1
            }
        })
        .collect();
    let overlay: Vec<f32> = pos
        .iter()
        .map(|p| {
            if p[0] > 0.03 {
                (p[0] - 0.03) / 0.02
            } else {
                0.0
            }
        })
        .collect();
    let s = golden_scene(&pos, &tris, &materials, &overlay);
    let mut r = stereo_renderer(320, 240, 4);
    let (left, right) = r
        .render_stereo(&s, &Camera::default_for_block(), DEFAULT_IPD_M)
        .expect("stereo frame");
    assert_clean(&r, "golden frame");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let regenerate = std::env::var_os("HAPTWIN_REGENERATE_GOLDEN").is_some();
    for (image, name) in [
        (&left, "stereo_block_left.png"),
        (&right, "stereo_block_right.png"),
    ] {
        let path = dir.join(name);
        if regenerate {
            std::fs::create_dir_all(&dir).unwrap();
            image.save_png(&path).unwrap();
            eprintln!("regenerated {}", path.display());
            continue;
        }
        let golden = read_png(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read golden image {}: {e}\n(regenerate on purpose with \
                 HAPTWIN_REGENERATE_GOLDEN=1 and review the images)",
                path.display()
            )
        });
        let (over, mean) = image_difference(image, &golden, 24);
        let out = temp_dir("golden").join(name);
        image.save_png(&out).unwrap();
        assert!(
            over <= (image.width * image.height / 200) as usize && mean < 1.5,
            "{name}: {over} pixels differ by more than 24, mean difference {mean:.3}; the new \
             image is {} (if the change is intended, regenerate with \
             HAPTWIN_REGENERATE_GOLDEN=1 and review)",
            out.display()
        );
    }
}

fn read_png(path: &std::path::Path) -> Result<RgbaImage, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or("no buffer size")?];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    if info.color_type != png::ColorType::Rgba || info.bit_depth != png::BitDepth::Eight {
        return Err(format!(
            "{:?} {:?}, not RGBA8",
            info.color_type, info.bit_depth
        ));
    }
    buf.truncate(info.buffer_size());
    Ok(RgbaImage {
        width: info.width,
        height: info.height,
        pixels: buf,
    })
}
