//! Opaque forwarding between the two sides of a paired session. The relay reads nothing here:
//! the bytes are the end-to-end Noise session between viewer and agent.
//!
//! Each side may have sent bytes that the relay had already read into its frame buffer; those
//! go to the other side first. When either side ends, both are shut down.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const BUFFER: usize = 32 * 1024;

/// Which side ended the session first, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Side A closed its stream.
    ByA,
    /// Side B closed its stream.
    ByB,
    /// Reading from or writing to a side failed.
    Error(String),
}

/// What went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// Bytes from A to B (leftover included).
    pub a_to_b: u64,
    /// Bytes from B to A (leftover included).
    pub b_to_a: u64,
    /// How it ended.
    pub ended: Ended,
}

async fn pump<R, W>(
    from: &mut R,
    to: &mut W,
    leftover: &[u8],
    count: &mut u64,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if !leftover.is_empty() {
        to.write_all(leftover).await?;
        *count += leftover.len() as u64;
    }
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
        *count += n as u64;
    }
}

/// Forwards between `a` and `b` until either ends, then shuts both down. `a_leftover` are
/// bytes already read from A (they go to B first), `b_leftover` likewise.
pub async fn forward<A, B>(a: A, a_leftover: &[u8], b: B, b_leftover: &[u8]) -> Forwarded
where
    A: AsyncRead + AsyncWrite,
    B: AsyncRead + AsyncWrite,
{
    let (mut a_read, mut a_write) = tokio::io::split(a);
    let (mut b_read, mut b_write) = tokio::io::split(b);
    let (mut a_to_b, mut b_to_a) = (0u64, 0u64);
    let ended = tokio::select! {
        r = pump(&mut a_read, &mut b_write, a_leftover, &mut a_to_b) => match r {
            Ok(()) => Ended::ByA,
            Err(e) => Ended::Error(e.to_string()),
        },
        r = pump(&mut b_read, &mut a_write, b_leftover, &mut b_to_a) => match r {
            Ok(()) => Ended::ByB,
            Err(e) => Ended::Error(e.to_string()),
        },
    };
    // Everything read has been written; tell both sides that nothing more comes.
    let _ = b_write.shutdown().await;
    let _ = a_write.shutdown().await;
    Forwarded {
        a_to_b,
        b_to_a,
        ended,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::duplex;

    #[tokio::test]
    async fn leftovers_go_first_then_bytes_flow_both_ways_until_one_side_ends() {
        // a_peer <-> [a | relay | b] <-> b_peer
        let (a, mut a_peer) = duplex(1024);
        let (b, mut b_peer) = duplex(1024);
        let relay = tokio::spawn(async move { forward(a, b"early-a", b, b"early-b").await });

        let mut got = [0u8; 7];
        b_peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"early-a");
        a_peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"early-b");

        a_peer.write_all(b"hello from a").await.unwrap();
        let mut buf = [0u8; 12];
        b_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello from a");
        b_peer.write_all(b"hi").await.unwrap();
        let mut buf = [0u8; 2];
        a_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hi");

        // B leaves; A sees the end of its stream.
        drop(b_peer);
        let result = tokio::time::timeout(Duration::from_secs(5), relay)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            result,
            Forwarded {
                a_to_b: 7 + 12,
                b_to_a: 7 + 2,
                ended: Ended::ByB
            }
        );
        let mut rest = Vec::new();
        a_peer.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn a_side_that_keeps_silent_does_not_keep_the_session_alive() {
        let (a, _a_peer) = duplex(64);
        let (b, b_peer) = duplex(64);
        let relay = tokio::spawn(async move { forward(a, &[], b, &[]).await });
        drop(b_peer);
        let result = tokio::time::timeout(Duration::from_secs(5), relay)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(result.ended, Ended::ByB);
    }
}
