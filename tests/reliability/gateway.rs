//! The real binary's configuration for these tests.

use crate::helpers::budgeted_config_file;

/// The binary's configuration: `rate` requests per second to the CRM at `crm_url`, 1 s leases, fast
/// retries, and callbacks allowed to the local receiver.
pub fn gateway_config(crm_url: &str, rate: u32) -> String {
    budgeted_config_file(
        crm_url,
        rate,
        r#"
[security]
allow_private_callbacks = true
[feedback]
timeout = "2s"
retry_initial = "200ms"
retry_max = "1s"
"#,
    )
}
