//! The agent's window, for customers without a terminal (the file opened from a file manager):
//! the help desk's name, a field for the code, the consent questions as buttons, and the two
//! commands (take back control, end). Behind it runs the terminal agent itself
//! ([`child`]), so the texts, timeouts, hotkeys and banner are the same; the window turns
//! clicks into the lines a terminal customer types ([`state`], drawn by [`ui`]). egui on
//! wgpu, which loads the graphics driver at run time (Mesa's software renderers do: no GPU is
//! needed), so the single-file agent still links only glibc.

mod child;
mod state;
mod ui;

use eframe::egui;
use std::io::IsTerminal;

/// Whether to open the window: asked for with `--gui`, or a customer started the agent with
/// no terminal to answer on and no code (a double-click), on a desktop.
pub fn wanted(gui_flag: bool, json: bool, has_code: bool) -> bool {
    let display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    gui_flag || (!json && !has_code && display && !std::io::stdin().is_terminal())
}

/// Runs the window until it is closed.
pub fn run(help_desk: Option<String>) -> Result<(), String> {
    let args = child::child_args(std::env::args_os().skip(1));
    let options = eframe::NativeOptions {
        renderer: eframe::Renderer::Wgpu,
        viewport: egui::ViewportBuilder::default()
            .with_title("Sightline remote support")
            .with_app_id("sightline-agent")
            .with_inner_size([560.0, 420.0])
            .with_min_inner_size([420.0, 300.0]),
        ..Default::default()
    };
    eframe::run_native(
        "Sightline remote support",
        options,
        Box::new(move |_cc| Ok(Box::new(ui::AgentWindow::new(help_desk, args)))),
    )
    .map_err(|e| format!("the window could not open ({e}); run the agent in a terminal instead"))
}
