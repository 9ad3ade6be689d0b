//! [`SimulatedLauncher`]: stands in for MP-SPDZ key generation where none can
//! run. A launch is `Running`; the next observation finds it `Succeeded`,
//! unless a failure was scripted with [`SimulatedLauncher::fail_next`].

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::configuration::Formation;
use crate::ports::{KeyGeneration, KeyGenerationPhase, LauncherError, MpcLauncher, VcKey};

/// Simulated key generation.
#[derive(Debug, Default)]
pub struct SimulatedLauncher {
    runs: Mutex<BTreeMap<VcKey, KeyGeneration>>,
    fail_next: Mutex<Option<String>>,
    launches: Mutex<usize>,
}

impl SimulatedLauncher {
    /// A launcher whose runs succeed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next launch fail with `reason`.
    pub fn fail_next(&self, reason: impl Into<String>) {
        if let Ok(mut next) = self.fail_next.lock() {
            *next = Some(reason.into());
        }
    }

    /// How many launches happened.
    pub fn launches(&self) -> usize {
        self.launches.lock().map_or(0, |l| *l)
    }
}

fn poisoned<T>(_: T) -> LauncherError {
    LauncherError("simulated launcher lock poisoned".to_owned())
}

#[async_trait]
impl MpcLauncher for SimulatedLauncher {
    async fn key_generation(&self, vc: &VcKey) -> Result<Option<KeyGeneration>, LauncherError> {
        let mut runs = self.runs.lock().map_err(poisoned)?;
        let Some(run) = runs.get_mut(vc) else {
            return Ok(None);
        };
        let seen = run.clone();
        if run.phase == KeyGenerationPhase::Running {
            run.phase = KeyGenerationPhase::Succeeded;
        }
        Ok(Some(seen))
    }

    async fn launch_key_generation(
        &self,
        vc: &VcKey,
        formation: &Formation,
    ) -> Result<(), LauncherError> {
        let phase = match self.fail_next.lock().map_err(poisoned)?.take() {
            Some(reason) => KeyGenerationPhase::Failed { reason },
            None => KeyGenerationPhase::Running,
        };
        *self.launches.lock().map_err(poisoned)? += 1;
        self.runs.lock().map_err(poisoned)?.insert(
            vc.clone(),
            KeyGeneration {
                formation: formation.clone(),
                phase,
            },
        );
        Ok(())
    }
}
