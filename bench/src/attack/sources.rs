//! Source addresses for the load: every connection of the harness leaves from an address of
//! its own in 127.0.0.0/8 (all of it is loopback on Linux), so that the relay sees many
//! clients, as it would from a botnet or an IPv6 prefix, and not one host it can cap.

use anyhow::{Context, Result};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::net::{TcpSocket, TcpStream};

/// A block of source addresses: `127.<second>.x.y`, 200 hosts per /24.
#[derive(Debug, Clone, Copy)]
pub struct Block {
    /// Second octet: keeps the blocks of different roles apart (each its own /16).
    pub second: u8,
}

/// Hosts used per /24, so no address ends in 0 or 255.
const PER_24: usize = 200;

impl Block {
    /// Slowloris connections.
    pub const SLOW: Block = Block { second: 20 };
    /// Guessers.
    pub const GUESS: Block = Block { second: 30 };
    /// Legitimate customers, one address each.
    pub const CUSTOMERS: Block = Block { second: 50 };

    /// The `i`-th address of the block (wraps after 256 /24s).
    pub fn addr(self, i: usize) -> IpAddr {
        let third = u8::try_from((i / PER_24) % 256).unwrap_or(0);
        let fourth = u8::try_from(i % PER_24 + 1).unwrap_or(1);
        IpAddr::V4(Ipv4Addr::new(127, self.second, third, fourth))
    }

    /// /24s that `count` addresses of the block span.
    pub fn prefixes(count: usize) -> usize {
        count.div_ceil(PER_24)
    }
}

/// A TCP connection to `relay` from `source`, with Nagle off.
pub async fn connect_from(source: IpAddr, relay: SocketAddr) -> Result<TcpStream> {
    let socket = TcpSocket::new_v4().context("cannot create a socket")?;
    socket
        .bind(SocketAddr::new(source, 0))
        .with_context(|| format!("cannot bind {source}"))?;
    let tcp = socket
        .connect(relay)
        .await
        .with_context(|| format!("cannot connect from {source} to {relay}"))?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_hosts_in_their_own_slash_16() {
        let a: Vec<IpAddr> = (0..1000).map(|i| Block::GUESS.addr(i)).collect();
        let unique: std::collections::HashSet<_> = a.iter().collect();
        assert_eq!(unique.len(), 1000);
        assert_eq!(a[0], IpAddr::V4(Ipv4Addr::new(127, 30, 0, 1)));
        assert_eq!(a[200], IpAddr::V4(Ipv4Addr::new(127, 30, 1, 1)));
        assert_eq!(Block::prefixes(1000), 5);
        assert_eq!(Block::prefixes(1), 1);
    }
}
