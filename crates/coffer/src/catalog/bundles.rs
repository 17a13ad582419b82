//! Bundles' rows: a bundle and the resources stored in it, written once
//! for both engines. A change runs in the engine's transaction (SQLite's
//! writer task, a PostgreSQL transaction); completing a bundle writes its
//! row, its audit row and its `bundle.completed` event together.

use serde::Serialize;

use super::rows::{Param, to_i64};
use super::sql::Conn;
use super::writes::write_audit;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::time::Timestamp;

/// The columns of a bundle, in [`BundleRow`]'s order.
const BUNDLE_COLUMNS: &str = "b.bundle_id, b.storage_key, b.layout, b.unzip, b.primary_url, b.recipe_id, b.meta, \
     b.created_at, b.created_by, b.completed_at, b.metadata, b.version_id, b.callbacks_pending, \
     (SELECT COUNT(*) FROM bundle_resources r WHERE r.bundle_id = b.bundle_id)";

/// The columns of a resource, in [`ResourceRow`]'s order.
const RESOURCE_COLUMNS: &str = "bundle_id, position, name, url, content_type, status_code, size, sha256, key, \
     version_id, data_offset, stored_size, deflated, added_at";

/// A bundle as the catalog holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BundleRecord {
    /// Its id: time-ordered, so ids sort by creation.
    pub bundle_id: String,
    /// Where it lies: the directory prefix, or the zip object's key.
    pub storage_key: String,
    /// `directory` or `zip`.
    pub layout: String,
    /// gzip and zip resources are expanded on the way in.
    pub unzip: bool,
    /// The URL the bundle was fetched for.
    pub primary_url: Option<String>,
    /// The recipe that fetched it.
    pub recipe_id: Option<String>,
    /// What the bundle was started with (a JSON object).
    pub meta: serde_json::Value,
    /// When it was started.
    pub created_at: Timestamp,
    /// Who started it.
    pub created_by: String,
    /// When it was completed (`None` while open).
    pub completed_at: Option<Timestamp>,
    /// What it was completed with (a JSON object).
    pub metadata: Option<serde_json::Value>,
    /// The version of the zip object (zip layout), once it is written.
    pub version_id: Option<String>,
    /// Completed, but its completion callbacks have not run yet.
    pub callbacks_pending: bool,
    /// How many resources it holds.
    pub resources_count: u64,
}

impl BundleRecord {
    /// Whether it is still open (taking resources).
    pub fn is_open(&self) -> bool {
        self.completed_at.is_none()
    }
}

/// One resource of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BundleResource {
    /// The bundle.
    pub bundle_id: String,
    /// 1, 2, ... in the order the resources were stored.
    pub position: u64,
    /// Its path inside the bundle (a file name, or an archive's entry under it).
    pub name: String,
    /// Where it came from.
    pub url: String,
    /// Its content type, when known.
    pub content_type: Option<String>,
    /// The HTTP status it was fetched with.
    pub status_code: u16,
    /// Its size in bytes (as stored: expanded, with unzip on).
    pub size: u64,
    /// The SHA-256 of its bytes (as stored).
    pub sha256: String,
    /// The object holding it: each resource of the directory layout, and a
    /// resource of a zip bundle staged by another process until completion.
    pub key: Option<String>,
    /// That object's version.
    pub version_id: Option<String>,
    /// Where it lies in the bundle's zip (zip layout, once written there).
    pub placement: Option<ZipPlacement>,
    /// When it was stored.
    pub added_at: Timestamp,
}

/// Where a resource's bytes lie in its bundle's zip object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ZipPlacement {
    /// The offset of its first data byte.
    pub data_offset: u64,
    /// How many bytes its data takes.
    pub stored_size: u64,
    /// They are raw-deflated.
    pub deflated: bool,
}

/// Which bundles a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleQuery {
    /// Only open bundles.
    pub open_only: bool,
    /// Only completed bundles whose callbacks have not run.
    pub callbacks_pending: bool,
    /// Start after this id.
    pub after: Option<String>,
    /// At most this many (0: no limit).
    pub limit: usize,
}

