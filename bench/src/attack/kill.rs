//! The relay dies under load: sessions are paired, the relay gets SIGKILL, and each end of
//! every session is timed until it notices (its read ends with end-of-file or an error).

use anyhow::Result;
use serde::Serialize;
use sightline_net::stream::BoxIo;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::task::JoinSet;

/// How long an end may take to notice before it counts as not noticing.
pub const NOTICE_LIMIT: Duration = Duration::from_secs(15);

/// When each end noticed, ms after the kill; `None`: not within [`NOTICE_LIMIT`].
#[derive(Debug, Clone, Serialize)]
pub struct Noticed {
    /// One per session end (two per session).
    pub after_ms: Vec<Option<f64>>,
}

/// Watches `ends` from `killed_at` on.
pub async fn watch(ends: Vec<BoxIo>, killed_at: Instant) -> Result<Noticed> {
    let mut tasks = JoinSet::new();
    for mut end in ends {
        tasks.spawn(async move {
            let mut buf = [0u8; 4096];
            let deadline = killed_at + NOTICE_LIMIT;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, end.read(&mut buf)).await {
                    Err(_) => return None,
                    Ok(Ok(n)) if n > 0 => continue,
                    Ok(_) => return Some(killed_at.elapsed().as_secs_f64() * 1000.0),
                }
            }
        });
    }
    let mut after_ms = Vec::new();
    while let Some(done) = tasks.join_next().await {
        after_ms.push(done.unwrap_or(None));
    }
    Ok(Noticed { after_ms })
}
