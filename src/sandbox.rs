//! The built-in sandbox CRM: an amoCRM emulator in the same process, so `serve` works with no configuration.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use amocrm_emulator::{EmulatorConfig, RunningEmulator};
use secrecy::SecretString;

use crate::config::{AmoCrmAuth, AmoCrmConfig, DestinationConfig, Route};

/// The destination name the sandbox takes when no `[destinations.*]` is configured.
pub const DESTINATION: &str = "sandbox";

pub struct Sandbox {
    emulator: RunningEmulator,
    token: String,
}

impl Sandbox {
    /// Starts the emulator on a free loopback port.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start() -> std::io::Result<Self> {
        let config = EmulatorConfig::default();
        let token = config.long_lived_token.clone().unwrap_or_default();
        let emulator = amocrm_emulator::spawn(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        Ok(Self { emulator, token })
    }

    pub fn base_url(&self) -> String {
        self.emulator.base_url()
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
        self.emulator.shutdown().await;
    }
}
