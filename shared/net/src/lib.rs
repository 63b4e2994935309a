//! Thin tokio drivers around `sightline-core`, shared by the viewer, the agent and the relay:
//! framed streams, the routes to the relay (TCP, TLS, WebSocket, through HTTP proxies), key
//! files with owner-only permissions, the relay client and the end-to-end session pump. Protocol decisions live in the core; this crate only moves bytes.

pub mod address;
pub mod audit_key;
pub mod cli;
pub mod clock;
pub mod dial;
pub mod keystore;
pub mod known_hosts;
pub mod oidc_redirect;
pub mod proxy;
pub mod relay_client;
pub mod release_check;
pub mod resume;
pub mod route;
pub mod session;
pub mod stream;
pub mod tls;
pub mod ws;

pub use relay_client::{ClientError, Joined, LoginGrant, Paired, RelayClient};
