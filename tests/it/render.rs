//! Integration tests of the headless renderer (`haptwin::render`), through its public API.
//!
//! Contract: these tests need a Vulkan loader, a device (Mesa lavapipe is enough), the
//! Khronos validation layer and `spirv-val`; when any is missing they FAIL (never skip) and
//! say to run `scripts/install-deps.sh`. `scripts/test.sh` points `VK_DRIVER_FILES` at lavapipe
//! (unless it is already set) so the results do not depend on whatever GPU the machine has; the
//! tests never change the environment themselves (other test threads spawn processes).

use std::path::PathBuf;

use haptwin::render::{
    list_devices, Camera, HeadlessRenderer, RenderError, RenderOptions, RenderScene, RgbaImage,
    SHADER_SPIRV,
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
