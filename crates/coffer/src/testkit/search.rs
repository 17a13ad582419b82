//! The search checks: what a catalog's full-text search finds, and in which order.

use std::collections::{BTreeMap, BTreeSet};

use super::{Context, Outcome, blob_version, marker, unique};
use crate::catalog::{
    Annotation, Catalog, Comment, NewVersion, ObjectVersion, PrunePolicy, SearchHit, SearchPage, SearchQuery,
    search_words,
};
use crate::error::{ErrorKind, Result};
use crate::key::{ObjectKey, Tags};
use crate::time::Timestamp;

/// What [`load_search_fixture`] wrote.
#[derive(Debug, Clone)]
pub struct SearchFixture {
    /// Every key starts with this (the prefix given, and `/`).
    pub root: String,
    /// The versions written, by label, as committed (before later changes).
    pub versions: BTreeMap<&'static str, ObjectVersion>,
}

impl SearchFixture {
    /// The label of a version of the fixture, or its key for any other.
    fn label(&self, version: &ObjectVersion) -> String {
        self.versions
            .iter()
            .find(|(_, v)| v.key == version.key && v.version_id == version.version_id)
            .map_or_else(|| version.key.to_string(), |(label, _)| (*label).to_owned())
    }

    fn version(&self, label: &str) -> std::result::Result<&ObjectVersion, String> {
        self.versions
            .get(label)
            .ok_or_else(|| format!("no {label} in the fixture"))
    }
}

/// Midnight UTC on 2024-01-01 plus `days`: the creation times of the fixture.
pub fn search_fixture_day(days: i64) -> Timestamp {
    const DAY: i64 = 86_400_000_000;
    Timestamp::from_micros(1_704_067_200_000_000 + days * DAY)
}

/// Write the versions the search checks look for, all under `prefix/`, each
/// created on its own day of January 2024 ([`search_fixture_day`]):
///
/// | label | key | content type | metadata | tags | comment | day |
/// |---|---|---|---|---|---|---|
/// | inv1 | invoices/2024/inv_001.pdf | application/pdf | department=finance, customer=Acme Corp | qc_status=approved | Initial upload after QC review | 1 |
/// | inv2 | invoices/2024/inv-002.pdf | application/pdf | department=finance | qc_status=pending | | 2 |
/// | report | reports/q1.summary.csv | text/csv | department=sales, title=Quarterly Revenue | | | 3 |
/// | lease1 | contracts/lease.txt | text/plain | status=draft | | | 4 |
/// | lease2 | contracts/lease.txt (overwrites lease1) | text/plain | status=signed | | Countersigned by the landlord | 5 |
/// | memo | old/obsolete_memo.txt | text/plain | | | | 6 |
/// | memo_deleted | old/obsolete_memo.txt (a delete marker) | | | | | 7 |
/// | book | notes/किताब.txt | text/plain | lang=hi | | | 8 |
/// | scan1 | scans/IMG_0042.JPG | image/jpeg | camera=Canon | batch_id=b7 | | 9 |
/// | scan2 | scans/IMG_0042.JPG (overwrites scan1) | image/jpeg | camera=Nikon | batch_id=b7 | | 10 |
pub async fn load_search_fixture(catalog: &dyn Catalog, prefix: &str) -> Result<SearchFixture> {
    type Row = (
        &'static str,
        &'static str,
        Option<&'static str>,
        &'static [(&'static str, &'static str)],
        &'static [(&'static str, &'static str)],
        Option<&'static str>,
    );
    const ROWS: [Row; 10] = [
        (
            "inv1",
            "invoices/2024/inv_001.pdf",
            Some("application/pdf"),
            &[("department", "finance"), ("customer", "Acme Corp")],
            &[("qc_status", "approved")],
            Some("Initial upload after QC review"),
        ),
        (
            "inv2",
            "invoices/2024/inv-002.pdf",
            Some("application/pdf"),
            &[("department", "finance")],
            &[("qc_status", "pending")],
            None,
        ),
        (
            "report",
            "reports/q1.summary.csv",
            Some("text/csv"),
            &[("department", "sales"), ("title", "Quarterly Revenue")],
            &[],
            None,
        ),
        (
            "lease1",
            "contracts/lease.txt",
            Some("text/plain"),
            &[("status", "draft")],
            &[],
            None,
        ),
        (
            "lease2",
            "contracts/lease.txt",
            Some("text/plain"),
            &[("status", "signed")],
            &[],
            Some("Countersigned by the landlord"),
        ),
        ("memo", "old/obsolete_memo.txt", Some("text/plain"), &[], &[], None),
        ("memo_deleted", "old/obsolete_memo.txt", None, &[], &[], None),
        (
            "book",
            "notes/किताब.txt",
            Some("text/plain"),
            &[("lang", "hi")],
            &[],
            None,
        ),
        (
            "scan1",
            "scans/IMG_0042.JPG",
            Some("image/jpeg"),
            &[("camera", "Canon")],
            &[("batch_id", "b7")],
            None,
        ),
        (
            "scan2",
            "scans/IMG_0042.JPG",
            Some("image/jpeg"),
            &[("camera", "Nikon")],
            &[("batch_id", "b7")],
            None,
        ),
    ];
    let root = format!("{prefix}/");
    let mut versions = BTreeMap::new();
    for (day, (label, name, content_type, metadata, tags, comment)) in ROWS.into_iter().enumerate() {
        let key = ObjectKey::new(format!("{root}{name}"))?;
        let created_at = search_fixture_day(day as i64 + 1);
        let base = match content_type {
            Some(_) => blob_version(&key, &format!("{root}{label}"), Some(&unique("blobs/search"))),
            None => marker(&key),
        };
        let version = NewVersion {
            content_type: content_type.map(str::to_owned),
            metadata: metadata.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            tags: tags.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            comments: comment
                .map(|text| Comment {
                    at: created_at,
                    actor: "conformance".into(),
                    text: text.into(),
                })
                .into_iter()
                .collect(),
            created_at,
            ..base
        };
        versions.insert(label, catalog.commit_version(version).await?);
    }
    Ok(SearchFixture { root, versions })
}

