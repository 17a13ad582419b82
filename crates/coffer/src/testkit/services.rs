//! The services the suites talk to: whether one answers, fresh buckets and
//! containers on the S3 emulator (moto), Garage and Azurite with their test
//! credentials, a TCP proxy that can cut a connection, and signed S3 and SQS
//! calls that read back what coffer sent.
//!
//! Where a service does not answer, the test is skipped with one loud line,
//! unless `COFFER_REQUIRE_SERVICES=1` (as in CI), where that is an error: a
//! skipped suite must not pass for a green one.

use crate::error::{Error, ErrorKind, Result};

/// True when a test must fail rather than skip for want of a service.
pub fn services_required() -> bool {
    std::env::var("COFFER_REQUIRE_SERVICES").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Whether service `name` answers on `addr` (`127.0.0.1:4222`). When it
/// does not, this prints one loud line and returns `Ok(false)` so the test
/// can skip, or fails when services are required (`COFFER_REQUIRE_SERVICES=1`).
pub fn service_available(name: &str, addr: &str) -> Result<bool> {
    let unreachable = |why: String| {
        if services_required() {
            Err(Error::new(
                ErrorKind::BackendUnavailable,
                format!("{name} is required (COFFER_REQUIRE_SERVICES=1) but {why}"),
            ))
        } else {
            eprintln!("SKIPPED: no {name} at {addr} ({why}); start it with scripts/services/");
            Ok(false)
        }
    };
    let addrs = match std::net::ToSocketAddrs::to_socket_addrs(addr) {
        Ok(addrs) => addrs.collect::<Vec<_>>(),
        Err(e) => return unreachable(format!("{addr} does not resolve: {e}")),
    };
    let mut last = format!("{addr} resolves to nothing");
    for socket in addrs {
        match std::net::TcpStream::connect_timeout(&socket, std::time::Duration::from_secs(2)) {
            Ok(_) => return Ok(true),
            Err(e) => last = format!("nothing answers on {socket}: {e}"),
        }
    }
    unreachable(last)
}

/// One signed call of the SQS JSON API (`CreateQueue`, `ReceiveMessage`,
/// `DeleteQueue` ...) with `config`'s endpoint and credentials: the answer's
/// JSON. The SQS sink signs its `SendMessage` calls the same way.
pub async fn sqs_call(
    config: &crate::events::sinks::SqsConfig,
    action: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value> {
    let client = crate::events::sinks::SqsClient::new(config.clone(), crate::events::sinks::http_client()?)?;
    client.call(action, body).await
}

/// Settings for a fresh bucket on the S3 emulator (moto, on
/// `COFFER_TEST_S3`, default `127.0.0.1:5000`), created on first use; `None`
/// (with a loud line) when it does not answer and services are not required.
#[cfg(feature = "backend-s3")]
pub fn moto_bucket() -> Result<Option<crate::backend::S3Config>> {
    s3_test_bucket(
        "the S3 emulator (moto)",
        "COFFER_TEST_S3",
        "127.0.0.1:5000",
        "us-east-1",
        ("test", "test"),
    )
}

/// A fresh bucket's settings on the S3 server `name` at `$variable` (else
/// `default_addr`), or `None` (with a loud line) when it does not answer.
#[cfg(feature = "backend-s3")]
fn s3_test_bucket(
    name: &str,
    variable: &str,
    default_addr: &str,
    region: &str,
    (access_key, secret_key): (&str, &str),
) -> Result<Option<crate::backend::S3Config>> {
    let addr = std::env::var(variable).unwrap_or_else(|_| default_addr.to_owned());
    if !service_available(name, &addr)? {
        return Ok(None);
    }
    Ok(Some(crate::backend::S3Config {
        bucket: format!("coffer-test-{}", uuid::Uuid::now_v7().simple()),
        region: Some(region.to_owned()),
        endpoint: Some(format!("http://{addr}")),
        access_key_id: Some(access_key.to_owned()),
        secret_access_key: Some(secret_key.to_owned()),
        create_bucket: true,
        ..crate::backend::S3Config::default()
    }))
}

/// The access key of the test key that `scripts/services/garage.sh` imports.
pub const GARAGE_ACCESS_KEY: &str = "GK000000000000000000c0ffee";
/// Its secret key (a test value, not a secret).
pub const GARAGE_SECRET_KEY: &str = "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff";

/// Settings for a fresh bucket on a local Garage node (on
/// `COFFER_TEST_GARAGE`, default `127.0.0.1:3900`, with the test key), created
/// on first use; `None` (with a loud line) when it does not answer and
/// services are not required.
#[cfg(feature = "backend-s3")]
pub fn garage_bucket() -> Result<Option<crate::backend::S3Config>> {
    s3_test_bucket(
        "Garage",
        "COFFER_TEST_GARAGE",
        "127.0.0.1:3900",
        "garage",
        (GARAGE_ACCESS_KEY, GARAGE_SECRET_KEY),
    )
}

/// Settings for a fresh container on the Azure emulator (Azurite, on
/// `COFFER_TEST_AZURITE`, default `127.0.0.1:10000`, with its well-known
/// account), created on first use; `None` (with a loud line) when it does not
/// answer and services are not required.
#[cfg(feature = "backend-azblob")]
pub fn azurite_container() -> Result<Option<crate::backend::AzureConfig>> {
    let addr = std::env::var("COFFER_TEST_AZURITE").unwrap_or_else(|_| "127.0.0.1:10000".to_owned());
    if !service_available("the Azure emulator (Azurite)", &addr)? {
        return Ok(None);
    }
    Ok(Some(crate::backend::AzureConfig {
        container: format!("coffer-test-{}", uuid::Uuid::now_v7().simple()),
        connection_string: Some(format!(
            "UseDevelopmentStorage=true;BlobEndpoint=http://{addr}/devstoreaccount1"
        )),
        create_container: true,
        ..crate::backend::AzureConfig::default()
    }))
}

/// `host:port` of ClickHouse's HTTP interface (`COFFER_TEST_CLICKHOUSE`,
/// default `127.0.0.1:8123`, which `scripts/services/clickhouse.sh` starts),
/// with a fresh database name for one test; `None` (with a loud line) when
/// it does not answer and services are not required.
pub fn clickhouse_server() -> Result<Option<(String, String)>> {
    let addr = std::env::var("COFFER_TEST_CLICKHOUSE").unwrap_or_else(|_| "127.0.0.1:8123".to_owned());
    if !service_available("ClickHouse", &addr)? {
        return Ok(None);
    }
    Ok(Some((addr, format!("coffer_test_{}", uuid::Uuid::now_v7().simple()))))
}

/// A TCP forwarder to a server, which a test can stop and start again on
/// the same port: to the client, the server goes away (connections refused,
/// open ones cut) and comes back, while the server itself keeps its data.
#[derive(Debug)]
pub struct TcpProxy {
    listen: std::net::SocketAddr,
    upstream: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TcpProxy {
    /// Forward a free port on 127.0.0.1 to `upstream` (`127.0.0.1:3900`).
    pub async fn start(upstream: &str) -> Result<TcpProxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::io("cannot bind the proxy", e))?;
        let listen = listener.local_addr().map_err(|e| Error::io("proxy address", e))?;
        let mut proxy = TcpProxy {
            listen,
            upstream: upstream.to_owned(),
            task: None,
        };
        proxy.serve(listener);
        Ok(proxy)
    }

    /// `http://ADDR` of the proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.listen)
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let upstream = self.upstream.clone();
        self.task = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        }));
    }

    /// Stop: refuse new connections and cut the open ones.
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Listen again on the same port.
    pub async fn resume(&mut self) -> Result<()> {
        self.stop();
        // The aborted listener may take a moment to release the port.
        for _ in 0..50 {
            match tokio::net::TcpListener::bind(self.listen).await {
                Ok(listener) => {
                    self.serve(listener);
                    return Ok(());
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
        Err(Error::new(
            ErrorKind::BackendUnavailable,
            format!("cannot listen on {} again", self.listen),
        ))
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How many multipart uploads are in progress in the bucket `config` names
/// (a raw `ListMultipartUploads`, independent of the store).
#[cfg(feature = "backend-s3")]
pub async fn s3_multipart_uploads(config: &crate::backend::S3Config) -> Result<usize> {
    let backend = crate::backend::OpendalBackend::s3(config).await?;
    let all = crate::backend::Backend::incomplete_uploads(
        &backend,
        std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
    )
    .await?;
    Ok(all.len())
}

/// The storage class S3 reports for the object at `path` of the store on
/// the bucket `config` names (from a raw `ListObjectsV2`).
#[cfg(feature = "backend-s3")]
pub async fn s3_storage_class(config: &crate::backend::S3Config, path: &str) -> Result<Option<String>> {
    let mut url =
        reqwest::Url::parse(&config.bucket_url()?).map_err(|e| Error::invalid_input(format!("S3 endpoint: {e}")))?;
    url.query_pairs_mut()
        .append_pair("list-type", "2")
        .append_pair("prefix", &format!("{}{path}", config.key_prefix()));
    let (_, text) = config
        .signed_call(reqwest::Method::GET, url.as_str(), String::new(), "list objects")
        .await?;
    Ok(crate::backend::s3_xml_text(&text, "StorageClass").map(str::to_owned))
}

/// The Object Lock mode and legal hold S3 reports for the current version of
/// the object at `path` of the store on the bucket `config` names (a raw
/// `HeadObject`): `(Some("COMPLIANCE"), Some("ON"))` and the like.
#[cfg(feature = "backend-s3")]
pub async fn s3_object_lock(config: &crate::backend::S3Config, path: &str) -> Result<(Option<String>, Option<String>)> {
    let head = config.head(path, None).await?;
    let header = |name: &str| head.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    Ok((header("x-amz-object-lock-mode"), header("x-amz-object-lock-legal-hold")))
}
