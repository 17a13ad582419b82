//! Azure Blob Storage through OpenDAL's azblob service, with retries and
//! timeouts as layers. Two things the service lacks are done here with the
//! signer it already uses (reqsign): URLs signed with a service SAS from the
//! account key, and the access tier of blobs (`Set Blob Tier`); creating the
//! container too.

use std::fmt;
use std::time::Duration;

use opendal::Operator;
use opendal::layers::TimeoutLayer;
use reqsign_azure_storage::{
    RequestSigner, ServiceSasResource, ServiceSharedAccessSignature, StaticCredentialProvider,
};
use serde::Deserialize;

use super::errors::{DEFAULT_BACKEND_WAIT, Place, retry_layer};
use super::opendal::OpendalBackend;
use super::{PresignMethod, PresignRequest, PresignedUrl, RestoreState, RestoreTier};
use crate::error::{Error, ErrorKind, Result};
use crate::layout::BLOBS_DIR;

/// The access tiers a blob can be given.
pub const ACCESS_TIERS: [&str; 4] = ["Hot", "Cool", "Cold", "Archive"];
/// How long one request may take before it is retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The REST API version of the calls made here (one Azurite accepts too).
const API_VERSION: &str = "2022-11-02";
/// The account and key of the storage emulator (Azurite), public by design.
const EMULATOR_ACCOUNT: &str = "devstoreaccount1";
const EMULATOR_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// Part size of block uploads (blocks can be up to 4000 MiB; 8 MiB keeps memory bounded).
const BLOCK_SIZE: usize = 8 << 20;
/// Blocks uploaded at once.
const BLOCK_CONCURRENCY: usize = 4;

/// Where and how to reach an Azure Blob container. Credentials left out come
/// from the standard variables: `AZURE_STORAGE_CONNECTION_STRING`, else
/// `AZURE_STORAGE_ACCOUNT_NAME` with `AZURE_STORAGE_ACCOUNT_KEY` or
/// `AZURE_STORAGE_SAS_TOKEN`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AzureConfig {
    /// The container.
    pub container: String,
    /// The storage account.
    pub account_name: Option<String>,
    /// The account key (secret).
    pub account_key: Option<String>,
    /// A SAS token instead of the account key (secret).
    pub sas_token: Option<String>,
    /// A connection string (`AccountName=...;AccountKey=...`, or
    /// `UseDevelopmentStorage=true` for the emulator); secret.
    pub connection_string: Option<String>,
    /// The blob endpoint (`https://ACCOUNT.blob.core.windows.net` when absent).
    pub endpoint: Option<String>,
    /// A folder inside the container that holds the store.
    pub prefix: Option<String>,
    /// Access tier of the blobs (content; manifests stay readable): Hot, Cool, Cold or Archive.
    pub access_tier: Option<String>,
    /// Create the container when it does not exist.
    pub create_container: bool,
}

impl fmt::Debug for AzureConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |secret: &Option<String>| secret.as_ref().map(|_| "***");
        f.debug_struct("AzureConfig")
            .field("container", &self.container)
            .field("account_name", &self.account_name)
            .field("account_key", &hidden(&self.account_key))
            .field("sas_token", &hidden(&self.sas_token))
            .field("connection_string", &hidden(&self.connection_string))
            .field("endpoint", &self.endpoint)
            .field("prefix", &self.prefix)
            .field("access_tier", &self.access_tier)
            .field("create_container", &self.create_container)
            .finish()
    }
}

/// The settings with the connection string and the environment resolved.
struct Resolved {
    account: String,
    endpoint: String,
    credential: Credential,
}

#[derive(Clone)]
enum Credential {
    Key(String),
    Sas(String),
}

