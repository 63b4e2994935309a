//! The media pipeline, stage by stage, on the recorded corpus: each clip is shown on an Xvfb
//! display of its size, captured there with the agent's own X11 capturer (MIT-SHM), converted
//! to YUV, encoded by each backend, decoded with dav1d, and uploaded to a GPU texture the way
//! the viewer does (wgpu; Mesa's lavapipe where there is no GPU). Every stage is timed per
//! picture; the decoded picture is compared with what was encoded (Y-PSNR).
//!
//! Backends run side by side on the same captured pictures in one run, so their figures are
//! comparable. Unchanged captures are skipped, as the agent skips them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use serde::Serialize;
use sightline_media::encode::{Backend, EncoderSettings};
use sightline_media::{bgra_to_yuv420_into, psnr, Av1Decoder, BgraFrame, Yuv420Frame};

use crate::corpus::ClipReader;
use crate::player::Player;
use crate::relay_bench::procfs::{cpu_seconds, Pid};

/// Median and 95th percentile of one stage, milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Stage {
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// Mean.
    pub mean_ms: f64,
    /// Samples.
    pub n: usize,
}

impl Stage {
    /// Percentiles of `samples`.
    pub fn of(samples: &[Duration]) -> Stage {
        if samples.is_empty() {
            return Stage::default();
        }
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let at = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
        Stage {
            p50_ms: at(0.5),
            p95_ms: at(0.95),
            mean_ms: ms.iter().sum::<f64>() / ms.len() as f64,
            n: ms.len(),
        }
    }
}

/// One clip through one encoder backend.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineResult {
    /// Clip name (`typing-1920x1080`).
    pub clip: String,
    /// Encoder backend.
    pub encoder: String,
    /// Picture size.
    pub width: u32,
    /// Picture size.
    pub height: u32,
    /// Pictures in the clip.
    pub frames: usize,
    /// Pictures the capturer reported as changed (the ones encoded).
    pub changed: usize,
    /// Capture of the whole monitor (MIT-SHM and change detection).
    pub capture: Stage,
    /// BGRA → YUV 4:2:0.
    pub convert: Stage,
    /// Encoding one picture.
    pub encode: Stage,
    /// Decoding one packet.
    pub decode: Stage,
    /// Uploading one decoded picture to the GPU textures the viewer draws from.
    pub upload: Option<Stage>,
    /// Pictures per second the agent sustains on changing content: one over the mean of
    /// capture + conversion + encoding per changed picture (done one after another; the agent
    /// overlaps capture with encoding, so this is the conservative figure).
    pub sustained_fps: f64,
    /// Video bytes per second when the clip plays at its recorded pace.
    pub bytes_per_sec: f64,
    /// Size of the first (key) frame.
    pub keyframe_bytes: usize,
    /// Mean and lowest Y-PSNR of the decoded pictures against the encoded ones, dB.
    pub y_psnr_mean: f64,
    /// Lowest Y-PSNR, dB.
    pub y_psnr_min: f64,
    /// CPU seconds this process spent converting and encoding the clip, per second of clip:
    /// the share of one core the agent would need (capture excluded; decode excluded).
    pub encode_cpu_cores: f64,
    /// Duration of the clip, seconds.
    pub clip_seconds: f64,
}

/// A wgpu device for the upload stage, with the viewer's own texture code.
struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    video: sightline_viewer::gui::video::VideoResources,
    adapter: String,
}

impl Gpu {
    fn open() -> Result<Gpu> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let rt = tokio::runtime::Builder::new_current_thread().build()?;
        let adapter = rt
            .block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .map_err(|e| anyhow!("no GPU adapter: {e}"))?;
        let (device, queue) = rt
            .block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))
            .map_err(|e| anyhow!("no GPU device: {e}"))?;
        let video = sightline_viewer::gui::video::VideoResources::new(
            &device,
            wgpu::TextureFormat::Rgba8Unorm,
        );
        let info = adapter.get_info();
        Ok(Gpu {
            device,
            queue,
            video,
            adapter: format!("{} ({:?})", info.name, info.backend),
        })
    }

    fn upload(&mut self, frame: &Yuv420Frame) -> Duration {
        let t = Instant::now();
        self.video.upload(&self.device, &self.queue, frame);
        self.queue.submit([]);
        let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
        t.elapsed()
    }
}

/// The GPU adapter the upload stage used, for the report (`None`: no adapter, no upload stage).
pub fn gpu_adapter() -> Option<String> {
    Gpu::open().ok().map(|g| g.adapter)
}

