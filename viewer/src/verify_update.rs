//! `viewer verify-update FILE`: checks a downloaded release artefact against the signed
//! `SHA256SUMS` beside it and the Sightline release key pinned in this build (the work is
//! [`sightline_net::release_check`]'s).

use clap::Args;
use sightline_net::cli::Output;
use sightline_net::release_check::{self, VerifyRequest};
use std::path::PathBuf;
use std::process::ExitCode;

/// `viewer verify-update`.
#[derive(Args, Debug)]
pub struct VerifyUpdateArgs {
    /// The downloaded file (an archive or package of a Sightline release).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The release's SHA256SUMS [default: SHA256SUMS in FILE's directory]; its signature is
    /// read from the same path with .minisig added.
    #[arg(long, value_name = "PATH")]
    pub sums: Option<PathBuf>,
    /// A minisign public key file to check the signature against instead of the Sightline
    /// release key pinned in this build: for test builds and CI artefacts signed with a
    /// throw-away key (their throwaway.pub).
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,
    /// One JSON object on stdout: a `verified` event, or an `error` event.
    #[arg(long)]
    pub json: bool,
}

/// Runs `viewer verify-update`.
pub fn run(args: &VerifyUpdateArgs) -> ExitCode {
    let req = VerifyRequest {
        file: args.file.clone(),
        sums: args.sums.clone(),
        public_key: args.public_key.clone(),
    };
    release_check::run("viewer", &req, Output::new(args.json))
}
