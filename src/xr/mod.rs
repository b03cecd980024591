//! The OpenXR display (being built).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::bus::{Publisher, Subscriber};
use crate::haptics::haptic_loop::SceneSnapshot;
use crate::haptics::pointer::PointerState;
use crate::render_loop::{RenderLoopConfig, RenderLoopReport, RenderReady};

/// Whether an OpenXR runtime answers here.
pub fn probe() -> Result<String, String> {
    Err("the OpenXR display is not built yet".into())
}

/// Starts the OpenXR render thread.
pub fn spawn_xr_loop(
    _snapshots: Subscriber<SceneSnapshot>,
    _stop: Arc<AtomicBool>,
    cfg: RenderLoopConfig,
    _pointer: Option<Publisher<PointerState>>,
) -> std::io::Result<(JoinHandle<RenderLoopReport>, RenderReady)> {
    let (tx, rx) = crossbeam::channel::bounded(1);
    let _ = tx.send(Err("the OpenXR display is not built yet".to_string()));
    let h = std::thread::spawn(move || {
        let mut r = RenderLoopReport::new(cfg.frames_dir, 2);
        r.skipped = Some("the OpenXR display is not built yet".into());
        r
    });
    Ok((h, rx))
}
