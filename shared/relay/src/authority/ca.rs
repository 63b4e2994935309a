//! The relay's certificate authority on disk: the root key, the issuing key and its
//! certificate; creating, certifying, rotating and installing issuing keys.
//!
//! Files, all mode 0600, refused when group or others may read them:
//! - `ca-key.pem`: the root key whose fingerprint viewers and agents pin. In the default
//!   set-up it sits in the data directory and `relay serve` certifies new issuing keys by
//!   itself; with `relay init --offline-ca DIR` it sits in DIR only (removable media, another
//!   machine), and the internet-facing relay never holds it.
//! - `issuer-key.pem`: the issuing key; it signs operator certificates, the relay's channel key
//!   and revocation lists.
//! - `issuer-cert.bin`: the issuing key's certificate together with the root public key (a
//!   serialised [`Authority`]).
//! - `issuer-key.next.pem`: an issuing key waiting for its certificate (`relay ca request`).
//!
//! Installing a new issuing key survives a crash at any point: the new key is first written
//! under its own name (`issuer-key.next.pem`), then the certificate replaces the old one
//! atomically, then the key is renamed into place. A reader takes whichever of the two key
//! files matches the certificate.

use crate::store::paths::DataDir;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sightline_core::authority::{
    Authority, ISSUER_BITS, MAX_ISSUER_VALIDITY_SECS, MIN_ISSUER_VALIDITY_SECS,
};
use sightline_core::codec;
use sightline_core::identity::{Fingerprint, PrivateIdentity, CA_BITS, MIN_PEER_BITS};
use sightline_net::keystore::{self, KeyError};
use std::fmt;
use std::path::{Path, PathBuf};

/// Domain-separation label of an issuing-key request's self-signature.
const REQUEST_LABEL: &[u8] = b"sightline issuing key request v1";
/// Largest certificate or request file read, bytes.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Errors of the authority on disk.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// A file that must not be replaced is already there.
    #[error("{0} already exists; refusing to replace it (viewers and agents pin the root key's fingerprint)")]
    Exists(PathBuf),
    /// A file is missing.
    #[error("{path} does not exist; {hint}")]
    Missing {
        /// The file.
        path: PathBuf,
        /// What to do about it.
        hint: &'static str,
    },
    /// The root key is not where it was looked for.
    #[error("the root CA key is not on this machine ({0} does not exist): give the directory that holds it with --root DIR, or certify a new issuing key offline (relay ca request, relay ca issue, relay ca install)")]
    NoRoot(PathBuf),
    /// Keys or certificates that belong together do not.
    #[error("{0}")]
    Mismatch(String),
    /// A file does not hold what it should.
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A validity outside the accepted range.
    #[error("an issuing key is certified for {min} to {max} days; {given} days asked")]
    Validity {
        /// Asked for.
        given: u64,
        /// Shortest.
        min: u64,
        /// Longest.
        max: u64,
    },
    /// A key file failed (permissions, contents, I/O).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Key generation, signing or encoding failed.
    #[error("{0}")]
    Core(#[from] sightline_core::Error),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The validity of an issuer certificate of `days` days, in seconds, if allowed.
pub fn validity_secs(days: u64) -> Result<u64, CaError> {
    let (min, max) = (
        MIN_ISSUER_VALIDITY_SECS / 86_400,
        MAX_ISSUER_VALIDITY_SECS / 86_400,
    );
    if !(min..=max).contains(&days) {
        return Err(CaError::Validity {
            given: days,
            min,
            max,
        });
    }
    Ok(days * 86_400)
}

/// What the relay signs with: the issuing key and the authority that certifies it.
#[derive(Clone)]
pub struct Issuing {
    key: PrivateIdentity,
    authority: Authority,
}

impl fmt::Debug for Issuing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Issuing({:?})", self.authority)
    }
}

impl Issuing {
    /// Pairs an issuing key with its authority; fails unless the authority certifies this key.
    pub fn new(key: PrivateIdentity, authority: Authority) -> Result<Self, CaError> {
        if key.public() != authority.issuer() {
            return Err(CaError::Mismatch(format!(
                "the issuer certificate is for key {}, not for this issuing key {}",
                authority.issuer().fingerprint(),
                key.public().fingerprint()
            )));
        }
        Ok(Self { key, authority })
    }

    /// Certifies `key` with `root` from `now` for `validity_secs` (with a fresh serial).
    pub fn certify(
        root: &PrivateIdentity,
        key: PrivateIdentity,
        now: u64,
        validity_secs: u64,
    ) -> Result<Self, CaError> {
        let authority =
            Authority::certify(root, key.public(), serial(), now, validity_secs, &mut OsRng)?;
        Self::new(key, authority)
    }

