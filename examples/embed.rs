//! Embedding Spalding's core in a tool of your own, with ports you implement.
//!
//! This tool has no HTTPS between its two parties: they exchange their
//! partner-info documents as JSON files in a shared folder (think of a
//! document exchanged by e-mail or a shared bucket). It implements
//! `PartnerTransport` over that folder and `MpcLauncher` as a stand-in that
//! only records what it was asked to run, and keeps each party's objects in
//! the core's `InMemoryCluster`. The state machine, the group barrier and
//! the player numbering come unchanged from `spalding-core`.
//!
//! Run: `cargo run -p examples --example embed`

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use futures::executor::block_on;
use spalding_core::Reconciler;
use spalding_core::certificate::Certificate;
use spalding_core::condition::Timestamp;
use spalding_core::configuration::Formation;
use spalding_core::document::PartnerDocument;
use spalding_core::machine::LocalIdentity;
use spalding_core::memory::{InMemoryCluster, InsecureSeededEntropy, Readiness};
use spalding_core::parameters::ValidatedParameters;
use spalding_core::ports::{
    KeyGeneration, KeyGenerationPhase, LauncherError, MpcLauncher, PartnerTransport,
    TransportError, VcKey,
};
use spalding_core::spec::{Endpoint, PartnerEntry, State, VirtualCloudSpec};

/// Reads partner documents from `<folder>/<host>.json`.
struct FolderTransport {
    folder: PathBuf,
}

#[async_trait]
impl PartnerTransport for FolderTransport {
    async fn fetch(
        &self,
        _vc: &str,
        endpoint: &Endpoint,
    ) -> Result<PartnerDocument, TransportError> {
        let path = self.folder.join(format!("{}.json", endpoint.authority()));
        let bytes =
            std::fs::read(&path).map_err(|e| TransportError(format!("{}: {e}", path.display())))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| TransportError(format!("{}: {e}", path.display())))
    }
}

/// Records launches; a real tool would start MP-SPDZ here.
#[derive(Default)]
struct RecordingLauncher {
    runs: Mutex<BTreeMap<VcKey, Formation>>,
}

#[async_trait]
impl MpcLauncher for RecordingLauncher {
    async fn key_generation(&self, vc: &VcKey) -> Result<Option<KeyGeneration>, LauncherError> {
        let runs = self
            .runs
            .lock()
            .map_err(|_| LauncherError("lock poisoned".to_owned()))?;
        Ok(runs.get(vc).map(|f| KeyGeneration {
            formation: f.clone(),
            phase: KeyGenerationPhase::Succeeded,
        }))
    }

    async fn launch_key_generation(
        &self,
        vc: &VcKey,
        formation: &Formation,
    ) -> Result<(), LauncherError> {
        let players: Vec<String> = formation
            .members
            .iter()
            .map(|m| m.endpoint.authority().to_owned())
            .collect();
        println!(
            "  would run key generation as player {} of {:?}",
            formation.player_id, players
        );
        self.runs
            .lock()
            .map_err(|_| LauncherError("lock poisoned".to_owned()))?
            .insert(vc.clone(), formation.clone());
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let folder = std::env::temp_dir().join(format!("spalding-embed-{}", std::process::id()));
    std::fs::create_dir_all(&folder)?;
    let vc = VcKey::new("default", "shared-vc");
    let names = ["north", "south"];
    let mut parties = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let key = rcgen::KeyPair::generate()?;
        let pem = rcgen::CertificateParams::new(vec![format!("{name}.example")])?
            .self_signed(&key)?
            .pem();
        let endpoint = Endpoint::new(&format!("https://{name}.example"))?;
        let identity = LocalIdentity {
            name: name.parse()?,
            endpoint: endpoint.clone(),
            certificate: Certificate::from_pem(&pem)?,
        };
        let cluster = Arc::new(InMemoryCluster::new(Readiness::Immediate));
        let other = names[1 - i];
        cluster.apply_virtual_cloud(
            &vc,
            VirtualCloudSpec {
                parameters: ValidatedParameters::carbyne_stack_default().to_wire(),
                partners: vec![PartnerEntry {
                    name: other.to_owned(),
                    endpoint: format!("https://{other}.example"),
                }],
            },
        );
        let reconciler = Reconciler::new(
            identity,
            cluster.clone(),
            Arc::new(FolderTransport {
                folder: folder.clone(),
            }),
            Arc::new(RecordingLauncher::default()),
            Arc::new(InsecureSeededEntropy::new(i as u64)),
        );
        parties.push((name, endpoint, cluster, reconciler));
    }

    let mut result = Err("the parties did not become ready".into());
    for round in 1..=10 {
        for (name, endpoint, cluster, reconciler) in &parties {
            let now =
                Timestamp::new(humantime::format_rfc3339_seconds(SystemTime::now()).to_string());
            let outcome = block_on(reconciler.reconcile(&vc, now))?;
            println!(
                "round {round} {name}: {} actions, state {:?}",
                outcome.plan.actions.len(),
                outcome.state
            );
            // Drop our document where the partner's tool looks for it.
            if let Some(document) = cluster.document(&vc.name) {
                std::fs::write(
                    folder.join(format!("{}.json", endpoint.authority())),
                    serde_json::to_vec_pretty(&document)?,
                )?;
            }
            // This tool's operator trusts whatever the partner presented first
            // (a real tool would ask, or pin a fingerprint obtained out of band).
            for partner in names.iter().filter(|n| *n != *name) {
                let partner = partner.parse()?;
                if cluster.admissions_of(&vc, &partner).is_empty()
                    && cluster.partner_status(&vc, &partner).is_some()
                {
                    cluster.admit(&vc, &partner, None);
                }
            }
        }
        if parties
            .iter()
            .all(|(_, _, c, _)| c.status(&vc).is_some_and(|s| s.state == State::Ready))
        {
            println!("both parties are ready");
            result = Ok(());
            break;
        }
    }
    std::fs::remove_dir_all(&folder)?;
    result
}
