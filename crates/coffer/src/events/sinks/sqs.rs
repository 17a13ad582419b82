//! Amazon SQS: each event sent as a message, signed with AWS Signature Version 4.
//!
//! `SendMessage` goes over the AWS JSON 1.0 protocol with the CloudEvents
//! document as the body and the event's type and id as the message
//! attributes `type` and `id`. A FIFO queue (its URL ends in `.fifo`) also
//! gets the event's subject (or `coffer`) as the message group and the event
//! id as the deduplication id, so SQS drops a redelivery within its
//! five-minute window.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{REDACTED, require};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Event, Sink};
use crate::sigv4::{self, Credentials};

/// How long SQS has to answer a call.
const SQS_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of an SQS hook.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

/// Signed calls of the SQS JSON API for one configuration.
pub(crate) struct SqsClient {
    config: SqsConfig,
    /// Where calls go: the endpoint, or the queue URL's origin.
    endpoint: reqwest::Url,
    http: reqwest::Client,
}

impl SqsClient {
    /// A client for `config`, sending through `http`.
    pub(crate) fn new(config: SqsConfig, http: reqwest::Client) -> Result<Self> {
        config.validate()?;
        let target = config.endpoint.as_deref().unwrap_or(&config.queue_url);
        let mut endpoint = reqwest::Url::parse(target)
            .map_err(|e| Error::invalid_input(format!("invalid SQS endpoint {target:?}: {e}")))?;
        require(matches!(endpoint.scheme(), "http" | "https"), || {
            format!("SQS endpoint must be http:// or https://, not {target:?}")
        })?;
        if config.endpoint.is_none() {
            // The JSON protocol posts to the service's root; the queue URL goes in the body.
            endpoint.set_path("/");
        }
        endpoint.set_query(None);
        endpoint.set_fragment(None);
        if endpoint.host_str().is_none() {
            return Err(Error::invalid_input(format!("SQS endpoint {target:?} has no host")));
        }
        Ok(SqsClient { config, endpoint, http })
    }

    /// Call `action` (`SendMessage`, `ReceiveMessage` ...) with a JSON body;
    /// the answer's JSON (`{}` when empty). An error answer's message names
    /// AWS's error code and message.
    pub(crate) async fn call(&self, action: &str, body: &Value) -> Result<Value> {
        let target = format!("AmazonSQS.{action}");
        let credentials = Credentials {
            access_key_id: &self.config.access_key_id,
            secret_access_key: &self.config.secret_access_key,
        };
        let call = sigv4::Call {
            method: reqwest::Method::POST,
            url: &self.endpoint,
            headers: &[
                ("content-type", "application/x-amz-json-1.0"),
                ("x-amz-target", &target),
            ],
            body: body.to_string(),
            session_token: self.config.session_token.as_deref(),
            region: &self.config.region,
            service: "sqs",
        };
        let request = sigv4::signed_request(&self.http, &credentials, call).timeout(SQS_TIMEOUT);
        let response = request.send().await.map_err(|e| {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "cannot connect"
            } else {
                "request failed"
            };
            Error::new(
                ErrorKind::Delivery,
                format!("SQS {action} to {}: {what}", self.endpoint),
            )
            .retryable()
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|_| Error::new(ErrorKind::Delivery, format!("SQS {action}: the answer broke off")).retryable())?;
        let answer: Value = if text.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| json!({ "message": text.chars().take(200).collect::<String>() }))
        };
        if status.is_success() {
            return Ok(answer);
        }
        // `__type` is `com.amazonaws.sqs#QueueDoesNotExist` or just `QueueDoesNotExist`.
        let code = answer
            .get("__type")
            .and_then(Value::as_str)
            .map_or("unknown error", |t| t.rsplit('#').next().unwrap_or(t));
        let message = answer
            .get("message")
            .or_else(|| answer.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let error = Error::new(
            ErrorKind::Delivery,
            format!("SQS {action}: HTTP {status} {code}: {message}"),
        );
        let throttled = code.contains("Throttl") || code == "RequestThrottled";
        Err(if status.is_server_error() || throttled {
            error.retryable()
        } else {
            error
        })
    }
}

/// Sends events to an SQS queue.
pub(crate) struct SqsSink {
    name: String,
    client: SqsClient,
    fifo: bool,
}

