//! MP-SPDZ's files and the key generation script.
//!
//! - `players`: one `host:port` line per player in player order, identical
//!   at every party (port `mpcBasePort + i`).
//! - `Player-Data/<n>-p-<bits>/Player-MAC-Keys-p-P<i>` and
//!   `Player-Data/<n>-2-<bits>/Player-MAC-Keys-2-P<i>`: `<n> <share>`, the
//!   gfp share in decimal, the gf2n share in hex.
//! - `Player-Data/<n>-p-<bits>/Params-Data`: `<prime>\n<montgomery 0|1>\n`.
//!
//! The MAC key files hold secrets, so they are never rendered into a
//! ConfigMap or a Job spec: [`keygen_script`] writes them inside the
//! container from the mounted MAC key Secret. [`mac_key_file`] renders the
//! same bytes for tests and for embedders that write files themselves.

use serde::{Deserialize, Serialize};

use super::istio::mpc_port;
use super::{RenderSettings, host};
use crate::configuration::{Formation, MAC_KEY_SHARE_2, MAC_KEY_SHARE_P};
use crate::mac::MacKeyShares;

/// The MP-SPDZ preprocessing folder, relative to the working directory.
pub const PLAYER_DATA: &str = "Player-Data";
/// The Istio sidecar's exit endpoint, called when the run is over so the
/// Job's pod can complete (as Carbyne Stack's Jobs do).
pub const QUIT_SIDECAR: &str = "curl -fsI -X POST http://localhost:15020/quitquitquit";

/// How the key generation container runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KeyGenSettings {
    /// MP-SPDZ's working directory in the image; the HE key volume is
    /// mounted at `<workDir>/Player-Data`.
    pub work_dir: String,
    /// Where the MAC key Secret is mounted.
    pub mac_key_dir: String,
    /// Where the `players` file is mounted (a file path).
    pub players_file: String,
    /// The offline program and its arguments. Placeholders: `${playerId}`,
    /// `${playerCount}`, `${prime}`, `${playersFile}`.
    pub program: Vec<String>,
    /// Attempts inside one pod before it fails (partners may start late).
    pub attempts: u32,
    /// Seconds between attempts.
    pub retry_delay_seconds: u32,
    /// Whether to stop the Istio sidecar when done ([`QUIT_SIDECAR`]).
    pub quit_sidecar: bool,
}

impl Default for KeyGenSettings {
    fn default() -> Self {
        Self {
            work_dir: "/mp-spdz".to_owned(),
            mac_key_dir: "/etc/spalding/mac-key".to_owned(),
            players_file: "/etc/spalding/players/players".to_owned(),
            program: [
                "./cowgear-offline.x",
                "-p",
                "${playerId}",
                "-N",
                "${playerCount}",
                "-ip",
                "${playersFile}",
                "-P",
                "${prime}",
            ]
            .map(str::to_owned)
            .to_vec(),
            attempts: 10,
            retry_delay_seconds: 30,
            quit_sidecar: true,
        }
    }
}

/// The `players` file: `host:port` per player, in player order.
pub fn players_file(formation: &Formation, settings: &RenderSettings) -> String {
    formation
        .members
        .iter()
        .zip(0u32..)
        .map(|(m, i)| format!("{}:{}\n", host(m), mpc_port(settings, i)))
        .collect()
}

/// `Player-Data/<n>-p-<bits>`, the gfp folder.
pub fn gfp_folder(formation: &Formation) -> String {
    format!(
        "{PLAYER_DATA}/{}-p-{}",
        formation.player_count(),
        formation.parameters.prime().bits()
    )
}

/// `Player-Data/<n>-2-<bits>`, the gf2n folder.
pub fn gf2n_folder(formation: &Formation) -> String {
    format!(
        "{PLAYER_DATA}/{}-2-{}",
        formation.player_count(),
        formation.parameters.gf2n_bit_length()
    )
}

