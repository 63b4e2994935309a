//! X11 capture and input injection against a real X server: each test starts its own Xvfb
//! (1024x768, depth 24, on a free display it picks itself; stopped on drop), draws with its own
//! x11rb connection, and checks what the agent's capturer sees and what its injector does.
//! Needs `Xvfb`; the typing test also needs `xterm`.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Proc, Xvfb};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sightline_agent::capture::x11::{monitors_on, X11Capturer, X11Options};
use sightline_agent::capture::{Capturer, Monitor};
use sightline_agent::input::Injector;
use sightline_core::messages::InputEvent;
use sightline_media::BgraFrame;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ChangeWindowAttributesAux, ConnectionExt as _, MapState};
use x11rb::wrapper::ConnectionExt as _;

const W: u32 = 1024;
const H: u32 = 768;
const RED: u32 = 0xff0000;
const GREEN: u32 = 0x00ff00;
const BLUE: u32 = 0x0000ff;

impl Xvfb {
    fn options(&self) -> X11Options {
        X11Options {
            display: Some(self.display.clone()),
            ..X11Options::default()
        }
    }

    fn open(&self, options: X11Options) -> X11Capturer {
        X11Capturer::open(&options, None).expect("open capturer")
    }

    fn warp(&self, x: i16, y: i16) {
        self.conn
            .warp_pointer(x11rb::NONE, self.root, 0, 0, 0, 0, x, y)
            .unwrap();
        self.conn.sync().unwrap();
    }

    fn pointer(&self) -> (i16, i16) {
        let p = self.conn.query_pointer(self.root).unwrap().reply().unwrap();
        (p.root_x, p.root_y)
    }

    fn key_down(&self, keycode: u8) -> bool {
        let keys = self.conn.query_keymap().unwrap().reply().unwrap().keys;
        keys[usize::from(keycode / 8)] & (1 << (keycode % 8)) != 0
    }

    fn any_key_down(&self) -> bool {
        let keys = self.conn.query_keymap().unwrap().reply().unwrap().keys;
        keys.iter().any(|&b| b != 0)
    }

    fn monitor(&self) -> Monitor {
        monitors_on(Some(&self.display)).unwrap().remove(0)
    }
}

/// The B, G, R bytes at (x, y).
fn bgr(frame: &BgraFrame, x: usize, y: usize) -> [u8; 3] {
    let i = y * frame.stride + x * 4;
    [frame.data[i], frame.data[i + 1], frame.data[i + 2]]
}

fn rgb_to_bgr(rgb: u32) -> [u8; 3] {
    [rgb as u8, (rgb >> 8) as u8, (rgb >> 16) as u8]
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn lists_the_root_window_as_one_monitor() {
    let x = Xvfb::start();
    let list = monitors_on(Some(&x.display)).unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    let m = &list[0];
    assert_eq!((m.index, m.x, m.y, m.width, m.height), (0, 0, 0, W, H));
    assert!(m.primary);
}

#[test]
fn errors_name_the_display_and_the_monitor() {
    let err = monitors_on(Some(":4093")).unwrap_err().to_string();
    assert!(
        err.starts_with("cannot open the X display :4093: "),
        "{err}"
    );
    let x = Xvfb::start();
    let err = X11Capturer::open(&x.options(), Some(3))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "no monitor 3 (the agent monitors command lists them)");
}

#[test]
fn captures_known_colours_with_shm_and_getimage_alike() {
    let x = Xvfb::start();
    x.fill_root(RED);
    x.show_window(100, 200, 300, 100, GREEN);
    x.show_window(1000, 740, 24, 28, BLUE); // bottom-right corner

    let mut shm = x.open(x.options());
    assert!(
        shm.uses_shm(),
        "Xvfb offers MIT-SHM; the fast path must be used"
    );
    let mut plain = x.open(X11Options {
        force_get_image: true,
        ..x.options()
    });
    assert!(!plain.uses_shm());

    let a = shm.capture().unwrap();
    let b = plain.capture().unwrap();
    assert!(a.changed && b.changed, "the first capture is a change");
    for f in [&a.frame, &b.frame] {
        assert_eq!((f.width, f.height, f.stride), (W, H, W as usize * 4));
        assert_eq!(f.data.len(), (W * H * 4) as usize);
        assert_eq!(bgr(f, 5, 5), rgb_to_bgr(RED));
        assert_eq!(bgr(f, 100, 200), rgb_to_bgr(GREEN));
        assert_eq!(bgr(f, 399, 299), rgb_to_bgr(GREEN));
        assert_eq!(bgr(f, 400, 300), rgb_to_bgr(RED));
        assert_eq!(bgr(f, 1023, 767), rgb_to_bgr(BLUE));
    }
    assert!(
        a.frame.data == b.frame.data,
        "SHM and GetImage frames differ"
    );
}