/// A change to bundles, in one transaction.
#[derive(Debug, Clone)]
pub enum BundleChange {
    /// Record a new, open bundle (with an audit row `bundle_start`).
    Start(BundleRecord),
    /// Record a stored resource of an open bundle.
    AddResource(BundleResource),
    /// Record the zip object's version of an open bundle: its resources are
    /// in it, the staged ones at `placements` (their staging objects, no
    /// longer named, are removed by the caller).
    Sealed {
        /// The bundle.
        bundle_id: String,
        /// The zip object's version.
        version_id: String,
        /// Where the staged resources (by position) lie in the zip.
        placements: Vec<(u64, ZipPlacement)>,
    },
    /// Complete an open bundle: its row, an audit row `bundle_complete` and
    /// its event, with its callbacks pending.
    Complete {
        /// The bundle.
        bundle_id: String,
        /// When.
        at: Timestamp,
        /// What it is completed with (a JSON object).
        metadata: serde_json::Value,
        /// Who completes it.
        actor: String,
        /// The `bundle.completed` event.
        event: Box<Event>,
    },
    /// Its completion callbacks ran.
    CallbacksDone {
        /// The bundle.
        bundle_id: String,
    },
    /// Forget resources of an open bundle (a resumed zip bundle's resources
    /// that a dead run streamed into a zip that never landed).
    ForgetResources {
        /// The bundle.
        bundle_id: String,
        /// Their positions.
        positions: Vec<u64>,
    },
    /// Remove an open bundle and its resources' rows (with an audit row
    /// `bundle_abort`); its objects are removed by the caller first.
    Abort {
        /// The bundle.
        bundle_id: String,
        /// Who aborts it.
        actor: String,
    },
}

/// Apply `change` in the caller's transaction. Checks come before writes,
/// so a refused change has written nothing.
pub(super) async fn apply(mut conn: Conn<'_>, change: &BundleChange) -> Result<()> {
    match change {
        BundleChange::Start(bundle) => start(conn, bundle).await,
        BundleChange::AddResource(resource) => {
            require_open(&mut conn, &resource.bundle_id).await?;
            // A placement's values are written in, or NULL: PostgreSQL keeps
            // the types a statement was first prepared with, and a NULL bound
            // as text would not take numbers afterwards.
            let placement = match resource.placement {
                Some(p) => format!(
                    "{}, {}, {}",
                    to_i64(p.data_offset),
                    to_i64(p.stored_size),
                    conn.dialect().int_as_bool(&i64::from(p.deflated).to_string())
                ),
                None => "NULL, NULL, NULL".to_owned(),
            };
            let sql = format!(
                "INSERT INTO bundle_resources ({RESOURCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {placement}, ?) \
                 ON CONFLICT DO NOTHING"
            );
            conn.execute("recording a bundle's resource", &sql, resource_params(resource))
                .await
                .and_then(|inserted| match inserted {
                    1 => Ok(()),
                    _ => Err(Error::conflict(format!(
                        "bundle {} already holds resource {} or position {}",
                        resource.bundle_id, resource.name, resource.position
                    ))),
                })
        }
        BundleChange::Sealed {
            bundle_id,
            version_id,
            placements,
        } => {
            require_open(&mut conn, bundle_id).await?;
            conn.execute(
                "recording a bundle's zip",
                "UPDATE bundles SET version_id = ? WHERE bundle_id = ?",
                vec![Param::Text(version_id.clone()), Param::Text(bundle_id.clone())],
            )
            .await?;
            let sql = format!(
                "UPDATE bundle_resources SET key = NULL, version_id = NULL, data_offset = ?, stored_size = ?, \
                 deflated = {} WHERE bundle_id = ? AND position = ?",
                conn.dialect().int_as_bool("?")
            );
            for (position, placement) in placements {
                let params = vec![
                    Param::Int(to_i64(placement.data_offset)),
                    Param::Int(to_i64(placement.stored_size)),
                    Param::Int(i64::from(placement.deflated)),
                    Param::Text(bundle_id.clone()),
                    Param::Int(to_i64(*position)),
                ];
                conn.execute("recording where a resource lies in the zip", &sql, params)
                    .await?;
            }
            Ok(())
        }
        BundleChange::Complete {
            bundle_id,
            at,
            metadata,
            actor,
            event,
        } => complete(conn, bundle_id, *at, metadata, actor, event).await,
        BundleChange::CallbacksDone { bundle_id } => conn
            .execute(
                "recording a bundle's callbacks as run",
                "UPDATE bundles SET callbacks_pending = FALSE WHERE bundle_id = ?",
                vec![Param::Text(bundle_id.clone())],
            )
            .await
            .map(drop),
        BundleChange::ForgetResources { bundle_id, positions } => {
            require_open(&mut conn, bundle_id).await?;
            for position in positions {
                conn.execute(
                    "forgetting a bundle's resource",
                    "DELETE FROM bundle_resources WHERE bundle_id = ? AND position = ?",
                    vec![Param::Text(bundle_id.clone()), Param::Int(to_i64(*position))],
                )
                .await?;
            }
            Ok(())
        }
        BundleChange::Abort { bundle_id, actor } => {
            require_open(&mut conn, bundle_id).await?;
            conn.execute(
                "removing a bundle",
                "DELETE FROM bundles WHERE bundle_id = ?",
                vec![Param::Text(bundle_id.clone())],
            )
            .await?;
            let detail = serde_json::json!({ "bundle_id": bundle_id });
            write_audit(&mut conn, Timestamp::now(), actor, "bundle_abort", detail).await
        }
    }
}

