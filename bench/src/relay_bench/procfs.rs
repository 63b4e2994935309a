//! CPU time and memory of a process, read from `/proc` (Linux only, like the relay's
//! deployment target): `utime + stime` from `/proc/PID/stat`, `VmRSS` and `VmHWM` from
//! `/proc/PID/status`. Works the same for the relay child and for the benchmark itself
//! (`"self"`), so both sides are measured alike.

use anyhow::{anyhow, Context, Result};

/// Which process to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pid {
    /// The benchmark process itself.
    This,
    /// Another process.
    Other(u32),
}

impl Pid {
    fn dir(self) -> String {
        match self {
            Pid::This => "/proc/self".to_string(),
            Pid::Other(pid) => format!("/proc/{pid}"),
        }
    }
}

/// User plus system CPU time of every thread of `pid` so far, in seconds.
pub fn cpu_seconds(pid: Pid) -> Result<f64> {
    let path = format!("{}/stat", pid.dir());
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // The command name (field 2) may hold spaces and parentheses; the fields that follow start
    // after its last ')'. There, index 0 is field 3 (state), so utime (14) and stime (15) are
    // at 11 and 12.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("{path}: no command name"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .ok_or_else(|| anyhow!("{path}: too few fields"))?
            .parse::<u64>()
            .with_context(|| format!("{path}: field {}", i + 3))
    };
    let ticks = tick(11)? + tick(12)?;
    Ok(ticks as f64 / ticks_per_second()?)
}

/// CPU seconds the whole machine has spent busy (all cores: user, nice, system, irq, softirq,
/// steal), from the first line of `/proc/stat`. Minus the relay and the benchmark, it shows
/// whether something else was running during a measurement.
pub fn machine_busy_seconds() -> Result<f64> {
    let text = std::fs::read_to_string("/proc/stat").context("cannot read /proc/stat")?;
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| anyhow!("/proc/stat: no cpu line"))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().context("/proc/stat: cpu field"))
        .collect::<Result<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| v.get(i)).sum();
    Ok(busy as f64 / ticks_per_second()?)
}

fn ticks_per_second() -> Result<f64> {
    match rustix::param::clock_ticks_per_second() {
        0 => Err(anyhow!("the kernel reports 0 clock ticks per second")),
        n => Ok(n as f64),
    }
}

/// Resident memory of a process, KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the most that was ever resident.
    pub hwm_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` of `pid`.
pub fn memory(pid: Pid) -> Result<Memory> {
    let path = format!("{}/status", pid.dir());
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let field = |name: &str| -> Result<u64> {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .ok_or_else(|| anyhow!("{path}: no {name}"))?;
        line.trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("{path}: {name}{line}"))
    };
    Ok(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() -> Result<()> {
        // Burn a little CPU so the counter is very likely above zero.
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_seconds(Pid::This)? >= 0.0);
        assert!(machine_busy_seconds()? > 0.0);
        let m = memory(Pid::This)?;
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
        Ok(())
    }
}