/// Runs `clip` (a path into the corpus) through every backend in `backends`.
pub fn run_clip(clip: &Path, backends: &[Backend]) -> Result<Vec<PipelineResult>> {
    let name = clip
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut reader =
        ClipReader::open(clip).with_context(|| format!("opening {}", clip.display()))?;
    let (width, height) = (reader.width(), reader.height());

    // Show each picture on a display of the clip's size and capture it there, as the agent
    // would; keep the captured pictures so every backend encodes the same ones.
    let x = sightline_tests::Xvfb::start(width, height);
    let mut player = Player::connect(&x.display)?;
    std::env::set_var("DISPLAY", &x.display);
    let mut capturer = sightline_agent::capture::open(None)
        .map_err(|e| anyhow!("cannot capture {}: {e}", x.display))?;
    let mut captured: Vec<(u32, Arc<BgraFrame>)> = Vec::new();
    let mut capture_times = Vec::new();
    let mut frames = 0usize;
    let mut last_ms = 0u32;
    while let Some(frame) = reader.next_frame()? {
        frames += 1;
        last_ms = frame.at_ms;
        player.show(&frame)?;
        let t = Instant::now();
        let shot = capturer
            .capture()
            .map_err(|e| anyhow!("capture failed: {e}"))?;
        capture_times.push(t.elapsed());
        if shot.changed || captured.is_empty() {
            captured.push((frame.at_ms, shot.frame.clone()));
        }
    }
    drop(capturer);
    drop(player);
    drop(x);
    let clip_seconds = (f64::from(last_ms) + 1000.0 / 30.0) / 1000.0;
    let mut gpu = Gpu::open().ok();

    let mut results = Vec::new();
    for backend in backends {
        let mut enc = backend
            .encoder(EncoderSettings {
                bitrate_kbps: None,
                ..EncoderSettings::new(width, height)
            })
            .map_err(|e| anyhow!("{backend}: {e}"))?;
        let mut dec = Av1Decoder::new(1).map_err(|e| anyhow!("dav1d: {e}"))?;
        let mut yuv = Yuv420Frame::new_black(0, 0);
        let (mut convert_t, mut encode_t, mut decode_t, mut upload_t) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut sources: HashMap<u64, Vec<u8>> = HashMap::new();
        let (mut bytes, mut keyframe_bytes, mut psnrs) = (0usize, 0usize, Vec::new());
        let cpu_before = cpu_seconds(Pid::This).unwrap_or(0.0);
        let mut cpu_in_decode = 0.0;
        let mut tag = 0u64;
        let mut last_yuv: Option<Yuv420Frame> = None;
        let total = captured.len();
        // rav1e holds pictures back: after the last one, re-submit it until everything is out.
        let mut flush = 0;
        let mut i = 0;
        loop {
            let picture = if i < total {
                let (_, bgra) = &captured[i];
                let t = Instant::now();
                bgra_to_yuv420_into(bgra, &mut yuv).map_err(|e| anyhow!("convert: {e}"))?;
                convert_t.push(t.elapsed());
                i += 1;
                yuv.clone()
            } else if enc.pending() > 0 && flush < 16 {
                flush += 1;
                match &last_yuv {
                    Some(y) => y.clone(),
                    None => break,
                }
            } else {
                break;
            };
            tag += 1;
            sources.insert(tag, picture.y.clone());
            let t = Instant::now();
            let packets = enc
                .encode(&picture, tag, tag == 1)
                .map_err(|e| anyhow!("{backend} encode: {e}"))?;
            if i <= total && flush == 0 {
                encode_t.push(t.elapsed());
            }
            last_yuv = Some(picture);
            let cpu_mark = cpu_seconds(Pid::This).unwrap_or(0.0);
            for p in packets {
                if keyframe_bytes == 0 && p.keyframe {
                    keyframe_bytes = p.data.len();
                }
                bytes += p.data.len();
                let t = Instant::now();
                let decoded = dec.decode(&p.data).map_err(|e| anyhow!("decode: {e}"))?;
                decode_t.push(t.elapsed());
                if let Some(d) = decoded {
                    if let Some(src) = sources.remove(&p.capture_us) {
                        psnrs.push(psnr(&src, &d.y, width, height, width as usize, d.y_stride));
                    }
                    if let Some(g) = gpu.as_mut() {
                        upload_t.push(g.upload(&d));
                    }
                }
            }
            cpu_in_decode += cpu_seconds(Pid::This).unwrap_or(0.0) - cpu_mark;
        }
        let cpu = cpu_seconds(Pid::This).unwrap_or(0.0) - cpu_before - cpu_in_decode;
        let (capture, convert, encode) = (
            Stage::of(&capture_times),
            Stage::of(&convert_t),
            Stage::of(&encode_t),
        );
        let per_picture = capture.mean_ms + convert.mean_ms + encode.mean_ms;
        let finite: Vec<f64> = psnrs.iter().copied().filter(|p| p.is_finite()).collect();
        results.push(PipelineResult {
            clip: name.clone(),
            encoder: backend.name().to_string(),
            width,
            height,
            frames,
            changed: total.saturating_sub(1),
            capture,
            convert,
            encode,
            decode: Stage::of(&decode_t),
            upload: gpu.as_ref().map(|_| Stage::of(&upload_t)),
            sustained_fps: if per_picture > 0.0 {
                1000.0 / per_picture
            } else {
                0.0
            },
            bytes_per_sec: bytes as f64 / clip_seconds,
            keyframe_bytes,
            y_psnr_mean: if finite.is_empty() {
                f64::INFINITY
            } else {
                finite.iter().sum::<f64>() / finite.len() as f64
            },
            y_psnr_min: psnrs.iter().copied().fold(f64::INFINITY, f64::min),
            encode_cpu_cores: cpu.max(0.0) / clip_seconds,
            clip_seconds,
        });
    }
    Ok(results)
}
