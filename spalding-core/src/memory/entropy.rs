//! [`InsecureSeededEntropy`]: SHA-256 in counter mode over a seed. The same
//! seed gives the same bytes, which makes runs reproducible and the output
//! predictable: only for tests and simulations.

use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::ports::{Entropy, EntropyError};

/// Reproducible bytes from a seed. Predictable: never use it for real keys.
#[derive(Debug)]
pub struct InsecureSeededEntropy {
    seed: [u8; 32],
    counter: Mutex<u64>,
}

impl InsecureSeededEntropy {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed: Sha256::digest(seed.to_be_bytes()).into(),
            counter: Mutex::new(0),
        }
    }
}

impl Entropy for InsecureSeededEntropy {
    fn fill(&self, dest: &mut [u8]) -> Result<(), EntropyError> {
        let mut counter = self
            .counter
            .lock()
            .map_err(|_| EntropyError("entropy lock poisoned".to_owned()))?;
        for chunk in dest.chunks_mut(32) {
            let block: [u8; 32] = Sha256::new()
                .chain_update(self.seed)
                .chain_update(counter.to_be_bytes())
                .finalize()
                .into();
            *counter += 1;
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
}
