//! What a simulation prints and writes: the admission commands for manual
//! admission, the kubeconfigs they use, the summary [`Report`], and the
//! `--emit` folders.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::Error;
use super::monitor::PartyStatus;
use super::party::Party;
use crate::apiserver::faults::FaultCounts;
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

/// Writes `<tmp>/spalding-simulate-<suffix>/<party>/kubeconfig` for every party.
pub fn write_kubeconfigs(parties: &[Party], suffix: &str) -> Result<Kubeconfigs, Error> {
    let dir = std::env::temp_dir().join(format!("spalding-simulate-{suffix}"));
    let mut files = Vec::with_capacity(parties.len());
    for party in parties {
        let folder = dir.join(party.name.as_str());
        std::fs::create_dir_all(&folder).map_err(io(&folder))?;
        let file = folder.join("kubeconfig");
        std::fs::write(&file, party.server.kubeconfig()).map_err(io(&file))?;
        files.push(file);
    }
    Ok(Kubeconfigs { dir, files })
}

/// For each party, the `spalding admit` commands admitting each of its
/// partners through that party's API server, pinned to the partner's
/// fingerprint (which an operator would learn out of band).
pub fn admission_commands(
    parties: &[Party],
    kubeconfigs: &Kubeconfigs,
    namespace: &str,
    vc: &str,
) -> String {
    let mut out = String::from(
        "waiting for admissions (or rerun with --auto-admit); run these while the simulation runs \
         (`spalding` is `cargo run -p spalding-bin --` in a checkout):\n",
    );
    for (party, kubeconfig) in parties.iter().zip(&kubeconfigs.files) {
        let _ = writeln!(out, "# {} admits its partners", party.name);
        for partner in parties.iter().filter(|p| p.name != party.name) {
            let _ = writeln!(
                out,
                "spalding admit --kubeconfig {k} -n {namespace} {vc} {p} --fingerprint {f} --yes",
                p = partner.name,
                f = partner.fingerprint,
                k = kubeconfig.display(),
            );
        }
    }
    let _ = writeln!(
        out,
        "# and see where each party stands: spalding status --kubeconfig <kubeconfig above> {vc}"
    );
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
    /// Partner documents its operator fetched.
    pub fetches: u64,
}

impl Counts {
    /// Writes the controller sent.
    pub fn controller_writes(&self) -> u64 {
        self.writes.saturating_sub(self.harness_writes)
    }

    pub(super) fn since(&self, earlier: &Self) -> Self {
        Self {
            writes: self.writes.saturating_sub(earlier.writes),
            harness_writes: self.harness_writes.saturating_sub(earlier.harness_writes),
            fetches: self.fetches.saturating_sub(earlier.fetches),
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
    /// Partner documents its operator fetched meanwhile.
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
    /// Faults its API server injected.
    pub faults: FaultCounts,
    /// Every object of its API server at the end, Secrets included, when
    /// [`super::Options::keep_objects`] asked for them.
    pub objects: Vec<Value>,
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
        statuses: &[PartyStatus],
        elapsed: Duration,
        options: &super::Options,
        at_ready: Option<&[Counts]>,
        at_rest: Option<&[AtRest]>,
    ) -> Self {
        let keep_objects = options.keep_objects;
        let parties: Vec<PartyReport> = parties
            .iter()
            .zip(statuses)
            .enumerate()
            .map(|(index, (party, seen))| {
                let counted = at_ready
                    .and_then(|counts| counts.get(index).copied())
                    .unwrap_or_else(|| super::counts(party));
                (
                    party,
                    seen,
                    counted,
                    at_rest.and_then(|r| r.get(index).copied()),
                )
            })
            .map(|(party, seen, counted, at_rest)| PartyReport {
                name: party.name.as_str().to_owned(),
                state: seen.state,
                ready_after: seen.ready_after,
                writes: counted.controller_writes(),
                harness_writes: counted.harness_writes,
                at_rest,
                blocking: seen.blocking(),
                mac_key_secret_versions: seen.mac_key_secret_versions.len(),
                faults: party.server.fault_counts(),
                objects: if keep_objects {
                    party.server.objects()
                } else {
                    Vec::new()
                },
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
                    "; at rest for {:.0} s: {} writes, {} partner documents fetched",
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
        let folder = dir.join(party.name.as_str());
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
            let yaml = to_yaml(&object).map_err(|e| Error::Io {
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

/// `object` as YAML that YAML 1.1 readers (PyYAML, hence
/// kubernetes-validate) read back unchanged: serde_norway writes YAML 1.2,
/// where an RFC 3339 time such as `creationTimestamp` stays a plain scalar
/// that YAML 1.1 takes for a timestamp; such strings are single-quoted here,
/// as kubectl quotes them.
fn to_yaml(object: &Value) -> Result<String, serde_norway::Error> {
    let mut times = Vec::new();
    let marked = mark_times(object, &mut times);
    let mut yaml = serde_norway::to_string(&marked)?;
    for (i, time) in times.iter().enumerate() {
        yaml = yaml.replacen(&time_marker(i), &format!("'{time}'"), 1);
    }
    Ok(yaml)
}

fn time_marker(i: usize) -> String {
    format!("spalding-emit-time-{i}-marker")
}

/// Whether YAML 1.1 could read `s` as a timestamp (`2026-01-02…`).
fn looks_like_time(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.len() >= 10
        && bytes
            .get(..4)
            .is_some_and(|y| y.iter().all(u8::is_ascii_digit))
        && bytes.get(4) == Some(&b'-')
        && bytes
            .iter()
            .all(|c| c.is_ascii_digit() || b"-:.TtZz+ ".contains(c))
}

/// `value` with every timestamp-like string replaced by a marker, the
/// strings collected in order.
fn mark_times(value: &Value, times: &mut Vec<String>) -> Value {
    match value {
        Value::String(s) if looks_like_time(s) => {
            times.push(s.clone());
            Value::String(time_marker(times.len() - 1))
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| mark_times(v, times)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), mark_times(v, times)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::to_yaml;

    #[test]
    fn times_are_quoted_and_everything_else_is_kept() {
        let object = json!({"metadata": {"creationTimestamp": "2026-11-30T05:37:16Z",
            "name": "2026-11-30", "labels": {"a": "spalding-emit-time-0"}},
            "status": {"conditions": [{"lastProbeTime": "2026-11-30T05:37:16.5+01:00"}]},
            "data": {"script": "echo 2026-11-30T05:37:16Z\n"}, "n": 2026});
        let yaml = to_yaml(&object).unwrap();
        assert!(
            yaml.contains("creationTimestamp: '2026-11-30T05:37:16Z'"),
            "{yaml}"
        );
        assert!(yaml.contains("name: '2026-11-30'"), "{yaml}");
        assert!(
            yaml.contains("- lastProbeTime: '2026-11-30T05:37:16.5+01:00'"),
            "{yaml}"
        );
        let back: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(back, object);
    }
}