    /// A root key acting as its own issuing key, certified by itself for 90 days from `now`:
    /// for tests and tools that run a relay in-process. `relay serve` never does this; its
    /// issuing key is a key of its own.
    pub fn self_issued(root: PrivateIdentity, now: u64) -> Result<Self, CaError> {
        let authority = Authority::certify(
            &root,
            root.public(),
            serial(),
            now,
            sightline_core::authority::DEFAULT_ISSUER_VALIDITY_SECS,
            &mut OsRng,
        )?;
        Self::new(root, authority)
    }

    /// The issuing private key.
    pub fn key(&self) -> &PrivateIdentity {
        &self.key
    }

    /// The authority (root key and issuer certificate).
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// When the issuer certificate ends, Unix seconds.
    pub fn not_after(&self) -> u64 {
        self.authority.issuer_body().not_after
    }
}

/// A fresh serial number (63 bits, so that it fits SQLite's integers as well).
pub fn serial() -> u64 {
    OsRng.next_u64() >> 1
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Loads the root key from `dir` (`ca-key.pem` in it).
pub fn load_root(dir: &Path) -> Result<PrivateIdentity, CaError> {
    let path = dir.join(crate::store::paths::CA_KEY_FILE);
    if !exists(&path) {
        return Err(CaError::NoRoot(path));
    }
    Ok(keystore::load_key(&path, CA_BITS)?)
}

/// Whether the root key is in the data directory (the one-machine set-up).
pub fn root_here(data: &DataDir) -> bool {
    exists(&data.ca_key())
}

/// Reads an authority file (`issuer-cert.bin`, or a certificate from `relay ca issue`).
pub fn read_authority(path: &Path) -> Result<Authority, CaError> {
    let bytes = keystore::read_private_bytes(path, MAX_FILE_BYTES)?;
    Authority::from_bytes(&bytes).map_err(|e| CaError::BadFile {
        path: path.to_path_buf(),
        reason: format!("not an issuing key certificate from a Sightline relay CA ({e})"),
    })
}

/// The relay's root fingerprint: from its issuer certificate and, when the root key is in the
/// data directory, from the key itself (which is then checked: permissions, contents, and that
/// it is the root the certificate names).
pub fn root_fingerprint(data: &DataDir) -> Result<Fingerprint, CaError> {
    let from_cert = match exists(&data.issuer_cert()) {
        true => Some(read_authority(&data.issuer_cert())?.root().fingerprint()),
        false => None,
    };
    if root_here(data) {
        let root = load_root(data.root())?.public().fingerprint();
        if let Some(named) = from_cert.filter(|c| !c.ct_eq(&root)) {
            return Err(CaError::Mismatch(format!(
                "{} is root key {root}, but {} was certified by root key {named}",
                data.ca_key().display(),
                data.issuer_cert().display()
            )));
        }
        return Ok(root);
    }
    from_cert.ok_or(CaError::Missing {
        path: data.issuer_cert(),
        hint: "run `relay init` first",
    })
}

fn load_key_if_matches(
    path: &Path,
    authority: &Authority,
) -> Result<Option<PrivateIdentity>, CaError> {
    if !exists(path) {
        return Ok(None);
    }
    let key = keystore::load_key(path, MIN_PEER_BITS)?;
    Ok((key.public() == authority.issuer()).then_some(key))
}

/// Loads the issuing key and its certificate. With `repair`, an install that was interrupted
/// after the certificate was replaced is completed (the waiting key renamed into place); a
/// reader that runs beside other commands (`relay serve`) passes `false` and changes nothing.
pub fn load_issuing(data: &DataDir, repair: bool) -> Result<Issuing, CaError> {
    let cert_path = data.issuer_cert();
    if !exists(&cert_path) {
        return Err(CaError::Missing {
            path: cert_path,
            hint: "run `relay init` first (or `relay serve`, which creates an issuing key when the root key is in the data directory)",
        });
    }
    let authority = read_authority(&cert_path)?;
    if let Some(key) = load_key_if_matches(&data.issuer_key(), &authority)? {
        return Issuing::new(key, authority);
    }
    if let Some(key) = load_key_if_matches(&data.next_issuer_key(), &authority)? {
        if repair {
            std::fs::rename(data.next_issuer_key(), data.issuer_key()).map_err(|source| {
                CaError::Io {
                    path: data.issuer_key(),
                    source,
                }
            })?;
        }
        return Issuing::new(key, authority);
    }
    Err(CaError::Mismatch(format!(
        "{} certifies issuing key {}, but neither {} nor {} holds it",
        cert_path.display(),
        authority.issuer().fingerprint(),
        data.issuer_key().display(),
        data.next_issuer_key().display()
    )))
}

/// Installs `issuing` as the relay's issuing key (crash-safe order, see the module docs).
fn install(data: &DataDir, issuing: &Issuing) -> Result<(), CaError> {
    let next = data.next_issuer_key();
    let next_holds_it = load_key_if_matches(&next, issuing.authority())?.is_some();
    if !next_holds_it {
        let pem = issuing.key().to_pkcs8_pem()?;
        keystore::replace_secret(&next, pem.as_bytes())?;
    }
    keystore::replace_secret(&data.issuer_cert(), &issuing.authority().to_bytes()?)?;
    std::fs::rename(&next, data.issuer_key()).map_err(|source| CaError::Io {
        path: data.issuer_key(),
        source,
    })
}

/// Creates the first issuing key, certified by `root`, in a data directory that has none.
pub fn create_issuing(
    data: &DataDir,
    root: &PrivateIdentity,
    now: u64,
    validity_secs: u64,
) -> Result<Issuing, CaError> {
    if exists(&data.issuer_cert()) {
        return Err(CaError::Exists(data.issuer_cert()));
    }
    keystore::create_private_dir(data.root())?;
    let key = PrivateIdentity::generate(&mut OsRng, ISSUER_BITS)?;
    let issuing = Issuing::certify(root, key, now, validity_secs)?;
    install(data, &issuing)?;
    Ok(issuing)
}

/// What `relay serve` signs with: the issuing key in the data directory (an interrupted
/// install is finished first). A data directory from before issuing keys (a root key and no
/// issuing key) gets its first issuing key here, certified for `validity_secs` from `now`;
/// the root fingerprint does not change. Returns the key and whether it was just made.
pub fn load_or_create_issuing(
    data: &DataDir,
    now: u64,
    validity_secs: u64,
) -> Result<(Issuing, bool), CaError> {
    if !exists(&data.issuer_cert()) && root_here(data) {
        let root = load_root(data.root())?;
        return Ok((create_issuing(data, &root, now, validity_secs)?, true));
    }
    Ok((load_issuing(data, true)?, false))
}

/// The root key the relay's current certificate names, if there is one.
fn current_root(data: &DataDir) -> Result<Option<Fingerprint>, CaError> {
    if exists(&data.issuer_cert()) {
        return Ok(Some(
            read_authority(&data.issuer_cert())?.root().fingerprint(),
        ));
    }
    Ok(None)
}

fn check_same_root(data: &DataDir, root: &Fingerprint) -> Result<(), CaError> {
    match current_root(data)? {
        Some(current) if !current.ct_eq(root) => Err(CaError::Mismatch(format!(
            "this relay's root key is {current}, not {root}: refusing (clients pin {current})"
        ))),
        _ => Ok(()),
    }
}

/// Replaces the issuing key with a new one certified by `root` (which must be the relay's
/// root). A key waiting for an offline certificate is refused rather than replaced.
pub fn rotate(
    data: &DataDir,
    root: &PrivateIdentity,
    now: u64,
    validity_secs: u64,
) -> Result<Issuing, CaError> {
    check_same_root(data, &root.public().fingerprint())?;
    if exists(&data.next_issuer_key()) {
        // An interrupted install is finished first; a pending request is the admin's to end.
        if load_issuing(data, true).is_err() || exists(&data.next_issuer_key()) {
            return Err(CaError::Mismatch(format!(
                "{} waits for a certificate (relay ca request); install it with `relay ca install` or remove the file first",
                data.next_issuer_key().display()
            )));
        }
    }
    let key = PrivateIdentity::generate(&mut OsRng, ISSUER_BITS)?;
    let issuing = Issuing::certify(root, key, now, validity_secs)?;
    install(data, &issuing)?;
    Ok(issuing)
}

/// A request to certify an issuing key, carried to the machine with the root key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuerRequest {
    /// The issuing key (SubjectPublicKeyInfo DER).
    pub key: Vec<u8>,
    /// The root the relay expects to be certified by.
    pub root: Fingerprint,
    /// The issuing key's signature over the two: its holder asked for this.
    pub signature: Vec<u8>,
}

