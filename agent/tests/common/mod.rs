//! Shared by the agent's X11 tests: a private Xvfb on a display number the server picks
//! itself (`-displayfd`), with an x11rb connection to draw on it and look at it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ChangeWindowAttributesAux, ConnectionExt as _, CreateWindowAux, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// A child process killed (and reaped) on drop.
pub struct Proc(pub Child);

/// Held while an X server starts or stops: a server gives up its display number before it is
/// gone, and a new server on that number would share it with a dying one.
static XVFB_LIFECYCLE: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Drop for Proc {
    fn drop(&mut self) {
        let _one_at_a_time = XVFB_LIFECYCLE.lock().unwrap_or_else(|p| p.into_inner());
        // SIGTERM first: Xvfb then removes its lock file and socket.
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private Xvfb and a connection to draw on it.
pub struct Xvfb {
    pub display: String,
    pub conn: RustConnection,
    pub root: Window,
    // Dropped last: the connection closes before the server dies.
    _server: Proc,
}

impl Xvfb {
    pub fn start() -> Xvfb {
        Self::start_listening(false)
    }

    /// With `tcp`, the server also listens on TCP port 6000 + N (for `127.0.0.1:N`).
    pub fn start_listening(tcp: bool) -> Xvfb {
        // `-displayfd`: the server picks a free display number itself and writes it to stdout
        // once it accepts connections, so parallel tests and other servers never collide.
        let one_at_a_time = XVFB_LIFECYCLE.lock().unwrap_or_else(|p| p.into_inner());
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1024x768x24"])
            .args([if tcp { "-listen" } else { "-nolisten" }, "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb is installed (apt install xvfb)");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        // Released before the server is wrapped: its drop takes the lock too.
        drop(one_at_a_time);
        let server = Proc(child);
        let n: u32 = line
            .trim()
            .parse()
            .expect("Xvfb reports its display number");
        let display = format!(":{n}");
        let (conn, screen) = x11rb::connect(Some(&display)).unwrap();
        let root = conn.setup().roots[screen].root;
        Xvfb {
            display,
            conn,
            root,
            _server: server,
        }
    }

    /// A fresh display whose root window is `rgb`.
    pub fn start_filled(rgb: u32) -> Xvfb {
        let x = Self::start();
        x.fill_root(rgb);
        x
    }

    /// Waits until the server has handled every request sent so far.
    pub fn sync(&self) {
        self.conn.get_input_focus().unwrap().reply().unwrap();
    }

    /// Paints the whole root window `rgb`.
    pub fn fill_root(&self, rgb: u32) {
        self.conn
            .change_window_attributes(
                self.root,
                &ChangeWindowAttributesAux::new().background_pixel(rgb),
            )
            .unwrap();
        self.conn.clear_area(false, self.root, 0, 0, 0, 0).unwrap();
        self.conn.sync().unwrap();
    }

    /// Shows an undecorated window of colour `rgb`.
    pub fn show_window(&self, x: i16, y: i16, w: u16, h: u16, rgb: u32) -> Window {
        let win = self.conn.generate_id().unwrap();
        let aux = CreateWindowAux::new()
            .background_pixel(rgb)
            .override_redirect(1);
        self.conn
            .create_window(
                0,
                win,
                self.root,
                x,
                y,
                w,
                h,
                0,
                WindowClass::INPUT_OUTPUT,
                0,
                &aux,
            )
            .unwrap();
        self.conn.map_window(win).unwrap();
        self.conn.sync().unwrap();
        // Let the server paint the background before anyone reads the screen.
        self.conn.get_input_focus().unwrap().reply().unwrap();
        win
    }
}
