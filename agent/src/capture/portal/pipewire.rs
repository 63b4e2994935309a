//! A PipeWire video stream from the portal's remote, with `libpipewire-0.3.so.0` loaded at run
//! time: the agent links nothing of PipeWire, so the one file starts on systems without it and
//! uses it where the desktop has it.
//!
//! The stream runs on PipeWire's own thread loop. Its `process` callback copies the newest
//! buffer into the [`Latest`] slot (converting to BGRX) and gives the buffer straight back, so
//! the producer never waits for the encoder. Everything the callbacks touch lives in a boxed
//! [`Callbacks`] that outlives the stream; callbacks never panic (a panic cannot cross the C
//! boundary) and read C memory only within the sizes PipeWire gives.
//!
//! The one module of the agent with foreign calls: each `unsafe` block says what it relies on.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr};
use std::os::fd::{IntoRawFd, OwnedFd};
use std::ptr::{null, null_mut};
use std::sync::{Arc, OnceLock};

use libloading::Library;
use sightline_media::BgraFrame;

use super::latest::Latest;
use super::pod::{self, PixelOrder, VideoFormat};

/// The library's file name (its ABI-stable soname).
const LIBRARY: &str = "libpipewire-0.3.so.0";

type Opaque = c_void;

/// The entry points the stream needs, resolved once.
struct Api {
    init: unsafe extern "C" fn(*mut c_int, *mut *mut *mut c_char),
    thread_loop_new: unsafe extern "C" fn(*const c_char, *const c_void) -> *mut Opaque,
    thread_loop_get_loop: unsafe extern "C" fn(*mut Opaque) -> *mut Opaque,
    thread_loop_start: unsafe extern "C" fn(*mut Opaque) -> c_int,
    thread_loop_stop: unsafe extern "C" fn(*mut Opaque),
    thread_loop_lock: unsafe extern "C" fn(*mut Opaque),
    thread_loop_unlock: unsafe extern "C" fn(*mut Opaque),
    thread_loop_destroy: unsafe extern "C" fn(*mut Opaque),
    properties_new_string: unsafe extern "C" fn(*const c_char) -> *mut Opaque,
    context_new: unsafe extern "C" fn(*mut Opaque, *mut Opaque, usize) -> *mut Opaque,
    context_destroy: unsafe extern "C" fn(*mut Opaque),
    context_connect_fd: unsafe extern "C" fn(*mut Opaque, c_int, *mut Opaque, usize) -> *mut Opaque,
    core_disconnect: unsafe extern "C" fn(*mut Opaque) -> c_int,
    stream_new: unsafe extern "C" fn(*mut Opaque, *const c_char, *mut Opaque) -> *mut Opaque,
    stream_add_listener:
        unsafe extern "C" fn(*mut Opaque, *mut SpaHook, *const StreamEvents, *mut c_void),
    stream_connect: unsafe extern "C" fn(*mut Opaque, u32, u32, u32, *mut *const u8, u32) -> c_int,
    stream_update_params: unsafe extern "C" fn(*mut Opaque, *mut *const u8, u32) -> c_int,
    stream_dequeue_buffer: unsafe extern "C" fn(*mut Opaque) -> *mut PwBuffer,
    stream_queue_buffer: unsafe extern "C" fn(*mut Opaque, *mut PwBuffer) -> c_int,
    stream_destroy: unsafe extern "C" fn(*mut Opaque),
    /// Kept loaded for as long as the process runs (the pointers above point into it).
    _library: Library,
}

