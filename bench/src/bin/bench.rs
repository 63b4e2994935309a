//! `just bench`: the real-time budget, measured. Runs the pipeline stages on the recorded
//! corpus for every encoder backend side by side, the end-to-end latency through a real relay,
//! the relay's forwarding benchmark and the session recordings' (size, seeking, cost); prints
//! one table against the targets and writes the whole report (with the machine's description)
//! as JSON and Markdown.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use serde::Serialize;
use serde_json::json;
use sightline_bench::corpus;
use sightline_bench::e2e::{self, E2eOptions, E2eResult};
use sightline_bench::pipeline::{self, PipelineResult};
use sightline_bench::recording_bench::{self, RecordingBenchOptions, RecordingReport};
use sightline_bench::relay_bench::{self, RelayBenchOptions, RelayReport};
use sightline_media::encode::Backend;

/// Sightline's benchmarks: pipeline stages, end-to-end latency, relay forwarding.
#[derive(Debug, Parser)]
struct Cli {
    /// Short runs (a smoke test of the harness; figures are rough).
    #[arg(long)]
    quick: bool,
    /// Where to write report.json and report.md.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Only these clips (names like typing-1920x1080); default: the whole corpus.
    #[arg(long, value_delimiter = ',')]
    clips: Vec<String>,
    /// Skip the end-to-end runs through a relay.
    #[arg(long)]
    no_e2e: bool,
    /// Skip the relay forwarding benchmark.
    #[arg(long)]
    no_relay: bool,
    /// Skip the pipeline stages (the corpus clips through capture, encoders and decoder).
    #[arg(long)]
    no_pipeline: bool,
    /// Skip the session recording benchmark (an hour of 1080p written, opened and seeked in;
    /// always on scroll-1920x1080, whatever --clips says).
    #[arg(long)]
    no_recording: bool,
}

#[derive(Debug, Serialize)]
struct Machine {
    cpu: String,
    cores: usize,
    memory_gib: f64,
    os: String,
    kernel: String,
    rustc: String,
    commit: String,
    gpu_for_upload: Option<String>,
    date_unix: u64,
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_default()
}

fn machine() -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mem_kib: f64 = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let os = read("/etc/os-release")
        .lines()
        .find(|l| l.starts_with("PRETTY_NAME="))
        .map(|l| {
            l.trim_start_matches("PRETTY_NAME=")
                .trim_matches('"')
                .to_string()
        })
        .unwrap_or_default();
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        os,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        rustc: first_line("rustc", &["--version"]),
        commit: first_line("git", &["rev-parse", "--short", "HEAD"]),
        gpu_for_upload: pipeline::gpu_adapter(),
        date_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    }
}

/// One line of the targets table.
#[derive(Debug, Serialize)]
struct TargetRow {
    measure: String,
    target: String,
    /// Measured value per encoder backend (or one value where the encoder does not matter).
    measured: Vec<(String, String)>,
    /// Whether the best backend meets the target (`None`: not measured in this run).
    met: Option<bool>,
}

fn find<'a>(p: &'a [PipelineResult], clip: &str, enc: &str) -> Option<&'a PipelineResult> {
    p.iter().find(|r| r.clip == clip && r.encoder == enc)
}

fn find_e2e<'a>(e: &'a [E2eResult], clip: &str, enc: &str) -> Option<&'a E2eResult> {
    e.iter().find(|r| r.clip == clip && r.encoder == enc)
}

