//! The operator's window: log in, read the session code to the customer, then see (and,
//! when allowed, control) their screen. egui on wgpu; the remote picture is converted from
//! YUV on the GPU. The session itself runs in [`crate::client`], off the UI thread.
//!
//! Layout: [`state`] (what is shown, no drawing), [`app`] (the eframe glue that applies
//! client events and actions), one file per screen ([`login`], [`waiting`], [`live`],
//! [`ended`]), [`video`] + `yuv.wgsl` (GPU upload and conversion), [`input`] + [`keymap`]
//! (operator input to wire events), [`geometry`] (picture placement), [`json_out`]
//! (`--json` lines for tests).

mod app;
mod ended;
pub mod geometry;
pub mod input;
pub mod json_out;
pub mod keymap;
mod live;
mod login;
pub mod state;
pub mod video;
mod waiting;

use eframe::egui;
use sightline_core::relay_proto::Secret;
use std::path::PathBuf;

/// Window title.
pub const TITLE: &str = "Sightline viewer";

/// What the window starts with.
#[derive(Debug)]
pub struct Options {
    /// Relay address (or list of routes) to prefill.
    pub relay: Option<String>,
    /// Which proxy the relay's routes go through (`--proxy`, the config file, the
    /// environment).
    pub proxy: sightline_net::proxy::ProxySettings,
    /// Pinned relay key to prefill.
    pub relay_key: Option<String>,
    /// Operator account to prefill.
    pub user: Option<String>,
    /// Password; with the other fields set, logs in at once.
    pub password: Option<Secret>,
    /// Second factor to log in at once with (with `password`); `None` for accounts without.
    pub second_factor: Option<Secret>,
    /// The relay's OpenID Connect provider to prefill "Single sign-on" with (`--oidc`).
    pub provider: Option<String>,
    /// LAN-only agent address (`--direct`) to prefill the "Direct (LAN)" field with.
    pub direct: Option<String>,
    /// Record the session where the policy leaves it to the operator (`--record`).
    pub record: bool,
    /// Connect directly at once with the stored certificate (`--direct` with
    /// `--password-stdin` while the stored certificate is valid).
    pub direct_at_once: bool,
    /// `--agent-key` / `--accept-new-agent-key` for direct connections; without them, a
    /// first connection asks in a dialog.
    pub agent_key: crate::known_hosts::AgentKeyPolicy,
    /// Directory of the operator's identity key and stored certificate.
    pub data_dir: PathBuf,
    /// Print JSON lines on stdout (code, connected, first_frame, closed).
    pub json: bool,
    /// An input script to play in the first session once the customer allows control
    /// (`--send-input`).
    pub script: Option<Vec<crate::script::Step>>,
}

/// Why the window could not run.
#[derive(Debug, thiserror::Error)]
pub enum GuiError {
    /// The window system or the renderer failed to start, or failed while running.
    #[error("cannot open the window: {0}")]
    Window(String),
    /// The window came up without a wgpu renderer, so the picture cannot be drawn.
    #[error("no wgpu renderer (a GPU, or a Vulkan or OpenGL driver such as Mesa's, is needed)")]
    NoWgpu,
}

/// The window's options: wgpu, its size, and the render pass the picture pipeline is built for.
pub(crate) fn native_options(title: &str) -> eframe::NativeOptions {
    eframe::NativeOptions {
        renderer: eframe::Renderer::Wgpu,
        viewport: egui::ViewportBuilder::default()
            .with_title(title)
            .with_app_id("sightline-viewer")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([640.0, 400.0]),
        // The picture pipeline is built for this sample count and no depth buffer.
        multisampling: video::MSAA_SAMPLES as u16,
        depth_buffer: 0,
        ..Default::default()
    }
}

/// Opens the window and runs until it is closed.
pub fn run(opts: Options) -> Result<(), GuiError> {
    let native = native_options(TITLE);
    eframe::run_native(
        TITLE,
        native,
        Box::new(move |cc| {
            let render = cc.wgpu_render_state.as_ref().ok_or(GuiError::NoWgpu)?;
            let video = video::VideoResources::new(&render.device, render.target_format);
            render.renderer.write().callback_resources.insert(video);
            Ok(Box::new(app::ViewerApp::new(opts)))
        }),
    )
    .map_err(|e| GuiError::Window(e.to_string()))
}