/// Loads the library and initialises PipeWire, once per process. The error says why the
/// portal cannot be used (the library is absent: no PipeWire on this system).
fn api() -> Result<&'static Api, String> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(|| {
        // SAFETY: loading a system library runs its constructors; libpipewire's only set up
        // its own state. The symbols are looked up by their C names with the signatures of
        // the 0.3 headers (an ABI PipeWire keeps for the whole 0.3 series).
        unsafe {
            let lib = Library::new(LIBRARY).map_err(|e| format!("{LIBRARY} not loaded: {e}"))?;
            macro_rules! sym {
                ($name:literal) => {
                    *lib.get(concat!($name, "\0").as_bytes())
                        .map_err(|e| format!("{LIBRARY} lacks {}: {e}", $name))?
                };
            }
            let api = Api {
                init: sym!("pw_init"),
                thread_loop_new: sym!("pw_thread_loop_new"),
                thread_loop_get_loop: sym!("pw_thread_loop_get_loop"),
                thread_loop_start: sym!("pw_thread_loop_start"),
                thread_loop_stop: sym!("pw_thread_loop_stop"),
                thread_loop_lock: sym!("pw_thread_loop_lock"),
                thread_loop_unlock: sym!("pw_thread_loop_unlock"),
                thread_loop_destroy: sym!("pw_thread_loop_destroy"),
                properties_new_string: sym!("pw_properties_new_string"),
                context_new: sym!("pw_context_new"),
                context_destroy: sym!("pw_context_destroy"),
                context_connect_fd: sym!("pw_context_connect_fd"),
                core_disconnect: sym!("pw_core_disconnect"),
                stream_new: sym!("pw_stream_new"),
                stream_add_listener: sym!("pw_stream_add_listener"),
                stream_connect: sym!("pw_stream_connect"),
                stream_update_params: sym!("pw_stream_update_params"),
                stream_dequeue_buffer: sym!("pw_stream_dequeue_buffer"),
                stream_queue_buffer: sym!("pw_stream_queue_buffer"),
                stream_destroy: sym!("pw_stream_destroy"),
                _library: lib,
            };
            (api.init)(null_mut(), null_mut());
            Ok(api)
        }
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Whether PipeWire can be loaded here; the reason when not.
pub(super) fn available() -> Result<(), String> {
    api().map(|_| ())
}

/// `struct spa_hook` (`spa/utils/hook.h`): a list link, the callbacks, `removed`, `priv`.
#[repr(C)]
pub(super) struct SpaHook {
    words: [*mut c_void; 6],
}

/// `struct pw_stream_events`, version 0 (up to `drained`).
#[repr(C)]
pub(super) struct StreamEvents {
    version: u32,
    destroy: Option<unsafe extern "C" fn(*mut c_void)>,
    state_changed: Option<unsafe extern "C" fn(*mut c_void, c_int, c_int, *const c_char)>,
    control_info: Option<unsafe extern "C" fn(*mut c_void, u32, *const c_void)>,
    io_changed: Option<unsafe extern "C" fn(*mut c_void, u32, *mut c_void, u32)>,
    param_changed: Option<unsafe extern "C" fn(*mut c_void, u32, *const u8)>,
    add_buffer: Option<unsafe extern "C" fn(*mut c_void, *mut PwBuffer)>,
    remove_buffer: Option<unsafe extern "C" fn(*mut c_void, *mut PwBuffer)>,
    process: Option<unsafe extern "C" fn(*mut c_void)>,
    drained: Option<unsafe extern "C" fn(*mut c_void)>,
}

/// `struct pw_buffer`: the first field is all the agent reads.
#[repr(C)]
pub(super) struct PwBuffer {
    buffer: *mut SpaBuffer,
}

/// `struct spa_buffer`.
#[repr(C)]
struct SpaBuffer {
    n_metas: u32,
    n_datas: u32,
    metas: *mut c_void,
    datas: *mut SpaData,
}

/// `struct spa_data`.
#[repr(C)]
struct SpaData {
    kind: u32,
    flags: u32,
    fd: i64,
    mapoffset: u32,
    maxsize: u32,
    data: *mut c_void,
    chunk: *mut SpaChunk,
}

/// `struct spa_chunk`.
#[repr(C)]
struct SpaChunk {
    offset: u32,
    size: u32,
    stride: i32,
    flags: i32,
}

const SPA_CHUNK_FLAG_CORRUPTED: i32 = 1;
const SPA_DATA_DMABUF: u32 = 3;
const PARAM_FORMAT: u32 = 4;
const DIRECTION_INPUT: u32 = 0;
const FLAG_AUTOCONNECT: u32 = 1 << 0;
const FLAG_MAP_BUFFERS: u32 = 1 << 2;
const STATE_ERROR: c_int = -1;
const STATE_UNCONNECTED: c_int = 0;

static EVENTS: StreamEvents = StreamEvents {
    version: 0,
    destroy: None,
    state_changed: Some(on_state_changed),
    control_info: None,
    io_changed: None,
    param_changed: Some(on_param_changed),
    add_buffer: None,
    remove_buffer: None,
    process: Some(on_process),
    drained: None,
};

