//! Whether a desktop answers here, without opening a window: a Wayland compositor's socket
//! (`WAYLAND_DISPLAY` in `XDG_RUNTIME_DIR`) or an X server's (`DISPLAY`: the local socket
//! `/tmp/.X11-unix/X<n>`, also in Linux's abstract namespace, or TCP port 6000 + n).
//!
//! Contract: reads the environment and connects (then hangs up) at most once per candidate,
//! with a short timeout for TCP; never panics. Wayland is tried first, as winit does.

use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a TCP connection to a remote X server may take before the probe says no.
const TCP_TIMEOUT: Duration = Duration::from_millis(300);

/// Where an X display listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum X11Address {
    /// A local display: its number (socket `/tmp/.X11-unix/X<n>`).
    Local(u32),
    /// A display over TCP: host and port (6000 + display number).
    Tcp(String, u16),
}

/// Parses a `DISPLAY` value (`:0`, `:99.0`, `unix:1`, `localhost:10.0`, `host:0`).
pub fn parse_display(display: &str) -> Option<X11Address> {
    let (host, rest) = display.rsplit_once(':')?;
    let number = rest.split('.').next()?.parse::<u32>().ok()?;
    match host {
        "" | "unix" => Some(X11Address::Local(number)),
        // `host::0` is DECnet; nothing to connect to here.
        h if h.ends_with(':') => None,
        h if h.starts_with('/') => None,
        h => {
            let port = u16::try_from(6000 + u64::from(number)).ok()?;
            let h = h
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(h);
            Some(X11Address::Tcp(h.to_owned(), port))
        }
    }
}

/// Whether an X server answers at `addr`.
fn x11_answers(addr: &X11Address) -> Result<(), String> {
    match addr {
        X11Address::Local(n) => {
            let path = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
            let file = UnixStream::connect(&path);
            if file.is_ok() {
                return Ok(());
            }
            #[cfg(target_os = "linux")]
            {
                use std::os::linux::net::SocketAddrExt;
                let name = format!("/tmp/.X11-unix/X{n}");
                if let Ok(a) = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()) {
                    if UnixStream::connect_addr(&a).is_ok() {
                        return Ok(());
                    }
                }
            }
            Err(format!(
                "no X server at {} ({})",
                path.display(),
                file.err().map_or_else(String::new, |e| e.to_string())
            ))
        }
        X11Address::Tcp(host, port) => {
            let addrs = (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve X server host {host}: {e}"))?;
            let mut last = format!("{host} has no address");
            for a in addrs {
                match TcpStream::connect_timeout(&a, TCP_TIMEOUT) {
                    Ok(_) => return Ok(()),
                    Err(e) => last = format!("no X server at {a}: {e}"),
                }
            }
            Err(last)
        }
    }
}

/// The Wayland socket for `WAYLAND_DISPLAY` (absolute, or in `XDG_RUNTIME_DIR`).
fn wayland_socket(name: &str, runtime_dir: Option<&Path>) -> Option<PathBuf> {
    let p = Path::new(name);
    if p.is_absolute() {
        Some(p.to_path_buf())
    } else {
        runtime_dir.map(|d| d.join(p))
    }
}

/// See [`crate::window::probe`].
pub fn probe() -> Result<String, String> {
    let non_empty = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut no = Vec::new();
    if let Some(name) = non_empty("WAYLAND_DISPLAY") {
        let runtime = non_empty("XDG_RUNTIME_DIR").map(PathBuf::from);
        match wayland_socket(&name, runtime.as_deref()) {
            Some(sock) => match UnixStream::connect(&sock) {
                Ok(_) => return Ok(format!("Wayland display {name}")),
                Err(e) => no.push(format!(
                    "WAYLAND_DISPLAY={name}: no compositor at {} ({e})",
                    sock.display()
                )),
            },
            None => no.push(format!(
                "WAYLAND_DISPLAY={name} but XDG_RUNTIME_DIR is not set"
            )),
        }
    }
    if let Some(display) = non_empty("DISPLAY") {
        match parse_display(&display) {
            Some(addr) => match x11_answers(&addr) {
                Ok(()) => return Ok(format!("X11 display {display}")),
                Err(e) => no.push(format!("DISPLAY={display}: {e}")),
            },
            None => no.push(format!("DISPLAY={display} is not a display this can reach")),
        }
    }
    if no.is_empty() {
        Err("no DISPLAY or WAYLAND_DISPLAY set".into())
    } else {
        Err(no.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_values_parse() {
        assert_eq!(parse_display(":0"), Some(X11Address::Local(0)));
        assert_eq!(parse_display(":99.0"), Some(X11Address::Local(99)));
        assert_eq!(parse_display("unix:3"), Some(X11Address::Local(3)));
        assert_eq!(
            parse_display("localhost:10.0"),
            Some(X11Address::Tcp("localhost".into(), 6010))
        );
        assert_eq!(
            parse_display("[::1]:1"),
            Some(X11Address::Tcp("::1".into(), 6001))
        );
        for bad in [
            "",
            "0",
            ":",
            ":x",
            "host::0",
            ":99999999999",
            "/tmp/launch/org:0",
        ] {
            assert_eq!(parse_display(bad), None, "{bad}");
        }
    }

    #[test]
    fn wayland_sockets_are_found_in_the_runtime_dir() {
        let run = Path::new("/run/user/1000");
        assert_eq!(
            wayland_socket("wayland-0", Some(run)),
            Some(run.join("wayland-0"))
        );
        assert_eq!(
            wayland_socket("/tmp/w", None),
            Some(PathBuf::from("/tmp/w"))
        );
        assert_eq!(wayland_socket("wayland-0", None), None);
    }

    #[test]
    fn a_display_without_a_server_is_no() {
        // Display numbers this high have no server (and no socket) on a test machine.
        let e = x11_answers(&X11Address::Local(59_999)).unwrap_err();
        assert!(e.contains("/tmp/.X11-unix/X59999"), "{e}");
    }
}
