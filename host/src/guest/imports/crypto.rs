//! `wasmhost:app/crypto`: HMAC-SHA256 computed natively, for session cookie
//! signatures (in the guest it would cost many times the instructions).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::guest::bindings::wasmhost::app::crypto;
use crate::guest::state::TaskState;

impl crypto::Host for TaskState {
    fn hmac_sha256(&mut self, key: Vec<u8>, message: Vec<u8>) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(&message);
        mac.finalize().into_bytes().to_vec()
    }
}