/// What the callbacks reach through their `data` pointer.
struct Callbacks {
    api: &'static Api,
    stream: *mut Opaque,
    latest: Arc<Latest>,
    /// The negotiated format; only the loop thread touches it.
    format: Option<VideoFormat>,
}

/// A connected stream and everything it needs; dropping it stops and frees all of it.
pub(super) struct Stream {
    api: &'static Api,
    thread_loop: *mut Opaque,
    context: *mut Opaque,
    core: *mut Opaque,
    stream: *mut Opaque,
    _hook: Box<SpaHook>,
    _callbacks: Box<Callbacks>,
}

// SAFETY: the raw pointers are PipeWire objects used only under the thread loop's lock (or
// after the loop stopped, in `drop`).
unsafe impl Send for Stream {}

impl Stream {
    /// Connects to the portal's PipeWire remote `fd` and streams node `node` into `latest`.
    pub(super) fn connect(fd: OwnedFd, node: u32, latest: Arc<Latest>) -> Result<Self, String> {
        let api = api()?;
        // SAFETY: the calls follow the thread-loop protocol of `pipewire/thread-loop.h`: the
        // objects are made and connected with the loop locked, and `drop` undoes them.
        unsafe {
            let thread_loop = (api.thread_loop_new)(c"sightline-capture".as_ptr(), null());
            if thread_loop.is_null() {
                return Err("PipeWire: cannot create its thread loop".to_owned());
            }
            let context = (api.context_new)((api.thread_loop_get_loop)(thread_loop), null_mut(), 0);
            if context.is_null() {
                (api.thread_loop_destroy)(thread_loop);
                return Err("PipeWire: cannot create a context".to_owned());
            }
            let mut this = Stream {
                api,
                thread_loop,
                context,
                core: null_mut(),
                stream: null_mut(),
                _hook: Box::new(SpaHook {
                    words: [null_mut(); 6],
                }),
                _callbacks: Box::new(Callbacks {
                    api,
                    stream: null_mut(),
                    latest,
                    format: None,
                }),
            };
            if (api.thread_loop_start)(thread_loop) < 0 {
                return Err("PipeWire: cannot start its thread loop".to_owned());
            }
            (api.thread_loop_lock)(thread_loop);
            let result = this.connect_locked(fd, node);
            (api.thread_loop_unlock)(thread_loop);
            result.map(|()| this)
        }
    }

    /// The part of [`Stream::connect`] done with the loop locked.
    unsafe fn connect_locked(&mut self, fd: OwnedFd, node: u32) -> Result<(), String> {
        let api = self.api;
        // The context takes the descriptor (it closes it when it fails, too).
        self.core = (api.context_connect_fd)(self.context, fd.into_raw_fd(), null_mut(), 0);
        if self.core.is_null() {
            return Err("PipeWire: the portal's remote refused the connection".to_owned());
        }
        let props = (api.properties_new_string)(
            c"media.type=Video media.category=Capture media.role=Screen".as_ptr(),
        );
        self.stream = (api.stream_new)(self.core, c"sightline-screen".as_ptr(), props);
        if self.stream.is_null() {
            return Err("PipeWire: cannot create the stream".to_owned());
        }
        self._callbacks.stream = self.stream;
        let data = std::ptr::from_mut::<Callbacks>(&mut *self._callbacks).cast::<c_void>();
        let hook = std::ptr::from_mut::<SpaHook>(&mut *self._hook);
        (api.stream_add_listener)(self.stream, hook, &EVENTS, data);
        let format = pod::enum_format();
        let mut params = [format.as_ptr()];
        let flags = FLAG_AUTOCONNECT | FLAG_MAP_BUFFERS;
        let rc = (api.stream_connect)(
            self.stream,
            DIRECTION_INPUT,
            node,
            flags,
            params.as_mut_ptr(),
            1,
        );
        if rc < 0 {
            return Err(format!(
                "PipeWire: cannot connect to the screen stream (error {rc})"
            ));
        }
        Ok(())
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let api = self.api;
        // SAFETY: see `connect`; after `thread_loop_stop` no callback runs, so the boxes may go.
        unsafe {
            (api.thread_loop_lock)(self.thread_loop);
            if !self.stream.is_null() {
                (api.stream_destroy)(self.stream);
            }
            if !self.core.is_null() {
                (api.core_disconnect)(self.core);
            }
            (api.thread_loop_unlock)(self.thread_loop);
            (api.thread_loop_stop)(self.thread_loop);
            (api.context_destroy)(self.context);
            (api.thread_loop_destroy)(self.thread_loop);
        }
    }
}

