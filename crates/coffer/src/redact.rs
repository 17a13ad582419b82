//! Hiding secrets in URLs before they reach a log, a message or an event.
//!
//! ```
//! use coffer::redact::redact_url;
//!
//! assert_eq!(redact_url("postgres://app:s3cret@db/coffer"), "postgres://app:***@db/coffer");
//! ```

/// The URL with any password (in the user part, or a `password=` query
/// parameter) replaced by `***`, for logs and messages; control characters
/// are escaped (`\n`), so a message showing a mistyped URL stays one line.
pub fn redact_url(url: &str) -> String {
    // A URL with credentials is sealed in an encrypted store's catalog.
    if crate::crypto::secrets::is_sealed(url) {
        return "*** (sealed)".to_owned();
    }
    let mut shown = String::with_capacity(url.len());
    for c in hide_password(url).chars() {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

/// Whether `url` carries a password (in its user part or a `password=` parameter).
pub(crate) fn has_password(url: &str) -> bool {
    hide_password(url) != url
}

fn hide_password(url: &str) -> String {
    let url = match url.split_once('?') {
        Some((base, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=***"),
                    _ => param.to_owned(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
        None => url.to_owned(),
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return url;
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{path}")
        }
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_hidden_and_the_rest_kept() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/coffer"),
            "postgres://app:***@db:5432/coffer"
        );
        assert_eq!(
            redact_url("postgres://db/coffer?user=app&password=s3cret&sslmode=require"),
            "postgres://db/coffer?user=app&password=***&sslmode=require"
        );
        assert_eq!(redact_url("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
    }
}