async fn start(mut conn: Conn<'_>, bundle: &BundleRecord) -> Result<()> {
    let text = |value: &Option<String>| value.clone().map_or(Param::Null, Param::Text);
    let sql = format!(
        "INSERT INTO bundles (bundle_id, storage_key, layout, unzip, primary_url, recipe_id, meta, created_at, \
         created_by, callbacks_pending) VALUES (?, ?, ?, {}, ?, ?, ?, ?, ?, FALSE)",
        conn.dialect().int_as_bool("?")
    );
    let params = vec![
        Param::Text(bundle.bundle_id.clone()),
        Param::Text(bundle.storage_key.clone()),
        Param::Text(bundle.layout.clone()),
        Param::Int(i64::from(bundle.unzip)),
        text(&bundle.primary_url),
        text(&bundle.recipe_id),
        Param::Text(bundle.meta.to_string()),
        Param::Int(bundle.created_at.as_micros()),
        Param::Text(bundle.created_by.clone()),
    ];
    conn.execute("recording a bundle", &sql, params).await?;
    let detail = serde_json::json!({
        "bundle_id": bundle.bundle_id, "storage_key": bundle.storage_key, "layout": bundle.layout,
        "primary_url": bundle.primary_url, "recipe_id": bundle.recipe_id,
    });
    write_audit(&mut conn, bundle.created_at, &bundle.created_by, "bundle_start", detail).await
}

async fn complete(
    mut conn: Conn<'_>,
    bundle_id: &str,
    at: Timestamp,
    metadata: &serde_json::Value,
    actor: &str,
    event: &Event,
) -> Result<()> {
    require_open(&mut conn, bundle_id).await?;
    conn.execute(
        "completing a bundle",
        "UPDATE bundles SET completed_at = ?, metadata = ?, callbacks_pending = TRUE WHERE bundle_id = ?",
        vec![
            Param::Int(at.as_micros()),
            Param::Text(metadata.to_string()),
            Param::Text(bundle_id.to_owned()),
        ],
    )
    .await?;
    let detail = serde_json::json!({ "bundle_id": bundle_id, "event_id": event.id });
    write_audit(&mut conn, at, actor, "bundle_complete", detail).await?;
    conn.execute(
        "writing the bundle's event",
        "INSERT INTO outbox (event_id, type, key, at, payload) VALUES (?, ?, ?, ?, ?)",
        vec![
            Param::Text(event.id.clone()),
            Param::Text(event.event_type.clone()),
            event.subject.clone().map_or(Param::Null, Param::Text),
            Param::Int(event.time.as_micros()),
            Param::Text(event.to_json()),
        ],
    )
    .await
    .map(drop)
}

/// Fail unless `bundle_id` names an open bundle.
async fn require_open(conn: &mut Conn<'_>, bundle_id: &str) -> Result<()> {
    let row: Option<(Option<i64>,)> = conn
        .optional(
            "reading a bundle",
            "SELECT completed_at FROM bundles WHERE bundle_id = ?",
            vec![Param::Text(bundle_id.to_owned())],
        )
        .await?;
    match row {
        None => Err(Error::not_found(format!("no bundle {bundle_id}"))),
        Some((Some(_),)) => Err(Error::conflict(format!("bundle {bundle_id} is already complete"))),
        Some((None,)) => Ok(()),
    }
}

