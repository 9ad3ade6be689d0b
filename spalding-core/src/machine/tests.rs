//! Property tests of `decide` over generated observations: the group barrier,
//! create-only MAC shares, rest after a plan, and condition bookkeeping.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;
use crate::certificate::Certificate;
use crate::configuration::FormedMember;
use crate::document::{MemberView, PROTOCOL_VERSION, view_digest};
use crate::parameters::{Parameters, ValidatedParameters, compatibility};
use crate::partner::CertificateRef;
use crate::ports::KeyGenerationPhase;
use crate::spec::{PartnerEntry, State, VirtualCloudSpec};

mod digests;
mod examples;
mod rest;

const NAMES: [&str; 6] = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];

/// Two certificates per possible party: its own and a rotated one.
fn pool() -> &'static [Certificate] {
    static POOL: OnceLock<Vec<Certificate>> = OnceLock::new();
    POOL.get_or_init(|| {
        (0..2 * NAMES.len())
            .map(|i| test_certificate(&format!("party{i}")))
            .collect()
    })
}

pub(crate) fn test_certificate(host: &str) -> Certificate {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![host.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    Certificate::from_pem(&cert.pem()).unwrap()
}

fn endpoint(i: usize) -> Endpoint {
    Endpoint::new(&format!("https://{}.example", NAMES[i])).unwrap()
}

fn name(i: usize) -> PartyName {
    NAMES[i].parse().unwrap()
}

fn other_parameters() -> ValidatedParameters {
    let mut p: Parameters = ValidatedParameters::carbyne_stack_default().to_wire();
    p.gf2n_storage_size = 16;
    p.validate().unwrap()
}

/// How one partner looks in a generated observation.
#[derive(Debug, Clone)]
struct PartnerSetup {
    reachable: bool,
    rotated: bool,
    incompatible: bool,
    membership: u8, // 0 ok, 1 drops a member, 2 changes an endpoint
    admits: Vec<bool>,
    stale_view: Vec<bool>,
    stored: u8, // 0 none, 1 record with current status, 2 record with an old fingerprint
    admissions: Vec<u8>, // 0 pinned current, 1 pinned wrong, 2 unbound, 3 bound current, 4 bound wrong
}

fn partner_setup() -> impl Strategy<Value = PartnerSetup> {
    (
        prop::bool::weighted(0.85),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
        prop_oneof![8 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        prop::collection::vec(prop::bool::weighted(0.9), NAMES.len()),
        prop::collection::vec(prop::bool::weighted(0.05), NAMES.len()),
        0u8..3,
        prop::collection::vec(prop_oneof![4 => Just(0u8), 1 => Just(1u8), 2 => Just(2u8), 2 => Just(3u8), 1 => Just(4u8)], 0..3),
    )
        .prop_map(|(reachable, rotated, incompatible, membership, admits, stale_view, stored, admissions)| {
            PartnerSetup { reachable, rotated, incompatible, membership, admits, stale_view, stored, admissions }
        })
}

/// A whole generated observation.
#[derive(Debug, Clone)]
struct Setup {
    count: usize,
    local: usize,
    partners: Vec<PartnerSetup>,
    mac: bool,
    keys: u8, // 0 none, 1 pending, 2 running, 3 succeeded, 4 failed, 5 for other players
    applied: [u8; 3], // configuration, services, gateways: 0 none, 1 current not ready, 2 current ready, 3 stale
    state: State,
}

fn setup() -> impl Strategy<Value = Setup> {
    (2usize..=NAMES.len())
        .prop_flat_map(|count| {
            (
                Just(count),
                0..count,
                prop::collection::vec(partner_setup(), count - 1),
                any::<bool>(),
                0u8..6,
                [0u8..4, 0u8..4, 0u8..4],
                prop_oneof![
                    Just(State::Admission),
                    Just(State::Initializing),
                    Just(State::Starting),
                    Just(State::Ready)
                ],
            )
        })
        .prop_map(
            |(count, local, partners, mac, keys, applied, state)| Setup {
                count,
                local,
                partners,
                mac,
                keys,
                applied,
                state,
            },
        )
}

impl Setup {
    /// Index into NAMES of the k-th partner.
    fn partner_index(&self, k: usize) -> usize {
        if k < self.local { k } else { k + 1 }
    }

    fn current_certificate(&self, i: usize) -> &'static Certificate {
        if i == self.local {
            return &pool()[i];
        }
        let k = if i < self.local { i } else { i - 1 };
        let rotated = self.partners[k].rotated;
        &pool()[if rotated { NAMES.len() + i } else { i }]
    }

    fn formation(&self, stale: bool) -> Formation {
        // A stale formation lacks the first partner, as after a membership change.
        let dropped = if stale {
            Some(self.partner_index(0))
        } else {
            None
        };
        let members: Vec<FormedMember> = (0..self.count)
            .filter(|i| Some(*i) != dropped)
            .map(|i| FormedMember {
                name: name(i),
                endpoint: endpoint(i),
                certificate: self.current_certificate(i).clone(),
            })
            .collect();
        let player_id = members
            .iter()
            .position(|m| m.name == name(self.local))
            .unwrap() as u32;
        Formation {
            player_id,
            parameters: ValidatedParameters::carbyne_stack_default(),
            members: members.into(),
        }
    }

    fn observed(&self) -> Observed {
        let vc = VcKey::new("ns", "vc");
        let spec = VirtualCloudSpec {
            parameters: ValidatedParameters::carbyne_stack_default().to_wire(),
            partners: (0..self.count - 1)
                .map(|k| {
                    let i = self.partner_index(k);
                    PartnerEntry {
                        name: NAMES[i].to_owned(),
                        endpoint: endpoint(i).to_string(),
                    }
                })
                .collect(),
        };
        let identity = LocalIdentity {
            name: name(self.local),
            endpoint: endpoint(self.local),
            certificate: pool()[self.local].clone(),
        };
        let mut partners = Vec::new();
        let mut admissions = Vec::new();
        for (k, p) in self.partners.iter().enumerate() {
            let i = self.partner_index(k);
            let current = self.current_certificate(i);
            let wrong = &pool()[if p.rotated { i } else { NAMES.len() + i }];
            let fetch = if p.reachable {
                let members = (0..self.count)
                    .filter(|m| !(p.membership == 1 && *m == (i + 1) % self.count))
                    .map(|m| MemberView {
                        name: name(m),
                        endpoint: if p.membership == 2 && m == self.local {
                            Endpoint::new("https://elsewhere.example").unwrap()
                        } else {
                            endpoint(m)
                        },
                        fingerprint: Some(
                            if p.stale_view[m] && m != i {
                                &pool()[(m + 1) % NAMES.len()]
                            } else {
                                self.current_certificate(m)
                            }
                            .fingerprint()
                            .clone(),
                        ),
                        admitted: m == i || p.admits[m],
                    })
                    .collect();
                let document = crate::document::PartnerDocument {
                    body: crate::document::DocumentBody {
                        protocol: PROTOCOL_VERSION.to_owned(),
                        virtual_cloud: vc.name.clone(),
                        party: name(i),
                        endpoint: endpoint(i),
                        parameters: if p.incompatible {
                            other_parameters()
                        } else {
                            ValidatedParameters::carbyne_stack_default()
                        },
                        certificate: current.clone(),
                        fingerprint: current.fingerprint().clone(),
                        members,
                        state: State::Admission,
                    },
                    sequence: 1,
                    signature: None,
                };
                let partner = crate::spec::Partner {
                    name: name(i),
                    endpoint: endpoint(i),
                };
                Fetch::Fetched(Box::new(document.verify("vc", &partner).unwrap()))
            } else {
                Fetch::Failed("connection refused".to_owned())
            };
            let stored = (p.stored > 0).then(|| crate::partner::StoredPartner {
                record: crate::partner::PartnerRecord {
                    name: name(i),
                    endpoint: endpoint(i),
                    parameters: ValidatedParameters::carbyne_stack_default(),
                    certificate: CertificateRef {
                        name: format!("vc-{}-cert", NAMES[i]),
                        namespace: "ns".to_owned(),
                    },
                },
                status: Some(crate::partner::PartnerStatus {
                    fingerprint: Some(
                        if p.stored == 2 { wrong } else { current }
                            .fingerprint()
                            .clone(),
                    ),
                    ..Default::default()
                }),
                certificate: Some(if p.stored == 2 { wrong } else { current }.clone()),
            });
            partners.push(PartnerObservation {
                name: name(i),
                fetch,
                stored,
                seen_since: None,
            });
            for (a, kind) in p.admissions.iter().enumerate() {
                let (pinned, bound) = match kind {
                    0 => (Some(current.fingerprint().clone()), None),
                    1 => (Some(wrong.fingerprint().clone()), None),
                    2 => (None, None),
                    3 => (None, Some(current.fingerprint().clone())),
                    _ => (None, Some(wrong.fingerprint().clone())),
                };
                admissions.push(crate::partner::Admission {
                    name: format!("{}-{a}", NAMES[i]),
                    partner: name(i),
                    pinned,
                    bound,
                });
            }
        }
        let applied = |kind: u8| match kind {
            0 => None,
            1 => Some(Applied {
                formation: self.formation(false),
                ready: false,
            }),
            2 => Some(Applied {
                formation: self.formation(false),
                ready: true,
            }),
            _ => Some(Applied {
                formation: self.formation(true),
                ready: true,
            }),
        };
        let key_generation = match self.keys {
            0 => None,
            5 => Some(KeyGeneration {
                formation: self.formation(true),
                phase: KeyGenerationPhase::Succeeded,
            }),
            k => Some(KeyGeneration {
                formation: self.formation(false),
                phase: match k {
                    1 => KeyGenerationPhase::Pending,
                    2 => KeyGenerationPhase::Running,
                    3 => KeyGenerationPhase::Succeeded,
                    _ => KeyGenerationPhase::Failed {
                        reason: "backoff limit reached".to_owned(),
                    },
                },
            }),
        };
        Observed {
            vc,
            generation: Some(1),
            spec: spec.validate(&identity.name),
            status: VirtualCloudStatus {
                state: self.state,
                ..Default::default()
            },
            identity,
            partners,
            admissions,
            mac_key_exists: self.mac,
            key_generation,
            configuration: applied(self.applied[0]).map(|a| a.formation),
            services: applied(self.applied[1]),
            gateways: applied(self.applied[2]),
            published: None,
            now: Timestamp::new("2026-11-30T00:00:00Z"),
        }
    }
}

/// The barrier, written independently of `decide` from DESIGN.md's words.
fn reference_barrier(obs: &Observed) -> bool {
    let spec = obs.spec.as_ref().unwrap();
    let docs: Vec<&VerifiedDocument> = match obs
        .partners
        .iter()
        .map(|p| match &p.fetch {
            Fetch::Fetched(d) => Some(d.as_ref()),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
    {
        Some(docs) => docs,
        None => return false,
    };
    let current = |n: &PartyName| -> Option<&Fingerprint> {
        if *n == obs.identity.name {
            return Some(obs.identity.certificate.fingerprint());
        }
        docs.iter()
            .find(|d| &d.party == n)
            .map(|d| d.certificate.fingerprint())
    };
    let mut ours: Vec<(PartyName, Endpoint)> = spec
        .partners
        .iter()
        .map(|p| (p.name.clone(), p.endpoint.clone()))
        .collect();
    ours.push((obs.identity.name.clone(), obs.identity.endpoint.clone()));
    ours.sort();
    docs.iter().all(|doc| {
        let fp = doc.certificate.fingerprint();
        let observation = obs.partners.iter().find(|p| p.name == doc.party).unwrap();
        let shown = observation
            .stored
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .and_then(|s| s.fingerprint.as_ref())
            .unwrap_or(fp);
        let admitted = obs.admissions.iter().any(|a| {
            a.partner == doc.party && a.pinned.as_ref().or(a.bound.as_ref()).unwrap_or(shown) == fp
        });
        let compatible = compatibility(&spec.parameters, &doc.parameters).is_empty();
        let theirs: Vec<(PartyName, Endpoint)> = doc
            .members
            .iter()
            .map(|m| (m.name.clone(), m.endpoint.clone()))
            .collect();
        let all_admitted = doc
            .members
            .iter()
            .all(|m| m.admitted && m.fingerprint.as_ref() == current(&m.name));
        admitted && compatible && theirs == ours && all_admitted
    })
}

fn is_lifecycle(action: &Action) -> bool {
    matches!(
        action,
        Action::CreateMacKeyShares
            | Action::LaunchKeyGeneration(_)
            | Action::WriteConfiguration(_)
            | Action::CreateServices(_)
            | Action::DeployGateways(_)
    )
}

/// What executing `plan` does to what the next reconcile observes.
fn apply(obs: &Observed, plan: &Plan) -> Observed {
    let mut next = obs.clone();
    for action in &plan.actions {
        match action {
            Action::StoreCertificate {
                partner,
                certificate,
            } => {
                let o = next
                    .partners
                    .iter_mut()
                    .find(|p| &p.name == partner)
                    .unwrap();
                if let Some(stored) = o.stored.as_mut() {
                    stored.certificate = Some(certificate.clone());
                } else {
                    // The record follows in the same plan; remember the certificate.
                    o.stored = Some(crate::partner::StoredPartner {
                        record: placeholder_record(partner),
                        status: None,
                        certificate: Some(certificate.clone()),
                    });
                }
            }
            Action::UpsertPartner(record) => {
                let o = next
                    .partners
                    .iter_mut()
                    .find(|p| p.name == record.name)
                    .unwrap();
                let stored = o
                    .stored
                    .get_or_insert_with(|| crate::partner::StoredPartner {
                        record: record.clone(),
                        status: None,
                        certificate: None,
                    });
                stored.record = record.clone();
            }
            Action::UpdatePartnerStatus { partner, status } => {
                let o = next
                    .partners
                    .iter_mut()
                    .find(|p| &p.name == partner)
                    .unwrap();
                o.stored
                    .as_mut()
                    .expect("status written before the record")
                    .status = Some(status.clone());
            }
            Action::RemovePartner { partner } => {
                next.partners
                    .iter_mut()
                    .filter(|p| &p.name == partner)
                    .for_each(|p| p.stored = None);
            }
            Action::BindAdmission {
                admission,
                fingerprint,
            } => {
                let a = next
                    .admissions
                    .iter_mut()
                    .find(|a| &a.name == admission)
                    .unwrap();
                assert!(
                    a.pinned.is_none() && a.bound.is_none(),
                    "only unsettled admissions are bound"
                );
                a.bound = Some(fingerprint.clone());
            }
            Action::PublishDocument(body) => next.published = Some(body.as_ref().clone()),
            Action::CreateMacKeyShares => next.mac_key_exists = true,
            Action::LaunchKeyGeneration(f) => {
                next.key_generation = Some(KeyGeneration {
                    formation: f.as_ref().clone(),
                    phase: KeyGenerationPhase::Pending,
                })
            }
            Action::WriteConfiguration(f) => next.configuration = Some(f.as_ref().clone()),
            Action::CreateServices(f) => {
                next.services = Some(Applied {
                    formation: f.as_ref().clone(),
                    ready: false,
                })
            }
            Action::DeployGateways(f) => {
                next.gateways = Some(Applied {
                    formation: f.as_ref().clone(),
                    ready: false,
                })
            }
            Action::RecordEvent(_) => {}
            Action::UpdateStatus(s) => next.status = s.as_ref().clone(),
        }
    }
    next.now = Timestamp::new("2026-11-30T00:01:00Z");
    next
}

fn placeholder_record(partner: &PartyName) -> crate::partner::PartnerRecord {
    crate::partner::PartnerRecord {
        name: partner.clone(),
        endpoint: Endpoint::new("https://placeholder.example").unwrap(),
        parameters: ValidatedParameters::carbyne_stack_default(),
        certificate: CertificateRef {
            name: String::new(),
            namespace: String::new(),
        },
    }
}

fn state_after(obs: &Observed, plan: &Plan) -> State {
    plan.status().map_or(obs.status.state, |s| s.state)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Never past `admission` unless the group barrier holds on fresh facts,
    /// or a partner is unreachable and the state merely holds. Lifecycle
    /// actions only ever on the barrier.
    #[test]
    fn never_past_admission_without_the_barrier(setup in setup()) {
        let obs = setup.observed();
        let plan = decide(&obs);
        let barrier = reference_barrier(&obs);
        let state = state_after(&obs, &plan);
        if state > State::Admission && !barrier {
            let unreachable = obs.partners.iter().any(|p| matches!(p.fetch, Fetch::Failed(_)));
            prop_assert!(unreachable && state <= obs.status.state,
                "moved to {state} from {} without the barrier", obs.status.state);
        }
        if plan.actions.iter().any(is_lifecycle) {
            prop_assert!(barrier, "lifecycle action without the barrier: {:?}", plan.actions);
        }
        // A fresh contradiction always sends the VC back to admission.
        let all_fresh = obs.partners.iter().all(|p| matches!(p.fetch, Fetch::Fetched(_)));
        if all_fresh && !barrier {
            prop_assert_eq!(state, State::Admission);
        }
    }

    /// A MAC share is never generated when one exists.
    #[test]
    fn mac_share_is_never_regenerated(setup in setup()) {
        let obs = setup.observed();
        let plan = decide(&obs);
        if obs.mac_key_exists {
            prop_assert!(!plan.actions.contains(&Action::CreateMacKeyShares));
        }
        // …nor twice in one plan, nor again once the plan ran.
        prop_assert!(plan.actions.iter().filter(|a| **a == Action::CreateMacKeyShares).count() <= 1);
        let next = apply(&obs, &plan);
        prop_assert!(!decide(&next).actions.contains(&Action::CreateMacKeyShares));
    }

    /// At rest the plan is empty: executing a plan and deciding again writes nothing.
    #[test]
    fn deciding_after_executing_the_plan_is_empty(setup in setup()) {
        let obs = setup.observed();
        let plan = decide(&obs);
        let next = apply(&obs, &plan);
        let again = decide(&next);
        prop_assert!(again.is_empty(), "second plan {:#?}\nafter first plan {:#?}", again.actions, plan.actions);
    }

    /// The status always carries this party's player number: its rank among all member names.
    #[test]
    fn status_carries_the_shared_player_number(setup in setup()) {
        let obs = setup.observed();
        let plan = decide(&obs);
        let status = plan.status().expect("first decide writes a status");
        prop_assert_eq!(status.player_id, Some(setup.local as u32));
        prop_assert_eq!(status.player_count, Some(setup.count as u32));
    }
}
