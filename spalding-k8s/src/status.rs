//! `spalding status`: what an operator reads about their VirtualClouds —
//! state, player number, conditions, what the VC waits for next — and each
//! partner (fingerprint, admitted, partner admitted us, compatible,
//! reachable, recorded sequence number, last fetch error).
//!
//! [`report`] and [`render_text`] are pure, so the output is tested as text;
//! [`collect`] reads the resources through kube, and [`client`] builds a
//! client from a kubeconfig and context as kubectl does.

use std::fmt::Write as _;
use std::path::Path;

use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};
use serde::Serialize;

use crate::cluster::VIRTUAL_CLOUD_LABEL;
use crate::crd::{ConditionState, VirtualCloud, VirtualCloudPartner, VirtualCloudState};

/// Why the status could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The kubeconfig or context could not be used.
    #[error("Kubernetes client configuration: {0}")]
    Config(String),
    /// An API call failed.
    #[error("{operation}: {source}")]
    Api {
        /// What was read.
        operation: String,
        /// Why it failed.
        source: kube::Error,
    },
    /// The named VirtualCloud does not exist.
    #[error("virtual cloud {0} not found")]
    NotFound(String),
}

/// One VC as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualCloudReport {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its state; `None` before the operator's first reconcile.
    pub state: Option<VirtualCloudState>,
    /// This party's player number.
    pub player_id: Option<u32>,
    /// Number of players.
    pub player_count: Option<u32>,
    /// What it waits for next; `None` when ready.
    pub waiting_for: Option<String>,
    /// Its conditions.
    pub conditions: Vec<ConditionReport>,
    /// Its partners, by name.
    pub partners: Vec<PartnerReport>,
}

/// One condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConditionReport {
    /// Its type.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Its reason.
    pub reason: String,
    /// Its message.
    pub message: String,
}

/// One partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerReport {
    /// The party name.
    pub name: String,
    /// Its endpoint.
    pub endpoint: String,
    /// Its current certificate's fingerprint.
    pub fingerprint: Option<String>,
    /// Admitted here with its current certificate.
    pub admitted: bool,
    /// It reports having admitted our certificate.
    pub partner_admitted_us: bool,
    /// Its parameters equal ours.
    pub compatible: bool,
    /// Its last fetch succeeded.
    pub reachable: bool,
    /// The sequence number recorded for it: of its last accepted document,
    /// or one less when that one changed only the partner's state.
    pub sequence: Option<u64>,
    /// Why its last fetch failed.
    pub last_fetch_error: Option<String>,
    /// Parameter mismatches.
    pub incompatibilities: Vec<String>,
}

fn state_name(state: VirtualCloudState) -> &'static str {
    match state {
        VirtualCloudState::Admission => "admission",
        VirtualCloudState::Initializing => "initializing",
        VirtualCloudState::Starting => "starting",
        VirtualCloudState::Ready => "ready",
    }
}