impl AzureConfig {
    /// Check the settings.
    pub fn validate(&self) -> Result<()> {
        let container = &self.container;
        if container.is_empty() {
            return Err(crate::settings::missing_setting(crate::BackendKind::Azure, "container"));
        }
        let valid = (3..=63).contains(&container.len())
            && container
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !container.starts_with('-')
            && !container.ends_with('-')
            && !container.contains("--");
        if !valid {
            return Err(Error::invalid_input(format!(
                "invalid Azure container name {container:?}: 3 to 63 lowercase letters, digits and single '-'"
            )));
        }
        if let Some(tier) = &self.access_tier {
            canonical_tier(tier)?;
        }
        if let Some(endpoint) = &self.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(Error::invalid_input(format!(
                "Azure endpoint must start with http:// or https://, not {endpoint:?}"
            )));
        }
        Ok(())
    }

    fn resolve(&self) -> Result<Resolved> {
        let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let connection = self
            .connection_string
            .clone()
            .or_else(|| {
                (self.account_name.is_none() && self.account_key.is_none() && self.sas_token.is_none())
                    .then(|| from_env("AZURE_STORAGE_CONNECTION_STRING"))
                    .flatten()
            })
            .map(|text| parse_connection_string(&text))
            .transpose()?
            .unwrap_or_default();
        let account = self
            .account_name
            .clone()
            .or(connection.account)
            .or_else(|| from_env("AZURE_STORAGE_ACCOUNT_NAME"))
            .ok_or_else(|| {
                Error::invalid_input(
                    "Azure needs an account name (account_name, a connection string or AZURE_STORAGE_ACCOUNT_NAME)",
                )
            })?;
        let credential = match (
            self.account_key.clone().or(connection.key),
            self.sas_token.clone().or(connection.sas),
        ) {
            (Some(key), _) => Credential::Key(key),
            (None, Some(sas)) => Credential::Sas(sas),
            (None, None) => match (
                from_env("AZURE_STORAGE_ACCOUNT_KEY"),
                from_env("AZURE_STORAGE_SAS_TOKEN"),
            ) {
                (Some(key), _) => Credential::Key(key),
                (None, Some(sas)) => Credential::Sas(sas),
                (None, None) => {
                    return Err(Error::invalid_input(
                        "Azure needs an account key or a SAS token (settings, a connection string or AZURE_STORAGE_ACCOUNT_KEY / AZURE_STORAGE_SAS_TOKEN)",
                    ));
                }
            },
        };
        if let Credential::Key(key) = &credential
            && base64::Engine::decode(&base64::engine::general_purpose::STANDARD, key).is_err()
        {
            return Err(Error::invalid_input("the Azure account key is not valid base64"));
        }
        let endpoint = self
            .endpoint
            .clone()
            .or(connection.endpoint)
            .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
        Ok(Resolved {
            account,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            credential,
        })
    }

    /// The folder inside the container, as `a/b/` (empty for the root).
    fn root(&self) -> String {
        match self.prefix.as_deref().map(|p| p.trim_matches('/')) {
            Some(prefix) if !prefix.is_empty() => format!("{prefix}/"),
            _ => String::new(),
        }
    }

    /// How the backend names itself: never with credentials.
    fn describe(&self, resolved: &Resolved) -> String {
        format!(
            "azblob://{}/{} ({})",
            self.container,
            self.root().trim_end_matches('/'),
            crate::redact::redact_url(&resolved.endpoint)
        )
        .replace("/ (", " (")
    }
}

/// What a connection string says.
#[derive(Default)]
struct Connection {
    account: Option<String>,
    key: Option<String>,
    sas: Option<String>,
    endpoint: Option<String>,
}

fn parse_connection_string(text: &str) -> Result<Connection> {
    let mut connection = Connection::default();
    let (mut protocol, mut suffix) = ("https".to_owned(), "core.windows.net".to_owned());
    let mut development = false;
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, value)) = part.split_once('=') else {
            return Err(Error::invalid_input(
                "the Azure connection string is not a list of Name=value pairs",
            ));
        };
        match name {
            "AccountName" => connection.account = Some(value.to_owned()),
            "AccountKey" => connection.key = Some(value.to_owned()),
            "SharedAccessSignature" => connection.sas = Some(value.to_owned()),
            "BlobEndpoint" => connection.endpoint = Some(value.to_owned()),
            "DefaultEndpointsProtocol" => protocol = value.to_owned(),
            "EndpointSuffix" => suffix = value.to_owned(),
            "UseDevelopmentStorage" => development = value.eq_ignore_ascii_case("true"),
            _ => {}
        }
    }
    if development {
        connection.account.get_or_insert_with(|| EMULATOR_ACCOUNT.to_owned());
        connection.key.get_or_insert_with(|| EMULATOR_KEY.to_owned());
        connection
            .endpoint
            .get_or_insert_with(|| format!("http://127.0.0.1:10000/{EMULATOR_ACCOUNT}"));
    }
    if connection.endpoint.is_none()
        && let Some(account) = &connection.account
    {
        connection.endpoint = Some(format!("{protocol}://{account}.blob.{suffix}"));
    }
    Ok(connection)
}

/// `tier` spelled as Azure spells it, or an error naming the choices.
pub(crate) fn canonical_tier(tier: &str) -> Result<&'static str> {
    ACCESS_TIERS
        .into_iter()
        .find(|t| t.eq_ignore_ascii_case(tier))
        .ok_or_else(|| {
            Error::invalid_input(format!(
                "access tier must be one of {}, not {tier:?}",
                ACCESS_TIERS.join(", ")
            ))
        })
}

