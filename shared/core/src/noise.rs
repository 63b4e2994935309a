//! Noise parameters, prologues and a crypto resolver whose randomness comes from a caller's
//! seed, so the core never reads OS randomness itself and tests are reproducible.

use crate::error::{Error, Result};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use snow::params::{CipherChoice, DHChoice, HashChoice, NoiseParams};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

/// End-to-end pattern between viewer and agent.
pub(crate) const E2E_PATTERN: &str = "Noise_XX_25519_AESGCM_SHA256";
/// Resumption of an end-to-end session with the static keys of its original handshake and a
/// psk derived from it ([`crate::resume`]).
pub(crate) const RESUME_PATTERN: &str = "Noise_KKpsk0_25519_AESGCM_SHA256";
/// Client↔relay pattern: the relay proves a static key that its CA signed.
pub(crate) const RELAY_PATTERN: &str = "Noise_NX_25519_AESGCM_SHA256";

pub(crate) fn params(pattern: &str) -> Result<NoiseParams> {
    pattern
        .parse()
        .map_err(|e: snow::Error| Error::Local(e.to_string()))
}

/// A ChaCha20 generator seeded by the caller; the only randomness snow sees.
struct SeededRng(ChaCha20Rng);

impl RngCore for SeededRng {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> std::result::Result<(), rand_core::Error> {
        self.0.try_fill_bytes(dest)
    }
}
impl CryptoRng for SeededRng {}
impl Random for SeededRng {}

/// Resolver that delegates primitives to snow's default resolver but draws randomness from a
/// seed.
pub(crate) struct SeededResolver {
    seed: [u8; 32],
}

impl SeededResolver {
    pub(crate) fn boxed(seed: [u8; 32]) -> Box<dyn CryptoResolver + Send> {
        Box::new(Self { seed })
    }
}

impl CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SeededRng(ChaCha20Rng::from_seed(self.seed))))
    }
    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }
    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }
    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

/// Builds a snow builder for `pattern` with seeded randomness.
pub(crate) fn builder<'a>(pattern: &str, seed: [u8; 32]) -> Result<snow::Builder<'a>> {
    Ok(snow::Builder::with_resolver(
        params(pattern)?,
        SeededResolver::boxed(seed),
    ))
}

/// Derives an independent 32-byte seed for a sub-purpose from a caller's seed.
pub(crate) fn derive_seed(seed: &[u8; 32], label: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"sightline seed v1\0");
    h.update(label);
    h.update(seed);
    h.finalize().into()
}

/// A seeded CSPRNG for RSA blinding and similar local needs.
pub(crate) fn rng(seed: &[u8; 32], label: &[u8]) -> ChaCha20Rng {
    ChaCha20Rng::from_seed(derive_seed(seed, label))
}
