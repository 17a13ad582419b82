//! The `[encryption]` table and its `COFFER_ENCRYPTION_*` variables.

use std::path::PathBuf;

use serde::Deserialize;

use super::KeySource;
use crate::error::{Error, Result};

/// How a store's content is encrypted (`[encryption]`): at most one key
/// source. Without one, content is stored as it comes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionConfig {
    /// A file holding the 256-bit key (raw, hex or base64).
    pub key_file: Option<PathBuf>,
    /// The name of an environment variable holding the key (hex or base64).
    pub key_env: Option<String>,
    /// The name of an environment variable holding a passphrase.
    pub passphrase_env: Option<String>,
    /// A KMS key id or ARN.
    pub kms_key_id: Option<String>,
    /// Another KMS-compatible service's URL.
    pub kms_endpoint: Option<String>,
    /// The KMS region (else from the ARN, `AWS_REGION`, or `us-east-1`).
    pub kms_region: Option<String>,
}

/// The variables, each naming one setting; a key source given by a
/// variable replaces the file's.
const VARIABLES: [(&str, &str); 6] = [
    ("COFFER_ENCRYPTION_KEY_FILE", "key_file"),
    ("COFFER_ENCRYPTION_KEY_ENV", "key_env"),
    ("COFFER_ENCRYPTION_PASSPHRASE_ENV", "passphrase_env"),
    ("COFFER_ENCRYPTION_KMS_KEY_ID", "kms_key_id"),
    ("COFFER_ENCRYPTION_KMS_ENDPOINT", "kms_endpoint"),
    ("COFFER_ENCRYPTION_KMS_REGION", "kms_region"),
];

impl EncryptionConfig {
    /// Apply the `COFFER_ENCRYPTION_*` variables `lookup` reports.
    pub(crate) fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) {
        let given: Vec<(&str, String)> = VARIABLES
            .iter()
            .filter_map(|(var, name)| lookup(var).filter(|v| !v.is_empty()).map(|v| (*name, v)))
            .collect();
        let picks_source = given
            .iter()
            .any(|(name, _)| matches!(*name, "key_file" | "key_env" | "passphrase_env" | "kms_key_id"));
        if picks_source {
            *self = EncryptionConfig::default();
        }
        for (name, value) in given {
            match name {
                "key_file" => self.key_file = Some(PathBuf::from(value)),
                "key_env" => self.key_env = Some(value),
                "passphrase_env" => self.passphrase_env = Some(value),
                "kms_key_id" => self.kms_key_id = Some(value),
                "kms_endpoint" => self.kms_endpoint = Some(value),
                _ => self.kms_region = Some(value),
            }
        }
    }

    /// The key source, if encryption is on; more than one is refused.
    pub fn source(&self) -> Result<Option<KeySource>> {
        let mut sources = Vec::new();
        if let Some(path) = &self.key_file {
            sources.push(KeySource::KeyFile(path.clone()));
        }
        if let Some(var) = &self.key_env {
            sources.push(KeySource::KeyEnv(var.clone()));
        }
        if let Some(var) = &self.passphrase_env {
            sources.push(KeySource::Passphrase(var.clone()));
        }
        if let Some(key_id) = &self.kms_key_id {
            sources.push(KeySource::Kms {
                key_id: key_id.clone(),
                endpoint: self.kms_endpoint.clone(),
                region: self.kms_region.clone(),
            });
        } else if self.kms_endpoint.is_some() || self.kms_region.is_some() {
            return Err(Error::invalid_input(
                "[encryption] kms_endpoint and kms_region need a kms_key_id",
            ));
        }
        match sources.len() {
            0 | 1 => Ok(sources.pop()),
            _ => Err(Error::invalid_input(
                "[encryption] takes one key: key_file, key_env, passphrase_env or kms_key_id",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_at_most_and_variables_replace_the_files() {
        let mut config = EncryptionConfig {
            passphrase_env: Some("PW".into()),
            ..Default::default()
        };
        assert_eq!(config.source().unwrap(), Some(KeySource::Passphrase("PW".into())));
        config.apply_env(|var| (var == "COFFER_ENCRYPTION_KEY_FILE").then(|| "/k".to_owned()));
        assert_eq!(config.source().unwrap(), Some(KeySource::KeyFile("/k".into())));
        config.key_env = Some("K".into());
        assert!(config.source().unwrap_err().message().contains("takes one key"));
        let endpoint_only = EncryptionConfig {
            kms_endpoint: Some("http://127.0.0.1:5000".into()),
            ..Default::default()
        };
        assert!(endpoint_only.source().is_err());
        assert_eq!(EncryptionConfig::default().source().unwrap(), None);
    }
}