/// The stream's state: an error or a disconnect ends the capture with PipeWire's reason.
unsafe extern "C" fn on_state_changed(
    data: *mut c_void,
    _old: c_int,
    state: c_int,
    error: *const c_char,
) {
    // SAFETY: `data` is the `Callbacks` registered with the listener, alive until `drop`.
    let cb = unsafe { &*data.cast::<Callbacks>() };
    if state == STATE_ERROR || state == STATE_UNCONNECTED {
        let why = if error.is_null() {
            "the screen stream ended".to_owned()
        } else {
            // SAFETY: PipeWire passes a NUL-terminated message or null.
            let text = unsafe { CStr::from_ptr(error) }.to_string_lossy();
            format!("the screen stream failed: {text}")
        };
        cb.latest.end(why);
    }
}

/// The producer chose a format: keep it, and ask for buffers the agent can map.
unsafe extern "C" fn on_param_changed(data: *mut c_void, id: u32, param: *const u8) {
    // SAFETY: as in `on_state_changed`; this runs on the loop thread, the only one touching it.
    let cb = unsafe { &mut *data.cast::<Callbacks>() };
    if id != PARAM_FORMAT {
        return;
    }
    if param.is_null() {
        // The format was cleared (the stream is renegotiating): no frames until a new one.
        cb.format = None;
        return;
    }
    // SAFETY: a pod starts with its 32-bit body size; the whole pod is 8 bytes more.
    let size = unsafe { param.cast::<u32>().read_unaligned() } as usize;
    let bytes = unsafe { std::slice::from_raw_parts(param, size.saturating_add(8).min(1 << 16)) };
    cb.format = pod::parse_format(bytes);
    match cb.format {
        Some(format) => {
            tracing::info!(
                "portal stream: {}x{} {:?}",
                format.width,
                format.height,
                format.order
            );
            let buffers = pod::buffers();
            let mut params = [buffers.as_ptr()];
            // SAFETY: the stream is alive while its callbacks run.
            unsafe { (cb.api.stream_update_params)(cb.stream, params.as_mut_ptr(), 1) };
        }
        None => cb
            .latest
            .end("the desktop offered a screen format the agent cannot read".to_owned()),
    }
}

/// A frame is ready: copy the newest one out and give every buffer back.
unsafe extern "C" fn on_process(data: *mut c_void) {
    // SAFETY: as in `on_param_changed`.
    let cb = unsafe { &mut *data.cast::<Callbacks>() };
    let mut newest: *mut PwBuffer = null_mut();
    loop {
        // SAFETY: dequeuing and queuing on our own stream from its loop thread.
        let buffer = unsafe { (cb.api.stream_dequeue_buffer)(cb.stream) };
        if buffer.is_null() {
            break;
        }
        if !newest.is_null() {
            unsafe { (cb.api.stream_queue_buffer)(cb.stream, newest) };
        }
        newest = buffer;
    }
    if newest.is_null() {
        return;
    }
    if let Some(format) = cb.format {
        // SAFETY: the buffer is ours until queued back below.
        match unsafe { copy_frame(newest, format) } {
            Ok(Some(frame)) => cb.latest.put(frame),
            Ok(None) => {}
            Err(why) => cb.latest.end(why),
        }
    }
    unsafe { (cb.api.stream_queue_buffer)(cb.stream, newest) };
}