impl SqsSink {
    /// A sink for hook `name`, sending through `http` (shared with other hooks).
    pub(crate) fn new(name: &str, config: SqsConfig, http: reqwest::Client) -> Result<Self> {
        let fifo = config.queue_url.trim_end_matches('/').ends_with(".fifo");
        Ok(SqsSink {
            name: name.to_owned(),
            client: SqsClient::new(config, http)?,
            fifo,
        })
    }

    /// The `SendMessage` request for one event: its CloudEvents document,
    /// or for `bundle.completed` the message the users' pipelines read
    /// (the event's data); the `id` attribute carries the event's id either way.
    fn send_message(&self, event: &Event, payload: &str) -> Value {
        let attribute = |value: &str| json!({ "DataType": "String", "StringValue": value });
        let message = match event.event_type.as_str() {
            crate::events::types::BUNDLE_COMPLETED => event.data.to_string(),
            _ => payload.to_owned(),
        };
        let mut body = json!({
            "QueueUrl": self.client.config.queue_url,
            "MessageBody": message,
            "MessageAttributes": { "type": attribute(&event.event_type), "id": attribute(&event.id) },
        });
        if self.fifo {
            body["MessageGroupId"] = json!(event.subject.as_deref().unwrap_or("coffer"));
            body["MessageDeduplicationId"] = json!(event.id);
        }
        body
    }
}

impl fmt::Display for SqsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sqs hook {} ({})", self.name, self.client.config.queue_url)
    }
}

impl fmt::Debug for SqsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqsSink")
            .field("name", &self.name)
            .field("config", &self.client.config)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Sink for SqsSink {
    async fn deliver(&self, event: &Event, payload: &str) -> Result<()> {
        let body = self.send_message(event, payload);
        match self.client.call("SendMessage", &body).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let retryable = e.is_retryable();
                let error = Error::new(ErrorKind::Delivery, format!("{self}: {}", e.message()));
                Err(if retryable { error.retryable() } else { error })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(queue_url: &str, endpoint: Option<&str>) -> SqsConfig {
        SqsConfig {
            queue_url: queue_url.into(),
            region: "eu-west-1".into(),
            endpoint: endpoint.map(str::to_owned),
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "very-secret-key".into(),
            session_token: Some("very-secret-token".into()),
        }
    }

    #[test]
    fn calls_go_to_the_service_root_or_the_endpoint() {
        let aws = SqsClient::new(
            config("https://sqs.eu-west-1.amazonaws.com/123456789012/events", None),
            reqwest::Client::new(),
        )
        .unwrap();
        assert_eq!(aws.endpoint.as_str(), "https://sqs.eu-west-1.amazonaws.com/");
        assert_eq!(crate::sigv4::host_header(&aws.endpoint), "sqs.eu-west-1.amazonaws.com");
        let local = SqsClient::new(
            config(
                "http://127.0.0.1:5000/123456789012/events",
                Some("http://127.0.0.1:5000"),
            ),
            reqwest::Client::new(),
        )
        .unwrap();
        assert_eq!(
            (
                local.endpoint.as_str(),
                crate::sigv4::host_header(&local.endpoint).as_str()
            ),
            ("http://127.0.0.1:5000/", "127.0.0.1:5000")
        );
    }

    #[test]
    fn fifo_queues_get_a_group_and_a_deduplication_id() {
        let event = Event::new("object.archived", Some("k/1"), json!({ "key": "k/1" }));
        let payload = event.to_json();
        let standard = SqsSink::new(
            "q",
            config("https://sqs.eu-west-1.amazonaws.com/1/events", None),
            reqwest::Client::new(),
        )
        .unwrap();
        let body = standard.send_message(&event, &payload);
        assert_eq!(body["MessageBody"], json!(payload));
        assert_eq!(
            body["MessageAttributes"]["type"]["StringValue"],
            json!("object.archived")
        );
        assert_eq!(body["MessageAttributes"]["id"]["StringValue"], json!(event.id));
        assert!(body.get("MessageGroupId").is_none());
        let fifo = SqsSink::new(
            "q",
            config("https://sqs.eu-west-1.amazonaws.com/1/events.fifo", None),
            reqwest::Client::new(),
        )
        .unwrap();
        let body = fifo.send_message(&event, &payload);
        assert_eq!(body["MessageGroupId"], json!("k/1"));
        assert_eq!(body["MessageDeduplicationId"], json!(event.id));
        let shown = format!("{fifo} {fifo:?}");
        assert!(
            shown.starts_with("sqs hook q (https://sqs.eu-west-1.amazonaws.com/1/events.fifo)"),
            "{shown}"
        );
        assert!(!shown.contains("very-secret"), "{shown}");
    }
}
