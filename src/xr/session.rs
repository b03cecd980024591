//! The OpenXR session state machine, as plain logic: what the app must do when the runtime
//! reports a new session state, and when the app itself wants to leave.
//!
//! Contract: pure, no OpenXR calls; [`SessionMachine::on_state`] is fed every
//! `XrEventDataSessionStateChanged` in order and answers with the one call the app must make
//! (`xrBeginSession` on READY, `xrEndSession` on STOPPING, leave on EXITING or LOSS_PENDING).
//! Frames are submitted only while the session runs and the runtime said it is at least
//! SYNCHRONIZED. An exit wanted by the app goes through `xrRequestExitSession`, after which
//! the runtime drives STOPPING -> IDLE -> EXITING.

/// A session state, as the runtime reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum XrState {
    /// Created, not ready to begin.
    Idle,
    /// Ready: the app must begin the session.
    Ready,
    /// Frames are synchronised with the display but not shown.
    Synchronized,
    /// Frames are shown.
    Visible,
    /// Frames are shown and the app receives input.
    Focused,
    /// The app must end the session.
    Stopping,
    /// The runtime is about to lose the session (e.g. the headset went away).
    LossPending,
    /// The app must leave.
    Exiting,
    /// A state this code does not know.
    Unknown,
}

impl XrState {
    /// The state of an OpenXR `XrSessionState` value.
    pub fn from_raw(raw: i32) -> Self {
        match raw {
            1 => Self::Idle,
            2 => Self::Ready,
            3 => Self::Synchronized,
            4 => Self::Visible,
            5 => Self::Focused,
            6 => Self::Stopping,
            7 => Self::LossPending,
            8 => Self::Exiting,
            _ => Self::Unknown,
        }
    }
}

/// What the app must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAction {
    /// Nothing.
    None,
    /// Call `xrBeginSession`.
    Begin,
    /// Call `xrEndSession`.
    End,
    /// Leave the frame loop (and destroy the session).
    Leave(LeaveReason),
}

/// Why the frame loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// The app asked (`xrRequestExitSession`) and the runtime let it go.
    AppRequested,
    /// The runtime (the user, in its menu) ended the session.
    RuntimeRequested,
    /// The runtime is losing the session or instance (headset unplugged, service gone).
    Lost,
    /// The app wanted to leave before the session ever ran.
    NeverStarted,
}

/// The app's view of its session. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct SessionMachine {
    state: Option<XrState>,
    running: bool,
    exit_requested: bool,
    focused_once: bool,
    seen: Vec<XrState>,
}

impl SessionMachine {
    /// A machine before any event.
    pub fn new() -> Self {
        Self::default()
    }

    /// The runtime reported `state`; returns the call to make.
    pub fn on_state(&mut self, state: XrState) -> SessionAction {
        self.state = Some(state);
        if self.seen.last() != Some(&state) {
            self.seen.push(state);
        }
        match state {
            XrState::Ready => {
                self.running = true;
                SessionAction::Begin
            }
            XrState::Focused => {
                self.focused_once = true;
                SessionAction::None
            }
            XrState::Stopping => {
                self.running = false;
                SessionAction::End
            }
            XrState::Exiting => SessionAction::Leave(if self.exit_requested {
                LeaveReason::AppRequested
            } else {
                LeaveReason::RuntimeRequested
            }),
            XrState::LossPending => {
                self.running = false;
                SessionAction::Leave(LeaveReason::Lost)
            }
            _ => SessionAction::None,
        }
    }

    /// The app wants to leave: whether to call `xrRequestExitSession` (the session runs) or
    /// to leave at once (it never began).
    pub fn request_exit(&mut self) -> SessionAction {
        if self.exit_requested {
            return SessionAction::None;
        }
        self.exit_requested = true;
        if self.running {
            SessionAction::End
        } else {
            SessionAction::Leave(LeaveReason::NeverStarted)
        }
    }

    /// Whether the session has begun and not yet ended: frames must be waited for, begun
    /// and ended.
    pub fn running(&self) -> bool {
        self.running
    }

    /// Whether the app asked to leave.
    pub fn exit_requested(&self) -> bool {
        self.exit_requested
    }

    /// Whether the runtime wants rendered frames (SYNCHRONIZED or later, still running).
    pub fn wants_frames(&self) -> bool {
        self.running
            && matches!(
                self.state,
                Some(XrState::Synchronized | XrState::Visible | XrState::Focused)
            )
    }

    /// Whether the app has input focus.
    pub fn focused(&self) -> bool {
        self.state == Some(XrState::Focused)
    }

    /// Whether FOCUSED was ever reached.
    pub fn focused_once(&self) -> bool {
        self.focused_once
    }

    /// Every state reported, in order (repeats folded).
    pub fn seen(&self) -> &[XrState] {
        &self.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use XrState::*;

    #[test]
    fn a_normal_session_begins_runs_and_leaves_on_the_apps_request() {
        let mut m = SessionMachine::new();
        assert_eq!(m.on_state(Idle), SessionAction::None);
        assert!(!m.wants_frames());
        assert_eq!(m.on_state(Ready), SessionAction::Begin);
        assert!(m.running() && !m.wants_frames());
        assert_eq!(m.on_state(Synchronized), SessionAction::None);
        assert!(m.wants_frames());
        m.on_state(Visible);
        m.on_state(Focused);
        assert!(m.focused() && m.focused_once());
        // The app asks to leave: xrRequestExitSession (the session runs).
        assert_eq!(m.request_exit(), SessionAction::End);
        assert_eq!(m.request_exit(), SessionAction::None, "asked once");
        m.on_state(Visible);
        m.on_state(Synchronized);
        assert_eq!(m.on_state(Stopping), SessionAction::End);
        assert!(!m.running() && !m.wants_frames());
        m.on_state(Idle);
        assert_eq!(
            m.on_state(Exiting),
            SessionAction::Leave(LeaveReason::AppRequested)
        );
        assert_eq!(
            m.seen(),
            &[
                Idle,
                Ready,
                Synchronized,
                Visible,
                Focused,
                Visible,
                Synchronized,
                Stopping,
                Idle,
                Exiting
            ]
        );
    }

    #[test]
    fn the_runtime_can_stop_the_session_and_lose_it() {
        let mut m = SessionMachine::new();
        m.on_state(Idle);
        m.on_state(Ready);
        m.on_state(Synchronized);
        assert_eq!(m.on_state(Stopping), SessionAction::End);
        m.on_state(Idle);
        assert_eq!(
            m.on_state(Exiting),
            SessionAction::Leave(LeaveReason::RuntimeRequested)
        );

        let mut m = SessionMachine::new();
        m.on_state(Ready);
        m.on_state(Focused);
        assert_eq!(
            m.on_state(LossPending),
            SessionAction::Leave(LeaveReason::Lost)
        );
        assert!(!m.wants_frames());
    }

    #[test]
    fn leaving_before_the_session_runs_is_immediate() {
        let mut m = SessionMachine::new();
        m.on_state(Idle);
        assert_eq!(
            m.request_exit(),
            SessionAction::Leave(LeaveReason::NeverStarted)
        );
    }

    #[test]
    fn raw_states_map() {
        assert_eq!(XrState::from_raw(5), Focused);
        assert_eq!(XrState::from_raw(8), Exiting);
        assert_eq!(XrState::from_raw(99), Unknown);
    }
}
