//! Planning lifecycle rules over a whole catalog, a page of versions at a
//! time: every key's versions go to [`plan_key`] together. Pages carry no
//! blob columns; where a transition is due, the content's placement is
//! looked up for those versions only.

use std::collections::BTreeSet;

use super::{LifecyclePlan, LifecycleRule, plan_key};
use crate::catalog::{Catalog, ObjectVersion};
use crate::error::Result;
use crate::time::Timestamp;

/// Versions read per catalog round trip while planning.
const PAGE: usize = 5_000;

/// Plan `rules` at `now` over every version in `catalog` they may select,
/// reading a page of versions at a time (the range all rules' prefixes
/// share); the catalog reads the next page while this one is planned.
pub async fn plan_catalog(catalog: &dyn Catalog, rules: &[LifecycleRule], now: Timestamp) -> Result<LifecyclePlan> {
    let mut plan = LifecyclePlan {
        at: Some(now),
        ..LifecyclePlan::default()
    };
    if rules.is_empty() {
        return Ok(plan);
    }
    let prefix = common_prefix(rules.iter().map(|rule| rule.prefix.as_str()));
    let with_tags = rules.iter().any(|rule| !rule.tags.is_empty());
    // A key's versions, oldest first as the pages come; planned newest first.
    let mut key_versions: Vec<ObjectVersion> = Vec::new();
    let plan_and_clear = |versions: &mut Vec<ObjectVersion>, plan: &mut LifecyclePlan| {
        versions.reverse();
        plan_key(rules, versions, now, plan);
        versions.clear();
    };
    let read_after = |after: Option<(String, String)>| {
        let prefix = prefix.as_str();
        async move {
            let cursor = after.as_ref().map(|(k, v)| (k.as_str(), v.as_str()));
            catalog.versions_page(prefix, cursor, PAGE, with_tags).await
        }
    };
    let mut page = read_after(None).await?;
    loop {
        let after = page.last().map(|v| (v.key.to_string(), v.version_id.to_string()));
        let next = (page.len() == PAGE).then(|| read_after(after));
        let planned = async {
            with_placements(catalog, rules, now, &mut page).await?;
            for version in page {
                if key_versions.first().is_some_and(|first| first.key != version.key) {
                    plan_and_clear(&mut key_versions, &mut plan);
                }
                key_versions.push(version);
            }
            Ok::<(), crate::Error>(())
        };
        let (next, planned) = futures::join!(futures::future::OptionFuture::from(next), planned);
        planned?;
        match next.transpose()? {
            Some(read) => page = read,
            None => {
                plan_and_clear(&mut key_versions, &mut plan);
                return Ok(plan);
            }
        }
    }
}

/// Fill in where the content lies (`placement`) of the versions of `page`
/// that a rule would transition at `now`: a transition already made is not
/// planned again.
async fn with_placements(
    catalog: &dyn Catalog,
    rules: &[LifecycleRule],
    now: Timestamp,
    page: &mut [ObjectVersion],
) -> Result<()> {
    let due = |version: &ObjectVersion| {
        rules
            .iter()
            .any(|rule| rule.selects_key(version.key.as_str()) && rule.transition_due(version, now).is_some())
    };
    let sha256s: BTreeSet<String> = page
        .iter()
        .filter(|v| due(v))
        .filter_map(|v| v.sha256.clone())
        .collect();
    if sha256s.is_empty() {
        return Ok(());
    }
    let placed = catalog
        .blob_placements(&sha256s.into_iter().collect::<Vec<_>>())
        .await?;
    for version in page.iter_mut() {
        if let Some(placement) = version.sha256.as_ref().and_then(|sha256| placed.get(sha256)) {
            version.placement = Some(placement.clone());
        }
    }
    Ok(())
}

/// The longest prefix all of `prefixes` start with.
fn common_prefix<'a>(mut prefixes: impl Iterator<Item = &'a str>) -> String {
    let Some(first) = prefixes.next() else {
        return String::new();
    };
    let mut common = first;
    for prefix in prefixes {
        let shared = common
            .char_indices()
            .zip(prefix.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((i, a), _)| i + a.len_utf8());
        common = &common[..shared];
    }
    common.to_owned()
}

#[cfg(test)]
mod tests {
    use super::common_prefix;

    #[test]
    fn plans_read_the_range_every_rule_shares() {
        assert_eq!(common_prefix(["tmp/a/", "tmp/b/"].into_iter()), "tmp/");
        assert_eq!(common_prefix(["tmp/", "docs/"].into_iter()), "");
        assert_eq!(common_prefix(["invoices/"].into_iter()), "invoices/");
        assert_eq!(common_prefix(std::iter::empty()), "");
    }
}
