//! A headless Wayland desktop for tests, with a real xdg-desktop-portal ScreenCast on a
//! private D-Bus session bus and real PipeWire behind it, started per test and killed when
//! dropped.
//!
//! What [`WaylandDesktop::start`] runs, all in one new process group and one temporary
//! directory (so parallel tests and test processes share nothing):
//!
//! | daemon | how |
//! | --- | --- |
//! | `dbus-daemon` | a session bus from its own config: listens on `RUNTIME/bus`, and can activate only `xdg-permission-store` (not the document portal, whose FUSE mount would outlive the test) |
//! | `sway` | wlroots' headless backend with the pixman renderer (no GPU, no input devices, no Xwayland), one output `HEADLESS-1` of the requested size, filled with a solid colour by `swaybg` |
//! | `pipewire`, `wireplumber` | the system's configuration, on `RUNTIME/pipewire-0` |
//! | `xdg-desktop-portal-wlr` | `chooser_type=none`, `output_name=HEADLESS-1`: `Start` needs no answer from anyone |
//! | `xdg-desktop-portal` | with `XDG_CURRENT_DESKTOP=sway`, so that it picks `wlr.portal` |
//!
//! Clients get the variables of [`WaylandDesktop::env`] (or [`WaylandDesktop::apply`], which
//! also removes `DISPLAY`): the desktop has no X server.
//!
//! Two things differ from a desktop session on a laptop, both forced by a GPU-less machine:
//!
//! * The xdg-desktop-portal-wlr is Debian's source of the installed version with
//!   `tests/scripts/xdpw-shm-only.patch`, built once by `tests/scripts/xdpw-shm.sh` into
//!   `~/.cache/sightline/`. Stock xdpw 0.7 refuses to start a screencast when the compositor
//!   offers no DMA-BUF format, and the pixman renderer offers shared memory only (`Start`
//!   answers 2; xdpw logs "unable to receive a valid format from wlr_screencopy"). So frames
//!   arrive as `MemFd` buffers, never `DmaBuf`. `SIGHTLINE_XDPW=/path/to/xdpw` picks another
//!   binary (the stock one where the compositor has a GPU).
//! * sway refuses to run as root ("Unable to drop root"). As root it runs as `nobody`, with a
//!   runtime directory of its own; its Wayland socket is linked into the clients'
//!   `XDG_RUNTIME_DIR`, which stays owned by the user running the test.
//!
//! And one thing a test must know: on this solid-colour desktop a cast gets frames only when
//! the screen changes, and a cast started after an earlier one on an unchanged screen gets
//! none at all (see [`WaylandDesktop::repaint`], [`WaylandDesktop::keep_repainting`]).
//!
//! Daemons' output goes to `DIR/logs/*.log` ([`WaylandDesktop::logs`]), which the panics of
//! timed-out waits print.

use std::cell::RefCell;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The name of the one output.
pub const OUTPUT: &str = "HEADLESS-1";

/// The colour the desktop starts with (0xRRGGBB).
pub const BACKGROUND: u32 = 0x3366cc;

/// The D-Bus name of the portal frontend.
pub const PORTAL: &str = "org.freedesktop.portal.Desktop";

/// The D-Bus name of the wlroots portal backend.
const XDPW_NAME: &str = "org.freedesktop.impl.portal.desktop.wlr";

/// How long each daemon may take to be ready (a loaded 2-core machine).
const READY: Duration = Duration::from_secs(30);

/// A running headless Wayland desktop; every daemon is killed, and its directory removed,
/// when dropped.
#[derive(Debug)]
pub struct WaylandDesktop {
    dir: tempfile::TempDir,
    width: u32,
    height: u32,
    /// The clients' XDG_RUNTIME_DIR (bus, PipeWire and Wayland sockets).
    runtime: PathBuf,
    /// sway's own runtime directory (its Wayland and IPC sockets).
    sway_runtime: PathBuf,
    bus: String,
    wayland_display: String,
    /// The process group of every daemon (the first one's pid).
    group: Option<u32>,
    children: RefCell<Vec<(String, Child)>>,
    /// The thread of [`WaylandDesktop::keep_repainting`], and its stop flag.
    repainter: Mutex<Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>>,
}

