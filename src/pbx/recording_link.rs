//! Links to call recordings that go through this gateway: signed, so only a link it gave out plays, and lasting, unlike the PBXs' own.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use url::Url;

use crate::domain::LeadId;

/// Makes and checks `{public_url}/calls/{id}/recording?sig=…` for a call's lead id.
#[derive(Clone)]
pub struct RecordingLinks {
    secret: SecretString,
    public_url: Url,
}

impl RecordingLinks {
    pub fn new(secret: SecretString, public_url: Url) -> Self {
        Self { secret, public_url }
    }

    /// The link a CRM's note carries for the call stored as lead `call`.
    pub fn link(&self, call: LeadId) -> Url {
        let mut url = self.public_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(["calls", &call.0.to_string(), "recording"]);
        }
        url.query_pairs_mut().clear().append_pair("sig", &self.signature(call));
        url
    }

    /// Whether `signature` is the one this gateway gives the call's link.
    pub fn verify(&self, call: LeadId, signature: &str) -> bool {
        bool::from(self.signature(call).as_bytes().ct_eq(signature.as_bytes()))
    }

    /// Half an HMAC-SHA256 of the id, in hex: long enough not to be guessed, short in a URL.
    fn signature(&self, call: LeadId) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.secret.expose_secret().as_bytes()).expect("HMAC takes any key length");
        mac.update(b"recording:");
        mac.update(call.0.to_string().as_bytes());
        mac.finalize().into_bytes()[..16].iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(secret: &str) -> RecordingLinks {
        RecordingLinks::new(SecretString::from(secret), Url::parse("https://gate.example/leadgate/").unwrap())
    }

    #[test]
    fn a_link_opens_its_own_call_only_and_only_with_this_gateway_s_secret() {
        let ours = links("one secret");
        let link = ours.link(LeadId(42));
        assert!(link.as_str().starts_with("https://gate.example/leadgate/calls/42/recording?sig="), "{link}");
        let signature = link.query_pairs().find(|(name, _)| name == "sig").unwrap().1.into_owned();
        assert!(ours.verify(LeadId(42), &signature));
        assert!(!ours.verify(LeadId(43), &signature), "another call's link");
        assert!(!links("another secret").verify(LeadId(42), &signature), "another gateway's link");
        assert!(!ours.verify(LeadId(42), ""));
    }
}
