//! `haptwin doctor`: what this machine offers the simulator.
//!
//! Reports the Vulkan devices, the OpenXR runtime (or why there is none), the HID devices
//! visible, whether real-time scheduling is allowed, and a bare timer test: the same
//! absolute-deadline ticker as the haptic loop with no work in it, which is the floor the haptic
//! loop's lateness is measured against. Every probe is independent: one failing says why and the
//! others still run.

use std::time::Duration;

use crate::haptics::profiles::{self, KnownDevice};
use crate::haptics::rt::{self, RealtimeStatus, Ticker};
use crate::render;
use crate::stats::{Histogram, Percentiles};

/// One Vulkan device.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VulkanDevice {
    pub name: String,
    pub device_type: String,
    pub api_version: String,
}

/// What Vulkan offers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VulkanProbe {
    pub devices: Vec<VulkanDevice>,
    /// Why no device could be listed, if so.
    pub error: Option<String>,
}

/// What OpenXR offers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpenXrProbe {
    /// Runtime name and version, when one answered.
    pub runtime: Option<String>,
    /// Why there is no runtime, if so.
    pub error: Option<String>,
    /// `XR_RUNTIME_JSON`, if set.
    pub runtime_json: Option<String>,
}

/// One HID device.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HidDevice {
    pub vid_pid: String,
    pub product: Option<String>,
    pub path: String,
    /// The haptwin profile that matches its VID:PID (`None`: not a known device).
    pub profile: Option<&'static str>,
    /// Shipped generic profiles (`calibration/generic/`) with the same VID:PID, usable with
    /// `haptwin demo --device generic:NAME`.
    pub generic_profiles: Vec<&'static str>,
    /// Whether this user may open it for reading and writing.
    pub accessible: bool,
    /// How to grant access, when it is not accessible.
    pub fix: Option<String>,
}

/// What HID offers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HidProbe {
    pub devices: Vec<HidDevice>,
    pub error: Option<String>,
}

/// Real-time scheduling.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RealtimeProbe {
    /// The result of asking for SCHED_FIFO on a test thread.
    pub sched_fifo: RealtimeStatus,
    /// RLIMIT_RTPRIO soft limit (`None`: unlimited).
    pub rlimit_rtprio: Option<u64>,
}

/// The bare timer test.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TimerProbe {
    /// Wall time from the first deadline to the last wake-up, seconds.
    pub seconds: f64,
    pub ticks: u64,
    pub period_us: f64,
    pub spin_us: f64,
    pub lateness_us: Percentiles,
    pub overruns: u64,
    pub realtime: RealtimeStatus,
}

/// The whole doctor report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DoctorReport {
    pub cpus: usize,
    pub kernel: Option<String>,
    pub vulkan: VulkanProbe,
    pub openxr: OpenXrProbe,
    pub hid: HidProbe,
    pub realtime: RealtimeProbe,
    pub timer: TimerProbe,
}

/// Lists Vulkan devices.
pub fn probe_vulkan() -> VulkanProbe {
    match render::list_devices() {
        Ok(devs) => VulkanProbe {
            devices: devs
                .into_iter()
                .map(|d| VulkanDevice {
                    name: d.name,
                    device_type: d.device_type,
                    api_version: d.api_version,
                })
                .collect(),
            error: None,
        },
        Err(e) => VulkanProbe {
            devices: Vec::new(),
            error: Some(e.to_string()),
        },
    }
}

/// Loads the OpenXR loader and asks the active runtime for its name.
pub fn probe_openxr() -> OpenXrProbe {
    let runtime_json = std::env::var("XR_RUNTIME_JSON").ok();
    // SAFETY: loading the system's OpenXR loader runs its initialisers; it is the documented way
    // to use the `loaded` feature of the openxr crate.
    let entry = match unsafe { openxr::Entry::load(&()) } {
        Ok(e) => e,
        Err(e) => {
            return OpenXrProbe {
                runtime: None,
                error: Some(format!(
                    "no OpenXR loader (libopenxr_loader.so.1): {e}; install libopenxr-loader1 and a runtime such as Monado"
                )),
                runtime_json,
            }
        }
    };
    let exts = openxr::ExtensionSet::default();
    let app = openxr::ApplicationInfo {
        application_name: "haptwin-doctor",
        application_version: 1,
        engine_name: "haptwin",
        engine_version: 1,
        api_version: openxr::Version::new(1, 0, 0),
    };
    match entry.create_instance(&app, &exts, &[], &()) {
        Ok(instance) => match instance.properties() {
            Ok(p) => OpenXrProbe {
                runtime: Some(format!("{} {}", p.runtime_name, p.runtime_version)),
                error: None,
                runtime_json,
            },
            Err(e) => OpenXrProbe {
                runtime: None,
                error: Some(format!("runtime did not report its properties: {e}")),
                runtime_json,
            },
        },
        Err(e) => OpenXrProbe {
            runtime: None,
            error: Some(format!(
                "OpenXR loader found but no runtime answered ({e}); start one (e.g. monado-service) or set XR_RUNTIME_JSON"
            )),
            runtime_json,
        },
    }
}

