#!/usr/bin/python3
"""A real ScreenCast client of xdg-desktop-portal, for the Wayland test desktop.

Runs the org.freedesktop.portal.ScreenCast handshake on the session bus of the environment
(DBUS_SESSION_BUS_ADDRESS): CreateSession, SelectSources (a monitor), Start, each answered by
the Response signal of its org.freedesktop.portal.Request, then OpenPipeWireRemote. With the
PipeWire fd it was given it runs GStreamer's pipewiresrc on the stream's node for one frame,
writes it as PNG (--png), and prints one JSON line on stdout:

  {"portal_version": 4, "available_source_types": 1, "available_cursor_modes": 3,
   "session": "/org/freedesktop/portal/desktop/session/1_9/sightline_session_123_1",
   "streams": [{"node_id": 36, "position": [0, 0], "size": [800, 600], "source_type": 2}],
   "caps": "video/x-raw, format=(string)BGRx, width=(int)800, height=(int)600, ...",
   "buffer_type": "MemFd", "width": 800, "height": 600, "centre": "3366cc", "matching": 1.0}

The streams are as the portal describes them (xdg-desktop-portal-wlr 0.7 says source_type 2,
WINDOW, for a monitor: it sends `1 << MONITOR`). `centre` is the colour of the frame's centre
pixel, and with --expect RRGGBB `matching` is the share of pixels within 8 of that colour in
every channel. `buffer_type` is how PipeWire handed the frames over (MemPtr, MemFd or DmaBuf),
from the debug log of GStreamer's PipeWire buffer pool.

Exits non-zero, with the reason on stderr, when a step fails or takes longer than --timeout
seconds. On the test desktop a cast gets a frame only when the screen changes: the harness
(tests/src/wayland.rs) makes sway repaint while this runs.

Needs python3-dbus and python3-gi (the Debian packages, hence /usr/bin/python3),
gstreamer1.0-tools, gstreamer1.0-plugins-base and gstreamer1.0-pipewire.
"""

import argparse
import json
import os
import re
import struct
import subprocess
import sys
import zlib

import dbus
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

PORTAL = "org.freedesktop.portal.Desktop"
PORTAL_PATH = "/org/freedesktop/portal/desktop"
SCREENCAST = "org.freedesktop.portal.ScreenCast"
REQUEST = "org.freedesktop.portal.Request"

def fail(why):
    print(f"portal_probe: {why}", file=sys.stderr, flush=True)
    sys.exit(1)


def log(what):
    print(f"portal_probe: {what}", file=sys.stderr, flush=True)


class Portal:
    def __init__(self, timeout):
        DBusGMainLoop(set_as_default=True)
        self.bus = dbus.SessionBus()
        self.timeout = timeout
        self.loop = GLib.MainLoop()
        self.portal = self.bus.get_object(PORTAL, PORTAL_PATH)
        self.screencast = dbus.Interface(self.portal, SCREENCAST)
        # :1.23 → 1_23, as the portal names request and session objects.
        self.sender = self.bus.get_unique_name()[1:].replace(".", "_")
        self.counter = 0

    def prop(self, name):
        return self.portal.Get(SCREENCAST, name, dbus_interface=dbus.PROPERTIES_IFACE)

    def token(self, what):
        self.counter += 1
        return f"sightline_{what}_{os.getpid()}_{self.counter}"

    def request(self, what, method, *args):
        """Calls `method(*args, options)` where the last argument is the options dict; waits
        for the Response signal of its request and returns the results (exits on a non-zero
        response code)."""
        token = self.token(what)
        path = f"/org/freedesktop/portal/desktop/request/{self.sender}/{token}"
        answer = {}

        def on_response(code, results):
            answer["code"] = int(code)
            answer["results"] = results
            self.loop.quit()

        # Subscribe before calling, so that a fast answer is not missed.
        match = self.bus.add_signal_receiver(
            on_response, signal_name="Response", dbus_interface=REQUEST, path=path
        )
        args[-1]["handle_token"] = token
        handle = method(*args)
        if str(handle) != path:
            log(f"{what}: request object {handle}, expected {path}")

        def on_timeout():
            answer["timeout"] = True
            self.loop.quit()
            return False

        timer = GLib.timeout_add(int(self.timeout * 1000), on_timeout)
        self.loop.run()
        if "timeout" not in answer:
            GLib.source_remove(timer)
        match.remove()
        if "timeout" in answer:
            fail(f"{what}: no Response in {self.timeout} s")
        if answer["code"] != 0:
            fail(f"{what}: response code {answer['code']} (1: cancelled, 2: other error)")
        return answer["results"]


def plain(value):
    """D-Bus values as JSON-able Python values."""
    if isinstance(value, (dbus.Struct, dbus.Array, list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (dict, dbus.Dictionary)):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, dbus.Boolean):
        return bool(value)
    if isinstance(value, (dbus.String, dbus.ObjectPath)):
        return str(value)
    if isinstance(value, (int, dbus.Int32, dbus.UInt32, dbus.Int64, dbus.UInt64, dbus.Byte)):
        return int(value)
    return value


