//! Fetching URLs into one bundle: streaming GETs, the primary URL first,
//! the others several at once, each response's body streamed into the
//! bundle as it arrives.

use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::{BundleRecord, BundleRef};
use crate::Store;
use crate::body::ByteStream;
use crate::error::{Error, ErrorKind, Result};

/// How [`Store::fetch_bundle`] fetches.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Responses fetched at once (after the primary URL). 8 by default.
    pub jobs: usize,
    /// How long one request may wait for an answer or a chunk. 60 s by default.
    pub timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            jobs: 8,
            timeout: Duration::from_secs(60),
        }
    }
}

impl Store {
    /// Fetch `urls` into one new bundle (the first is its primary URL unless
    /// `bundle` names one) and complete it with `metadata`. Every answer is
    /// kept with its status (a 404 too); a URL that cannot be fetched, or
    /// whose body breaks off, fails the fetch and the bundle is aborted.
    pub async fn fetch_bundle(
        &self,
        urls: &[String],
        mut bundle: BundleRef,
        metadata: serde_json::Map<String, serde_json::Value>,
        options: &FetchOptions,
    ) -> Result<BundleRecord> {
        let Some(first) = urls.first() else {
            return Err(Error::invalid_input("give at least one URL to fetch"));
        };
        if options.jobs == 0 {
            return Err(Error::invalid_input("jobs must be at least 1"));
        }
        for url in urls {
            reqwest::Url::parse(url)
                .map_err(|e| Error::invalid_input(format!("invalid url {:?}: {e}", crate::key::printable(url))))?;
        }
        let client = reqwest::Client::builder()
            .connect_timeout(options.timeout)
            .read_timeout(options.timeout)
            .build()
            .map_err(|e| Error::new(ErrorKind::Io, format!("starting the HTTP client: {e}")))?;
        bundle.primary_url.get_or_insert_with(|| first.clone());
        let context = self.start_bundle(bundle).await?;
        let fetch_one = |url: &String| {
            let client = client.clone();
            let context = &context;
            let url = url.clone();
            async move {
                let (status, content_type, body) = get(&client, &url).await?;
                context.add_resource(&url, content_type.as_deref(), status, body).await
            }
        };
        let fetched: Result<()> = async {
            fetch_one(first).await?;
            futures::stream::iter(urls[1..].iter())
                .map(fetch_one)
                .buffer_unordered(options.jobs)
                .try_for_each(|_| async { Ok(()) })
                .await
        }
        .await;
        match fetched {
            Ok(()) => context.complete(metadata).await,
            Err(e) => {
                let _ = context.abort().await;
                Err(e)
            }
        }
    }
}

/// GET `url`: its status, content type and body as a stream.
async fn get(client: &reqwest::Client, url: &str) -> Result<(u16, Option<String>, ByteStream)> {
    let failed = |e: reqwest::Error| Error::new(ErrorKind::Io, format!("fetching {url}: {e}")).retryable();
    let response = client.get(url).send().await.map_err(failed)?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // The bundle names the resource in a body's error.
    let body = futures::stream::try_unfold(Some(response), |state| async move {
        let Some(mut response) = state else {
            return Ok(None);
        };
        match response.chunk().await {
            Ok(Some(chunk)) => Ok(Some((chunk, Some(response)))),
            Ok(None) => Ok(None),
            Err(e) => Err(Error::new(ErrorKind::Io, format!("the body broke off: {e}"))),
        }
    })
    .map_ok(Bytes::from)
    .boxed();
    Ok((status, content_type, body))
}