#[test]
fn falls_back_to_getimage_when_shm_cannot_be_shared() {
    // Over TCP the server cannot pass the segment's file descriptor: MIT-SHM is advertised but
    // unusable, as with a remote X server.
    let x = Xvfb::start_listening(true);
    x.fill_root(BLUE);
    let tcp = X11Options {
        display: Some(format!("127.0.0.1{}", x.display)),
        ..X11Options::default()
    };
    let mut cap = x.open(tcp);
    assert!(!cap.uses_shm(), "MIT-SHM cannot work over TCP");
    let c = cap.capture().unwrap();
    assert!(c.changed);
    assert_eq!(bgr(&c.frame, 512, 384), rgb_to_bgr(BLUE));
    assert!(!cap.capture().unwrap().changed);
}

/// A static screen reports no change; a drawn window does; a repaint with the same pixels
/// (damage without change) does not.
fn change_detection(ignore_damage: bool) {
    let x = Xvfb::start();
    x.fill_root(RED);
    let mut cap = x.open(X11Options {
        ignore_damage,
        ..x.options()
    });
    assert_eq!(cap.uses_damage(), !ignore_damage);
    assert!(cap.capture().unwrap().changed);
    let same = cap.capture().unwrap();
    assert!(!same.changed, "static screen reported as changed");

    x.show_window(10, 10, 50, 50, GREEN);
    // The damage event travels on the capturer's own connection: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(2);
    let drawn = loop {
        let c = cap.capture().unwrap();
        if c.changed || Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(drawn.changed, "a new window was not seen");
    assert_eq!(bgr(&drawn.frame, 20, 20), rgb_to_bgr(GREEN));
    assert!(!cap.capture().unwrap().changed);

    x.fill_root(RED); // repaints the root with the same colour: damage, no change
    assert!(!cap.capture().unwrap().changed);
}

#[test]
fn change_detection_with_xdamage() {
    change_detection(false);
}

#[test]
fn change_detection_by_comparison_only() {
    change_detection(true);
}

#[test]
fn reports_pointer_position_and_shape_once() {
    let x = Xvfb::start();
    let mut cap = x.open(x.options());
    x.warp(100, 200);
    let c = cap.cursor().unwrap();
    assert!(c.visible);
    assert!((c.x - 100.0 / W as f32).abs() < 1.0 / W as f32, "{c:?}");
    assert!((c.y - 200.0 / H as f32).abs() < 1.0 / H as f32, "{c:?}");
    let shape = c.shape.expect("the first call carries the shape");
    assert!(shape.width > 0 && shape.height > 0);
    assert_eq!(
        shape.rgba.len(),
        usize::from(shape.width) * usize::from(shape.height) * 4
    );
    assert!(
        shape.rgba.chunks(4).any(|p| p[3] != 0),
        "an invisible cursor image"
    );

    x.warp(1023, 767);
    let c = cap.cursor().unwrap();
    assert!(c.shape.is_none(), "the shape did not change");
    assert!(
        c.x > 0.999 && c.y > 0.999 && c.x <= 1.0 && c.y <= 1.0,
        "{c:?}"
    );

    // A different cursor on the root window (the "cursor" font's watch glyph) is a new shape.
    let font = x.conn.generate_id().unwrap();
    x.conn.open_font(font, b"cursor").unwrap();
    let watch = x.conn.generate_id().unwrap();
    const XC_WATCH: u16 = 150;
    x.conn
        .create_glyph_cursor(
            watch,
            font,
            font,
            XC_WATCH,
            XC_WATCH + 1,
            0,
            0,
            0,
            0xffff,
            0xffff,
            0xffff,
        )
        .unwrap();
    x.conn
        .change_window_attributes(x.root, &ChangeWindowAttributesAux::new().cursor(watch))
        .unwrap();
    x.conn.sync().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    let new_shape = loop {
        let c = cap.cursor().unwrap();
        if c.shape.is_some() || Instant::now() > deadline {
            break c.shape;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let new_shape = new_shape.expect("the new cursor was not reported");
    assert_ne!(new_shape, shape);
    assert!(cap.cursor().unwrap().shape.is_none());
}

#[test]
fn injects_pointer_moves_on_monitor_pixels() {
    let x = Xvfb::start();
    let mut inj = Injector::with_display(&x.monitor(), Some(&x.display)).unwrap();
    inj.apply(&InputEvent::PointerMove { x: 0.5, y: 0.5 })
        .unwrap();
    assert_eq!(x.pointer(), (512, 384));
    inj.apply(&InputEvent::PointerMove { x: 7.0, y: -1.0 })
        .unwrap();
    assert_eq!(
        x.pointer(),
        (1023, 0),
        "positions are clamped to the monitor"
    );
    assert!(inj
        .apply(&InputEvent::PointerMove {
            x: f32::NAN,
            y: 0.5
        })
        .is_err());
    assert!(inj
        .apply(&InputEvent::Key {
            key: "NoSuchKey".into(),
            pressed: true
        })
        .is_err());
    assert_eq!(x.pointer(), (1023, 0));
}

#[test]
fn release_all_lifts_held_keys_and_buttons() {
    let x = Xvfb::start();
    let mut inj = Injector::with_display(&x.monitor(), Some(&x.display)).unwrap();
    let shift_left = 42 + 8;
    inj.apply(&InputEvent::Key {
        key: "ShiftLeft".into(),
        pressed: true,
    })
    .unwrap();
    inj.apply(&InputEvent::Button {
        button: sightline_core::messages::MouseButton::Left,
        pressed: true,
    })
    .unwrap();
    assert!(x.key_down(shift_left), "ShiftLeft is not down");
    let buttons = x.conn.query_pointer(x.root).unwrap().reply().unwrap().mask;
    assert!(u16::from(buttons) & u16::from(x11rb::protocol::xproto::KeyButMask::BUTTON1) != 0);
    assert!(inj.holds_anything());

    inj.release_all().unwrap();
    assert!(!inj.holds_anything());
    assert!(!x.any_key_down(), "a key is still held");
    let buttons = x.conn.query_pointer(x.root).unwrap().reply().unwrap().mask;
    assert!(u16::from(buttons) & u16::from(x11rb::protocol::xproto::KeyButMask::BUTTON1) == 0);

    // Drop releases too.
    inj.apply(&InputEvent::Key {
        key: "ControlRight".into(),
        pressed: true,
    })
    .unwrap();
    assert!(x.key_down(97 + 8));
    drop(inj);
    assert!(!x.any_key_down(), "drop left a key held");
}

#[test]
fn typed_physical_keys_reach_a_terminal() {
    let x = Xvfb::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("typed.txt");
    let xterm = Command::new("xterm")
        .args([
            "-display",
            &x.display,
            "-geometry",
            "40x10+0+0",
            "-e",
            "sh",
            "-c",
        ])
        .arg(format!("cat > '{}'", out.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("xterm is installed (apt install xterm)");
    let _xterm = Proc(xterm);
    wait_for("the xterm window", Duration::from_secs(15), || {
        let tree = x.conn.query_tree(x.root).unwrap().reply().unwrap();
        tree.children.iter().any(|&w| {
            x.conn
                .get_window_attributes(w)
                .ok()
                .and_then(|c| c.reply().ok())
                .is_some_and(|a| a.map_state == MapState::VIEWABLE)
        })
    });
    wait_for("cat to start", Duration::from_secs(15), || out.exists());

    let mut inj = Injector::with_display(&x.monitor(), Some(&x.display)).unwrap();
    // No window manager: keyboard focus follows the pointer, so put it over the terminal.
    inj.apply(&InputEvent::PointerMove { x: 0.05, y: 0.05 })
        .unwrap();
    for key in ["KeyH", "KeyI", "Enter"] {
        for pressed in [true, false] {
            inj.apply(&InputEvent::Key {
                key: key.into(),
                pressed,
            })
            .unwrap();
        }
    }
    wait_for("the typed line", Duration::from_secs(10), || {
        std::fs::read_to_string(&out).is_ok_and(|s| s == "hi\n")
    });

    // Text without a physical key behind it (typed through a keysym mapping).
    inj.apply(&InputEvent::Text { text: "é!".into() }).unwrap();
    for pressed in [true, false] {
        inj.apply(&InputEvent::Key {
            key: "Enter".into(),
            pressed,
        })
        .unwrap();
    }
    wait_for("the typed text", Duration::from_secs(10), || {
        std::fs::read_to_string(&out).is_ok_and(|s| s == "hi\né!\n")
    });
}