/// Azure calls that OpenDAL's azblob service does not make.
pub(crate) struct AzureExtras {
    account: String,
    endpoint: String,
    container: String,
    root: String,
    credential: Credential,
    access_tier: Option<&'static str>,
    place: Place,
}

impl AzureExtras {
    /// Whether URLs can be signed here (a service SAS needs the account key).
    pub(crate) fn can_presign(&self) -> bool {
        matches!(self.credential, Credential::Key(_))
    }

    fn blob_url(&self, path: &str) -> String {
        format!("{}/{}/{}{path}", self.endpoint, self.container, self.root)
    }

    /// A URL with a service SAS for one blob, from the account key.
    pub(crate) fn presign(&self, request: &PresignRequest<'_>) -> Result<PresignedUrl> {
        let Credential::Key(key) = &self.credential else {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{} cannot hand out presigned URLs: signing them needs the account key, and this store has a SAS token",
                    self.container
                ),
            ));
        };
        let expiry = reqsign_core::time::Timestamp::now() + request.expires;
        let permissions = match request.method {
            PresignMethod::Get => "r",
            PresignMethod::Put => "cw",
        };
        let resource = ServiceSasResource::Blob {
            container: self.container.clone(),
            blob: format!("{}{}", self.root, request.path),
        };
        let sas = ServiceSharedAccessSignature::new(
            self.account.clone(),
            key.clone(),
            resource,
            permissions.to_owned(),
            expiry,
        );
        let pairs = sas
            .token()
            .map_err(|e| Error::invalid_input(format!("cannot sign an Azure URL: {e}")))?;
        let mut url = reqwest::Url::parse(&self.blob_url(request.path))
            .map_err(|e| Error::invalid_input(format!("Azure endpoint: {e}")))?;
        url.query_pairs_mut().extend_pairs(pairs);
        let headers = match request.method {
            PresignMethod::Get => Vec::new(),
            PresignMethod::Put => vec![("x-ms-blob-type".to_owned(), "BlockBlob".to_owned())],
        };
        Ok(PresignedUrl {
            method: request.method.as_str().to_owned(),
            url: url.to_string(),
            headers,
        })
    }

    /// After a write or copy to `path`: give a blob its access tier.
    pub(crate) async fn placed(&self, path: &str) -> Result<()> {
        match self.access_tier {
            Some(tier) if path.starts_with(BLOBS_DIR) => self.set_tier(path, tier).await,
            _ => Ok(()),
        }
    }

    /// `Set Blob Tier` on one blob.
    pub(crate) async fn set_tier(&self, path: &str, tier: &str) -> Result<()> {
        let url = format!("{}?comp=tier", self.blob_url(path));
        self.call(
            reqwest::Method::PUT,
            &url,
            &[("x-ms-access-tier", tier)],
            "set the access tier",
        )
        .await
        .map(|_| ())
    }

    /// Create the container; one that exists already is fine.
    async fn create_container(&self) -> Result<()> {
        let url = format!("{}/{}?restype=container", self.endpoint, self.container);
        match self.call(reqwest::Method::PUT, &url, &[], "create the container").await {
            Err(e) if e.message().contains("ContainerAlreadyExists") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Rehydrate the Archive blob at `path` to the store's readable tier
    /// (`Set Blob Tier` with a rehydrate priority: `expedited` is High);
    /// then say where it stands. Rehydration is for good: no days apply.
    pub(crate) async fn restore(&self, path: &str, tier: RestoreTier) -> Result<RestoreState> {
        let priority = match tier {
            RestoreTier::Expedited => "High",
            RestoreTier::Standard | RestoreTier::Bulk => "Standard",
        };
        let target = self.access_tier.filter(|t| *t != "Archive").unwrap_or("Hot");
        let url = format!("{}?comp=tier", self.blob_url(path));
        let headers = [("x-ms-access-tier", target), ("x-ms-rehydrate-priority", priority)];
        self.call(reqwest::Method::PUT, &url, &headers, "rehydrate an archived blob")
            .await?;
        self.restore_status(path).await
    }

    /// Where the blob at `path` stands: its tier, and a rehydration under way.
    pub(crate) async fn restore_status(&self, path: &str) -> Result<RestoreState> {
        let headers = self
            .call(reqwest::Method::HEAD, &self.blob_url(path), &[], "read a blob's tier")
            .await?;
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
        let class = "Archive".to_owned();
        Ok(match (header("x-ms-access-tier"), header("x-ms-archive-status")) {
            (_, status) if status.starts_with("rehydrate-pending") => RestoreState::InProgress { class },
            ("Archive", _) => RestoreState::Archived { class },
            _ => RestoreState::NotArchived,
        })
    }

    /// One signed call without a body: the response's headers.
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, &str)],
        what: &str,
    ) -> Result<reqwest::header::HeaderMap> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(url)
            .header("x-ms-version", API_VERSION)
            .header("content-length", "0");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (mut parts, ()) = request
            .body(())
            .map_err(|e| Error::invalid_input(format!("Azure request: {e}")))?
            .into_parts();
        let provider = match &self.credential {
            Credential::Key(key) => StaticCredentialProvider::new_shared_key(&self.account, key),
            Credential::Sas(token) => StaticCredentialProvider::new_sas_token(token),
        };
        reqsign_core::Signer::new(reqsign_core::Context::new(), provider, RequestSigner::new())
            .sign(&mut parts, None)
            .await
            .map_err(|e| Error::invalid_input(format!("cannot sign the Azure request: {e}")))?;
        let response = super::side_http()?
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.place.unreachable(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.headers().clone());
        }
        let code = response
            .headers()
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let kind = match status {
            reqwest::StatusCode::NOT_FOUND => ErrorKind::NotFound,
            _ => ErrorKind::BackendUnavailable,
        };
        Err(Error::new(
            kind,
            format!("Azure refused to {what}: HTTP {status} {code}"),
        ))
    }
}