fn request_bytes(key: &[u8], root: &Fingerprint) -> Vec<u8> {
    let mut m = key.to_vec();
    m.extend_from_slice(&root.0);
    m
}

/// Makes (or, when one is waiting, reuses) the next issuing key in the data directory and
/// returns the request to certify it.
pub fn request(data: &DataDir) -> Result<IssuerRequest, CaError> {
    let root = current_root(data)?.ok_or(CaError::Missing {
        path: data.issuer_cert(),
        hint: "run `relay init` first",
    })?;
    let next = data.next_issuer_key();
    let key = if exists(&next) {
        keystore::load_key(&next, MIN_PEER_BITS)?
    } else {
        let key = PrivateIdentity::generate(&mut OsRng, ISSUER_BITS)?;
        keystore::write_new_secret(&next, key.to_pkcs8_pem()?.as_bytes())?;
        key
    };
    let der = key.public().spki_der().to_vec();
    let signature = key.sign(&mut OsRng, REQUEST_LABEL, &request_bytes(&der, &root));
    Ok(IssuerRequest {
        key: der,
        root,
        signature,
    })
}

impl IssuerRequest {
    /// Serialised form, for the request file.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CaError> {
        Ok(codec::encode(self)?)
    }

    /// Parses a request file.
    pub fn read(path: &Path) -> Result<Self, CaError> {
        let bytes = std::fs::read(path).map_err(|source| CaError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        codec::decode(&bytes, "issuing key request").map_err(|e| CaError::BadFile {
            path: path.to_path_buf(),
            reason: format!("not an issuing key request from `relay ca request` ({e})"),
        })
    }

    /// Fingerprint of the key to certify (shown to the admin before signing).
    pub fn key_fingerprint(&self) -> Fingerprint {
        Fingerprint::of_spki_der(&self.key)
    }
}