impl WaylandDesktop {
    /// Starts the desktop with one output of `width` x `height` filled with [`BACKGROUND`],
    /// and waits until the ScreenCast portal is on the bus. Panics, with the daemons' logs,
    /// when a program is missing or does not become ready in time.
    pub fn start(width: u32, height: u32) -> WaylandDesktop {
        Self::start_with_chooser(width, height, None)
    }

    /// Like [`WaylandDesktop::start`], with xdg-desktop-portal-wlr's `simple` chooser running
    /// `chooser` (a shell command that prints the output to share, as a desktop's dialog
    /// would answer) instead of choosing the one output by itself; a command that prints
    /// nothing is a customer who cancels the dialog.
    pub fn start_with_chooser(width: u32, height: u32, chooser: Option<&str>) -> WaylandDesktop {
        let dir = tempfile::Builder::new()
            .prefix("sightline-wayland-")
            .tempdir()
            .unwrap();
        let d = dir.path().to_path_buf();
        let runtime = crate::runtime_dir(&d);
        let sway_runtime = d.join("sway-runtime");
        for sub in ["logs", "home", "config", "state", "cache", "data"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let mut desktop = WaylandDesktop {
            dir,
            width,
            height,
            bus: format!("unix:path={}", runtime.join("bus").display()),
            runtime,
            sway_runtime,
            wayland_display: String::new(),
            group: None,
            children: RefCell::new(Vec::new()),
            repainter: Mutex::new(None),
        };
        desktop.start_bus();
        desktop.start_sway();
        desktop.start_pipewire();
        desktop.start_portals(chooser);
        desktop
    }

    /// The variables a client of this desktop needs: `WAYLAND_DISPLAY`, `XDG_RUNTIME_DIR`,
    /// `DBUS_SESSION_BUS_ADDRESS`, `XDG_CURRENT_DESKTOP` and `XDG_SESSION_TYPE`. A client
    /// must also not have `DISPLAY` ([`WaylandDesktop::apply`] removes it).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("WAYLAND_DISPLAY", self.wayland_display.clone()),
            ("XDG_RUNTIME_DIR", self.runtime.display().to_string()),
            ("DBUS_SESSION_BUS_ADDRESS", self.bus.clone()),
            ("XDG_CURRENT_DESKTOP", "sway".to_string()),
            ("XDG_SESSION_TYPE", "wayland".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Makes `cmd` a client of this desktop: [`WaylandDesktop::env`], and no `DISPLAY` (nor
    /// any PipeWire or sway address from the test's own environment).
    pub fn apply<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        for var in CLEARED {
            cmd.env_remove(var);
        }
        cmd.envs(self.env())
    }

    /// The temporary directory (logs in `logs/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The clients' `XDG_RUNTIME_DIR`.
    pub fn runtime_dir(&self) -> &Path {
        &self.runtime
    }

    /// `DBUS_SESSION_BUS_ADDRESS` of the private session bus.
    pub fn bus_address(&self) -> &str {
        &self.bus
    }

    /// `WAYLAND_DISPLAY` (a socket name in [`WaylandDesktop::runtime_dir`]).
    pub fn wayland_display(&self) -> &str {
        &self.wayland_display
    }

    /// The process group of the daemons (killed as a whole when dropped).
    pub fn process_group(&self) -> u32 {
        self.group.expect("the desktop has started")
    }

    /// The output's size.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// `swaymsg ARGS...` on this desktop's sway; returns its output, panics if it fails.
    pub fn swaymsg(&self, args: &[&str]) -> String {
        let (ok, out) = self.try_swaymsg(args);
        assert!(ok, "swaymsg {args:?} failed: {out}\n{}", self.logs());
        out
    }

    /// Fills the output with `rgb` (0xRRGGBB). sway starts a new `swaybg` for it, which
    /// draws a moment after this returns: poll the picture rather than expect it at once.
    pub fn set_background(&self, rgb: u32) {
        let colour = format!("#{:06x}", rgb & 0xff_ffff);
        self.swaymsg(&["output", "*", "bg", &colour, "solid_color"]);
    }

    /// Makes sway repaint the whole output without changing it (it applies the output's
    /// mode again), so that a cast waiting for damage gets a frame.
    ///
    /// xdg-desktop-portal-wlr 0.7 asks for every frame, the first included, with
    /// `copy_with_damage`, and wlroots 0.15 tracks that damage per screencopy client, which
    /// is one for all the casts of an xdpw. So once one cast has had a frame, a later cast of
    /// a screen that has not changed since gets no frame at all (its stream goes to
    /// `streaming` and stays empty) until something on the screen changes. A desktop with a
    /// clock or a blinking cursor hides this; this one shows a solid colour.
    pub fn repaint(&self) {
        let mode = format!("{}x{}", self.width, self.height);
        self.swaymsg(&["output", OUTPUT, "resolution", &mode]);
    }

    /// Calls [`WaylandDesktop::repaint`] every `every` from a thread, until the desktop is
    /// dropped: casts then get a frame at least that often, as on a desktop with a clock.
    pub fn keep_repainting(&self, every: Duration) {
        let mut slot = self.repainter.lock().unwrap();
        if slot.is_some() {
            return;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let socket = self.sway_runtime.join("ipc.sock");
        let mode = format!("{}x{}", self.width, self.height);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                let _ = Command::new("swaymsg")
                    .arg("-s")
                    .arg(&socket)
                    .args(["output", OUTPUT, "resolution", &mode])
                    .output();
                std::thread::sleep(every);
            }
        });
        *slot = Some((stop, thread));
    }

