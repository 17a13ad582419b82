//! AWS Signature Version 4, for the few AWS calls coffer makes itself
//! (SQS messages, creating an S3 bucket).
//!
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>:
//! a canonical request (method, path, query, the signed headers, the payload's
//! SHA-256) is hashed into a string to sign, which is signed with a key
//! derived from the secret, the date, the region and the service.

use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The credentials a request is signed with.
pub(crate) struct Credentials<'a> {
    /// Access key id.
    pub access_key_id: &'a str,
    /// Secret access key.
    pub secret_access_key: &'a str,
}

/// What is signed: one request to one service in one region.
pub(crate) struct Request<'a> {
    /// `GET`, `POST` ...
    pub method: &'a str,
    /// The request path as sent (already percent-encoded, as `Url::path` gives it).
    pub path: &'a str,
    /// The canonical query string ([`canonical_query`]), empty for none.
    pub query: &'a str,
    /// The headers to sign, with `host` and `x-amz-date` among them; names in any case.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub payload: &'a [u8],
    /// The region, `us-east-1`.
    pub region: &'a str,
    /// The service, `sqs`.
    pub service: &'a str,
    /// The time of the request as in `x-amz-date`: `20150830T123600Z`.
    pub amz_date: &'a str,
}

/// `x-amz-date` for `time`: `20150830T123600Z`.
pub(crate) fn amz_date(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect()
}

/// The `Authorization` header value for `request`.
pub(crate) fn authorization(credentials: &Credentials<'_>, request: &Request<'_>) -> String {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.to_ascii_lowercase(),
                value.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    headers.sort();
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method,
        canonical_path(request.path),
        request.query,
        hex::encode(Sha256::digest(request.payload)),
    );
    let date = request.amz_date.get(..8).unwrap_or_default();
    let scope = format!("{date}/{}/{}/aws4_request", request.region, request.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        request.amz_date,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{}", credentials.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [request.region, request.service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.access_key_id
    )
}

/// Where a signed request goes and what it carries.
pub(crate) struct Call<'a> {
    /// `POST`, `PUT` ...
    pub method: reqwest::Method,
    /// The full URL (its path needs no further encoding for S3: coffer signs
    /// only paths of plain bucket names there).
    pub url: &'a reqwest::Url,
    /// Headers to send and sign besides `host`, `x-amz-date` and the session token's.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub body: String,
    /// Temporary credentials' session token, sent as `x-amz-security-token`.
    pub session_token: Option<&'a str>,
    /// The region.
    pub region: &'a str,
    /// The service: `sqs`, `s3`.
    pub service: &'a str,
}

/// The `host` header a request to `url` sends (and signs): `host[:port]`,
/// the port only when the URL names one that is not its scheme's default.
pub(crate) fn host_header(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// `call` as a request of `http`, its headers signed now; the caller adds a
/// timeout and sends it.
pub(crate) fn signed_request(
    http: &reqwest::Client,
    credentials: &Credentials<'_>,
    call: Call<'_>,
) -> reqwest::RequestBuilder {
    let host = host_header(call.url);
    let amz_date = amz_date(SystemTime::now());
    let mut headers = call.headers.to_vec();
    headers.push(("host", host.as_str()));
    headers.push(("x-amz-date", amz_date.as_str()));
    if let Some(token) = call.session_token {
        headers.push(("x-amz-security-token", token));
    }
    let query = canonical_query(call.url);
    let authorization = authorization(
        credentials,
        &Request {
            method: call.method.as_str(),
            path: call.url.path(),
            query: &query,
            headers: &headers,
            payload: call.body.as_bytes(),
            region: call.region,
            service: call.service,
            amz_date: &amz_date,
        },
    );
    let mut request = http.request(call.method, call.url.clone());
    // reqwest sets Host itself, from the same URL.
    for (name, value) in headers.iter().filter(|(name, _)| *name != "host") {
        request = request.header(*name, *value);
    }
    request.header("authorization", authorization).body(call.body)
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this never falls back to the empty default.
    Hmac::<Sha256>::new_from_slice(key)
        .map(|mac| mac.chain_update(data).finalize().into_bytes().to_vec())
        .unwrap_or_default()
}

/// The canonical path of every service but S3: each segment of the path as
/// sent is percent-encoded once more (so `%20` becomes `%2520`).
fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    path.split('/').map(uri_encode).collect::<Vec<_>>().join("/")
}

/// The query of `url` as signatures want it: each name and value
/// percent-encoded, sorted, `name=value` joined by `&` (`?uploads` gives `uploads=`).
pub(crate) fn canonical_query(url: &reqwest::Url) -> String {
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(name, value)| (uri_encode(&name), uri_encode(&value)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encode everything but RFC 3986's unreserved characters.
fn uri_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDENTIALS: Credentials<'static> = Credentials {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    };

    #[test]
    fn signs_the_get_vanilla_case_of_the_aws_test_suite() {
        let request = Request {
            query: "",
            method: "GET",
            path: "/",
            headers: &[("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
            payload: b"",
            region: "us-east-1",
            service: "service",
            amz_date: "20150830T123600Z",
        };
        assert_eq!(
            authorization(&CREDENTIALS, &request),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn signs_an_sqs_json_call_as_botocore_does() {
        // The expected value is botocore 1.44's `SigV4Auth` signing the same
        // request at the same time: a POST with a body and a session token.
        let body =
            r#"{"QueueUrl":"https://sqs.eu-west-1.amazonaws.com/123456789012/events","MessageBody":"{\"id\":\"1\"}"}"#;
        let request = Request {
            query: "",
            method: "POST",
            path: "/",
            headers: &[
                ("Content-Type", "application/x-amz-json-1.0"),
                ("X-Amz-Target", "AmazonSQS.SendMessage"),
                ("X-Amz-Date", "20150830T123600Z"),
                ("X-Amz-Security-Token", "session-token-example"),
                ("host", "sqs.eu-west-1.amazonaws.com"),
            ],
            payload: body.as_bytes(),
            region: "eu-west-1",
            service: "sqs",
            amz_date: "20150830T123600Z",
        };
        assert_eq!(
            authorization(&CREDENTIALS, &request),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/sqs/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, \
             Signature=34dcba4778fe88357a28d32e5af405dfe98593aba56dd75a98365ab538722ea4"
        );
    }

    #[test]
    fn dates_are_written_the_amz_way() {
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160);
        assert_eq!(amz_date(time), "20150830T123600Z");
    }

    #[test]
    fn paths_are_encoded_once_more() {
        assert_eq!(canonical_path(""), "/");
        assert_eq!(canonical_path("/"), "/");
        assert_eq!(canonical_path("/123/my%20queue"), "/123/my%2520queue");
    }
}
