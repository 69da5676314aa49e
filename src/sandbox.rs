//! The built-in sandbox: an amoCRM emulator and a Telphin PBX emulator in the same process, so `serve` works with no configuration.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use amocrm_emulator::{EmulatorConfig, RunningEmulator, SeedContact};
use pbx_emulator::{PbxConfig, ProviderKind, RunningPbx};
use secrecy::SecretString;

use crate::config::{
    AmoCrmAuth, AmoCrmConfig, AutoCreate, CallRule, DestinationConfig, PbxAccess, PbxApi, Route, TelephonySource,
};
use crate::domain::UserRef;

/// The destination name the sandbox takes when no `[destinations.*]` is configured.
pub const DESTINATION: &str = "sandbox";
/// The client the sandbox CRM knows, who calls in the PBX's "known" scenarios.
const KNOWN_CLIENT_NAME: &str = "Известный клиент";

pub struct Sandbox {
    emulator: RunningEmulator,
    token: String,
    pbx: RunningPbx,
}

impl Sandbox {
    /// Starts both emulators on free loopback ports; the CRM knows the PBX scenarios' client.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start() -> std::io::Result<Self> {
        let config = EmulatorConfig::default();
        let token = config.long_lived_token.clone().unwrap_or_default();
        let emulator = amocrm_emulator::spawn(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let known = SeedContact {
            name: KNOWN_CLIENT_NAME.to_owned(),
            phones: vec![format!("+{}", pbx_emulator::KNOWN_CLIENT)],
            emails: Vec::new(),
            leads: Vec::new(),
        };
        emulator.emulator.seed_contact(&known).map_err(|error| std::io::Error::other(error.to_string()))?;
        let pbx = pbx_emulator::spawn(PbxConfig::sandbox(ProviderKind::Telphin)).await?;
        Ok(Self { emulator, token, pbx })
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
    }
}
