//! The built-in sandbox: an amoCRM emulator and a Telphin PBX emulator in the same process, so `serve` works with no configuration.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use amocrm_emulator::{EmulatorConfig, RunningEmulator, SeedContact};
use pbx_emulator::{PbxConfig, ProviderKind, RunningPbx};
use secrecy::SecretString;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{
    AmoCrmAuth, AmoCrmConfig, AutoCreate, CallRule, DestinationConfig, PbxAccess, PbxApi, Route, TelephonySource,
};
use crate::domain::UserRef;

/// The destination name the sandbox takes when no `[destinations.*]` is configured.
pub const DESTINATION: &str = "sandbox";
/// The client the sandbox CRM knows, who calls in the PBX's "known" scenarios.
const KNOWN_CLIENT_NAME: &str = "Известный клиент";
/// The sandbox CRM's file, beside the database.
pub const STATE_FILE: &str = "leadgate-sandbox-crm.json";
/// How often the sandbox CRM's records are saved when they changed: what a crash can lose.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

pub struct Sandbox {
    emulator: RunningEmulator,
    token: String,
    pbx: RunningPbx,
    /// Where the CRM's records are kept across restarts, and the task saving them there.
    saving: Option<(PathBuf, CancellationToken, JoinHandle<()>)>,
}

impl Sandbox {
    /// Starts both emulators on free loopback ports. The CRM's records are loaded from
    /// `state_file` when it exists and saved there as they change; a fresh CRM knows the PBX
    /// scenarios' client. Without a file (an in-memory or PostgreSQL store) it starts empty
    /// every time.
    ///
    /// # Errors
    /// When no loopback port can be bound, or the file exists but cannot be read back.
    pub async fn start(state_file: Option<PathBuf>) -> std::io::Result<Self> {
        let config = EmulatorConfig::default();
        let token = config.long_lived_token.clone().unwrap_or_default();
        let emulator = amocrm_emulator::spawn(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let saved = match &state_file {
            Some(path) => read_saved(path).await?,
            None => None,
        };
        match saved {
            Some(saved) => emulator.emulator.restore(saved).map_err(|error| {
                let path = state_file.as_deref().unwrap_or(Path::new("")).display();
                std::io::Error::other(format!("the sandbox CRM's file {path} cannot be read back: {error}"))
            })?,
            None => {
                let known = SeedContact {
                    name: KNOWN_CLIENT_NAME.to_owned(),
                    phones: vec![format!("+{}", pbx_emulator::KNOWN_CLIENT)],
                    emails: Vec::new(),
                    leads: Vec::new(),
                };
                emulator.emulator.seed_contact(&known).map_err(|error| std::io::Error::other(error.to_string()))?;
            }
        }
        let pbx = pbx_emulator::spawn(PbxConfig::sandbox(ProviderKind::Telphin)).await?;
        let saving = state_file.map(|path| {
            let stop = CancellationToken::new();
            let task = tokio::spawn(save_regularly(emulator.emulator.clone(), path.clone(), stop.clone()));
            (path, stop, task)
        });
        Ok(Self { emulator, token, pbx, saving })
    }

    /// Where the CRM's records are kept, when they are.
    pub fn state_file(&self) -> Option<&Path> {
        self.saving.as_ref().map(|(path, _, _)| path.as_path())
    }

    pub fn base_url(&self) -> String {
        self.emulator.base_url()
    }

    pub fn pbx_url(&self) -> String {
        self.pbx.base_url()
    }

    /// The demo telephony source: the sandbox PBX's extension 101 is Анна Смирнова, unknown
    /// callers get a contact and a deal, and calls are logged a few seconds after they end.
    pub fn demo_telephony(&self, key: String) -> TelephonySource {
        let pbx_emulator::Provider::Telphin(account) = self.pbx.pbx.provider() else {
            unreachable!("the sandbox PBX is a Telphin one");
        };
        let route = Self::demo_route();
        TelephonySource {
            access: PbxAccess::Telphin { key: SecretString::from(key) },
            api: Some(PbxApi::Telphin {
                url: self.pbx_url().parse().expect("the emulator's URL is valid"),
                client_id: account.client_id.clone(),
                client_secret: SecretString::from(account.client_secret.clone()),
            }),
            users: BTreeMap::from([
                (pbx_emulator::MANAGER.to_owned(), UserRef::Name("Анна Смирнова".to_owned())),
                ("102".to_owned(), UserRef::Name("Иван Петров".to_owned())),
            ]),
            missed_calls_user: Some(UserRef::Name("Ольга Кузнецова".to_owned())),
            rule: CallRule {
                incoming_unknown: AutoCreate::ContactAndDeal,
                missed_unknown: AutoCreate::Contact,
                outgoing_unknown: AutoCreate::Contact,
                pipeline: route.pipeline,
                status: route.status,
            },
            numbers: Vec::new(),
            attach_window: Duration::from_secs(10 * 60),
            finish_after: Duration::from_secs(3),
        }
    }

    pub fn destination(&self) -> DestinationConfig {
        DestinationConfig::AmoCrm(AmoCrmConfig {
            name: DESTINATION.to_owned(),
            base_url: self.base_url().parse().expect("the emulator's URL is valid"),
            auth: AmoCrmAuth::LongLivedToken(SecretString::from(self.token.clone())),
            requests_per_second: 7,
            timeout: Duration::from_secs(10),
        })
    }

    /// The demo source's route: the emulator seeds a "TrendAgent" pipeline with this stage.
    pub fn demo_route() -> Route {
        Route {
            destination: DESTINATION.to_owned(),
            pipeline: "TrendAgent".to_owned(),
            status: "Объект выбран".to_owned(),
            ..Route::default()
        }
    }

    pub async fn stop(self) {
        self.pbx.shutdown().await;
        self.emulator.shutdown().await;
        // The saver's last round writes what the final requests changed.
        if let Some((_, stop, task)) = self.saving {
            stop.cancel();
            let _ = task.await;
        }
    }
}

async fn read_saved(path: &Path) -> std::io::Result<Option<serde_json::Value>> {
    match tokio::fs::read(path).await {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|error| {
            std::io::Error::other(format!("the sandbox CRM's file {} is not valid JSON: {error}", path.display()))
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Writes the CRM's records to `path` every [`SAVE_EVERY`] when they changed, and once more when
/// stopped. A new file replaces the old one whole (written aside, then renamed), so a crash
/// leaves the last complete save.
async fn save_regularly(emulator: amocrm_emulator::Emulator, path: PathBuf, stop: CancellationToken) {
    let mut last = Vec::new();
    let mut ticks = tokio::time::interval(SAVE_EVERY);
    loop {
        let stopping = tokio::select! {
            _ = ticks.tick() => false,
            () = stop.cancelled() => true,
        };
        let records = serde_json::to_vec(&emulator.records()).unwrap_or_default();
        if records != last {
            match write_whole(&path, &records).await {
                Ok(()) => last = records,
                Err(error) => tracing::warn!(path = %path.display(), %error, "the sandbox CRM could not be saved"),
            }
        }
        if stopping {
            return;
        }
    }
}

async fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".new");
    tokio::fs::write(&aside, bytes).await?;
    tokio::fs::rename(&aside, path).await
}
