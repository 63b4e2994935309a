//! The session banner and the customer's hotkeys against a real X server: each test starts its
//! own Xvfb (1024x768, depth 24, on a free display it picks itself; stopped on drop), shows the
//! banner there, and looks at it the way the operator does (a screenshot of the root window) and
//! the way a window manager does (xwininfo, properties). Hotkeys are typed with xdotool.
//! Needs `Xvfb`, `xdotool`, `xwininfo` (x11-utils) and ImageMagick's `import`.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Xvfb;
use std::process::Command;
use std::time::{Duration, Instant};

use sightline_agent::indicator::{
    Hotkey, Indicator, IndicatorError, IndicatorEvent, IndicatorText, BANNER_HEIGHT, BANNER_RGB,
};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    AtomEnum, ConfigureWindowAux, ConnectionExt as _, GrabMode, ImageFormat, ModMask, StackMode,
    Window,
};

const W: u32 = 1024;
const H: u32 = 768;
const BLUE: u32 = 0x0000ff;
const GREEN: u32 = 0x00ff00;
const WHITE: [u8; 3] = [0xff, 0xff, 0xff];

impl Xvfb {
    /// Shows the banner across the whole screen.
    fn indicator(&self, text: IndicatorText) -> (Indicator, UnboundedReceiver<IndicatorEvent>) {
        self.indicator_at(0, 0, W, text)
    }

    fn indicator_at(
        &self,
        x: i32,
        y: i32,
        width: u32,
        text: IndicatorText,
    ) -> (Indicator, UnboundedReceiver<IndicatorEvent>) {
        let (tx, rx) = unbounded_channel();
        let indicator =
            Indicator::start_on(Some(&self.display), x, y, width, text, tx).expect("start");
        (indicator, rx)
    }

    /// The screen's pixels in the rectangle, as RGB, row by row (a root-window screenshot).
    fn pixels(&self, x: i16, y: i16, w: u16, h: u16) -> Vec<[u8; 3]> {
        let img = self
            .conn
            .get_image(ImageFormat::Z_PIXMAP, self.root, x, y, w, h, !0)
            .unwrap()
            .reply()
            .unwrap();
        assert_eq!(img.data.len(), usize::from(w) * usize::from(h) * 4);
        img.data
            .chunks_exact(4)
            .map(|p| [p[2], p[1], p[0]])
            .collect()
    }

    /// The banner's rows across the monitor area at (x, y), `w` wide.
    fn banner_pixels(&self, x: i16, y: i16, w: u16) -> Vec<[u8; 3]> {
        self.pixels(x, y, w, BANNER_HEIGHT)
    }

    /// The banner windows xwininfo lists: (window id, width, height, x, y).
    fn banners(&self) -> Vec<(u32, u32, u32, i32, i32)> {
        let out = Command::new("xwininfo")
            .args(["-root", "-tree", "-display", &self.display])
            .output()
            .expect("xwininfo is installed (apt install x11-utils)");
        assert!(out.status.success());
        let quoted = format!("\"{}\"", Indicator::WINDOW_NAME);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(&quoted))
            .map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                let id = u32::from_str_radix(words[0].trim_start_matches("0x"), 16).unwrap();
                // "... 1024x28+0+0  +0+0": size and position, then the absolute position.
                let size = words[words.len() - 2];
                let (w, rest) = size.split_once('x').unwrap();
                let h = rest.split(['+', '-']).next().unwrap();
                let abs = words[words.len() - 1];
                let abs: Vec<i32> = abs
                    .replace('-', "+-")
                    .split('+')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().unwrap())
                    .collect();
                (id, w.parse().unwrap(), h.parse().unwrap(), abs[0], abs[1])
            })
            .collect()
    }

    fn the_banner(&self) -> (u32, u32, u32, i32, i32) {
        let list = self.banners();
        assert_eq!(list.len(), 1, "exactly one banner window: {list:?}");
        list[0]
    }

    fn xdotool(&self, args: &[&str]) {
        let status = Command::new("xdotool")
            .env("DISPLAY", &self.display)
            .args(args)
            .status()
            .expect("xdotool is installed (apt install xdotool)");
        assert!(status.success(), "xdotool {args:?}");
    }

    fn property(&self, window: Window, name: &str) -> Vec<u8> {
        let atom = self
            .conn
            .intern_atom(false, name.as_bytes())
            .unwrap()
            .reply()
            .unwrap()
            .atom;
        self.conn
            .get_property(false, window, atom, AtomEnum::ANY, 0, 1024)
            .unwrap()
            .reply()
            .unwrap()
            .value
    }
}

