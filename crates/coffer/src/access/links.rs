//! Links to one object through `coffer serve`, for backends that cannot
//! presign (local disk, NAS): `PUBLIC_URL/links/KEY?method=get&version=V&
//! expires=UNIX&signature=HEX`, where the signature is the server key's
//! HMAC over the method, key, version and expiry. Changing any of them, or
//! using the link after its expiry, gets it refused.

use super::ServerKey;
use crate::error::{Error, ErrorKind, Result};
use crate::time::Timestamp;

/// The purpose the server key signs links under.
const PURPOSE: &str = "link";

/// What a link lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkMethod {
    /// Read a version (`GET`, and `HEAD`).
    Get,
    /// Write the next version (`PUT`).
    Put,
}

impl LinkMethod {
    /// Its name in a link: `get` or `put`.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkMethod::Get => "get",
            LinkMethod::Put => "put",
        }
    }

    /// The method a link names (`get` or `put`).
    pub fn parse(text: &str) -> Result<LinkMethod> {
        match text {
            "get" => Ok(LinkMethod::Get),
            "put" => Ok(LinkMethod::Put),
            _ => Err(Error::invalid_input(format!(
                "link method {text:?}: expected get or put"
            ))),
        }
    }
}

/// One link: what it allows, on what, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// What it lets its holder do.
    pub method: LinkMethod,
    /// The object's key.
    pub key: String,
    /// The version it reads (`None`: the latest when the link is used; for
    /// `Put`, always `None`).
    pub version: Option<String>,
    /// When it stops working, in seconds since the Unix epoch.
    pub expires: i64,
}

impl Link {
    /// The link as a URL under `public_url`, signed with `key`.
    pub fn to_url(&self, public_url: &str, key: &ServerKey) -> Result<String> {
        let mut url = reqwest::Url::parse(public_url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "server.public_url {public_url:?}: expected an http or https URL, like http://127.0.0.1:8080"
                ))
            })?;
        url.set_query(None);
        url.path_segments_mut()
            .map_err(|()| Error::invalid_input(format!("server.public_url {public_url:?} cannot take a path")))?
            .pop_if_empty()
            .push("links")
            .extend(self.key.split('/'));
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("method", self.method.as_str());
            if let Some(version) = &self.version {
                query.append_pair("version", version);
            }
            query
                .append_pair("expires", &self.expires.to_string())
                .append_pair("signature", &hex::encode(key.tag(PURPOSE, &self.message())));
        }
        Ok(url.into())
    }

    /// Check the link's `signature` (hex) at `now`: `Unauthorized` when it
    /// was altered, made with another key, or has expired.
    pub fn verify(&self, key: &ServerKey, signature: &str, now: Timestamp) -> Result<()> {
        let tag = hex::decode(signature).unwrap_or_default();
        if !key.verify(PURPOSE, &self.message(), &tag) {
            return Err(Error::new(
                ErrorKind::Unauthorized,
                "the link's signature does not match (altered, or made with another server key)",
            ));
        }
        if self.expires.saturating_mul(1_000_000) <= now.as_micros() {
            return Err(Error::new(ErrorKind::Unauthorized, "the link expired"));
        }
        Ok(())
    }

    /// What is signed: the fields one per line (keys hold no line breaks).
    fn message(&self) -> Vec<u8> {
        format!(
            "{}\n{}\n{}\n{}",
            self.method.as_str(),
            self.key,
            self.version.as_deref().unwrap_or(""),
            self.expires
        )
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ServerKey {
        ServerKey::from_hex(&"07".repeat(32)).unwrap()
    }

    fn signature_of(url: &str) -> String {
        let url = reqwest::Url::parse(url).unwrap();
        url.query_pairs()
            .find(|(n, _)| n == "signature")
            .unwrap()
            .1
            .into_owned()
    }

    #[test]
    fn a_link_names_the_object_and_verifies_until_it_expires() {
        let link = Link {
            method: LinkMethod::Get,
            key: "reports/q 1.csv".into(),
            version: Some("v1".into()),
            expires: 2_000,
        };
        let url = link.to_url("http://127.0.0.1:8080/", &key()).unwrap();
        assert!(
            url.starts_with(
                "http://127.0.0.1:8080/links/reports/q%201.csv?method=get&version=v1&expires=2000&signature="
            ),
            "{url}"
        );
        let signature = signature_of(&url);
        assert!(
            link.verify(&key(), &signature, Timestamp::from_micros(1_999_000_000))
                .is_ok()
        );
        let expired = link
            .verify(&key(), &signature, Timestamp::from_micros(2_000_000_000))
            .unwrap_err();
        assert_eq!(expired.message(), "the link expired");
    }

    #[test]
    fn an_altered_link_is_refused() {
        let link = Link {
            method: LinkMethod::Get,
            key: "a".into(),
            version: None,
            expires: 2_000,
        };
        let signature = signature_of(&link.to_url("https://coffer.example/base", &key()).unwrap());
        let now = Timestamp::from_micros(0);
        for altered in [
            Link {
                method: LinkMethod::Put,
                ..link.clone()
            },
            Link {
                key: "b".into(),
                ..link.clone()
            },
            Link {
                version: Some("v".into()),
                ..link.clone()
            },
            Link {
                expires: 9_999,
                ..link.clone()
            },
        ] {
            assert_eq!(
                altered.verify(&key(), &signature, now).unwrap_err().kind(),
                ErrorKind::Unauthorized
            );
        }
        assert!(
            link.verify(&ServerKey::from_hex(&"08".repeat(32)).unwrap(), &signature, now)
                .is_err()
        );
        assert!(link.verify(&key(), "zz", now).is_err());
        assert!(Link::to_url(&link, "ftp://x", &key()).is_err());
    }
}