impl OpendalBackend {
    /// A backend on an Azure Blob container, created first if the settings
    /// ask for it, whose calls retry a store that does not answer for about 3 s.
    pub async fn azure(config: &AzureConfig) -> Result<Self> {
        Self::azure_waiting(config, DEFAULT_BACKEND_WAIT).await
    }

    /// [`azure`](Self::azure), with calls that retry for at most `wait`.
    pub async fn azure_waiting(config: &AzureConfig, wait: Duration) -> Result<Self> {
        config.validate()?;
        let resolved = config.resolve()?;
        let place = Place::remote("azure", &resolved.endpoint, "container", &config.container);
        // OpenDAL's process-wide HTTP transport (reqwest); installing it again is a no-op.
        opendal::install_default();
        let mut builder = opendal::services::Azblob::default()
            .container(&config.container)
            .endpoint(&resolved.endpoint)
            .account_name(&resolved.account)
            .root(&format!("/{}", config.root()));
        builder = match &resolved.credential {
            Credential::Key(key) => builder.account_key(key),
            Credential::Sas(token) => builder.sas_token(token),
        };
        let op = Operator::new(builder)
            .map_err(|e| place.error(e))?
            .layer(TimeoutLayer::new().with_io_timeout(REQUEST_TIMEOUT))
            .layer(retry_layer(wait));
        let extras = AzureExtras {
            account: resolved.account.clone(),
            endpoint: resolved.endpoint.clone(),
            container: config.container.clone(),
            root: config.root(),
            credential: resolved.credential.clone(),
            access_tier: config.access_tier.as_deref().map(canonical_tier).transpose()?,
            place: place.clone(),
        };
        // A store that cannot be reached now is no reason to refuse opening
        // it (writes may go to a spool): its operations will say so.
        if config.create_container
            && let Err(e) = extras.create_container().await
            && !e.is_retryable()
        {
            return Err(e);
        }
        let description = config.describe(&resolved);
        Ok(OpendalBackend::remote(op, description, place, BLOCK_SIZE, BLOCK_CONCURRENCY).with_azure(extras))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_name_the_account_key_and_endpoint() {
        let emulator = parse_connection_string("UseDevelopmentStorage=true").unwrap();
        assert_eq!(emulator.account.as_deref(), Some(EMULATOR_ACCOUNT));
        assert_eq!(
            emulator.endpoint.as_deref(),
            Some("http://127.0.0.1:10000/devstoreaccount1")
        );
        let cloud = parse_connection_string(
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=a2V5;EndpointSuffix=core.chinacloudapi.cn",
        )
        .unwrap();
        assert_eq!(
            cloud.endpoint.as_deref(),
            Some("https://acme.blob.core.chinacloudapi.cn")
        );
        assert_eq!(cloud.key.as_deref(), Some("a2V5"));
        assert!(parse_connection_string("AccountName").is_err());
    }

    #[test]
    fn bad_settings_are_refused_and_secrets_hidden() {
        let config = AzureConfig {
            container: "Bad_Name".into(),
            ..AzureConfig::default()
        };
        assert!(config.validate().unwrap_err().message().contains("container"));
        let config = AzureConfig {
            container: "archive".into(),
            access_tier: Some("frozen".into()),
            account_key: Some("c2VjcmV0LWtleQ==".into()),
            ..AzureConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .message()
                .contains("Hot, Cool, Cold, Archive")
        );
        assert!(!format!("{config:?}").contains("c2VjcmV0"));
        assert_eq!(canonical_tier("cool").unwrap(), "Cool");
    }
}
