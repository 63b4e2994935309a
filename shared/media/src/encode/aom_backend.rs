//! The libaom AV1 encoder backend in its realtime mode, tuned for screens: realtime usage at the
//! fastest CPU setting, screen-content tools (palette), no lookahead (every picture's packet
//! comes out of the call that submitted it), constant-bitrate control whose target the
//! congestion controller moves while it runs, and an active map built from the damaged blocks so
//! that unchanged blocks are coded as skip without being searched.
//!
//! libaom is a C library (Debian's `libaom-dev`, linked statically; see `.cargo/config.toml`),
//! reached through the `aom-sys` bindings. Every `unsafe` block is in this file, each with the
//! reason it is sound.

// The FFI calls below need `unsafe`; the rest of the workspace denies it.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_uint};

use aom_sys as aom;

use super::{EncodeError, EncodedPacket, EncoderSettings, VideoEncoder};
use crate::damage::{changed_blocks, BlockMap};
use crate::frame::Yuv420Frame;

const NAME: &str = "aom";
/// libaom's fastest realtime setting in 3.x.
const CPU_USED: c_int = 10;
/// Bitrate used when the settings give none (the congestion controller sets the real one).
const DEFAULT_KBPS: u32 = 4_000;
/// Quantizer range (0-63). The floor keeps a still screen from spending bits on invisible
/// refinements; the ceiling keeps text readable when the link is narrow.
const MIN_QUANTIZER: c_uint = 8;
const MAX_QUANTIZER: c_uint = 52;
/// A key frame may use at most this share of the per-frame budget times 100 (libaom's
/// `max-intra-rate`): large enough for a sharp first picture, small enough that it does not
/// stall the link for seconds.
const MAX_INTRA_BITRATE_PCT: c_uint = 1_500;
/// The active map's block side: libaom's map has one entry per 16×16 luma block.
const ACTIVE_MAP_BLOCK: u32 = 16;

/// Builds a libaom realtime encoder for `settings`.
pub fn aom_encoder(settings: EncoderSettings) -> Result<Box<dyn VideoEncoder>, EncodeError> {
    Ok(Box::new(AomEncoder::new(settings)?))
}

struct AomEncoder {
    /// Boxed so its address stays put: libaom keeps pointers into it.
    ctx: Box<aom::aom_codec_ctx_t>,
    cfg: Box<aom::aom_codec_enc_cfg_t>,
    settings: EncoderSettings,
    /// The last picture submitted, to find the damaged blocks of the next one.
    last: Option<Yuv420Frame>,
    /// Reused active-map buffer (1 = code this block, 0 = skip it).
    active: Vec<u8>,
    pts: i64,
    bitrate_kbps: u32,
    /// Whether libaom accepted the damaged-block map so far.
    active_map_works: bool,
}

// SAFETY: the codec context is used from one thread at a time (the trait is driven from one
// encode thread, `&mut self` for every call); libaom's own worker threads are internal to it.
unsafe impl Send for AomEncoder {}

fn invalid(detail: impl Into<String>) -> EncodeError {
    EncodeError::InvalidSettings(detail.into())
}

fn backend(detail: impl std::fmt::Display) -> EncodeError {
    EncodeError::Backend {
        backend: NAME,
        detail: detail.to_string(),
    }
}