fn resource_params(resource: &BundleResource) -> Vec<Param> {
    let text = |value: &Option<String>| value.clone().map_or(Param::Null, Param::Text);
    vec![
        Param::Text(resource.bundle_id.clone()),
        Param::Int(to_i64(resource.position)),
        Param::Text(resource.name.clone()),
        Param::Text(resource.url.clone()),
        text(&resource.content_type),
        Param::Int(i64::from(resource.status_code)),
        Param::Int(to_i64(resource.size)),
        Param::Text(resource.sha256.clone()),
        text(&resource.key),
        text(&resource.version_id),
        Param::Int(resource.added_at.as_micros()),
    ]
}

type BundleRow = (
    String,
    String,
    String,
    bool,
    Option<String>,
    Option<String>,
    String,
    i64,
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    bool,
    i64,
);

fn bundle_of(row: BundleRow) -> BundleRecord {
    let (
        id,
        storage_key,
        layout,
        unzip,
        primary_url,
        recipe_id,
        meta,
        created,
        by,
        completed,
        metadata,
        version,
        pending,
        count,
    ) = row;
    let json = |text: &str| serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
    BundleRecord {
        bundle_id: id,
        storage_key,
        layout,
        unzip,
        primary_url,
        recipe_id,
        meta: json(&meta),
        created_at: Timestamp::from_micros(created),
        created_by: by,
        completed_at: completed.map(Timestamp::from_micros),
        metadata: metadata.as_deref().map(json),
        version_id: version,
        callbacks_pending: pending,
        resources_count: u64::try_from(count).unwrap_or(0),
    }
}

/// One bundle, if it exists.
pub(super) async fn bundle(mut conn: Conn<'_>, bundle_id: &str) -> Result<Option<BundleRecord>> {
    let row: Option<BundleRow> = conn
        .optional(
            "reading a bundle",
            &format!("SELECT {BUNDLE_COLUMNS} FROM bundles b WHERE b.bundle_id = ?"),
            vec![Param::Text(bundle_id.to_owned())],
        )
        .await?;
    Ok(row.map(bundle_of))
}

/// The bundles `query` selects, oldest first.
pub(super) async fn bundles(mut conn: Conn<'_>, query: &BundleQuery) -> Result<Vec<BundleRecord>> {
    let mut sql = format!("SELECT {BUNDLE_COLUMNS} FROM bundles b WHERE b.bundle_id > ?");
    if query.open_only {
        sql.push_str(" AND b.completed_at IS NULL");
    }
    if query.callbacks_pending {
        sql.push_str(" AND b.callbacks_pending");
    }
    sql.push_str(" ORDER BY b.bundle_id");
    let mut params = vec![Param::Text(query.after.clone().unwrap_or_default())];
    if query.limit > 0 {
        sql.push_str(" LIMIT ?");
        params.push(Param::Int(to_i64(query.limit as u64)));
    }
    let rows: Vec<BundleRow> = conn.all("listing bundles", &sql, params).await?;
    Ok(rows.into_iter().map(bundle_of).collect())
}

type ResourceRow = (
    String,
    i64,
    String,
    String,
    Option<String>,
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<bool>,
    i64,
);

/// A bundle's resources, in position order.
pub(super) async fn resources(mut conn: Conn<'_>, bundle_id: &str) -> Result<Vec<BundleResource>> {
    let rows: Vec<ResourceRow> = conn
        .all(
            "listing a bundle's resources",
            &format!("SELECT {RESOURCE_COLUMNS} FROM bundle_resources WHERE bundle_id = ? ORDER BY position"),
            vec![Param::Text(bundle_id.to_owned())],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                bundle_id,
                position,
                name,
                url,
                content_type,
                status,
                size,
                sha256,
                key,
                version_id,
                offset,
                stored,
                deflated,
                added,
            )| {
                BundleResource {
                    bundle_id,
                    position: u64::try_from(position).unwrap_or(0),
                    name,
                    url,
                    content_type,
                    status_code: u16::try_from(status).unwrap_or(0),
                    size: u64::try_from(size).unwrap_or(0),
                    sha256,
                    key,
                    version_id,
                    placement: match (offset, stored) {
                        (Some(offset), Some(stored)) => Some(ZipPlacement {
                            data_offset: u64::try_from(offset).unwrap_or(0),
                            stored_size: u64::try_from(stored).unwrap_or(0),
                            deflated: deflated.unwrap_or(false),
                        }),
                        _ => None,
                    },
                    added_at: Timestamp::from_micros(added),
                }
            },
        )
        .collect())
}
