//! Running as the agent a help desk preconfigured (`relay agent-bundle`): its name is shown
//! first, and its relay and root key are used; the command line cannot change whom the agent
//! trusts.

use anyhow::{bail, Result};
use serde_json::json;
use sightline_core::bundle::Bundle;
use sightline_core::text::{display_safe, MAX_DISPLAY_CHARS};
use sightline_net::cli::Output;

/// The `--relay` and `--relay-key` values to use: the bundle's, except that `--relay` may
/// name other routes to the same relay (the pin stays the bundle's). A `--relay-key` other
/// than the bundle's is refused.
pub fn settings(
    bundle: &Bundle,
    relay_flag: Option<String>,
    key_flag: Option<String>,
    out: Output,
) -> Result<(Option<String>, Option<String>)> {
    let pin = bundle.pin.to_string();
    if let Some(k) = key_flag {
        if !k.trim().eq_ignore_ascii_case(&pin) {
            bail!(
                "this agent is configured by {}: its relay key cannot be changed with --relay-key",
                name(bundle)
            );
        }
    }
    announce(bundle, out);
    Ok((
        Some(relay_flag.unwrap_or_else(|| bundle.settings.relay.clone())),
        Some(pin),
    ))
}

/// The name as the customer sees it, cleaned like every name from elsewhere.
fn name(bundle: &Bundle) -> String {
    display_safe(&bundle.settings.help_desk, MAX_DISPLAY_CHARS)
}

fn announce(bundle: &Bundle, out: Output) {
    out.event(
        json!({"event": "bundle", "help_desk": name(bundle),
               "relay": bundle.settings.relay, "relay_key": bundle.pin.to_string()}),
        || format!("Sightline remote support for {}", name(bundle)),
    );
}
