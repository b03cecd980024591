//! Which display a rehearsal draws on — an OpenXR headset, a desktop window, or none
//! (headless images) — and the thread that drives it.
//!
//! Contract: every display runs on its own render thread, reads the haptic thread's
//! snapshots from the triple buffer and never makes the haptic thread wait (see
//! [`crate::render_loop`]). `auto` tries OpenXR, then a window, then headless, and says which
//! it chose and why ([`choose`]). A display that cannot start reports why on its ready
//! channel and the session goes on without it (or fails, with `--require-render`).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::bus::{Publisher, Subscriber};
use crate::haptics::haptic_loop::SceneSnapshot;
use crate::haptics::pointer::PointerState;
use crate::render_loop::{self, RenderLoopConfig, RenderLoopReport, RenderReady};

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DisplayChoice {
    /// OpenXR if a runtime and headset answer, else a window if there is a desktop, else
    /// headless.
    #[default]
    Auto,
    /// An OpenXR headset (stereo, multiview).
    Xr,
    /// A desktop window: the spectator view, with mouse and keyboard tool control.
    Window,
    /// No display: stereo frames written as PNG.
    Headless,
}

impl std::str::FromStr for DisplayChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "xr" => Ok(Self::Xr),
            "window" => Ok(Self::Window),
            "headless" => Ok(Self::Headless),
            other => Err(format!(
                "unknown display '{other}' (xr, window, headless or auto)"
            )),
        }
    }
}

/// The display a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Display {
    /// An OpenXR headset.
    Xr,
    /// A desktop window.
    Window,
    /// Images only.
    Headless,
}

impl Display {
    /// `xr`, `window`, `headless`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Xr => "xr",
            Self::Window => "window",
            Self::Headless => "headless",
        }
    }
}

impl std::str::FromStr for Display {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "xr" => Ok(Self::Xr),
            "window" => Ok(Self::Window),
            "headless" => Ok(Self::Headless),
            o => Err(format!("unknown display {o:?}: use xr, window or headless")),
        }
    }
}

/// The display for `choice`, with the reason: for `auto`, what each candidate answered.
pub fn choose(choice: DisplayChoice) -> (Display, String) {
    match choice {
        DisplayChoice::Xr => (Display::Xr, "asked for (--display xr)".into()),
        DisplayChoice::Window => (Display::Window, "asked for (--display window)".into()),
        DisplayChoice::Headless => (Display::Headless, "asked for (--display headless)".into()),
        DisplayChoice::Auto => {
            let xr = crate::xr::probe();
            if let Ok(found) = &xr {
                return (Display::Xr, format!("auto: OpenXR answered: {found}"));
            }
            let window = crate::window::probe();
            let xr_no = xr.err().unwrap_or_default();
            match window {
                Ok(found) => (
                    Display::Window,
                    format!("auto: no OpenXR ({xr_no}); a desktop answered: {found}"),
                ),
                Err(no) => (
                    Display::Headless,
                    format!("auto: no OpenXR ({xr_no}); no desktop ({no}); writing images"),
                ),
            }
        }
    }
}

/// Starts the render thread for `display`. `pointer`, when given, is where the display
/// publishes the tool target (window mouse/keyboard, XR controller) for a
/// [`crate::haptics::pointer::PointerDevice`].
pub fn spawn(
    display: Display,
    snapshots: Subscriber<SceneSnapshot>,
    stop: Arc<AtomicBool>,
    cfg: RenderLoopConfig,
    pointer: Option<Publisher<PointerState>>,
) -> std::io::Result<(JoinHandle<RenderLoopReport>, RenderReady)> {
    match display {
        Display::Headless => render_loop::spawn_render_loop(snapshots, stop, cfg),
        Display::Window => crate::window::spawn_window_loop(snapshots, stop, cfg, pointer),
        Display::Xr => crate::xr::spawn_xr_loop(snapshots, stop, cfg, pointer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_and_explicit_ones_are_kept() {
        for (s, d) in [
            ("xr", Display::Xr),
            ("window", Display::Window),
            ("headless", Display::Headless),
        ] {
            let c: DisplayChoice = s.parse().unwrap();
            let (got, why) = choose(c);
            assert_eq!(got, d);
            assert!(why.contains(s), "{why}");
            assert_eq!(got.name(), s);
        }
        assert!("vr"
            .parse::<DisplayChoice>()
            .unwrap_err()
            .contains("xr, window"));
        assert_eq!("auto".parse::<DisplayChoice>(), Ok(DisplayChoice::Auto));
    }
}