    /// Runs `tests/scripts/portal_probe.py` as a client of this desktop: the ScreenCast
    /// handshake through the portal, then one frame from PipeWire with GStreamer, written to
    /// `png`. With `expect` (0xRRGGBB) it also reports the share of pixels of that colour as
    /// `matching`. Returns the probe's JSON report (see the script); panics, with the
    /// daemons' logs, when the probe fails.
    pub fn probe_portal(&self, png: &Path, expect: Option<u32>) -> serde_json::Value {
        let script = crate::repo_root().join("tests/scripts/portal_probe.py");
        let mut cmd = Command::new(SYSTEM_PYTHON);
        cmd.arg(&script).arg("--png").arg(png);
        if let Some(rgb) = expect {
            cmd.arg("--expect").arg(format!("{:06x}", rgb & 0xff_ffff));
        }
        cmd.arg("--gst-log").arg(self.dir().join("logs/gst.log"));
        self.apply(&mut cmd);
        // Repaint while it runs, so that its cast gets a frame however static the screen
        // (see `repaint`).
        let out = std::thread::scope(|s| {
            let probe = s.spawn(|| cmd.output());
            while !probe.is_finished() {
                self.repaint();
                std::thread::sleep(Duration::from_millis(250));
            }
            probe.join().unwrap()
        })
        .unwrap_or_else(|e| panic!("cannot run {SYSTEM_PYTHON} (./dev installs it): {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "portal_probe.py failed ({}):\n{stderr}\n{stdout}\n{}",
            out.status,
            self.logs()
        );
        let last = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last)
            .unwrap_or_else(|e| panic!("portal_probe.py printed {stdout:?} ({e}); {stderr}"))
    }

