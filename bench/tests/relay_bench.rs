//! Smoke test of the relay benchmark: a few sessions through the real relay binary (built by
//! `cargo build --workspace --bins`, as for the other integration tests). Checks that the report
//! is sane, never how fast anything was.

use sightline_bench::relay_bench::{self, RelayBenchOptions};

#[test]
fn quick_run_pairs_every_session_and_reports_traffic_and_memory() -> anyhow::Result<()> {
    let opts = RelayBenchOptions::quick();
    let report = relay_bench::run(&opts)?;
    assert_eq!(report.pairing.paired, opts.sessions);
    assert_eq!(report.load.sessions, opts.sessions);
    assert!(report.throughput.bytes > 0, "{report:?}");
    assert!(report.load.bytes_forwarded > 0, "{report:?}");
    assert!(report.latency.relayed.samples > 0 && report.latency.direct.samples > 0);
    let m = &report.memory;
    for mem in [
        m.fresh,
        m.before_pairing,
        m.paired_idle,
        m.under_load,
        m.after_close,
    ] {
        assert!(mem.rss_kib > 0 && mem.hwm_kib >= mem.rss_kib, "{m:?}");
    }
    assert_eq!(report.rows().len(), 11);
    assert!(
        report.relay_log_warnings.is_empty(),
        "{:?}",
        report.relay_log_warnings
    );
    let json = serde_json::to_value(&report)?;
    assert!(json["throughput"]["gbit_per_relay_core"].is_number());
    Ok(())
}
