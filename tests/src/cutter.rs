//! A TCP proxy for tests that can cut the network: while cut, connections through it go
//! silent (nothing is read or forwarded, nothing is closed: packets are lost, as when a laptop
//! changes Wi-Fi or a VPN reconnects) and new connections are refused (closed at once). When
//! the cut ends, the connections that lived through it are closed (their path is gone) and new
//! ones go through again. It runs on its own thread with its own runtime; dropping it stops it.

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The proxy: connect to [`Cutter::addr`] to reach the upstream.
#[derive(Debug)]
pub struct Cutter {
    /// Where to connect.
    pub addr: String,
    cut: Arc<watch::Sender<bool>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Cutter {
    /// Starts a proxy to `upstream` on a free loopback port.
    pub fn start(upstream: &str) -> Cutter {
        let upstream: SocketAddr = upstream.parse().expect("upstream address");
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind cutter");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("local addr").to_string();
        let (cut, _) = watch::channel(false);
        let cut = Arc::new(cut);
        let state = cut.clone();
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
                            if *state.borrow() {
                                // Refused: no route while the network is cut.
                                drop(client);
                                continue;
                            }
                            tokio::spawn(pipe(client, upstream, state.subscribe()));
                        }
                    }
                }
            });
        });
        Cutter {
            addr,
            cut,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Cuts the network: open connections go silent, new ones are refused.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Ends the cut: connections that lived through it are closed, new ones go through.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Cutter {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Forwards both ways until either side ends or the network is cut; after a cut, holds both
/// connections open and silent until it ends, then closes them.
async fn pipe(mut client: TcpStream, upstream: SocketAddr, mut cut: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    {
        let (mut cr, mut cw) = client.split();
        let (mut sr, mut sw) = server.split();
        let up = async {
            let _ = tokio::io::copy(&mut cr, &mut sw).await;
            let _ = sw.shutdown().await;
        };
        let down = async {
            let _ = tokio::io::copy(&mut sr, &mut cw).await;
            let _ = cw.shutdown().await;
        };
        tokio::select! {
            _ = async { tokio::join!(up, down) } => return,
            _ = cut.wait_for(|c| *c) => {}
        }
    }
    // Silent: the sockets stay open, nothing moves. Then the path is gone.
    let _ = cut.wait_for(|c| !*c).await;
    drop(client);
    drop(server);
}