    /// The end of each daemon's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        let Ok(entries) = std::fs::read_dir(self.dir().join("logs")) else {
            return all;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            all.push_str(&format!(
                "--- {} (last {} lines)\n{}\n",
                path.display(),
                tail.len(),
                tail.join("\n")
            ));
        }
        all
    }

    fn start_bus(&mut self) {
        let d = self.dir().to_path_buf();
        let services = d.join("dbus-services");
        std::fs::create_dir_all(&services).unwrap();
        let store = "/usr/libexec/xdg-permission-store";
        if Path::new(store).exists() {
            std::fs::write(
                services.join("org.freedesktop.impl.portal.PermissionStore.service"),
                format!(
                    "[D-BUS Service]\nName=org.freedesktop.impl.portal.PermissionStore\n\
                     Exec={store}\n"
                ),
            )
            .unwrap();
        }
        let config = d.join("dbus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <servicedir>{}</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                self.runtime.join("bus").display(),
                services.display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new("dbus-daemon");
        cmd.arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile"]);
        self.daemon_env(&mut cmd);
        self.spawn("dbus", &mut cmd);
        let socket = self.runtime.join("bus");
        self.wait("the session bus socket", || socket.exists());
    }

    fn start_sway(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let d = self.dir().to_path_buf();
        std::fs::create_dir_all(&self.sway_runtime).unwrap();
        std::fs::set_permissions(&self.sway_runtime, std::fs::Permissions::from_mode(0o700))
            .unwrap();
        let config = d.join("sway.conf");
        std::fs::write(
            &config,
            format!(
                "xwayland disable\n\
                 output {OUTPUT} resolution {}x{} position 0,0\n\
                 output * bg #{BACKGROUND:06x} solid_color\n",
                self.width, self.height
            ),
        )
        .unwrap();
        let mut cmd;
        if let Some((uid, gid)) = root_then_nobody() {
            // sway will not run as root. `nobody` must read its config (the temporary
            // directory is 0700) and own its runtime directory.
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::os::unix::fs::chown(&self.sway_runtime, Some(uid), Some(gid)).unwrap();
            cmd = Command::new("setpriv");
            cmd.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .args(["--clear-groups", "sway"]);
        } else {
            cmd = Command::new("sway");
        }
        cmd.arg("-c").arg(&config);
        for var in CLEARED {
            cmd.env_remove(var);
        }
        cmd.env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("HOME", &self.sway_runtime)
            .env("XDG_RUNTIME_DIR", &self.sway_runtime)
            .env("SWAYSOCK", self.sway_runtime.join("ipc.sock"))
            .env("WLR_BACKENDS", "headless")
            .env("WLR_HEADLESS_OUTPUTS", "1")
            .env("WLR_LIBINPUT_NO_DEVICES", "1")
            .env("WLR_RENDERER", "pixman");
        self.spawn("sway", &mut cmd);
        let sway_runtime = self.sway_runtime.clone();
        let mut name = String::new();
        self.wait("sway's Wayland socket", || {
            name = wayland_socket(&sway_runtime).unwrap_or_default();
            !name.is_empty()
        });
        std::os::unix::fs::symlink(sway_runtime.join(&name), self.runtime.join(&name)).unwrap();
        self.wayland_display = name;
        let (w, h) = (self.width, self.height);
        let mut last = String::new();
        let found = self.wait_result(&format!("sway's output {OUTPUT} at {w}x{h}"), || {
            let (ok, out) = self.try_swaymsg(&["-r", "-t", "get_outputs"]);
            last = out.clone();
            ok && output_has_size(&out, w, h)
        });
        assert!(found, "sway's outputs: {last}\n{}", self.logs());
    }

    fn start_pipewire(&mut self) {
        let mut cmd = Command::new("pipewire");
        self.daemon_env(&mut cmd);
        self.spawn("pipewire", &mut cmd);
        let socket = self.runtime.join("pipewire-0");
        self.wait("PipeWire's socket", || socket.exists());
        let mut cmd = Command::new("wireplumber");
        self.daemon_env(&mut cmd);
        self.spawn("wireplumber", &mut cmd);
        // WirePlumber links the portal's stream to its consumers: wait until it is a client.
        self.wait("WirePlumber on PipeWire", || {
            let mut cmd = Command::new("pw-cli");
            cmd.args(["ls", "Client"]);
            self.daemon_env(&mut cmd);
            cmd.output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("\"WirePlumber\""))
                .unwrap_or(false)
        });
    }

    fn start_portals(&mut self, chooser: Option<&str>) {
        let d = self.dir().to_path_buf();
        let config = d.join("xdpw.conf");
        let choose = match chooser {
            None => format!("chooser_type=none\noutput_name={OUTPUT}"),
            Some(cmd) => format!("chooser_type=simple\nchooser_cmd={cmd}"),
        };
        std::fs::write(&config, format!("[screencast]\n{choose}\nmax_fps=30\n")).unwrap();
        let mut cmd = Command::new(xdpw_binary());
        cmd.arg("-c").arg(&config).args(["-l", "INFO"]);
        self.daemon_env(&mut cmd);
        self.spawn("xdpw", &mut cmd);
        // The frontend looks for its backends when it starts: xdpw must be on the bus first
        // (the private bus cannot activate it).
        self.wait(&format!("{XDPW_NAME} on the bus"), || {
            self.has_owner(XDPW_NAME)
        });
        let mut cmd = Command::new("/usr/libexec/xdg-desktop-portal");
        cmd.arg("--verbose");
        self.daemon_env(&mut cmd);
        self.spawn("xdg-desktop-portal", &mut cmd);
        self.wait(&format!("{PORTAL} on the bus"), || self.has_owner(PORTAL));
    }

    /// The environment of the daemons (not sway): everything in the temporary directory.
    fn daemon_env(&self, cmd: &mut Command) {
        let d = self.dir();
        for var in CLEARED {
            cmd.env_remove(var);
        }
        cmd.env("HOME", d.join("home"))
            .env("XDG_CONFIG_HOME", d.join("config"))
            .env("XDG_STATE_HOME", d.join("state"))
            .env("XDG_CACHE_HOME", d.join("cache"))
            .env("XDG_DATA_HOME", d.join("data"))
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env("XDG_CURRENT_DESKTOP", "sway")
            .env("XDG_SESSION_TYPE", "wayland")
            .env("GIO_USE_VFS", "local");
        if !self.wayland_display.is_empty() {
            cmd.env("WAYLAND_DISPLAY", &self.wayland_display);
        }
    }

    /// Starts a daemon in the desktop's process group, its output in `logs/NAME.log`.
    fn spawn(&mut self, name: &str, cmd: &mut Command) {
        let log = std::fs::File::create(self.dir().join(format!("logs/{name}.log"))).unwrap();
        let program = cmd.get_program().to_string_lossy().into_owned();
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(self.group.map_or(0, |g| g as i32));
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start {program} for the Wayland desktop (./dev installs it): {e}")
        });
        self.group.get_or_insert(child.id());
        self.children.get_mut().push((name.to_string(), child));
    }

    /// Waits until `ready` holds, for at most [`READY`]; panics with the logs when it does
    /// not, or at once when a daemon has exited.
    fn wait(&self, what: &str, ready: impl FnMut() -> bool) {
        if !self.wait_result(what, ready) {
            panic!(
                "Wayland desktop: no {what} after {READY:?}\n{}",
                self.logs()
            );
        }
    }

    fn wait_result(&self, what: &str, mut ready: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + READY;
        loop {
            if ready() {
                return true;
            }
            let exited = self
                .children
                .borrow_mut()
                .iter_mut()
                .find_map(|(name, child)| Some((name.clone(), child.try_wait().ok()??)));
            if let Some((name, status)) = exited {
                panic!(
                    "Wayland desktop: {name} exited ({status}) while waiting for {what}\n{}",
                    self.logs()
                );
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn try_swaymsg(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("swaymsg")
            .arg("-s")
            .arg(self.sway_runtime.join("ipc.sock"))
            .args(args)
            .env_remove("SWAYSOCK")
            .output()
            .unwrap_or_else(|e| panic!("cannot run swaymsg (./dev installs sway): {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Whether `name` has an owner on the private bus.
    fn has_owner(&self, name: &str) -> bool {
        Command::new("dbus-send")
            .arg(format!("--bus={}", self.bus))
            .args([
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
            ])
            .arg(format!("string:{name}"))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
            .unwrap_or(false)
    }
}

impl Drop for WaylandDesktop {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.repainter.get_mut().ok().and_then(|r| r.take()) {
            stop.store(true, Ordering::SeqCst);
            let _ = thread.join();
        }
        // The whole group: the daemons, and what they started themselves (swaybg,
        // xdg-permission-store), which are not our children.
        let Some(group) = self.group else { return };
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{group}")])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            // Reap our children, so that they stop counting as members.
            for (_, c) in self.children.get_mut() {
                let _ = c.try_wait();
            }
            if group_members(group).is_empty() || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{group}")])
            .stderr(Stdio::null())
            .status();
        for (_, c) in self.children.get_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The Debian interpreter, which has python3-dbus and python3-gi (a `python3` earlier in
/// PATH, from pyenv say, may not).
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// Variables of the test's own environment that would point a daemon or client elsewhere.
const CLEARED: &[&str] = &[
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "WAYLAND_SOCKET",
    "SWAYSOCK",
    "I3SOCK",
    "PIPEWIRE_REMOTE",
    "PIPEWIRE_RUNTIME_DIR",
    "PULSE_SERVER",
    "DBUS_SESSION_BUS_PID",
];

/// The xdg-desktop-portal-wlr to run: `SIGHTLINE_XDPW`, or the patched build of
/// `tests/scripts/xdpw-shm.sh` (built on first use, then cached).
fn xdpw_binary() -> PathBuf {
    static XDPW: OnceLock<PathBuf> = OnceLock::new();
    XDPW.get_or_init(|| {
        if let Some(path) = std::env::var_os("SIGHTLINE_XDPW") {
            return PathBuf::from(path);
        }
        let script = crate::repo_root().join("tests/scripts/xdpw-shm.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} could not build xdg-desktop-portal-wlr:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(path.exists(), "{} printed {path:?}", script.display());
        path
    })
    .clone()
}

/// The processes of process group `group` that are alive (zombies waiting for their parent
/// do not count): their pids and names.
pub fn group_members(group: u32) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "PID (COMM) STATE PPID PGRP ...": COMM may hold spaces and parentheses.
            let open = stat.find('(')?;
            let close = stat.rfind(')')?;
            let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            let (state, pgrp) = (rest.first()?, rest.get(2)?.parse::<u32>().ok()?);
            (pgrp == group && *state != "Z" && *state != "X")
                .then(|| (pid, stat[open + 1..close].to_string()))
        })
        .collect()
}

/// When the test runs as root: the uid and gid of `nobody`, to run sway as.
fn root_then_nobody() -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").ok()?.uid() != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .expect("sway does not run as root, and there is no user nobody to run it as");
    let fields: Vec<&str> = line.split(':').collect();
    Some((fields[2].parse().unwrap(), fields[3].parse().unwrap()))
}

/// The name of the Wayland socket in `dir` (`wayland-N`), once there is one.
fn wayland_socket(dir: &Path) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .find(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("wayland-")
                && !name.ends_with(".lock")
                && e.file_type().is_ok_and(|t| t.is_socket())
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
}

/// Whether `swaymsg -r -t get_outputs` shows [`OUTPUT`] active at `width` x `height`.
fn output_has_size(json: &str, width: u32, height: u32) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return false;
    };
    v.as_array().is_some_and(|outputs| {
        outputs.iter().any(|o| {
            o["name"] == OUTPUT
                && o["active"] == true
                && o["rect"]["width"] == width
                && o["rect"]["height"] == height
        })
    })
}