/// Lists HID devices and whether they can be opened.
pub fn probe_hid() -> HidProbe {
    match hidapi::HidApi::new() {
        Ok(api) => HidProbe {
            devices: api
                .device_list()
                .map(|d| {
                    let path = d.path().to_string_lossy().into_owned();
                    let accessible = std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(&path)
                        .is_ok();
                    let known = profiles::match_profile(d.vendor_id(), d.product_id());
                    let fix = (!accessible).then(|| match known {
                        Some(_) => format!(
                            "install haptwin's udev rules: {}; then replug the device",
                            profiles::UDEV_INSTALL
                        ),
                        None => format!(
                            "add a udev rule to /etc/udev/rules.d/70-haptwin.rules: {}; then \
                             'sudo udevadm control --reload && sudo udevadm trigger' and replug",
                            profiles::udev_rule(d.vendor_id(), d.product_id())
                        ),
                    });
                    HidDevice {
                        vid_pid: format!("{:04x}:{:04x}", d.vendor_id(), d.product_id()),
                        product: d.product_string().map(str::to_string),
                        path,
                        profile: known.map(|k| k.profile),
                        generic_profiles: generic_matches(d.vendor_id(), d.product_id()),
                        accessible,
                        fix,
                    }
                })
                .collect(),
            error: None,
        },
        Err(e) => HidProbe {
            devices: Vec::new(),
            error: Some(e.to_string()),
        },
    }
}

/// What `haptwin devices` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DevicesReport {
    /// The HID devices visible, with their matching profile and whether they can be opened.
    pub hid: HidProbe,
    /// The devices haptwin has profiles for.
    pub known_profiles: &'static [KnownDevice],
    /// The udev rules file in the repository, and how to install it.
    pub udev_rules: &'static str,
    pub udev_install: &'static str,
}

/// Lists the HID devices for `haptwin devices`.
pub fn devices() -> DevicesReport {
    DevicesReport {
        hid: probe_hid(),
        known_profiles: profiles::KNOWN_DEVICES,
        udev_rules: profiles::UDEV_RULES_PATH,
        udev_install: profiles::UDEV_INSTALL,
    }
}

/// Asks for SCHED_FIFO on a short-lived thread.
pub fn probe_realtime() -> RealtimeProbe {
    let sched_fifo = std::thread::spawn(|| {
        let s = rt::request_realtime(80);
        rt::drop_realtime();
        s
    })
    .join()
    .unwrap_or(RealtimeStatus::NotRequested);
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_RTPRIO, &mut lim) };
    let rlimit_rtprio = (rc == 0 && lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur);
    RealtimeProbe {
        sched_fifo,
        rlimit_rtprio,
    }
}

/// Runs the bare timer loop (same ticker, period and spin as the haptic loop, no work) for
/// `duration` on a thread that asks for the same scheduling.
pub fn probe_timer(duration: Duration, period_ns: u64, spin_ns: u64, realtime: bool) -> TimerProbe {
    let ticks = (duration.as_nanos() as u64 / period_ns).max(1);
    std::thread::Builder::new()
        .name("timer-probe".into())
        .spawn(move || {
            let rt_status = if realtime {
                rt::request_realtime(80)
            } else {
                RealtimeStatus::NotRequested
            };
            let mut h = Histogram::new();
            let mut ticker = Ticker::new(period_ns, spin_ns);
            let mut first_deadline = None;
            let mut last_wake = 0;
            for _ in 0..ticks {
                let w = ticker.wait();
                first_deadline.get_or_insert(w.deadline_ns);
                last_wake = w.woke_ns;
                h.record(w.lateness_ns());
            }
            TimerProbe {
                seconds: last_wake.saturating_sub(first_deadline.unwrap_or(last_wake)) as f64
                    * 1e-9,
                ticks,
                period_us: period_ns as f64 / 1000.0,
                spin_us: spin_ns as f64 / 1000.0,
                lateness_us: Percentiles::of_ns_in_us(&h),
                overruns: ticker.overruns(),
                realtime: rt_status,
            }
        })
        .expect("spawn timer probe thread")
        .join()
        .expect("timer probe thread panicked")
}

/// Runs every probe; the timer test takes `timer` of wall time.
pub fn run_doctor(timer: Duration) -> DoctorReport {
    let loop_defaults = crate::haptics::haptic_loop::LoopConfig::default();
    DoctorReport {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|s| s.trim().to_string()),
        vulkan: probe_vulkan(),
        openxr: probe_openxr(),
        hid: probe_hid(),
        realtime: probe_realtime(),
        timer: probe_timer(timer, loop_defaults.period_ns, loop_defaults.spin_ns, true),
    }
}

/// The shipped generic profiles whose VID:PID is this one.
fn generic_matches(vendor_id: u16, product_id: u16) -> Vec<&'static str> {
    crate::haptics::generic::SHIPPED_PROFILES
        .iter()
        .filter(|(name, _)| {
            crate::haptics::generic::GenericProfile::shipped(name)
                .and_then(Result::ok)
                .is_some_and(|p| p.file.vendor_id == vendor_id && p.file.product_id == product_id)
        })
        .map(|(name, _)| *name)
        .collect()
}