/// libaom's message for the context's last error.
fn last_error(ctx: &mut aom::aom_codec_ctx_t, what: &str) -> EncodeError {
    // SAFETY: `ctx` is an initialised context; both functions return static or context-owned
    // NUL-terminated strings (or null for the detail), read before any further call.
    let (msg, detail) = unsafe {
        let msg = aom::aom_codec_error(ctx);
        let detail = aom::aom_codec_error_detail(ctx);
        let text = |p: *const std::os::raw::c_char| {
            if p.is_null() {
                String::new()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        (text(msg), text(detail))
    };
    backend(format!("{what}: {msg} {detail}").trim())
}

impl AomEncoder {
    fn new(settings: EncoderSettings) -> Result<Self, EncodeError> {
        settings.check()?;
        let bitrate_kbps = settings.bitrate_kbps.unwrap_or(DEFAULT_KBPS);
        if bitrate_kbps == 0 {
            return Err(invalid("bitrate 0"));
        }
        let threads = settings.effective_threads().clamp(1, 64);

        // SAFETY: `aom_codec_av1_cx` returns a pointer to a static interface description.
        let iface = unsafe { aom::aom_codec_av1_cx() };
        if iface.is_null() {
            return Err(backend("libaom was built without its AV1 encoder"));
        }
        let mut cfg: Box<MaybeUninit<aom::aom_codec_enc_cfg_t>> = Box::new(MaybeUninit::zeroed());
        // SAFETY: `cfg` points to writable memory of the right type; libaom fills every field.
        let err = unsafe {
            aom::aom_codec_enc_config_default(iface, cfg.as_mut_ptr(), aom::AOM_USAGE_REALTIME)
        };
        if err != aom::aom_codec_err_t::AOM_CODEC_OK {
            return Err(backend(format!("no default configuration (error {err})")));
        }
        // SAFETY: initialised by `aom_codec_enc_config_default`, which succeeded (and zeroed
        // memory is a valid value of this plain C struct in any case).
        let mut cfg: Box<aom::aom_codec_enc_cfg_t> =
            unsafe { Box::from_raw(Box::into_raw(cfg).cast()) };
        cfg.g_usage = aom::AOM_USAGE_REALTIME;
        cfg.g_w = settings.width;
        cfg.g_h = settings.height;
        cfg.g_threads = threads as c_uint;
        cfg.g_timebase = aom::aom_rational {
            num: 1,
            den: i32::try_from(settings.fps).map_err(|_| invalid("frame rate too high"))?,
        };
        cfg.g_lag_in_frames = 0;
        cfg.g_error_resilient = 0;
        cfg.g_pass = aom::aom_enc_pass::AOM_RC_ONE_PASS;
        cfg.rc_end_usage = aom::aom_rc_mode::AOM_CBR;
        cfg.rc_target_bitrate = bitrate_kbps;
        cfg.rc_min_quantizer = MIN_QUANTIZER;
        cfg.rc_max_quantizer = MAX_QUANTIZER;
        cfg.rc_undershoot_pct = 50;
        cfg.rc_overshoot_pct = 50;
        cfg.rc_buf_initial_sz = 600;
        cfg.rc_buf_optimal_sz = 600;
        cfg.rc_buf_sz = 1_000;
        // libaom must never drop a picture on its own: the caller already paces what it submits,
        // and a dropped picture would leave the viewer on a stale screen.
        cfg.rc_dropframe_thresh = 0;
        // Key frames only on request (a new viewer, a lost packet): a periodic one would be a
        // burst the link does not need.
        cfg.kf_mode = aom::aom_kf_mode::AOM_KF_DISABLED;
        cfg.kf_min_dist = 0;
        cfg.kf_max_dist = u32::MAX >> 1;

        let mut ctx: Box<MaybeUninit<aom::aom_codec_ctx_t>> = Box::new(MaybeUninit::zeroed());
        // SAFETY: `ctx` is writable memory for a context, `cfg` a valid configuration, and the
        // ABI version is the one these bindings were generated against.
        let err = unsafe {
            aom::aom_codec_enc_init_ver(
                ctx.as_mut_ptr(),
                iface,
                &*cfg,
                0,
                aom::AOM_ENCODER_ABI_VERSION as c_int,
            )
        };
        // SAFETY: a zeroed context is a valid value; after a successful init it is a live one.
        let mut ctx: Box<aom::aom_codec_ctx_t> =
            unsafe { Box::from_raw(Box::into_raw(ctx).cast()) };
        if err != aom::aom_codec_err_t::AOM_CODEC_OK {
            return Err(last_error(&mut ctx, "cannot start libaom"));
        }
        let mut enc = Self {
            ctx,
            cfg,
            settings,
            last: None,
            active: Vec::new(),
            pts: 0,
            bitrate_kbps,
            active_map_works: true,
        };
        enc.configure(threads)?;
        tracing::debug!(
            width = enc.settings.width,
            height = enc.settings.height,
            threads,
            bitrate_kbps,
            "libaom realtime encoder ready"
        );
        Ok(enc)
    }

    /// Sets one integer control.
    fn control(
        &mut self,
        id: aom::aome_enc_control_id::Type,
        value: c_int,
    ) -> Result<(), EncodeError> {
        // SAFETY: every control set here takes one `int` or `unsigned int` argument (see the
        // `aom_codec_control_type_*` aliases in the bindings), passed by value through C varargs.
        let err = unsafe { aom::aom_codec_control(&mut *self.ctx, id as c_int, value) };
        if err != aom::aom_codec_err_t::AOM_CODEC_OK {
            return Err(last_error(&mut self.ctx, &format!("control {id}")));
        }
        Ok(())
    }

    fn configure(&mut self, threads: usize) -> Result<(), EncodeError> {
        use aom::aome_enc_control_id as c;
        // Tile columns let the threads share one picture: log2 of the thread count.
        let tile_columns = (usize::BITS - threads.max(1).leading_zeros() - 1).min(6) as c_int;
        let controls: [(c::Type, c_int); 22] = [
            (c::AOME_SET_CPUUSED, CPU_USED),
            (
                c::AV1E_SET_TUNE_CONTENT,
                aom::aom_tune_content::AOM_CONTENT_SCREEN as c_int,
            ),
            (c::AV1E_SET_ENABLE_PALETTE, 1),
            // Intra block copy finds repeated glyphs but costs too much time in realtime.
            (c::AV1E_SET_ENABLE_INTRABC, 0),
            (c::AV1E_SET_ROW_MT, 1),
            (c::AV1E_SET_TILE_COLUMNS, tile_columns),
            // Cyclic refresh: blocks that did not change are refined a few at a time.
            (c::AV1E_SET_AQ_MODE, 3),
            (c::AV1E_SET_DELTAQ_MODE, 0),
            (c::AV1E_SET_ENABLE_TPL_MODEL, 0),
            (c::AV1E_SET_ENABLE_ORDER_HINT, 0),
            (c::AV1E_SET_ENABLE_GLOBAL_MOTION, 0),
            (c::AV1E_SET_ENABLE_WARPED_MOTION, 0),
            (c::AV1E_SET_ENABLE_OBMC, 0),
            (c::AV1E_SET_ENABLE_REF_FRAME_MVS, 0),
            (c::AV1E_SET_ENABLE_CDEF, 1),
            (c::AV1E_SET_COEFF_COST_UPD_FREQ, 3),
            (c::AV1E_SET_MODE_COST_UPD_FREQ, 3),
            (c::AV1E_SET_MV_COST_UPD_FREQ, 3),
            (
                c::AOME_SET_MAX_INTRA_BITRATE_PCT,
                MAX_INTRA_BITRATE_PCT as c_int,
            ),
            // The converter's colours: BT.709, limited range.
            (
                c::AV1E_SET_COLOR_PRIMARIES,
                aom::aom_color_primaries::AOM_CICP_CP_BT_709 as c_int,
            ),
            (
                c::AV1E_SET_TRANSFER_CHARACTERISTICS,
                aom::aom_transfer_characteristics::AOM_CICP_TC_BT_709 as c_int,
            ),
            (
                c::AV1E_SET_MATRIX_COEFFICIENTS,
                aom::aom_matrix_coefficients::AOM_CICP_MC_BT_709 as c_int,
            ),
        ];
        for (id, value) in controls {
            self.control(id, value)?;
        }
        self.control(
            c::AV1E_SET_COLOR_RANGE,
            aom::aom_color_range::AOM_CR_STUDIO_RANGE as c_int,
        )
    }

    /// Tells libaom which 16×16 blocks to code: the damaged ones. `None` codes every block.
    fn set_active_map(&mut self, map: Option<&BlockMap>) -> Result<(), EncodeError> {
        let mut active = aom::aom_active_map_t {
            active_map: std::ptr::null_mut(),
            rows: 0,
            cols: 0,
        };
        if let Some(map) = map {
            self.active.clear();
            self.active
                .extend(map.changed.iter().map(|changed| u8::from(*changed)));
            active = aom::aom_active_map_t {
                active_map: self.active.as_mut_ptr(),
                rows: map.rows,
                cols: map.cols,
            };
        } else {
            // A null map with the picture's grid switches the map off.
            active.rows = self.settings.height.div_ceil(ACTIVE_MAP_BLOCK);
            active.cols = self.settings.width.div_ceil(ACTIVE_MAP_BLOCK);
        }
        // SAFETY: AOME_SET_ACTIVEMAP takes an `aom_active_map_t *`; the struct and the buffer it
        // points to (rows × cols bytes, or null) outlive the call, and libaom copies the map.
        let err = unsafe {
            aom::aom_codec_control(
                &mut *self.ctx,
                aom::aome_enc_control_id::AOME_SET_ACTIVEMAP as c_int,
                &mut active as *mut aom::aom_active_map_t,
            )
        };
        if err != aom::aom_codec_err_t::AOM_CODEC_OK {
            return Err(last_error(&mut self.ctx, "active map"));
        }
        Ok(())
    }

    /// Collects the packets libaom has ready.
    fn drain(&mut self, capture_us: u64) -> Vec<EncodedPacket> {
        let mut out = Vec::new();
        let mut iter: aom::aom_codec_iter_t = std::ptr::null();
        loop {
            // SAFETY: `iter` starts null and is only advanced by libaom; the packet it returns
            // stays valid until the next call on this context, and is copied out before that.
            let pkt = unsafe { aom::aom_codec_get_cx_data(&mut *self.ctx, &mut iter) };
            if pkt.is_null() {
                break;
            }
            // SAFETY: non-null packets point to a valid `aom_codec_cx_pkt_t`.
            let pkt = unsafe { &*pkt };
            if pkt.kind != aom::aom_codec_cx_pkt_kind::AOM_CODEC_CX_FRAME_PKT {
                continue;
            }
            // SAFETY: for frame packets the `frame` member of the union is the live one, and
            // `buf` holds `sz` bytes owned by libaom until the next call.
            let (data, flags) = unsafe {
                let frame = pkt.data.frame;
                let data = if frame.buf.is_null() || frame.sz == 0 {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(frame.buf.cast::<u8>(), frame.sz).to_vec()
                };
                (data, frame.flags)
            };
            if data.is_empty() {
                continue;
            }
            out.push(EncodedPacket {
                data,
                keyframe: flags & aom::AOM_FRAME_IS_KEY != 0,
                capture_us,
            });
        }
        out
    }
}

impl VideoEncoder for AomEncoder {
    fn name(&self) -> &'static str {
        NAME
    }

    fn encode(
        &mut self,
        frame: &Yuv420Frame,
        capture_us: u64,
        force_keyframe: bool,
    ) -> Result<Vec<EncodedPacket>, EncodeError> {
        frame.check()?;
        if frame.width != self.settings.width || frame.height != self.settings.height {
            return Err(EncodeError::SizeMismatch {
                got_w: frame.width,
                got_h: frame.height,
                want_w: self.settings.width,
                want_h: self.settings.height,
            });
        }
        let stride = |s: usize| c_int::try_from(s).map_err(|_| invalid("row stride too large"));
        let strides = [stride(frame.y_stride)?, stride(frame.uv_stride)?];

        // Damaged blocks: code only what changed since the last picture (a key frame codes all).
        let damage = match (&self.last, force_keyframe) {
            (Some(last), false) => changed_blocks(last, frame, ACTIVE_MAP_BLOCK),
            _ => None,
        };
        let map = damage.as_ref().filter(|m| !m.all_changed());
        if self.active_map_works {
            if let Err(e) = self.set_active_map(map) {
                // Only an optimisation: encode every block from now on rather than stop.
                tracing::warn!(error = %e, "libaom refused the active map; coding every block");
                self.active_map_works = false;
            }
        }

        let mut img: MaybeUninit<aom::aom_image_t> = MaybeUninit::zeroed();
        // SAFETY: `img` is writable; `aom_img_wrap` only fills in its fields from the format and
        // size (the data pointer is the luma plane, replaced with the real planes just below).
        let wrapped = unsafe {
            aom::aom_img_wrap(
                img.as_mut_ptr(),
                aom::aom_img_fmt::AOM_IMG_FMT_I420,
                frame.width,
                frame.height,
                1,
                frame.y.as_ptr().cast_mut(),
            )
        };
        if wrapped.is_null() {
            return Err(backend("cannot describe the picture to libaom"));
        }
        // SAFETY: initialised by `aom_img_wrap` above.
        let mut img = unsafe { img.assume_init() };
        // libaom reads the planes during `aom_codec_encode` only (it copies the picture), and
        // never writes through them; `frame.check()` vouched for their sizes.
        img.planes = [
            frame.y.as_ptr().cast_mut(),
            frame.u.as_ptr().cast_mut(),
            frame.v.as_ptr().cast_mut(),
        ];
        img.stride = [strides[0], strides[1], strides[1]];
        img.range = aom::aom_color_range::AOM_CR_STUDIO_RANGE;
        img.cp = aom::aom_color_primaries::AOM_CICP_CP_BT_709;
        img.tc = aom::aom_transfer_characteristics::AOM_CICP_TC_BT_709;
        img.mc = aom::aom_matrix_coefficients::AOM_CICP_MC_BT_709;

        let flags = if force_keyframe {
            aom::AOM_EFLAG_FORCE_KF as aom::aom_enc_frame_flags_t
        } else {
            0
        };
        // SAFETY: `img` describes planes that live until this call returns; the context is live.
        let err = unsafe { aom::aom_codec_encode(&mut *self.ctx, &img, self.pts, 1, flags) };
        if err != aom::aom_codec_err_t::AOM_CODEC_OK {
            return Err(last_error(&mut self.ctx, "encode"));
        }
        self.pts += 1;
        let packets = self.drain(capture_us);
        match &mut self.last {
            Some(last) if last.width == frame.width && last.height == frame.height => {
                last.clone_from(frame)
            }
            _ => self.last = Some(frame.clone()),
        }
        Ok(packets)
    }

    fn pending(&self) -> usize {
        // No lookahead: every picture's packet comes out of the call that submitted it.
        0
    }

    fn settings(&self) -> &EncoderSettings {
        &self.settings
    }

    fn set_bitrate(&mut self, kbps: u32) -> bool {
        let kbps = kbps.max(1);
        if kbps == self.bitrate_kbps {
            return true;
        }
        self.cfg.rc_target_bitrate = kbps;
        // SAFETY: the context is live and `cfg` is the configuration it was built with, with
        // only the target bitrate changed (libaom allows that without a key frame).
        let err = unsafe { aom::aom_codec_enc_config_set(&mut *self.ctx, &*self.cfg) };
        if err != aom::aom_codec_err_t::AOM_CODEC_OK {
            tracing::warn!(kbps, "libaom refused the new bitrate");
            self.cfg.rc_target_bitrate = self.bitrate_kbps;
            return false;
        }
        self.bitrate_kbps = kbps;
        true
    }

    fn bitrate_kbps(&self) -> Option<u32> {
        Some(self.bitrate_kbps)
    }
}

impl Drop for AomEncoder {
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `new` (a failed init never builds `Self`), and
        // is destroyed exactly once, here.
        unsafe {
            aom::aom_codec_destroy(&mut *self.ctx);
        }
    }
}
