//! Rendering: the Kubernetes objects and files a [`Formation`] turns into,
//! built as plain values (strings, maps, `serde_json::Value`) so they can be
//! checked without a cluster. Adapters add what only they know — namespace,
//! labels, owner references and the private key — and apply them.
//!
//! - [`carbyne`]: the Carbyne Stack settings ConfigMap (Amphora, Castor,
//!   Ephemeral) and the TLS Secret (`tls.crt`, `tls.key`, `cacert`).
//! - [`mpspdz`]: MP-SPDZ's `players` file, MAC key files, `Params-Data`, and
//!   the key generation script that writes them at run time.
//! - [`templates`]: the foundation services (Klyshko's `TupleGenerator` and
//!   `TupleGenerationScheduler`, placeholders for Amphora, Castor and
//!   Ephemeral) from configurable templates, and their readiness rules.
//! - [`istio`]: for key generation, the MPC port's mTLS Gateway and TCP
//!   VirtualService and per partner a ServiceEntry and a DestinationRule;
//!   for `ready`, the services' mTLS secure gateway and its VirtualServices.
//!
//! Partners are addressed by the host of their partner-info endpoint (see
//! [`host`]): Spalding's partner protocol has no separate field for the
//! Carbyne Stack service host, so a VCP's Spalding endpoint and its CS
//! services share one public host name, reached on different ports.
//!
//! No MAC key share ever passes through here into a ConfigMap or a Job spec:
//! the key generation script reads the shares from the mounted Secret.

pub mod carbyne;
pub mod istio;
pub mod mpspdz;
pub mod templates;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::configuration::{Formation, FormedMember};

pub use self::templates::{ReadinessRule, RenderedObject, ServiceTemplate};

/// Default name of the ConfigMap with the Amphora, Castor and Ephemeral settings.
pub const SETTINGS_CONFIG_MAP: &str = "cs-vcp-settings";
/// Default name of the TLS Secret (`tls.crt`, `tls.key`, `cacert`), the
/// `credentialName` of every Istio `MUTUAL` gateway and DestinationRule.
pub const TLS_SECRET: &str = "cs-vcp-tls";
/// Default name of the PersistentVolumeClaim holding HE key material.
pub const HE_KEY_CLAIM: &str = "cs-he-keys";

/// Why an object could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A template is unusable; says which and why.
    #[error("template {template}: {reason}")]
    Template {
        /// The template's kind and name.
        template: String,
        /// What is wrong.
        reason: String,
    },
    /// This party's player number is not in the formation.
    #[error("player {0} is not a member of the formation")]
    NoSuchPlayer(u32),
}

/// What rendering needs besides the formation. Every field has a default, so
/// a configuration file only names what differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RenderSettings {
    /// Scheme of partner service URLs (`https`).
    pub scheme: String,
    /// Amphora's and Castor's `NO_SSL_VALIDATION`.
    pub no_ssl_validation: bool,
    /// Ephemeral's `tlsEnabled`.
    pub tls_enabled: bool,
    /// MP-SPDZ port of player 0; player `i` listens on `base + i`.
    pub mpc_base_port: u16,
    /// Ephemeral discovery's `masterPort`.
    pub discovery_master_port: u16,
    /// Whether MP-SPDZ stores gfp values in Montgomery form (`Params-Data`).
    pub montgomery: bool,
    /// Name of the settings ConfigMap.
    pub settings_config_map: String,
    /// Name of the TLS Secret.
    pub tls_secret: String,
    /// Name of the HE key PersistentVolumeClaim.
    pub he_key_claim: String,
    /// The Istio objects' settings.
    pub istio: istio::IstioSettings,
    /// The foundation services, in creation order.
    pub services: Vec<ServiceTemplate>,
}

impl Default for RenderSettings {
    fn default() -> Self {
        Self {
            scheme: "https".to_owned(),
            no_ssl_validation: false,
            tls_enabled: true,
            mpc_base_port: 5000,
            discovery_master_port: 31400,
            montgomery: true,
            settings_config_map: SETTINGS_CONFIG_MAP.to_owned(),
            tls_secret: TLS_SECRET.to_owned(),
            he_key_claim: HE_KEY_CLAIM.to_owned(),
            istio: istio::IstioSettings::default(),
            services: templates::default_templates(),
        }
    }
}

/// A ConfigMap named `name` holding `data`, as a [`RenderedObject`].
pub fn config_map(name: &str, data: BTreeMap<String, String>) -> RenderedObject {
    RenderedObject {
        api_version: "v1".to_owned(),
        kind: "ConfigMap".to_owned(),
        plural: "configmaps".to_owned(),
        name: name.to_owned(),
        body: serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": name },
            "data": data,
        }),
        readiness: ReadinessRule::Exists,
    }
}

/// The Carbyne Stack configuration ConfigMaps of `starting`:
/// [`crate::configuration::VCP_CONFIG_MAP`],
/// [`crate::configuration::ENGINE_PARAMS_CONFIG_MAP`] and the settings
/// ConfigMap. The TLS Secret is not among them: it needs the private key,
/// which only the adapter holds.
pub fn configuration_maps(
    formation: &Formation,
    settings: &RenderSettings,
) -> Result<Vec<RenderedObject>, RenderError> {
    Ok(vec![
        config_map(crate::configuration::VCP_CONFIG_MAP, formation.vcp_config()),
        config_map(
            crate::configuration::ENGINE_PARAMS_CONFIG_MAP,
            formation.engine_params(),
        ),
        config_map(
            &settings.settings_config_map,
            carbyne::settings_data(formation, settings)?,
        ),
    ])
}

/// The host of a member: its endpoint's authority without the port. It is
/// where the member's Carbyne Stack services, mTLS gateway and MP-SPDZ port
/// are reached: the partner-info endpoint and the services share the VCP's
/// public host name (its certificate's name in Carbyne Stack's set-up); the
/// endpoint's port and path matter only to the partner protocol.
pub fn host(member: &FormedMember) -> &str {
    let authority = member.endpoint.authority();
    if let Some(rest) = authority.strip_prefix('[') {
        // An IPv6 literal keeps its brackets.
        return rest
            .find(']')
            .and_then(|end| authority.get(..end + 2))
            .unwrap_or(authority);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// This party's own member entry.
pub fn me(formation: &Formation) -> Result<&FormedMember, RenderError> {
    usize::try_from(formation.player_id)
        .ok()
        .and_then(|i| formation.members.get(i))
        .ok_or(RenderError::NoSuchPlayer(formation.player_id))
}