/// Hits are best first, equal scores in key order, then newest version first.
fn check_hit_order(hits: &[SearchHit]) -> Outcome {
    for pair in hits.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let ordered = a.score > b.score
            || (a.score == b.score
                && (a.version.key.as_str() < b.version.key.as_str()
                    || (a.version.key == b.version.key && a.version.version_id > b.version.version_id)));
        check!(
            ordered,
            "hits out of order: {} {} ({}) before {} {} ({})",
            a.version.key,
            a.version.version_id,
            a.score,
            b.version.key,
            b.version.version_id,
            b.score
        );
    }
    Ok(())
}

/// Full-text search finds exactly the versions its contract promises, over
/// [`load_search_fixture`]: words of keys (split at `/ _ - .`), metadata
/// values, tag names and values, and comments, as prefixes, all required;
/// every filter; latest versions or all of them, never delete markers; changes
/// by annotate, delete_version and prune seen at once; pages that visit every
/// hit once; bad input refused.
pub async fn catalog_search(catalog: &dyn Catalog) -> Outcome {
    let fixture = load_search_fixture(catalog, &unique("cat/search"))
        .await
        .ctx("load the search fixture")?;
    let root = fixture.root.clone();
    let query = |text: &str| SearchQuery {
        text: text.into(),
        prefix: Some(root.clone()),
        limit: 1000,
        ..SearchQuery::default()
    };
    let pairs = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    };
    let found = |query: SearchQuery| {
        let fixture = &fixture;
        async move {
            let page: SearchPage = catalog.search(&query).await.ctx(&format!("search {query:?}"))?;
            check_hit_order(&page.hits)?;
            check!(page.next_cursor.is_none(), "one page of at most 1000 hits has a cursor");
            Ok::<_, String>(page.hits.iter().map(|h| fixture.label(&h.version)).collect::<Vec<_>>())
        }
    };
    let expect = |what: &str, got: Vec<String>, expected: &[&str]| -> Outcome {
        let got: BTreeSet<&str> = got.iter().map(String::as_str).collect();
        let expected: BTreeSet<&str> = expected.iter().copied().collect();
        check!(got == expected, "{what}: found {got:?}, expected {expected:?}");
        Ok(())
    };
    let words = [
        ("inv", &["inv1", "inv2"][..]),
        ("001", &["inv1"]),
        ("002", &["inv2"]),
        ("summary", &["report"]),
        ("2024", &["inv1", "inv2"]),
        ("acme", &["inv1"]),
        ("Revenue", &["report"]),
        ("approved", &["inv1"]),
        ("status", &["inv1", "inv2"]),
        ("review", &["inv1"]),
        ("landlord", &["lease2"]),
        ("NIKON img", &["scan2"]),
        ("finance 001", &["inv1"]),
        ("finance quarterly", &[]),
        ("nvoice", &[]),
        ("किता", &["book"]),
        ("ताब", &[]),
        ("draft", &[]),
        ("obsolete", &[]),
    ];
    for (text, expected) in words {
        expect(&format!("words {text:?}"), found(query(text)).await?, expected)?;
    }
    let filtered = [
        (
            "tag qc_status=approved",
            SearchQuery {
                tags: pairs(&[("qc_status", "approved")]),
                ..query("")
            },
            &["inv1"][..],
        ),
        (
            "jpg with tag batch_id=b7",
            SearchQuery {
                tags: pairs(&[("batch_id", "b7")]),
                ..query("jpg")
            },
            &["scan2"],
        ),
        (
            "metadata department=finance",
            SearchQuery {
                metadata: pairs(&[("department", "finance")]),
                ..query("")
            },
            &["inv1", "inv2"],
        ),
        (
            "pending with metadata department=finance",
            SearchQuery {
                metadata: pairs(&[("department", "finance")]),
                ..query("pending")
            },
            &["inv2"],
        ),
        (
            "content type application/pdf",
            SearchQuery {
                content_type: Some("application/pdf".into()),
                ..query("")
            },
            &["inv1", "inv2"],
        ),
        (
            "finance of content type text/csv",
            SearchQuery {
                content_type: Some("text/csv".into()),
                ..query("finance")
            },
            &[],
        ),
        (
            "since day 2 until day 4",
            SearchQuery {
                since: Some(search_fixture_day(2)),
                until: Some(search_fixture_day(4)),
                ..query("")
            },
            &["inv2", "report"],
        ),
        (
            "since day 8",
            SearchQuery {
                since: Some(search_fixture_day(8)),
                ..query("")
            },
            &["book", "scan2"],
        ),
        (
            "finance under invoices/",
            SearchQuery {
                prefix: Some(format!("{root}invoices/")),
                ..query("finance")
            },
            &["inv1", "inv2"],
        ),
        (
            "all versions: draft",
            SearchQuery {
                all_versions: true,
                ..query("draft")
            },
            &["lease1"],
        ),
        (
            "all versions: lease",
            SearchQuery {
                all_versions: true,
                ..query("lease")
            },
            &["lease1", "lease2"],
        ),
        (
            "all versions: obsolete",
            SearchQuery {
                all_versions: true,
                ..query("obsolete")
            },
            &["memo"],
        ),
        (
            "all versions under old/",
            SearchQuery {
                all_versions: true,
                prefix: Some(format!("{root}old/")),
                ..query("")
            },
            &["memo"],
        ),
    ];
    for (what, query, expected) in filtered {
        expect(what, found(query).await?, expected)?;
    }

    // Without text: in key order, then newest version first.
    let listed = found(query("")).await?;
    check!(
        listed == ["lease2", "inv2", "inv1", "book", "report", "scan2"],
        "latest versions without text: {listed:?}"
    );
    let scans = found(SearchQuery {
        all_versions: true,
        prefix: Some(format!("{root}scans/")),
        ..query("")
    })
    .await?;
    check!(scans == ["scan2", "scan1"], "all versions without text: {scans:?}");

    // Pages visit every hit once, in order, ranked or not.
    let run_word = search_words(&root).pop().unwrap_or_default();
    let everything = [
        "inv1", "inv2", "report", "lease1", "lease2", "memo", "book", "scan1", "scan2",
    ];
    for text in [run_word.as_str(), ""] {
        let mut page_query = SearchQuery {
            all_versions: true,
            limit: 2,
            ..query(text)
        };
        let mut hits = Vec::new();
        for _ in 0..everything.len() {
            let page = catalog.search(&page_query).await.ctx("search a page")?;
            check!(page.hits.len() <= 2, "a page of limit 2 has {} hits", page.hits.len());
            hits.extend(page.hits);
            match page.next_cursor {
                Some(cursor) => page_query.cursor = Some(cursor),
                None => break,
            }
        }
        check_hit_order(&hits)?;
        let mut labels: Vec<String> = hits.iter().map(|h| fixture.label(&h.version)).collect();
        labels.sort();
        let mut expected: Vec<&str> = everything.to_vec();
        expected.sort();
        check!(
            labels == expected,
            "pages of {text:?} visited {labels:?}, expected each of {expected:?} once"
        );
    }

    // Bad input is refused.
    let first = catalog
        .search(&SearchQuery {
            limit: 1,
            ..query("finance")
        })
        .await
        .ctx("search")?;
    let cursor = first.next_cursor.ok_or("two finance hits gave no cursor")?;
    let refused = [
        (
            "a malformed cursor",
            SearchQuery {
                cursor: Some("not-a-cursor".into()),
                ..query("finance")
            },
        ),
        (
            "another query's cursor",
            SearchQuery {
                cursor: Some(cursor),
                ..query("invoice")
            },
        ),
        ("limit 0", SearchQuery { limit: 0, ..query("a") }),
        (
            "a bad tag name",
            SearchQuery {
                tags: pairs(&[("bad name", "x")]),
                ..query("")
            },
        ),
    ];
    for (what, query) in refused {
        match catalog.search(&query).await {
            Err(e) if e.kind() == ErrorKind::InvalidInput => {}
            other => return Err(format!("{what}: {:?}", other.map(|p| p.hits.len()))),
        }
    }

    // Changes are seen at once.
    let inv2 = fixture.version("inv2")?;
    let set_reviewer = Annotation::Tags {
        set: Tags::from([("reviewer".to_string(), "Zelda".to_string())]),
        remove: Vec::new(),
    };
    catalog
        .annotate(&inv2.key, &inv2.version_id, set_reviewer, "conformance")
        .await
        .ctx("tag")?;
    expect("a new tag", found(query("zelda")).await?, &["inv2"])?;
    let remove_reviewer = Annotation::Tags {
        set: Tags::new(),
        remove: vec!["reviewer".into()],
    };
    catalog
        .annotate(&inv2.key, &inv2.version_id, remove_reviewer, "conformance")
        .await
        .ctx("untag")?;
    expect("a removed tag", found(query("zelda")).await?, &[])?;
    let report = fixture.version("report")?;
    catalog
        .annotate(
            &report.key,
            &report.version_id,
            Annotation::Comment("Flagged for audit".into()),
            "conformance",
        )
        .await
        .ctx("comment")?;
    expect("a new comment", found(query("flagged revenue")).await?, &["report"])?;
    let lease1 = fixture.version("lease1")?;
    catalog
        .delete_version(&lease1.key, &lease1.version_id, "conformance", false)
        .await
        .ctx("delete_version")?;
    let draft = SearchQuery {
        all_versions: true,
        ..query("draft")
    };
    expect("a removed version", found(draft).await?, &[])?;
    let scan1 = fixture.version("scan1")?;
    let policy = PrunePolicy {
        keep: 1,
        keep_tagged: false,
    };
    catalog
        .prune(&scan1.key, policy, "conformance", false)
        .await
        .ctx("prune")?;
    let canon = SearchQuery {
        all_versions: true,
        ..query("canon img")
    };
    expect("a pruned version", found(canon).await?, &[])?;
    catalog.commit_version(marker(&report.key)).await.ctx("delete")?;
    expect("a deleted key", found(query("revenue")).await?, &[])?;
    Ok(())
}
