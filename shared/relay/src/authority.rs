//! The relay's certificate authority: [`ca`] (root and issuing keys on disk), [`issuing`] (the
//! issuing key in force, reloaded and renewed), [`certs`] (issued certificates, revocations),
//! [`revocation`] (the signed list, and ending the sessions of revoked certificates).

pub mod ca;
pub mod certs;
pub mod issuing;
pub mod revocation;
