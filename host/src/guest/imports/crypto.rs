//! `wasmhost:app/crypto`: HMAC-SHA256 computed natively, for session cookie
//! signatures (in the guest it would cost many times the instructions).
//!
//! A host call meets no epoch check, so its work is bounded by its input:
//! a key and message over [`MAX_HMAC_INPUT`] together trap rather than hold
//! the worker thread for the time hashing them would take.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::guest::bindings::wasmhost::app::crypto;
use crate::guest::state::TaskState;

/// Most bytes of key and message one HMAC may take: a request body
/// (`--max-body`) with room to spare.
pub const MAX_HMAC_INPUT: usize = 16 * 1024 * 1024;

impl crypto::Host for TaskState {
    fn hmac_sha256(&mut self, key: Vec<u8>, message: Vec<u8>) -> wasmtime::Result<Vec<u8>> {
        if key.len().saturating_add(message.len()) > MAX_HMAC_INPUT {
            wasmtime::bail!("hmac-sha256 input larger than {MAX_HMAC_INPUT} bytes");
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(&message);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}