fn targets(
    p: &[PipelineResult],
    e: &[E2eResult],
    relay: Option<&RelayReport>,
    recording: Option<&RecordingReport>,
) -> Vec<TargetRow> {
    let encoders: Vec<&str> = Backend::ALL.iter().map(|b| b.name()).collect();
    let mut rows = Vec::new();
    // A row per encoder: `value` gives the text and whether the target is met.
    let mut per_encoder =
        |measure: &str, target: &str, value: &dyn Fn(&str) -> Option<(String, bool)>| {
            let vals: Vec<(String, Option<(String, bool)>)> =
                encoders.iter().map(|e| (e.to_string(), value(e))).collect();
            let met = vals
                .iter()
                .filter_map(|(_, v)| v.as_ref().map(|(_, ok)| *ok))
                .reduce(|a, b| a || b);
            rows.push(TargetRow {
                measure: measure.into(),
                target: target.into(),
                measured: vals
                    .into_iter()
                    .map(|(e, v)| (e, v.map_or_else(|| "not measured".into(), |(t, _)| t)))
                    .collect(),
                met,
            });
        };
    per_encoder(
        "capture → decoded latency through the relay, typing, 1080p",
        "p50 ≤ 20 ms, p95 ≤ 35 ms",
        &|enc| {
            find_e2e(e, "typing-1920x1080", enc).map(|r| {
                let (p50, p95) = (
                    r.latency_p50_ms.unwrap_or(f64::NAN),
                    r.latency_p95_ms.unwrap_or(f64::NAN),
                );
                (
                    format!("p50 {p50:.1} ms, p95 {p95:.1} ms"),
                    p50 <= 20.0 && p95 <= 35.0,
                )
            })
        },
    );
    for (clip, fps) in [("scroll-1920x1080", 30.0), ("scroll-1280x720", 60.0)] {
        per_encoder(
            &format!("sustained rate, scrolling text, {}", &clip[7..]),
            &format!("≥ {fps} fps"),
            &|enc| {
                find(p, clip, enc).map(|r| {
                    (
                        format!("{:.1} fps", r.sustained_fps),
                        r.sustained_fps >= fps,
                    )
                })
            },
        );
    }
    per_encoder(
        "idle desktop (1080p, through the relay)",
        "no video frames, < 0.5 KB/s, agent < 2 % of a core",
        &|enc| {
            find_e2e(e, "idle-1920x1080", enc).map(|r| {
                let kbs = r.bytes_per_sec / 1000.0;
                (
                    format!(
                        "{} frames, {:.2} KB/s, agent {:.1} % of a core",
                        r.frames,
                        kbs,
                        r.agent_cpu * 100.0
                    ),
                    r.frames == 0 && kbs < 0.5 && r.agent_cpu < 0.02,
                )
            })
        },
    );
    per_encoder(
        "typing at 720p",
        "≤ 150 kbit/s at ≥ 40 dB Y-PSNR",
        &|enc| {
            find(p, "typing-1280x720", enc).map(|r| {
                let kbps = r.bytes_per_sec * 8.0 / 1000.0;
                (
                    format!(
                        "{kbps:.0} kbit/s at {:.1} dB (min {:.1})",
                        r.y_psnr_mean, r.y_psnr_min
                    ),
                    kbps <= 150.0 && r.y_psnr_mean >= 40.0,
                )
            })
        },
    );
    per_encoder(
        "keyframe at 1080p (typing clip's first picture)",
        "≤ 150 KB",
        &|enc| {
            find(p, "typing-1920x1080", enc).map(|r| {
                (
                    format!("{:.1} KB", r.keyframe_bytes as f64 / 1000.0),
                    r.keyframe_bytes <= 150_000,
                )
            })
        },
    );
    per_encoder(
        "agent memory at 1080p (peak, typing through the relay)",
        "≤ 150 MB",
        &|enc| {
            find_e2e(e, "typing-1920x1080", enc).map(|r| {
                let mb = r.agent_peak_kib as f64 / 1024.0;
                (format!("{mb:.0} MB"), mb <= 150.0)
            })
        },
    );
    if let Some(relay) = relay {
        for [measure, value, target] in relay.rows() {
            rows.push(TargetRow {
                measure,
                target,
                measured: vec![("relay".into(), value)],
                met: None,
            });
        }
    }
    if let Some(rec) = recording {
        for (measure, value, target, met) in rec.rows() {
            rows.push(TargetRow {
                measure,
                target,
                measured: vec![(rec.encoder.clone(), value)],
                met: Some(met),
            });
        }
    }
    rows
}

fn markdown(
    machine: &Machine,
    rows: &[TargetRow],
    p: &[PipelineResult],
    e: &[E2eResult],
    recording: Option<&RecordingReport>,
) -> String {
    let mut md = String::new();
    md.push_str(&format!(
        "# Sightline benchmark\n\nMachine: {} ({} cores, {} GiB), {}, kernel {}, {}, commit {}, upload on {}.\n\n",
        machine.cpu,
        machine.cores,
        machine.memory_gib,
        machine.os,
        machine.kernel,
        machine.rustc,
        machine.commit,
        machine.gpu_for_upload.as_deref().unwrap_or("no GPU adapter")
    ));
    md.push_str("## Targets\n\n| measure | target | measured | met |\n| --- | --- | --- | --- |\n");
    for r in rows {
        let measured: Vec<String> = r
            .measured
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "see value",
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.measure,
            r.target,
            measured.join("; "),
            met
        ));
    }
    md.push_str("\n## Pipeline stages (ms, p50 / p95), per clip and encoder\n\n| clip | encoder | changed | capture | convert | encode | decode | upload | sustained fps | kbit/s | keyframe KB | Y-PSNR mean / min | encode CPU (cores) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    let st = |s: &pipeline::Stage| format!("{:.2} / {:.2}", s.p50_ms, s.p95_ms);
    for r in p {
        md.push_str(&format!(
            "| {} | {} | {}/{} | {} | {} | {} | {} | {} | {:.1} | {:.0} | {:.1} | {:.1} / {:.1} | {:.2} |\n",
            r.clip,
            r.encoder,
            r.changed,
            r.frames,
            st(&r.capture),
            st(&r.convert),
            st(&r.encode),
            st(&r.decode),
            r.upload.as_ref().map_or_else(|| "-".into(), st),
            r.sustained_fps,
            r.bytes_per_sec * 8.0 / 1000.0,
            r.keyframe_bytes as f64 / 1000.0,
            r.y_psnr_mean,
            r.y_psnr_min,
            r.encode_cpu_cores
        ));
    }
    if !e.is_empty() {
        md.push_str("\n## End to end through a relay on loopback\n\n");
        md.push_str(&format!(
            "| {} |\n|{}\n",
            e2e::HEADER.join(" | "),
            " --- |".repeat(e2e::HEADER.len())
        ));
        for row in e2e::rows(e) {
            md.push_str(&format!("| {} |\n", row.join(" | ")));
        }
    }
    if let Some(r) = recording {
        md.push_str(&recording_markdown(r));
    }
    md
}

