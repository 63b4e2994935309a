//! A network namespace joined to this host by a veth pair: a second host on the same machine,
//! whose link the harness can take down (`ip link set down`) to cut that host off while
//! everything else goes on. Needs root and iproute2; removed when dropped.

use anyhow::{bail, Context, Result};
use std::process::Command;

/// The namespace, its link and addresses (a /30 per namespace).
#[derive(Debug)]
pub struct Netns {
    name: String,
    host_if: String,
    ns_if: String,
    /// This host's address on the link.
    pub host_ip: String,
    /// The namespace's address on the link.
    pub ns_ip: String,
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("cannot run `ip` (the outage stage needs iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {} (the outage stage needs root for network namespaces)",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Netns {
    /// Creates namespace `sl-<tag>-<pid>` with the link up.
    pub fn create(tag: &str) -> Result<Self> {
        let pid = std::process::id();
        let third = pid % 250;
        let ns = Self {
            name: format!("sl-{tag}-{pid}"),
            host_if: format!("slh{}", pid % 100_000),
            ns_if: format!("sln{}", pid % 100_000),
            host_ip: format!("10.213.{third}.1"),
            ns_ip: format!("10.213.{third}.2"),
        };
        ip(&["netns", "add", &ns.name])?;
        let (h, n, name) = (&ns.host_if, &ns.ns_if, &ns.name);
        ip(&["link", "add", h, "type", "veth", "peer", "name", n])?;
        ip(&["link", "set", n, "netns", name])?;
        ip(&["addr", "add", &format!("{}/30", ns.host_ip), "dev", h])?;
        ip(&["link", "set", h, "up"])?;
        ip(&[
            "-n",
            name,
            "addr",
            "add",
            &format!("{}/30", ns.ns_ip),
            "dev",
            n,
        ])?;
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        ns.set_link(true)?;
        Ok(ns)
    }

    /// Takes the namespace's end of the link up or down.
    pub fn set_link(&self, up: bool) -> Result<()> {
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.name, "link", "set", &self.ns_if, state])
    }

    /// `program` run inside the namespace.
    pub fn command(&self, program: &std::path::Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the pair, and with it the host's end.
        let _ = ip(&["netns", "del", &self.name]);
        let _ = ip(&["link", "del", &self.host_if]);
    }
}
