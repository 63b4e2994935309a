//! The operator's viewer as a library: the session client (network and decoding off the UI
//! thread) that both the GUI and the headless `viewer session` command drive, and the
//! session recordings' commands (`viewer export`, `viewer play`), and `viewer verify-update`.

pub mod agent_key;
pub mod certstore;
pub mod client;
pub mod consent;
pub mod credentials;
pub mod decoder;
pub mod direct;
mod dispatch;
pub mod gui;
pub mod headless;
pub mod known_hosts;
pub mod limits;
pub mod playback;
pub mod player;
mod recording;
pub mod recording_cli;
pub mod script;
mod uplink;
pub mod verify_update;

#[cfg(test)]
mod testkeys;