fn recording_markdown(r: &RecordingReport) -> String {
    let st = |s: &pipeline::Stage| format!("{:.1} / {:.1} ms", s.p50_ms, s.p95_ms);
    let mut md = format!(
        "\n## Session recordings\n\n{} ({}x{}) encoded by {} with a {} kbit/s target \
         ({:.0} kbit/s reached) into one 10-s GOP, repeated to {} s ({} packets, {} keyframes). \
         The video recording holds what the agent sends (the video, its media key, a checkpoint \
         every 5 s); the busy one adds a Cursor record every picture and an Input record every \
         third. Seeks and CPU are measured on the busy one.\n\n",
        r.clip,
        r.width,
        r.height,
        r.encoder,
        r.bitrate_kbps,
        r.video_kbps,
        r.stream_seconds,
        r.packets,
        r.keyframes
    );
    let rows = [
        ("AV1 bytes".to_string(), r.video_bytes.to_string()),
        (
            "video recording".into(),
            format!("{} ({:.2} % more)", r.file_bytes, r.overhead_pct),
        ),
        (
            "busy recording".into(),
            format!("{} ({:.2} % more)", r.busy_file_bytes, r.busy_overhead_pct),
        ),
        ("open (footer and index), p50 / p95".into(), st(&r.open)),
        (
            "seek to the first decoded picture, p50 / p95".into(),
            st(&r.seek_first_picture),
        ),
        (
            "seek to the exact picture, p50 / p95".into(),
            st(&r.seek_exact_picture),
        ),
        (
            "CPU of push + take_ciphertext".into(),
            format!(
                "{:.2} s for {} s of stream: {:.3} % of a core",
                r.record_cpu_seconds, r.stream_seconds, r.record_cpu_pct
            ),
        ),
        (
            "writing the busy file (wall)".into(),
            format!("{:.1} s", r.write_seconds),
        ),
    ];
    md.push_str("| measure | value |\n| --- | --- |\n");
    for (k, v) in rows {
        md.push_str(&format!("| {k} | {v} |\n"));
    }
    md
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    std::fs::create_dir_all(&cli.out).with_context(|| format!("creating {}", cli.out.display()))?;
    let machine = machine();
    eprintln!("bench: {} cores, {}", machine.cores, machine.cpu);

    let mut clips = corpus::list().context("reading the corpus")?;
    if !cli.clips.is_empty() {
        clips.retain(|c| cli.clips.contains(&c.name));
    } else if cli.quick {
        clips.retain(|c| {
            c.name.ends_with("1280x720")
                && (c.name.starts_with("typing") || c.name.starts_with("idle"))
        });
    }
    let mut pipeline_results = Vec::new();
    if cli.no_pipeline {
        clips.clear();
    }
    for clip in &clips {
        eprintln!("bench: pipeline {}", clip.name);
        pipeline_results.extend(pipeline::run_clip(&clip.path, Backend::ALL)?);
    }

    let e2e_results = if cli.no_e2e {
        Vec::new()
    } else {
        let opts = if cli.quick {
            E2eOptions::quick()
        } else {
            E2eOptions::default()
        };
        eprintln!(
            "bench: end to end ({} clips × {} encoders)",
            opts.clips.len(),
            opts.encoders.len()
        );
        e2e::run(&opts)?
    };

    let relay = if cli.no_relay {
        None
    } else {
        let opts = if cli.quick {
            RelayBenchOptions::quick()
        } else {
            RelayBenchOptions::default()
        };
        eprintln!("bench: relay forwarding ({} sessions)", opts.sessions);
        Some(relay_bench::run(&opts)?)
    };

    let recording = if cli.no_recording {
        None
    } else {
        let opts = if cli.quick {
            RecordingBenchOptions::quick()
        } else {
            RecordingBenchOptions::default()
        };
        eprintln!("bench: session recording ({} s of stream)", opts.seconds);
        Some(recording_bench::run(&opts)?)
    };

    let rows = targets(
        &pipeline_results,
        &e2e_results,
        relay.as_ref(),
        recording.as_ref(),
    );
    let md = markdown(
        &machine,
        &rows,
        &pipeline_results,
        &e2e_results,
        recording.as_ref(),
    );
    let report = json!({
        "machine": machine,
        "targets": rows,
        "pipeline": pipeline_results,
        "end_to_end": e2e_results,
        "relay": relay,
        "recording": recording,
    });
    let json_path = cli.out.join("report.json");
    std::fs::write(&json_path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    let md_path = cli.out.join("report.md");
    std::fs::write(&md_path, &md).with_context(|| format!("writing {}", md_path.display()))?;
    println!("{md}");
    eprintln!(
        "bench: wrote {} and {}",
        json_path.display(),
        md_path.display()
    );
    Ok(())
}
