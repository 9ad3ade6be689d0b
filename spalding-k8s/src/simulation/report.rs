//! What a simulation prints and writes: the admission commands for manual
//! admission, the kubeconfigs they use, the summary [`Report`], and the
//! `--emit` folders.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::party::Party;
use super::{Error, Watched};
use crate::crd::VirtualCloudState;

/// The kubeconfigs of every party's API server, in a temporary folder
/// removed when the simulation ends.
pub struct Kubeconfigs {
    /// The folder.
    pub dir: PathBuf,
    /// One file per party, in party order.
    pub files: Vec<PathBuf>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `<tmp>/spalding-simulate-<pid>/<party>/kubeconfig` for every party.
pub fn write_kubeconfigs(parties: &[Party]) -> Result<Kubeconfigs, Error> {
    let dir = std::env::temp_dir().join(format!("spalding-simulate-{}", std::process::id()));
    let mut files = Vec::with_capacity(parties.len());
    for party in parties {
        let folder = dir.join(&party.name);
        std::fs::create_dir_all(&folder).map_err(io(&folder))?;
        let file = folder.join("kubeconfig");
        std::fs::write(&file, party.server.kubeconfig()).map_err(io(&file))?;
        files.push(file);
    }
    Ok(Kubeconfigs { dir, files })
}

/// For each party, the commands admitting each of its partners, pinned to
/// the partner's fingerprint (which an operator would learn out of band).
pub fn admission_commands(parties: &[Party], kubeconfigs: &Kubeconfigs, vc: &str) -> String {
    let mut out = String::from(
        "waiting for admissions (or rerun with --auto-admit); run these while the simulation runs:\n",
    );
    for (party, kubeconfig) in parties.iter().zip(&kubeconfigs.files) {
        let _ = writeln!(out, "# {} admits its partners", party.name);
        for partner in parties.iter().filter(|p| p.name != party.name) {
            let _ = writeln!(
                out,
                "printf 'apiVersion: carbynestack.io/v1\\nkind: VirtualCloudPartnerAdmission\\n\
                 metadata:\\n  name: {vc}-{p}\\nspec:\\n  partner: {vc}-{p}\\n  fingerprint: {f}\\n' \
                 | kubectl --kubeconfig {k} apply --server-side --validate=false -f -",
                p = partner.name,
                f = partner.fingerprint,
                k = kubeconfig.display(),
            );
        }
    }
    out.trim_end().to_owned()
}

/// `admission`, `initializing`, `starting` or `ready`.
pub fn state_name(state: VirtualCloudState) -> String {
    match state {
        VirtualCloudState::Admission => "admission",
        VirtualCloudState::Initializing => "initializing",
        VirtualCloudState::Starting => "starting",
        VirtualCloudState::Ready => "ready",
    }
    .to_owned()
}

/// A party's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Write requests its API server received.
    pub writes: u64,
    /// Of those, the ones the simulation itself sent (VirtualCloud,
    /// admissions, the driver's patches).
    pub harness_writes: u64,
    /// Documents its partner-info server served.
    pub documents_served: u64,
}

impl Counts {
    /// Writes the controller sent.
    pub fn controller_writes(&self) -> u64 {
        self.writes.saturating_sub(self.harness_writes)
    }

    fn since(&self, earlier: &Self) -> Self {
        Self {
            writes: self.writes.saturating_sub(earlier.writes),
            harness_writes: self.harness_writes.saturating_sub(earlier.harness_writes),
            documents_served: self
                .documents_served
                .saturating_sub(earlier.documents_served),
        }
    }
}

/// What happened while every party was ready and at rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtRest {
    /// How long.
    pub duration: Duration,
    /// Writes the controller sent meanwhile.
    pub writes: u64,
    /// Documents its partner-info server served meanwhile (its partners'
    /// fetches).
    pub fetches: u64,
}

/// How one party ended.
#[derive(Debug, Clone)]
pub struct PartyReport {
    /// `party-<i>`.
    pub name: String,
    /// The VC's last seen state.
    pub state: Option<VirtualCloudState>,
    /// Time from creating the VirtualClouds until the VC was seen `ready`
    /// (the set-up before, identities and servers, is not included).
    pub ready_after: Option<Duration>,
    /// Write requests the controller sent until every party was ready
    /// (until the end when not every party got ready).
    pub writes: u64,
    /// Write requests the simulation itself sent meanwhile.
    pub harness_writes: u64,
    /// Writes and fetches at rest, when the simulation lingered.
    pub at_rest: Option<AtRest>,
    /// Its VC's conditions that do not hold, as `type=status (reason): message`.
    pub blocking: Vec<String>,
    /// How many resourceVersions of the MAC key share Secret were seen
    /// (1: written once and never changed).
    pub mac_key_secret_versions: usize,
}

