//! Where a bundle lies and what its resources are called inside it.

/// Longest file part of a resource's name (the position and any archive
/// entry path come on top).
const MAX_FILE_NAME: usize = 100;

/// The prefix every object of bundle `id` lies under: `<prefix>bundles/<id>/`.
pub(crate) fn bundle_prefix(prefix: &str, id: &str) -> String {
    format!("{prefix}bundles/{id}/")
}

/// The zip object of bundle `id` (zip layout).
pub(crate) fn zip_key(prefix: &str, id: &str) -> String {
    format!("{}resources.zip", bundle_prefix(prefix, id))
}

/// The name of the resource at `position` fetched from `url`: the position,
/// then the last segment of the URL's path made safe (`index` when there is
/// none), with an extension from `content_type` when the segment has none.
/// `00001-page.html`, `00002-data.json`, `00003-index.html`.
pub(crate) fn resource_name(position: u64, url: &str, content_type: Option<&str>) -> String {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.split_once('/').map_or("", |(_, path)| path));
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let segment = path.rsplit('/').next().unwrap_or_default();
    let mut file: String = segment
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .take(MAX_FILE_NAME)
        .collect();
    // No name of dots only ("." and ".." are no file names).
    if file.trim_matches('.').is_empty() {
        file = "index".to_owned();
    }
    if !file.contains('.')
        && let Some(ext) = content_type.and_then(extension_of)
    {
        file = format!("{file}.{ext}");
    }
    format!("{position:05}-{file}")
}

/// The name a gzip resource's expanded content takes: without `.gz`
/// (`.tgz` becomes `.tar`).
pub(crate) fn gunzipped_name(name: &str) -> String {
    if let Some(stem) = name.strip_suffix(".tgz") {
        return format!("{stem}.tar");
    }
    match name.strip_suffix(".gz") {
        Some(stem) if !stem.ends_with('-') => stem.to_owned(),
        _ => name.to_owned(),
    }
}

/// A usual extension of `content_type`, if it has one worth adding.
fn extension_of(content_type: &str) -> Option<&'static str> {
    let essence = content_type.split(';').next()?.trim().to_ascii_lowercase();
    match essence.as_str() {
        "text/html" => Some("html"),
        "application/json" => Some("json"),
        "text/plain" => Some("txt"),
        "text/csv" => Some("csv"),
        "application/xml" | "text/xml" => Some("xml"),
        "application/pdf" => Some("pdf"),
        "application/gzip" | "application/x-gzip" => Some("gz"),
        "application/zip" => Some("zip"),
        _ => None,
    }
}

/// The content type a resource's name suggests (for expanded content).
pub(crate) fn guess_type(name: &str) -> Option<String> {
    mime_guess::from_path(name).first_raw().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_url_and_are_safe_keys() {
        assert_eq!(
            resource_name(1, "https://example.com/a/page.html?x=1#top", None),
            "00001-page.html"
        );
        assert_eq!(
            resource_name(2, "https://example.com/", Some("text/html; charset=utf-8")),
            "00002-index.html"
        );
        assert_eq!(
            resource_name(3, "https://api.example.com/v3/siren", Some("application/json")),
            "00003-siren.json"
        );
        assert_eq!(resource_name(4, "https://x/..", None), "00004-index");
        assert_eq!(resource_name(5, "https://x/a%2F..%2Fb c", None), "00005-a_2F.._2Fb_c");
        assert_eq!(resource_name(123_456, "file.bin", None), "123456-file.bin");
        for name in [
            resource_name(6, "https://x/\u{0}\n/..", None),
            resource_name(7, "", None),
        ] {
            crate::key::ObjectKey::new(format!("bundles/id/{name}")).unwrap();
        }
        assert_eq!(gunzipped_name("00001-data.json.gz"), "00001-data.json");
        assert_eq!(gunzipped_name("00001-a.tgz"), "00001-a.tar");
        assert_eq!(gunzipped_name("00001-index"), "00001-index");
    }
}
