//! A shaping TCP proxy for tests: a constrained link (bit rate and one-way delay each way) with
//! the deep FIFO buffer of a consumer router, so that a sender that ignores congestion builds
//! up lag exactly as it would behind a real bottleneck. It runs on its own thread with its own
//! runtime; dropping it stops accepting (connections in progress end with their peers).
//!
//! `tc netem` in network namespaces would shape in the kernel, but needs the `sch_netem` module,
//! which containers and CI machines often lack; this proxy needs nothing.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, Notify};
use tokio::time::Instant;

/// One direction's shaping.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    /// Bits per second.
    pub rate_bps: u64,
    /// One-way propagation delay.
    pub delay: Duration,
}

/// The proxy: connect to [`Shaper::addr`] to reach the upstream through the shaped link.
#[derive(Debug)]
pub struct Shaper {
    /// Where to connect.
    pub addr: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Shaper {
    /// Starts a proxy to `upstream` shaping the client→upstream direction with `up` and the
    /// other with `down`.
    pub fn start(upstream: &str, up: Link, down: Link) -> Shaper {
        let upstream: SocketAddr = upstream.parse().expect("upstream address");
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind shaper");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("local addr").to_string();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("listener");
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => return,
                        accepted = listener.accept() => {
                            let Ok((client, _)) = accepted else { continue };
                            tokio::spawn(async move {
                                let Ok(server) = TcpStream::connect(upstream).await else { return };
                                let _ = client.set_nodelay(true);
                                let _ = server.set_nodelay(true);
                                let (cr, cw) = client.into_split();
                                let (sr, sw) = server.into_split();
                                tokio::spawn(pipe(cr, sw, up));
                                tokio::spawn(pipe(sr, cw, down));
                            });
                        }
                    }
                }
            });
        });
        Shaper {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Shaper {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Chunks waiting to be delivered, each with when it arrives (an empty chunk: end of stream).
type Queue = VecDeque<(Instant, Vec<u8>)>;

/// Reads as fast as the sender writes (the buffer is deep), and delivers each chunk when the
/// link has serialised it and it has propagated.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    link: Link,
) {
    let queue: Arc<Mutex<Queue>> = Arc::default();
    let ready = Arc::new(Notify::new());
    let writer = {
        let (queue, ready) = (queue.clone(), ready.clone());
        tokio::spawn(async move {
            loop {
                let next = queue.lock().await.pop_front();
                match next {
                    Some((at, bytes)) if bytes.is_empty() => {
                        tokio::time::sleep_until(at).await;
                        let _ = to.shutdown().await;
                        return;
                    }
                    Some((at, bytes)) => {
                        tokio::time::sleep_until(at).await;
                        if to.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                    None => ready.notified().await,
                }
            }
        })
    };
    let mut link_free = Instant::now();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await.unwrap_or(0);
        let now = Instant::now();
        let start = link_free.max(now);
        let serialise = Duration::from_micros(n as u64 * 8 * 1_000_000 / link.rate_bps.max(1));
        link_free = start + serialise;
        queue
            .lock()
            .await
            .push_back((link_free + link.delay, buf[..n].to_vec()));
        ready.notify_one();
        if n == 0 {
            break;
        }
    }
    let _ = writer.await;
}