/// On the machine with the root key (`root_dir`): checks `request` and certifies its key from
/// `now` for `validity_secs`.
pub fn issue(
    root_dir: &Path,
    request: &IssuerRequest,
    now: u64,
    validity_secs: u64,
) -> Result<Authority, CaError> {
    let root = load_root(root_dir)?;
    let root_fp = root.public().fingerprint();
    if !request.root.ct_eq(&root_fp) {
        return Err(CaError::Mismatch(format!(
            "the request is for root {}, but the key in {} is {root_fp}",
            request.root,
            root_dir.display()
        )));
    }
    let key = sightline_core::identity::PublicIdentity::from_spki_der(&request.key, MIN_PEER_BITS)?;
    key.verify(
        REQUEST_LABEL,
        &request_bytes(&request.key, &request.root),
        &request.signature,
    )
    .map_err(|_| {
        CaError::Mismatch("the request is not signed by the key it asks to certify".into())
    })?;
    Ok(Authority::certify(
        &root,
        &key,
        serial(),
        now,
        validity_secs,
        &mut OsRng,
    )?)
}

/// Installs a certificate made by [`issue`] for the waiting key: same root as the relay's,
/// valid at `now`, for the key `relay ca request` made.
pub fn install_certificate(
    data: &DataDir,
    authority: Authority,
    now: u64,
) -> Result<Issuing, CaError> {
    check_same_root(data, &authority.root().fingerprint())?;
    authority.check_valid(now)?;
    let next = data.next_issuer_key();
    let Some(key) = load_key_if_matches(&next, &authority)? else {
        return Err(CaError::Mismatch(format!(
            "the certificate is for issuing key {}, which {} does not hold (make the request with `relay ca request` on this relay)",
            authority.issuer().fingerprint(),
            next.display()
        )));
    };
    let issuing = Issuing::new(key, authority)?;
    install(data, &issuing)?;
    Ok(issuing)
}

/// What `relay ca status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Root fingerprint (what clients pin).
    pub root: String,
    /// Whether the root key is in the data directory.
    pub root_on_this_machine: bool,
    /// Issuing key fingerprint.
    pub issuer: String,
    /// Serial of its certificate.
    pub serial: u64,
    /// Start of validity, Unix seconds.
    pub not_before: u64,
    /// End of validity, Unix seconds.
    pub not_after: u64,
    /// Whole days left (0 when expired).
    pub days_left: u64,
    /// Fingerprint of a key waiting for its certificate, if any.
    pub pending: Option<String>,
}