/// Paths of this party's gfp and gf2n MAC key files.
pub fn mac_key_paths(formation: &Formation) -> (String, String) {
    let i = formation.player_id;
    (
        format!("{}/Player-MAC-Keys-p-P{i}", gfp_folder(formation)),
        format!("{}/Player-MAC-Keys-2-P{i}", gf2n_folder(formation)),
    )
}

/// Contents of this party's gfp and gf2n MAC key files: `<n> <share>`.
/// Secret: write them to a file only.
pub fn mac_key_file(formation: &Formation, shares: &MacKeyShares) -> (String, String) {
    let n = formation.player_count();
    (
        format!("{n} {}\n", shares.gfp_decimal()),
        format!("{n} {}\n", shares.gf2n_hex()),
    )
}

/// Contents of `Params-Data`: `<prime>\n<montgomery 0|1>\n`.
pub fn params_data(formation: &Formation, settings: &RenderSettings) -> String {
    format!(
        "{}\n{}\n",
        formation.parameters.prime(),
        u8::from(settings.montgomery)
    )
}

/// Quotes `word` for a POSIX shell.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The key generation program's command line, placeholders filled in.
pub fn program(formation: &Formation, keygen: &KeyGenSettings) -> Vec<String> {
    keygen
        .program
        .iter()
        .map(|arg| {
            arg.replace("${playerId}", &formation.player_id.to_string())
                .replace("${playerCount}", &formation.player_count().to_string())
                .replace("${prime}", &formation.parameters.prime().to_string())
                .replace("${playersFile}", &keygen.players_file)
        })
        .collect()
}

/// The shell script the key generation container runs (`sh -c`): it writes
/// the MAC key files from the mounted Secret (never echoing them), writes
/// `Params-Data`, runs the offline program until it succeeds or the attempts
/// are spent (partners may start late), then stops the Istio sidecar.
pub fn keygen_script(
    formation: &Formation,
    settings: &RenderSettings,
    keygen: &KeyGenSettings,
) -> String {
    let n = formation.player_count();
    let (gfp_file, gf2n_file) = mac_key_paths(formation);
    let params = format!("{}/Params-Data", gfp_folder(formation));
    let secret = |key: &str| quote(&format!("{}/{key}", keygen.mac_key_dir));
    let program = program(formation, keygen)
        .iter()
        .map(|a| quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    let quit = if keygen.quit_sidecar {
        format!("{QUIT_SIDECAR} >/dev/null 2>&1 || true\n")
    } else {
        String::new()
    };
    format!(
        "set -eu\n\
         cd {work_dir}\n\
         mkdir -p {gfp_dir} {gf2n_dir}\n\
         umask 077\n\
         printf '%s %s\\n' {n} \"$(cat {share_p})\" > {gfp_file}\n\
         printf '%s %s\\n' {n} \"$(cat {share_2})\" > {gf2n_file}\n\
         printf '%s\\n%s\\n' {prime} {mont} > {params}\n\
         status=1\n\
         attempt=1\n\
         while [ \"$attempt\" -le {attempts} ]; do\n\
         \x20 if {program}; then status=0; break; fi\n\
         \x20 echo \"key generation attempt $attempt of {attempts} failed; retrying in {delay}s\" >&2\n\
         \x20 attempt=$((attempt + 1))\n\
         \x20 sleep {delay}\n\
         done\n\
         {quit}exit \"$status\"\n",
        work_dir = quote(&keygen.work_dir),
        gfp_dir = quote(&gfp_folder(formation)),
        gf2n_dir = quote(&gf2n_folder(formation)),
        share_p = secret(MAC_KEY_SHARE_P),
        share_2 = secret(MAC_KEY_SHARE_2),
        gfp_file = quote(&gfp_file),
        gf2n_file = quote(&gf2n_file),
        prime = formation.parameters.prime(),
        mont = u8::from(settings.montgomery),
        params = quote(&params),
        attempts = keygen.attempts.max(1),
        delay = keygen.retry_delay_seconds,
    )
}
