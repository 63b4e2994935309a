//! `agent --verify FILE`: checks a downloaded release artefact against the signed
//! `SHA256SUMS` beside it and the Sightline release key pinned in this build (the work is
//! [`sightline_net::release_check`]'s). A flag rather than a subcommand: the agent's top level
//! takes the session code as its positional argument.

use clap::Args;
use sightline_net::cli::Output;
use sightline_net::release_check::{self, VerifyRequest};
use std::path::PathBuf;
use std::process::ExitCode;

/// The `--verify` flags, flattened into the agent's command line.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Check a downloaded Sightline release FILE against the signed SHA256SUMS beside it
    /// (SHA256SUMS.minisig, the release key pinned in this build), then exit: 0 and
    /// `verified: NAME (sha256 HEX) signed by KEYID`, else 1 and the reason.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["code", "lan_only"])]
    pub verify: Option<PathBuf>,
    /// With --verify: the release's SHA256SUMS [default: SHA256SUMS in FILE's directory]; its
    /// signature is read from the same path with .minisig added.
    #[arg(long, value_name = "PATH", requires = "verify")]
    pub sums: Option<PathBuf>,
    /// With --verify: a minisign public key file to check the signature against instead of
    /// the release key pinned in this build: for test builds and CI artefacts signed with a
    /// throw-away key (their throwaway.pub).
    #[arg(long, value_name = "FILE", requires = "verify")]
    pub public_key: Option<PathBuf>,
}

impl VerifyArgs {
    /// Runs the check when `--verify` was given; `None` otherwise.
    pub fn run(&self, json: bool) -> Option<ExitCode> {
        let file = self.verify.clone()?;
        let req = VerifyRequest {
            file,
            sums: self.sums.clone(),
            public_key: self.public_key.clone(),
        };
        Some(release_check::run("agent", &req, Output::new(json)))
    }
}