/// The authority's state in the data directory at `now`.
pub fn status(data: &DataDir, now: u64) -> Result<Status, CaError> {
    let issuing = load_issuing(data, false)?;
    let a = issuing.authority();
    let body = a.issuer_body();
    let pending = if exists(&data.next_issuer_key()) {
        let key = keystore::load_key(&data.next_issuer_key(), MIN_PEER_BITS)?;
        (key.public() != a.issuer()).then(|| key.public().fingerprint().to_string())
    } else {
        None
    };
    Ok(Status {
        root: a.root().fingerprint().to_string(),
        root_on_this_machine: root_here(data),
        issuer: a.issuer().fingerprint().to_string(),
        serial: body.serial,
        not_before: body.not_before,
        not_after: body.not_after,
        days_left: body.not_after.saturating_sub(now) / 86_400,
        pending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;
    const DAY: u64 = 86_400;

    fn root() -> PrivateIdentity {
        PrivateIdentity::generate(&mut OsRng, CA_BITS).unwrap()
    }

    #[test]
    fn offline_request_issue_install_keeps_the_root_and_survives_interruption() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("relay"));
        let offline = dir.path().join("offline");
        let root = root();
        keystore::write_new_secret(
            &offline.join(crate::store::paths::CA_KEY_FILE),
            root.to_pkcs8_pem().unwrap().as_bytes(),
        )
        .unwrap();
        let first = create_issuing(&data, &root, NOW, 90 * DAY).unwrap();
        assert!(!root_here(&data));
        assert_eq!(
            root_fingerprint(&data).unwrap(),
            root.public().fingerprint()
        );
        assert!(matches!(
            create_issuing(&data, &root, NOW, 90 * DAY),
            Err(CaError::Exists(_))
        ));

        // The relay asks; the request is reused until it is installed.
        let req = request(&data).unwrap();
        assert_eq!(request(&data).unwrap().key, req.key);
        assert_eq!(
            status(&data, NOW).unwrap().pending,
            Some(req.key_fingerprint().to_string())
        );
        // A local rotation does not silently replace the waiting key.
        assert!(rotate(&data, &root, NOW, 90 * DAY).is_err());
        // Another root refuses to certify it; a tampered request is refused.
        let other = dir.path().join("other");
        keystore::write_new_secret(
            &other.join(crate::store::paths::CA_KEY_FILE),
            self::root().to_pkcs8_pem().unwrap().as_bytes(),
        )
        .unwrap();
        assert!(issue(&other, &req, NOW, 90 * DAY).is_err());
        let mut forged = req.clone();
        forged.key = first.authority().issuer().spki_der().to_vec();
        assert!(issue(&offline, &forged, NOW, 90 * DAY).is_err());

        let cert = issue(&offline, &req, NOW + DAY, 90 * DAY).unwrap();
        // A certificate for some other key is refused at install.
        assert!(install_certificate(&data, first.authority().clone(), NOW + DAY).is_err());
        let second = install_certificate(&data, cert, NOW + DAY).unwrap();
        assert_ne!(second.authority().issuer(), first.authority().issuer());
        assert_eq!(second.authority().root(), first.authority().root());
        assert!(!data.next_issuer_key().exists());
        let loaded = load_issuing(&data, false).unwrap();
        assert_eq!(loaded.authority(), second.authority());

        // Interrupted after the certificate was replaced: readers take the waiting key, and a
        // repairing load finishes the install.
        let third = Issuing::certify(
            &root,
            PrivateIdentity::generate(&mut OsRng, ISSUER_BITS).unwrap(),
            NOW + 2 * DAY,
            90 * DAY,
        )
        .unwrap();
        keystore::replace_secret(
            &data.next_issuer_key(),
            third.key().to_pkcs8_pem().unwrap().as_bytes(),
        )
        .unwrap();
        keystore::replace_secret(&data.issuer_cert(), &third.authority().to_bytes().unwrap())
            .unwrap();
        assert_eq!(
            load_issuing(&data, false).unwrap().authority(),
            third.authority()
        );
        assert!(
            data.next_issuer_key().exists(),
            "a plain reader changes nothing"
        );
        load_issuing(&data, true).unwrap();
        assert!(!data.next_issuer_key().exists());
        assert_eq!(
            load_issuing(&data, false).unwrap().authority(),
            third.authority()
        );

        // Rotation with the root: a new key, same root; with a foreign root: refused.
        let fourth = rotate(&data, &root, NOW + 3 * DAY, 30 * DAY).unwrap();
        assert_eq!(fourth.not_after(), NOW + 33 * DAY);
        let foreign = load_root(&other).unwrap();
        assert!(matches!(
            rotate(&data, &foreign, NOW, 30 * DAY),
            Err(CaError::Mismatch(_))
        ));
        assert!(validity_secs(0).is_err() && validity_secs(401).is_err());
        assert_eq!(validity_secs(90).unwrap(), 90 * DAY);
    }

    #[cfg(unix)]
    #[test]
    fn loose_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("relay"));
        let root = root();
        create_issuing(&data, &root, NOW, 90 * DAY).unwrap();
        for path in [data.issuer_cert(), data.issuer_key()] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = load_issuing(&data, false).unwrap_err();
            assert!(e.to_string().contains("chmod 600"), "{e}");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        load_issuing(&data, false).unwrap();
    }
}
