//! The Carbyne Stack settings ConfigMap and the TLS Secret.
//!
//! The settings ConfigMap uses the environment variable names Amphora and
//! Castor read (`PLAYER_ID`, `SPDZ_PRIME`, `AMPHORA_VC_PARTNERS`,
//! `IS_MASTER`, `SLAVE_URIS`, …), so a Deployment can take it whole with
//! `envFrom`, plus Ephemeral's `config.json` and its discovery service's
//! `discovery.json`. It never holds a MAC key share: Amphora's `MAC_KEY` and
//! Ephemeral's `gfpMacKey`/`gf2nMacKey` come from the Secret
//! [`crate::configuration::MAC_KEY_SECRET`] (`secretKeyRef`), and other
//! parties' shares are never published anywhere.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::json;

use super::{RenderError, RenderSettings, host, me};
use crate::configuration::Formation;

/// Key of Ephemeral's configuration in the settings ConfigMap.
pub const EPHEMERAL_CONFIG_KEY: &str = "config.json";
/// Key of Ephemeral discovery's configuration in the settings ConfigMap.
pub const DISCOVERY_CONFIG_KEY: &str = "discovery.json";
/// Ephemeral's preprocessing folder.
pub const PREP_FOLDER: &str = "Player-Data";
/// Key of this party's certificate in the TLS Secret.
pub const TLS_CRT: &str = "tls.crt";
/// Key of this party's private key in the TLS Secret.
pub const TLS_KEY: &str = "tls.key";
/// Key of the partners' certificates in the TLS Secret.
pub const CACERT: &str = "cacert";

/// `<scheme>://<host>:<port>/<service>` of every partner, in player order.
/// The port is the partners' mTLS gateway port (`istio.port`, 1443), which
/// the egress ServiceEntry declares; it is left out only when it is the
/// scheme's default, so the URL never points at a port nothing listens on.
pub fn partner_urls(
    formation: &Formation,
    settings: &RenderSettings,
    service: &str,
) -> Vec<String> {
    let scheme = settings.scheme.as_str();
    let port = settings.istio.port;
    let default_port = match scheme {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    };
    formation
        .partners()
        .map(|m| {
            let host = host(m);
            if default_port == Some(port) {
                format!("{scheme}://{host}/{service}")
            } else {
                format!("{scheme}://{host}:{port}/{service}")
            }
        })
        .collect()
}

/// The data of the settings ConfigMap.
pub fn settings_data(
    formation: &Formation,
    settings: &RenderSettings,
) -> Result<BTreeMap<String, String>, RenderError> {
    let own_host = host(me(formation)?).to_owned();
    let master_host = formation
        .members
        .first()
        .map(|m| host(m).to_owned())
        .unwrap_or_default();
    let p = &formation.parameters;
    let master = formation.is_master();
    let ephemeral = json!({
        "prime": p.prime().to_string(),
        "rInv": p.r_inv().to_string(),
        "gf2nBitLength": p.gf2n_bit_length(),
        "gf2nStorageSize": p.gf2n_storage_size(),
        "prepFolder": PREP_FOLDER,
        "playerID": formation.player_id,
        "playerCount": formation.player_count(),
        "tlsEnabled": settings.tls_enabled,
        "frontendURL": own_host,
    });
    let discovery = json!({
        "frontendURL": own_host,
        "masterHost": master_host,
        "masterPort": settings.discovery_master_port.to_string(),
        "slave": !master,
        "playerCount": formation.player_count(),
    });
    let castor_slaves = if master {
        partner_urls(formation, settings, "castor").join(",")
    } else {
        String::new()
    };
    Ok(BTreeMap::from([
        ("PLAYER_ID".to_owned(), formation.player_id.to_string()),
        (
            "PLAYER_COUNT".to_owned(),
            formation.player_count().to_string(),
        ),
        ("SPDZ_PRIME".to_owned(), p.prime().to_string()),
        ("SPDZ_R".to_owned(), p.r().to_string()),
        ("SPDZ_R_INV".to_owned(), p.r_inv().to_string()),
        (
            "SPDZ_GF2N_BIT_LENGTH".to_owned(),
            p.gf2n_bit_length().to_string(),
        ),
        (
            "SPDZ_GF2N_STORAGE_SIZE".to_owned(),
            p.gf2n_storage_size().to_string(),
        ),
        (
            "AMPHORA_VC_PARTNERS".to_owned(),
            partner_urls(formation, settings, "amphora").join(","),
        ),
        ("IS_MASTER".to_owned(), master.to_string()),
        ("SLAVE_URIS".to_owned(), castor_slaves),
        (
            "NO_SSL_VALIDATION".to_owned(),
            settings.no_ssl_validation.to_string(),
        ),
        (EPHEMERAL_CONFIG_KEY.to_owned(), ephemeral.to_string()),
        (DISCOVERY_CONFIG_KEY.to_owned(), discovery.to_string()),
    ]))
}

/// The data of the TLS Secret. Holds a private key: its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsSecretData(BTreeMap<String, String>);

impl fmt::Debug for TlsSecretData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsSecretData(<redacted>)")
    }
}

impl TlsSecretData {
    /// The entries, to put into the Secret's `stringData`.
    pub fn into_inner(self) -> BTreeMap<String, String> {
        self.0
    }

    /// One entry.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

/// The TLS Secret: this party's admitted certificate (`tls.crt`), its key
/// (`tls.key`, supplied by the adapter that holds it) and every partner's
/// certificate in player order (`cacert`, one PEM block each).
pub fn tls_secret_data(formation: &Formation, key_pem: &str) -> Result<TlsSecretData, RenderError> {
    Ok(TlsSecretData(BTreeMap::from([
        (
            TLS_CRT.to_owned(),
            me(formation)?.certificate.pem().to_owned(),
        ),
        (TLS_KEY.to_owned(), key_pem.to_owned()),
        (CACERT.to_owned(), formation.cacert()),
    ])))
}