fn text(in_control: bool) -> IndicatorText {
    IndicatorText {
        operator: "Alice Example".to_owned(),
        organisation: "Example Support Ltd".to_owned(),
        in_control,
        reconnecting: false,
        recording: Default::default(),
    }
}

fn near(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(&x, y)| x.abs_diff(y) <= 8)
}

/// Whether `px` (BANNER_HEIGHT rows of `w` pixels) is the banner: every pixel banner-coloured
/// or white (core fonts draw without antialiasing), the two rows at the top and bottom edges
/// solid banner colour, and at least half banner colour in every row.
fn is_banner(px: &[[u8; 3]], w: usize) -> Result<(), String> {
    for (y, row) in px.chunks_exact(w).enumerate() {
        let banner = row.iter().filter(|&&p| near(p, BANNER_RGB)).count();
        let white = row.iter().filter(|&&p| p == WHITE).count();
        if banner + white != w {
            let odd = row
                .iter()
                .position(|&p| !near(p, BANNER_RGB) && p != WHITE)
                .unwrap_or(0);
            return Err(format!("row {y}: pixel {odd} is {:?}", row[odd]));
        }
        let edge = y < 2 || y >= usize::from(BANNER_HEIGHT) - 2;
        if (edge && banner != w) || banner * 2 < w {
            return Err(format!(
                "row {y}: only {banner} of {w} pixels banner-coloured"
            ));
        }
    }
    Ok(())
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + timeout;
    loop {
        match done() {
            Ok(()) => return,
            Err(why) => assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {why}"
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The next hotkey pressed (other events from the banner are skipped).
fn next_hotkey(rx: &mut UnboundedReceiver<IndicatorEvent>, timeout: Duration) -> Option<Hotkey> {
    next_event(rx, timeout, |e| match e {
        IndicatorEvent::Hotkey(k) => Some(k),
        _ => None,
    })
}

/// The next event from the banner that `pick` keeps.
fn next_event<T>(
    rx: &mut UnboundedReceiver<IndicatorEvent>,
    timeout: Duration,
    pick: impl Fn(IndicatorEvent) -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        while let Ok(e) = rx.try_recv() {
            if let Some(k) = pick(e) {
                return Some(k);
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn banner_window_is_at_the_top_edge_while_the_indicator_lives() {
    let x = Xvfb::start_filled(BLUE);
    assert!(x.banners().is_empty());
    let (indicator, _rx) = x.indicator(text(false));
    assert!(indicator.is_running());
    let (id, w, h, left, top) = x.the_banner();
    assert_eq!((w, h, left, top), (W, u32::from(BANNER_HEIGHT), 0, 0));

    // Out of any window manager's reach, and named for people and tools.
    let attrs = x.conn.get_window_attributes(id).unwrap().reply().unwrap();
    assert!(attrs.override_redirect);
    assert_eq!(
        x.property(id, "_NET_WM_NAME"),
        Indicator::WINDOW_NAME.as_bytes()
    );
    assert_eq!(x.property(id, "WM_NAME"), Indicator::WINDOW_NAME.as_bytes());
    assert_eq!(
        x.property(id, "WM_CLASS"),
        b"sightline-indicator\0sightline-indicator\0"
    );

    drop(indicator);
    assert!(x.banners().is_empty(), "the banner outlives the Indicator");
}

#[test]
fn banner_follows_the_monitor_area_it_is_given() {
    // As for the second monitor of a RandR layout: its own origin and width.
    let x = Xvfb::start_filled(BLUE);
    let (indicator, _rx) = x.indicator_at(100, 50, 600, text(true));
    let (_, w, h, left, top) = x.the_banner();
    assert_eq!((w, h, left, top), (600, u32::from(BANNER_HEIGHT), 100, 50));
    wait_for("the banner on screen", Duration::from_secs(2), || {
        is_banner(&x.banner_pixels(100, 50, 600), 600)
    });
    // Nothing outside the area.
    assert!(x.pixels(0, 50, 100, 28).iter().all(|&p| p == [0, 0, 0xff]));
    assert!(x
        .pixels(700, 50, 324, 28)
        .iter()
        .all(|&p| p == [0, 0, 0xff]));
    assert!(x.pixels(0, 0, 1024, 50).iter().all(|&p| p == [0, 0, 0xff]));
    drop(indicator);
    assert!(x
        .pixels(100, 50, 600, 28)
        .iter()
        .all(|&p| p == [0, 0, 0xff]));
}

#[test]
fn banner_is_in_screenshots_and_stays_on_top() {
    let x = Xvfb::start_filled(BLUE);
    let w = W as u16;
    let (indicator, _rx) = x.indicator(text(false));
    wait_for("the banner on screen", Duration::from_secs(2), || {
        is_banner(&x.banner_pixels(0, 0, w), W as usize)
    });
    // There is text on it.
    let white = x
        .banner_pixels(0, 0, w)
        .iter()
        .filter(|&&p| p == WHITE)
        .count();
    assert!(white > 500, "{white} white pixels");

    // Another program's override-redirect window (a popup, a fullscreen game) on top of it.
    let popup = x.show_window(0, 0, 1024, 300, GREEN);
    let covered_at = Instant::now();
    wait_for("the banner back on top", Duration::from_secs(1), || {
        is_banner(&x.banner_pixels(0, 0, w), W as usize)
    });
    eprintln!("raised again after {:?}", covered_at.elapsed());
    // The popup is still there below the banner.
    assert!(x
        .pixels(0, 28, 1024, 272)
        .iter()
        .all(|&p| p == [0, 0xff, 0]));

    // Raised again and again: the banner still wins each time.
    for _ in 0..3 {
        x.conn
            .configure_window(
                popup,
                &ConfigureWindowAux::new().stack_mode(StackMode::ABOVE),
            )
            .unwrap();
        x.sync();
        wait_for("the banner back on top", Duration::from_secs(1), || {
            is_banner(&x.banner_pixels(0, 0, w), W as usize)
        });
    }

    // A window mapped above it elsewhere (not covering it, so no VisibilityNotify): the
    // periodic check still puts the banner back at the top of the stack.
    let (banner, ..) = x.the_banner();
    let elsewhere = x.show_window(0, 600, 200, 100, GREEN);
    let top = || {
        x.conn
            .query_tree(x.root)
            .unwrap()
            .reply()
            .unwrap()
            .children
            .last()
            .copied()
    };
    wait_for(
        "the banner topmost again",
        Duration::from_secs(1),
        || match top() {
            Some(w) if w == banner => Ok(()),
            other => Err(format!("topmost is {other:?}, banner {banner:#x}")),
        },
    );
    x.conn.destroy_window(elsewhere).unwrap();
    x.sync();

    // What a screenshot tool sees (ImageMagick reads the root window, raw RGB out).
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("shot.rgb");
    let status = Command::new("import")
        .args(["-display", &x.display, "-window", "root", "-depth", "8"])
        .arg(format!("rgb:{}", shot.display()))
        .status()
        .expect("ImageMagick's import is installed");
    assert!(status.success());
    let raw = std::fs::read(&shot).unwrap();
    assert_eq!(raw.len(), (W * H * 3) as usize);
    let top: Vec<[u8; 3]> = raw[..(W as usize * 3 * usize::from(BANNER_HEIGHT))]
        .chunks_exact(3)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    is_banner(&top, W as usize).unwrap();

    drop(indicator);
    assert!(x.banner_pixels(0, 0, w).iter().all(|&p| p == [0, 0xff, 0]));
}

#[test]
fn banner_comes_back_unless_its_connection_is_killed() {
    let x = Xvfb::start_filled(BLUE);
    let w = W as u16;
    let (indicator, mut rx) = x.indicator(text(false));
    let (id, ..) = x.the_banner();
    wait_for("the banner on screen", Duration::from_secs(2), || {
        is_banner(&x.banner_pixels(0, 0, w), W as usize)
    });
    // Each removal is told to the agent (which takes control away), and so is the return.
    fn told(rx: &mut UnboundedReceiver<IndicatorEvent>, expect: IndicatorEvent) {
        let got = next_event(rx, Duration::from_secs(2), |e| match e {
            IndicatorEvent::Hotkeys(_) => None,
            other => Some(other),
        });
        assert_eq!(got, Some(expect));
    }

    x.conn.unmap_window(id).unwrap();
    x.sync();
    wait_for("the banner shown again", Duration::from_secs(1), || {
        is_banner(&x.banner_pixels(0, 0, w), W as usize)
    });
    told(&mut rx, IndicatorEvent::Hidden("hidden"));
    told(&mut rx, IndicatorEvent::Shown);

    x.conn
        .configure_window(id, &ConfigureWindowAux::new().x(0).y(400).width(100))
        .unwrap();
    x.sync();
    wait_for("the banner moved back", Duration::from_secs(1), || {
        let b = x.the_banner();
        if (b.1, b.3, b.4) == (W, 0, 0) {
            is_banner(&x.banner_pixels(0, 0, w), W as usize)
        } else {
            Err(format!("{b:?}"))
        }
    });
    told(&mut rx, IndicatorEvent::Hidden("moved"));
    told(&mut rx, IndicatorEvent::Shown);

    x.conn.destroy_window(id).unwrap();
    x.sync();
    wait_for("a new banner", Duration::from_secs(1), || {
        let list = x.banners();
        match list[..] {
            [(new, ..)] if new != id => is_banner(&x.banner_pixels(0, 0, w), W as usize),
            _ => Err(format!("{list:?}")),
        }
    });
    // (A destroyed window is unmapped first: the agent hears "hidden", then "shown".)
    let hidden = next_event(&mut rx, Duration::from_secs(2), |e| match e {
        IndicatorEvent::Hidden(what) => Some(what),
        _ => None,
    });
    assert!(matches!(hidden, Some("hidden" | "destroyed")), "{hidden:?}");
    told(&mut rx, IndicatorEvent::Shown);
    assert!(indicator.is_running());

    // Its connection killed (xkill): the banner is gone for good, and the agent can tell.
    let (id, ..) = x.the_banner();
    x.conn.kill_client(id).unwrap();
    x.sync();
    wait_for("the indicator to notice", Duration::from_secs(2), || {
        if indicator.is_running() {
            Err("still running".into())
        } else {
            Ok(())
        }
    });
    assert!(x.banners().is_empty());
    let lost = next_event(&mut rx, Duration::from_secs(2), |e| match e {
        IndicatorEvent::Lost(why) => Some(why),
        _ => None,
    });
    assert!(lost.is_some(), "the agent is told the banner is lost");
    indicator.set_text(text(true));
    drop(indicator);
}

#[test]
fn set_text_changes_what_is_drawn() {
    let x = Xvfb::start_filled(BLUE);
    let w = W as u16;
    let (indicator, _rx) = x.indicator(text(false));
    wait_for("the banner on screen", Duration::from_secs(2), || {
        is_banner(&x.banner_pixels(0, 0, w), W as usize)
    });
    std::thread::sleep(Duration::from_millis(100));
    let viewing = x.banner_pixels(0, 0, w);

    indicator.set_text(text(true));
    wait_for("the controlling text", Duration::from_secs(2), || {
        let now = x.banner_pixels(0, 0, w);
        if now == viewing {
            return Err("unchanged".into());
        }
        is_banner(&now, W as usize)
    });
    let controlling = x.banner_pixels(0, 0, w);
    // The message itself changed ("viewing" → "controlling"), not only the keys on the right:
    // compare the left half.
    let left = |px: &[[u8; 3]]| -> Vec<[u8; 3]> {
        px.chunks_exact(W as usize)
            .flat_map(|row| row[..512].to_vec())
            .collect()
    };
    assert_ne!(left(&viewing), left(&controlling));

    // Drawing is deterministic: the same text gives the same pixels.
    indicator.set_text(text(false));
    wait_for("the viewing text again", Duration::from_secs(2), || {
        if x.banner_pixels(0, 0, w) == viewing {
            Ok(())
        } else {
            Err("differs".into())
        }
    });
}

#[test]
fn hotkeys_arrive_on_the_channel() {
    let x = Xvfb::start_filled(BLUE);
    let (indicator, mut rx) = x.indicator(text(true));
    assert_eq!(
        indicator.hotkeys(),
        vec![Hotkey::RevokeControl, Hotkey::EndSession]
    );
    let wait = Duration::from_secs(2);

    x.xdotool(&["key", "ctrl+alt+r"]);
    assert_eq!(next_hotkey(&mut rx, wait), Some(Hotkey::RevokeControl));
    x.xdotool(&["key", "ctrl+alt+q"]);
    assert_eq!(next_hotkey(&mut rx, wait), Some(Hotkey::EndSession));
    // Plain letters and other combinations are not ours.
    x.xdotool(&["key", "r", "q", "ctrl+r", "alt+q", "ctrl+alt+x"]);
    assert_eq!(next_hotkey(&mut rx, Duration::from_millis(300)), None);

    // With CapsLock on, and with NumLock on as well.
    x.xdotool(&["key", "Caps_Lock"]);
    x.xdotool(&["key", "ctrl+alt+r"]);
    assert_eq!(next_hotkey(&mut rx, wait), Some(Hotkey::RevokeControl));
    x.xdotool(&["key", "Num_Lock"]);
    x.xdotool(&["key", "ctrl+alt+q"]);
    assert_eq!(next_hotkey(&mut rx, wait), Some(Hotkey::EndSession));
    x.xdotool(&["key", "Caps_Lock"]);
    x.xdotool(&["key", "ctrl+alt+r"]);
    assert_eq!(next_hotkey(&mut rx, wait), Some(Hotkey::RevokeControl));
    x.xdotool(&["key", "Num_Lock"]);
    assert_eq!(next_hotkey(&mut rx, Duration::from_millis(300)), None);

    // Dropped: the grabs are released, so another program can take the keys.
    drop(indicator);
    let keycode = keycode_of(&x, 0x72);
    x.conn
        .grab_key(
            true,
            x.root,
            ModMask::CONTROL | ModMask::M1,
            keycode,
            GrabMode::ASYNC,
            GrabMode::ASYNC,
        )
        .unwrap()
        .check()
        .expect("Ctrl+Alt+R is free again");
}

#[test]
fn hotkeys_follow_keyboard_mapping_changes() {
    let x = Xvfb::start_filled(BLUE);
    let (indicator, mut rx) = x.indicator(text(true));
    // A keycode without symbols, to map and unmap 'q' on (as a layout switch would).
    let setup = x.conn.setup();
    let (min, max) = (setup.min_keycode, setup.max_keycode);
    let map = x
        .conn
        .get_keyboard_mapping(min, max - min + 1)
        .unwrap()
        .reply()
        .unwrap();
    let per = map.keysyms_per_keycode;
    let spare = map
        .keysyms
        .chunks(usize::from(per))
        .rposition(|row| row.iter().all(|&s| s == 0))
        .map(|i| min + u8::try_from(i).unwrap())
        .expect("a keycode without symbols");
    for round in 0..6 {
        let mut syms = vec![0u32; usize::from(per)];
        if round % 2 == 0 {
            syms[0] = 0x71;
        }
        x.conn
            .change_keyboard_mapping(1, spare, per, &syms)
            .unwrap()
            .check()
            .unwrap();
        x.xdotool(&["key", "ctrl+alt+r"]);
        assert_eq!(
            next_hotkey(&mut rx, Duration::from_secs(2)),
            Some(Hotkey::RevokeControl),
            "round {round}"
        );
    }
    x.xdotool(&["key", "ctrl+alt+q"]);
    assert_eq!(
        next_hotkey(&mut rx, Duration::from_secs(2)),
        Some(Hotkey::EndSession)
    );
    assert_eq!(
        indicator.hotkeys(),
        vec![Hotkey::RevokeControl, Hotkey::EndSession]
    );
}

fn keycode_of(x: &Xvfb, keysym: u32) -> u8 {
    let setup = x.conn.setup();
    let (min, max) = (setup.min_keycode, setup.max_keycode);
    let map = x
        .conn
        .get_keyboard_mapping(min, max - min + 1)
        .unwrap()
        .reply()
        .unwrap();
    let per = usize::from(map.keysyms_per_keycode);
    let i = map
        .keysyms
        .chunks(per)
        .position(|row| row.contains(&keysym))
        .unwrap();
    min + u8::try_from(i).unwrap()
}

#[test]
fn a_hotkey_another_program_holds_is_left_out() {
    let x = Xvfb::start_filled(BLUE);
    let keycode = keycode_of(&x, 0x72);
    // Another program has Ctrl+Alt+R (plain, without the lock modifiers).
    x.conn
        .grab_key(
            true,
            x.root,
            ModMask::CONTROL | ModMask::M1,
            keycode,
            GrabMode::ASYNC,
            GrabMode::ASYNC,
        )
        .unwrap()
        .check()
        .unwrap();
    let (indicator, mut rx) = x.indicator(text(true));
    assert_eq!(indicator.hotkeys(), vec![Hotkey::EndSession]);
    x.xdotool(&["key", "ctrl+alt+q"]);
    assert_eq!(
        next_hotkey(&mut rx, Duration::from_secs(2)),
        Some(Hotkey::EndSession)
    );
    // Nor does CapsLock+Ctrl+Alt+R reach us: the hotkey is out as a whole.
    x.xdotool(&["key", "Caps_Lock", "ctrl+alt+r", "Caps_Lock"]);
    assert_eq!(next_hotkey(&mut rx, Duration::from_millis(300)), None);
}

#[test]
fn start_rejects_unusable_displays_and_areas() {
    let (tx, _rx) = unbounded_channel();
    let err = Indicator::start_on(Some(":4093"), 0, 0, 800, text(false), tx.clone()).unwrap_err();
    assert!(matches!(err, IndicatorError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("cannot open the X display :4093: "),
        "{err}"
    );

    let x = Xvfb::start_filled(BLUE);
    for (left, top, width) in [
        (0, 0, 0),
        (0, 0, 70_000),
        (40_000, 0, 800),
        (0, -40_000, 800),
    ] {
        let err = Indicator::start_on(Some(&x.display), left, top, width, text(false), tx.clone())
            .unwrap_err();
        assert!(matches!(err, IndicatorError::Geometry { .. }), "{err:?}");
    }
    assert!(x.banners().is_empty());
}

const CHILD: &str = "SIGHTLINE_INDICATOR_TEST_CHILD";

/// Run by [`start_without_a_display_is_an_error`] in a child process with its own environment
/// (`DISPLAY` is process-wide); does nothing in a normal test run.
#[test]
fn child_start_from_the_environment() {
    let Ok(case) = std::env::var(CHILD) else {
        return;
    };
    let (tx, _rx) = unbounded_channel();
    let err = Indicator::start(0, 0, 800, text(false), tx).unwrap_err();
    match case.as_str() {
        "unset" => assert!(matches!(err, IndicatorError::NoX11Display), "{err:?}"),
        "bogus" => assert!(matches!(err, IndicatorError::Connect { .. }), "{err:?}"),
        other => panic!("unknown case {other}"),
    }
    println!("child-error: {err}");
}

#[test]
fn start_without_a_display_is_an_error() {
    for (case, display) in [
        ("unset", None),
        ("unset", Some("")),
        ("bogus", Some(":4093")),
        ("bogus", Some("no display here")),
    ] {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "child_start_from_the_environment",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, case)
        .env("WAYLAND_DISPLAY", "wayland-0");
        match display {
            None => cmd.env_remove("DISPLAY"),
            Some(d) => cmd.env("DISPLAY", d),
        };
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("child-error: ") && stdout.contains("1 passed"),
            "{case} {display:?}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout.split("child-error: ").nth(1).unwrap_or_default();
        eprintln!(
            "{case} {display:?}: {}",
            line.lines().next().unwrap_or_default()
        );
    }
}