/// How a simulation ended.
#[derive(Debug, Clone)]
pub struct Report {
    /// Whether every VC reached `ready`.
    pub ready: bool,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Every party, in order.
    pub parties: Vec<PartyReport>,
    /// The configured waits the time to ready includes, described.
    pub waits: String,
}

impl Report {
    pub(super) fn new(
        parties: &[Party],
        watched: Vec<Watched>,
        elapsed: Duration,
        options: &super::Options,
    ) -> Self {
        let linger = options.linger;
        let parties: Vec<PartyReport> = parties
            .iter()
            .zip(watched)
            .map(|(party, seen)| {
                let counted = seen.at_ready.unwrap_or(super::counts(party));
                let at_rest = seen
                    .rest_start
                    .zip(seen.at_rest)
                    .map(|(ready, rest)| rest.since(&ready))
                    .map(|delta| AtRest {
                        duration: linger,
                        writes: delta.controller_writes(),
                        fetches: delta.documents_served,
                    });
                (party, seen, counted, at_rest)
            })
            .map(|(party, seen, counted, at_rest)| PartyReport {
                name: party.name.clone(),
                state: seen.state,
                ready_after: seen.ready_after,
                writes: counted.controller_writes(),
                harness_writes: counted.harness_writes,
                at_rest,
                blocking: seen.blocking,
                mac_key_secret_versions: seen.secret_versions.len(),
            })
            .collect();
        Self {
            ready: parties
                .iter()
                .all(|p| p.state == Some(VirtualCloudState::Ready)),
            elapsed,
            parties,
            waits: format!(
                "configured waits: controller debounce {:?}, forming interval {:?}, \
                 refresh interval {:?}; driver fallback poll {:?}; monitor poll {:?}",
                options.debounce,
                options.forming_interval,
                options.refresh_interval,
                super::driver::POLL_INTERVAL,
                super::MONITOR_INTERVAL,
            ),
        }
    }

    /// The summary printed at the end.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if self.ready {
            let slowest = self
                .parties
                .iter()
                .filter_map(|p| p.ready_after)
                .max()
                .unwrap_or(self.elapsed);
            let _ = writeln!(
                out,
                "all {} parties ready {:.2} s after the VirtualClouds were created",
                self.parties.len(),
                slowest.as_secs_f64()
            );
        } else {
            let _ = writeln!(
                out,
                "timed out after {:.1} s; not every party is ready",
                self.elapsed.as_secs_f64()
            );
        }
        for p in &self.parties {
            let state = p.state.map_or("unknown".to_owned(), state_name);
            let ready = p.ready_after.map_or(String::new(), |d| {
                format!(" after {:.2} s", d.as_secs_f64())
            });
            let _ = write!(
                out,
                "{}: {state}{ready}, {} API writes by the controller (+{} by the simulation)",
                p.name, p.writes, p.harness_writes
            );
            if let Some(rest) = &p.at_rest {
                let _ = write!(
                    out,
                    "; at rest for {:.0} s: {} writes, {} document fetches served",
                    rest.duration.as_secs_f64(),
                    rest.writes,
                    rest.fetches
                );
            }
            let _ = writeln!(out);
            if !self.ready {
                for condition in &p.blocking {
                    let _ = writeln!(out, "  {condition}");
                }
            }
        }
        let _ = writeln!(out, "{}", self.waits);
        out.trim_end().to_owned()
    }
}

/// Writes every object of every party's API server as YAML into
/// `dir/<party>/`, one file per object. Secret values are replaced by
/// `redacted` (base64), so key shares never leave the process.
pub fn emit(dir: &Path, parties: &[Party]) -> Result<PathBuf, Error> {
    for party in parties {
        let folder = dir.join(&party.name);
        std::fs::create_dir_all(&folder).map_err(io(&folder))?;
        for (index, mut object) in party.server.objects().into_iter().enumerate() {
            redact(&mut object);
            let text = |pointer: &str| {
                object
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_ascii_lowercase()
            };
            let name = format!(
                "{index:03}-{}-{}.yaml",
                text("/kind"),
                text("/metadata/name")
            );
            let file = folder.join(name);
            let yaml = serde_norway::to_string(&object).map_err(|e| Error::Io {
                path: file.clone(),
                source: std::io::Error::other(e),
            })?;
            std::fs::write(&file, yaml).map_err(io(&file))?;
        }
    }
    Ok(dir.to_owned())
}

/// Replaces the values of a Secret's `data` and `stringData`.
fn redact(object: &mut Value) {
    if object.get("kind").and_then(Value::as_str) != Some("Secret") {
        return;
    }
    for field in ["data", "stringData"] {
        if let Some(Value::Object(map)) = object.get_mut(field) {
            for value in map.values_mut() {
                *value = Value::String("cmVkYWN0ZWQ=".to_owned());
            }
        }
    }
}