/// The report of `vc` and those of `partners` that belong to it.
pub fn report(vc: &VirtualCloud, partners: &[VirtualCloudPartner]) -> VirtualCloudReport {
    let name = vc.name_any();
    let status = vc.status.as_ref();
    let conditions: Vec<ConditionReport> = status
        .map(|s| {
            s.conditions
                .iter()
                .map(|c| ConditionReport {
                    type_: c.type_.clone(),
                    status: format!("{:?}", c.status),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let waiting_for = match status {
        None => Some("the operator's first reconcile (is `spalding operator` running?)".to_owned()),
        Some(s) if s.observed_generation < vc.metadata.generation => {
            Some("the operator to observe the latest spec".to_owned())
        }
        Some(s) => s
            .conditions
            .iter()
            .find(|c| c.status != ConditionState::True && c.type_ != "Ready")
            .map(|c| format!("{} ({}): {}", c.type_, c.reason, c.message))
            .or_else(|| {
                (s.state != VirtualCloudState::Ready)
                    .then(|| format!("the {} state to complete", state_name(s.state)))
            }),
    };
    let mut partners: Vec<PartnerReport> = partners
        .iter()
        .filter(|p| {
            p.labels().get(VIRTUAL_CLOUD_LABEL) == Some(&name) && p.namespace() == vc.namespace()
        })
        .map(|p| {
            let s = p.status.clone().unwrap_or_default();
            PartnerReport {
                name: p.spec.name.clone(),
                endpoint: p.spec.endpoint.clone(),
                fingerprint: s.fingerprint,
                admitted: s.admitted,
                partner_admitted_us: s.partner_admitted_us,
                compatible: s.compatible,
                reachable: s.reachable,
                sequence: s.sequence,
                last_fetch_error: s.last_fetch_error,
                incompatibilities: s.incompatibilities,
            }
        })
        .collect();
    partners.sort_by(|a, b| a.name.cmp(&b.name));
    VirtualCloudReport {
        namespace: vc.namespace().unwrap_or_default(),
        name,
        state: status.map(|s| s.state),
        player_id: status.and_then(|s| s.player_id),
        player_count: status.and_then(|s| s.player_count),
        waiting_for,
        conditions,
        partners,
    }
}

/// Rows as columns padded to the widest cell; the last column unpadded.
fn table(out: &mut String, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let width = widths.get(i).copied().unwrap_or(0);
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// `ok, #<sequence>` after a successful fetch, `failed` after a failed one
/// (the reason follows the table), `-` before any.
fn last_fetch(p: &PartnerReport) -> String {
    match (&p.last_fetch_error, p.sequence) {
        (Some(_), _) => "failed".to_owned(),
        (None, Some(sequence)) if p.reachable => format!("ok, #{sequence}"),
        (None, _) if p.reachable => "ok".to_owned(),
        (None, _) => "-".to_owned(),
    }
}

fn yes(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

/// The human-readable rendering of `reports`, one block per VC.
pub fn render_text(reports: &[VirtualCloudReport]) -> String {
    if reports.is_empty() {
        return "No virtual clouds found.\n".to_owned();
    }
    let mut out = String::new();
    for (index, r) in reports.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        let state = r.state.map_or("unknown", state_name);
        let player = match (r.player_id, r.player_count) {
            (Some(id), Some(count)) => format!("player {id} of {count}"),
            _ => "no player number yet".to_owned(),
        };
        let _ = writeln!(
            out,
            "Virtual cloud {}/{}: {state}, {player}",
            r.namespace, r.name
        );
        match &r.waiting_for {
            Some(next) => {
                let _ = writeln!(out, "Waiting for: {next}");
            }
            None => out.push_str("Waiting for: nothing\n"),
        }
        if !r.conditions.is_empty() {
            out.push('\n');
            let mut rows = vec![vec![
                "CONDITION".to_owned(),
                "STATUS".to_owned(),
                "REASON".to_owned(),
                "MESSAGE".to_owned(),
            ]];
            rows.extend(r.conditions.iter().map(|c| {
                vec![
                    c.type_.clone(),
                    c.status.clone(),
                    c.reason.clone(),
                    c.message.clone(),
                ]
            }));
            table(&mut out, &rows);
        }
        out.push('\n');
        if r.partners.is_empty() {
            out.push_str("No partners recorded yet.\n");
            continue;
        }
        let mut rows = vec![
            [
                "PARTNER",
                "ADMITTED",
                "ADMITTED US",
                "COMPATIBLE",
                "REACHABLE",
                "LAST FETCH",
                "FINGERPRINT",
            ]
            .map(str::to_owned)
            .to_vec(),
        ];
        rows.extend(r.partners.iter().map(|p| {
            vec![
                p.name.clone(),
                yes(p.admitted),
                yes(p.partner_admitted_us),
                yes(p.compatible),
                yes(p.reachable),
                last_fetch(p),
                p.fingerprint.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        }));
        table(&mut out, &rows);
        for p in &r.partners {
            if let Some(error) = &p.last_fetch_error {
                let _ = writeln!(out, "  {}: last fetch failed: {error}", p.name);
            }
            for mismatch in &p.incompatibilities {
                let _ = writeln!(out, "  {}: incompatible: {mismatch}", p.name);
            }
        }
    }
    out
}

/// A client as kubectl would build it: the kubeconfig at `kubeconfig` (else
/// `KUBECONFIG` or `~/.kube/config`, else the in-cluster service account),
/// with `context` or the current one.
pub async fn client(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<Client, StatusError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| StatusError::Config(format!("{}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(file, &options).await
        }
        None if context.is_some() => Config::from_kubeconfig(&options).await,
        None => {
            return Client::try_default()
                .await
                .map_err(|e| StatusError::Config(e.to_string()));
        }
    }
    .map_err(|e| StatusError::Config(e.to_string()))?;
    Client::try_from(config).map_err(|e| StatusError::Config(e.to_string()))
}

/// The reports of the VCs in `namespace` (all when `None`), or of the one named `vc`.
pub async fn collect(
    client: &Client,
    namespace: Option<&str>,
    vc: Option<&str>,
) -> Result<Vec<VirtualCloudReport>, StatusError> {
    let namespace = namespace.map_or_else(|| client.default_namespace().to_owned(), str::to_owned);
    let vcs: Api<VirtualCloud> = Api::namespaced(client.clone(), &namespace);
    let partners: Api<VirtualCloudPartner> = Api::namespaced(client.clone(), &namespace);
    let api_error = |operation: String| move |source| StatusError::Api { operation, source };
    let selected = match vc {
        Some(name) => vec![
            vcs.get_opt(name)
                .await
                .map_err(api_error(format!("read virtual cloud {namespace}/{name}")))?
                .ok_or_else(|| StatusError::NotFound(format!("{namespace}/{name}")))?,
        ],
        None => {
            vcs.list(&ListParams::default())
                .await
                .map_err(api_error(format!("list virtual clouds in {namespace}")))?
                .items
        }
    };
    let selector = match vc {
        Some(name) => format!("{VIRTUAL_CLOUD_LABEL}={name}"),
        None => VIRTUAL_CLOUD_LABEL.to_owned(),
    };
    let partners = partners
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(api_error(format!("list partners in {namespace}")))?
        .items;
    Ok(selected.iter().map(|vc| report(vc, &partners)).collect())
}

#[cfg(test)]
mod tests;