def write_png(path, width, height, stride, rgb):
    """Writes 8-bit RGB rows (`stride` bytes apart) as a PNG file."""

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    rows = b"".join(
        b"\0" + rgb[y * stride : y * stride + width * 3] for y in range(height)
    )
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(rows, 6)))
        f.write(chunk(b"IEND", b""))


def grab(fd, node_id, raw, timeout, gst_log):
    """One frame of node `node_id` through the PipeWire remote `fd`, with gst-launch-1.0
    (its debug log written to `gst_log`): returns (caps, buffer types)."""
    pipeline = (
        f"pipewiresrc fd={fd} path={node_id} num-buffers=1 do-timestamp=true"
        f" ! videoconvert ! video/x-raw,format=RGB ! filesink location={raw}"
    )
    env = dict(os.environ)
    env["GST_DEBUG"] = "pipewiresrc:5,pipewirepool:6"
    env["GST_DEBUG_NO_COLOR"] = "1"
    try:
        done = subprocess.run(
            ["gst-launch-1.0", "-v", *pipeline.split()],
            pass_fds=(fd,),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        err = (e.stderr or b"").decode(errors="replace")
        save(gst_log, err)
        fail(f"gst-launch-1.0 gave no frame in {timeout} s:\n{out}\n...{err[-2000:]}")
    save(gst_log, done.stderr)
    if done.returncode != 0:
        err = done.stderr[-2000:]
        fail(f"gst-launch-1.0 failed ({done.returncode}):\n{done.stdout}\n...{err}")
    # -v prints the caps of every pad; the source's pad has what PipeWire negotiated.
    caps = ""
    for line in done.stdout.splitlines():
        m = re.search(r"GstPipeWireSrc:pipewiresrc0\.GstPad:src: caps = (.*)", line)
        if m:
            caps = m.group(1)
    types = set()
    for line in done.stderr.splitlines():
        # pipewirepool logs the memory type of each buffer it wraps: "memory type MemFd".
        m = re.search(r"gst_pipewire_pool_wrap_buffer.*memory type (\w+)", line)
        if m:
            types.add(m.group(1))
    return caps, sorted(types)


def save(path, text):
    if path:
        with open(path, "w") as f:
            f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--png", required=True, help="where to write the frame as PNG")
    ap.add_argument("--expect", help="RRGGBB the frame should be filled with")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per step")
    ap.add_argument("--gst-log", help="where to write gst-launch-1.0's debug log")
    a = ap.parse_args()

    p = Portal(a.timeout)
    out = {
        "portal_version": int(p.prop("version")),
        "available_source_types": int(p.prop("AvailableSourceTypes")),
        "available_cursor_modes": int(p.prop("AvailableCursorModes")),
    }
    res = p.request(
        "create", p.screencast.CreateSession,
        dbus.Dictionary({"session_handle_token": p.token("session")}, signature="sv"),
    )
    session = str(res["session_handle"])
    out["session"] = session
    log(f"session {session}")
    p.request(
        "select", p.screencast.SelectSources, dbus.ObjectPath(session),
        dbus.Dictionary(
            {"types": dbus.UInt32(1), "multiple": dbus.Boolean(False)}, signature="sv"
        ),
    )
    res = p.request(
        "start", p.screencast.Start, dbus.ObjectPath(session), "",
        dbus.Dictionary({}, signature="sv"),
    )
    streams = []
    for node_id, props in res.get("streams", []):
        props = plain(props)
        streams.append({"node_id": int(node_id), **props})
    out["streams"] = streams
    log(f"streams {streams}")
    if not streams:
        fail(f"Start gave no streams: {plain(res)}")
    fd_obj = p.screencast.OpenPipeWireRemote(
        dbus.ObjectPath(session), dbus.Dictionary({}, signature="sv")
    )
    fd = fd_obj.take()
    log(f"PipeWire remote fd {fd}")

    raw = a.png + ".rgb"
    caps, types = grab(fd, streams[0]["node_id"], raw, a.timeout, a.gst_log)
    out["caps"] = caps
    out["buffer_type"] = types[0] if len(types) == 1 else types
    m = re.search(r"width=\(int\)(\d+), height=\(int\)(\d+)", caps)
    if not m:
        fail(f"no size in the negotiated caps {caps!r}")
    w, h = int(m.group(1)), int(m.group(2))
    out["width"], out["height"] = w, h
    data = open(raw, "rb").read()
    os.unlink(raw)
    if len(data) < w * h * 3:
        fail(f"frame of {len(data)} bytes, expected {w * h * 3}")
    # videoconvert's RGB rows are padded to 4 bytes.
    stride = (w * 3 + 3) // 4 * 4
    write_png(a.png, w, h, stride, data)

    def pixel(x, y):
        i = y * stride + x * 3
        return data[i], data[i + 1], data[i + 2]

    out["centre"] = "%02x%02x%02x" % pixel(w // 2, h // 2)
    if a.expect:
        want = bytes.fromhex(a.expect)
        close = 0
        for y in range(h):
            for x in range(w):
                if all(abs(c - e) <= 8 for c, e in zip(pixel(x, y), want)):
                    close += 1
        out["matching"] = close / (w * h)
    closing = dbus.Interface(p.bus.get_object(PORTAL, session), "org.freedesktop.portal.Session")
    closing.Close()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
