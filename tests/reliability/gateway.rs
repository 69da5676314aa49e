//! The real binary's configuration for these tests.

use crate::helpers::{PIPELINE, SOURCE_KEY, STAGE};

/// The binary's configuration: `rate` requests per second to the CRM at `crm_url`, 1 s leases, fast retries,
/// and callbacks allowed to the local receiver. (`helpers::config_file` fixes the budget at 100.)
pub fn gateway_config(crm_url: &str, rate: u32) -> String {
    format!(
        r#"
[store]
url = "sqlite://leadgate.db"
[worker]
interval = "100ms"
lease = "1s"
retry_initial = "200ms"
retry_max = "2s"
[security]
allow_private_callbacks = true
[feedback]
timeout = "2s"
retry_initial = "200ms"
retry_max = "1s"
[destinations.main]
kind = "amocrm"
base_url = "{crm_url}"
access_token = "sandbox-long-lived-token"
requests_per_second = {rate}
[sources.trendagent]
kind = "partner"
key = "{SOURCE_KEY}"
destination = "main"
pipeline = "{PIPELINE}"
status = "{STAGE}"
"#
    )
}