/// Copies the first data plane of `buffer` into a BGRX frame, within the plane's mapped size:
/// `Ok(None)` for a buffer with nothing usable (skipped), an error for memory the agent cannot
/// map (DMA-BUF, which producers send only when asked for it: the agent never asks).
unsafe fn copy_frame(
    buffer: *mut PwBuffer,
    format: VideoFormat,
) -> Result<Option<BgraFrame>, String> {
    // SAFETY: PipeWire hands out valid pw_buffer/spa_buffer/spa_data/spa_chunk pointers.
    let Some(spa) = (unsafe { (*buffer).buffer.as_ref() }) else {
        return Ok(None);
    };
    let plane = match spa.n_datas {
        0 => None,
        _ => unsafe { spa.datas.as_ref() },
    };
    let Some(plane) = plane else {
        return Ok(None);
    };
    if plane.kind == SPA_DATA_DMABUF {
        return Err(
            "the desktop sends its screen as GPU buffers (DMA-BUF), which the agent cannot read"
                .to_owned(),
        );
    }
    let Some(chunk) = (unsafe { plane.chunk.as_ref() }) else {
        return Ok(None);
    };
    if plane.data.is_null() || chunk.flags & SPA_CHUNK_FLAG_CORRUPTED != 0 || plane.maxsize == 0 {
        return Ok(None);
    }
    let max = plane.maxsize as usize;
    let offset = (chunk.offset % plane.maxsize) as usize;
    let size = (chunk.size as usize).min(max - offset);
    // SAFETY: PipeWire mapped `maxsize` bytes at `data` (MAP_BUFFERS, or MemPtr).
    let bytes = unsafe { std::slice::from_raw_parts(plane.data.cast::<u8>().add(offset), size) };
    let stride = usize::try_from(chunk.stride).ok().filter(|&s| s > 0);
    Ok(to_bgrx(bytes, stride, format))
}

/// Packs `bytes` (rows `stride` apart; `None`: tightly packed) into a BGRX frame of the
/// format's size; `None` when the bytes are too few for it.
pub(super) fn to_bgrx(
    bytes: &[u8],
    stride: Option<usize>,
    format: VideoFormat,
) -> Option<BgraFrame> {
    let w = usize::try_from(format.width).ok()?;
    let h = usize::try_from(format.height).ok()?;
    let row = w.checked_mul(4)?;
    let src_stride = stride.unwrap_or(row);
    if src_stride < row
        || bytes.len()
            < src_stride
                .checked_mul(h.checked_sub(1)?)?
                .checked_add(row)?
    {
        return None;
    }
    let mut data = Vec::with_capacity(row * h);
    for line in bytes.chunks(src_stride).take(h) {
        let line = line.get(..row)?;
        match format.order {
            PixelOrder::Bgrx => data.extend_from_slice(line),
            PixelOrder::Rgbx => {
                for px in line.chunks_exact(4) {
                    data.extend_from_slice(&[px[2], px[1], px[0], px[3]]);
                }
            }
        }
    }
    Some(BgraFrame {
        width: format.width,
        height: format.height,
        stride: row,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(order: PixelOrder, width: u32, height: u32) -> VideoFormat {
        VideoFormat {
            order,
            width,
            height,
        }
    }

    #[test]
    fn packs_rows_and_swaps_red_and_blue() {
        let padded = [1, 2, 3, 4, 0, 0, 0, 0, 5, 6, 7, 8, 0, 0, 0, 0];
        let f = to_bgrx(&padded, Some(8), fmt(PixelOrder::Bgrx, 1, 2)).unwrap();
        assert_eq!((f.stride, f.data), (4, vec![1, 2, 3, 4, 5, 6, 7, 8]));
        let f = to_bgrx(&[1, 2, 3, 4], None, fmt(PixelOrder::Rgbx, 1, 1)).unwrap();
        assert_eq!(f.data, [3, 2, 1, 4]);
        // The last row needs no padding after it.
        assert!(to_bgrx(&padded[..12], Some(8), fmt(PixelOrder::Bgrx, 1, 2)).is_some());
    }

    #[test]
    fn refuses_short_buffers_and_narrow_strides() {
        assert!(to_bgrx(&[0; 7], None, fmt(PixelOrder::Bgrx, 1, 2)).is_none());
        assert!(to_bgrx(&[0; 16], Some(4), fmt(PixelOrder::Bgrx, 2, 2)).is_none());
        assert!(to_bgrx(&[], None, fmt(PixelOrder::Bgrx, 1, 1)).is_none());
    }

    #[test]
    fn the_library_loads_or_says_why() {
        // Present on the build machine; the message names the library otherwise.
        if let Err(why) = available() {
            assert!(why.contains(LIBRARY), "{why}");
        }
    }
}
