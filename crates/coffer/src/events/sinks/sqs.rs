//! Amazon SQS: each event sent as a message, signed with AWS Signature Version 4.

use serde::{Deserialize, Serialize};

use super::{REDACTED, require};
use crate::error::Result;

/// Settings of an SQS hook.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqsConfig {
    /// Queue URL: `https://sqs.eu-west-1.amazonaws.com/123456789012/events`.
    pub queue_url: String,
    /// AWS region.
    pub region: String,
    /// Endpoint to send to instead of the queue URL's host (an emulator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key (secret).
    pub secret_access_key: String,
    /// Session token of temporary credentials (secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
}

impl SqsConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        require(
            self.queue_url.starts_with("https://") || self.queue_url.starts_with("http://"),
            || format!("SQS queue URL must be http:// or https://, not {:?}", self.queue_url),
        )?;
        require(!self.region.is_empty(), || "an SQS hook needs a region".to_owned())?;
        require(
            !self.access_key_id.is_empty() && !self.secret_access_key.is_empty(),
            || "an SQS hook needs an access key id and a secret access key".to_owned(),
        )
    }

    pub(crate) fn redacted(&self) -> Self {
        SqsConfig {
            secret_access_key: REDACTED.to_owned(),
            session_token: self.session_token.as_ref().map(|_| REDACTED.to_owned()),
            ..self.clone()
        }
    }
}

impl std::fmt::Debug for SqsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = self.redacted();
        f.debug_struct("SqsConfig")
            .field("queue_url", &shown.queue_url)
            .field("region", &shown.region)
            .field("endpoint", &shown.endpoint)
            .field("access_key_id", &shown.access_key_id)
            .field("secret_access_key", &shown.secret_access_key)
            .field("session_token", &shown.session_token)
            .finish()
    }
}
