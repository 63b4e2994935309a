//! The one place where typed values become bytes and back (postcard), with size limits and
//! rejection of trailing bytes, so every message type parses the same strict way.

use crate::error::{Error, Malformed, Result};
use serde::{de::DeserializeOwned, Serialize};

/// Encodes a value. Encoding our own types cannot fail except for a serializer bug, which is
/// reported as a local error rather than a panic.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(value).map_err(|e| Error::Local(format!("encoding failed: {e}")))
}

/// Decodes exactly one value of type `T` from `bytes`; `what` names the type in errors.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T> {
    let (value, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|_| Malformed::Decode(what))?;
    if !rest.is_empty() {
        return Err(Malformed::TrailingBytes(what).into());
    }
    Ok(value)
}
