//! The one writer task: changes queue up, and each batch commits in one
//! transaction (group commit); a batch that fails half-way is re-run one
//! change per transaction.

use tokio::sync::{mpsc, oneshot};

use sqlx::sqlite::SqliteConnection;

use super::changes::{
    INSERT_AUDIT, apply_annotate, apply_commit, apply_delete_version, apply_prune, apply_purge_audit, apply_repair,
    audit_params,
};
use super::{MAX_BATCH, db_error, exec, outbox};
use crate::catalog::bundles;
use crate::catalog::hot;
use crate::catalog::multipart::{self, MultipartChange};
use crate::catalog::plan::{self, PurgePlan};
use crate::catalog::rows::bind_params;
use crate::catalog::sql::Conn;
use crate::catalog::tokens::{self, TokenChange};
use crate::catalog::{Annotation, DeletedVersion, NewVersion, ObjectVersion, PrunePolicy, Pruned, Repair};
use crate::catalog::{BundleChange, FlushLeftovers};
use crate::error::{Error, ErrorKind, Result};
use crate::key::ObjectKey;
use crate::time::Timestamp;
use crate::version::VersionId;

pub(super) enum WriteOp {
    Commit(Box<NewVersion>),
    DeleteVersion {
        key: ObjectKey,
        version_id: VersionId,
        actor: String,
        bypass_governance: bool,
    },
    Annotate {
        key: ObjectKey,
        version_id: VersionId,
        annotation: Annotation,
        actor: String,
    },
    Prune {
        key: ObjectKey,
        policy: PrunePolicy,
        actor: String,
        dry_run: bool,
    },
    Repair {
        repair: Repair,
        actor: String,
    },
    /// One batch of an audit purge.
    PurgeAudit(PurgePlan),
    RecordRead {
        key: ObjectKey,
        version_id: VersionId,
        actor: String,
        detail: serde_json::Value,
    },
    Outbox(Box<outbox::OutboxOp>),
    HotFlushed {
        versions: Vec<(String, String)>,
        blobs: Vec<(String, String)>,
    },
    HotExpire {
        before: Timestamp,
        limit: usize,
    },
    Bundle(Box<BundleChange>),
    Token(Box<TokenChange>),
    Multipart(Box<MultipartChange>),
}

pub(super) enum WriteOutcome {
    Version(Box<ObjectVersion>),
    Deleted(Box<DeletedVersion>),
    Pruned(Pruned),
    Count(u64),
    Done,
    Outbox(outbox::OutboxReply),
    Leftovers(FlushLeftovers),
    Paths(Vec<String>),
}

impl WriteOutcome {
    pub(super) fn into_version(self) -> Result<ObjectVersion> {
        match self {
            WriteOutcome::Version(version) => Ok(*version),
            _ => Err(wrong_answer()),
        }
    }

    pub(super) fn into_deleted(self) -> Result<DeletedVersion> {
        match self {
            WriteOutcome::Deleted(deleted) => Ok(*deleted),
            _ => Err(wrong_answer()),
        }
    }

    pub(super) fn into_pruned(self) -> Result<Pruned> {
        match self {
            WriteOutcome::Pruned(pruned) => Ok(pruned),
            _ => Err(wrong_answer()),
        }
    }

    pub(super) fn into_leftovers(self) -> Result<FlushLeftovers> {
        match self {
            WriteOutcome::Leftovers(leftovers) => Ok(leftovers),
            _ => Err(wrong_answer()),
        }
    }

    pub(super) fn into_paths(self) -> Result<Vec<String>> {
        match self {
            WriteOutcome::Paths(paths) => Ok(paths),
            _ => Err(wrong_answer()),
        }
    }

    pub(super) fn into_count(self) -> Result<u64> {
        match self {
            WriteOutcome::Count(count) => Ok(count),
            _ => Err(wrong_answer()),
        }
    }
}

pub(super) fn wrong_answer() -> Error {
    Error::new(ErrorKind::Catalog, "catalog writer answered the wrong request")
}

pub(super) struct WriteJob {
    pub(super) op: WriteOp,
    pub(super) reply: oneshot::Sender<Result<WriteOutcome>>,
}

pub(super) async fn write_loop(mut conn: SqliteConnection, mut receiver: mpsc::Receiver<WriteJob>) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, batch).await;
    }
}

/// Why a change did not apply.
pub(super) enum Refused {
    /// Refused before writing anything (a failed precondition, a missing
    /// version): the transaction is untouched and the batch goes on.
    Clean(Error),
    /// Failed after writing part of the change: the transaction must be rolled back.
    Dirty(Error),
}

pub(super) fn copy_error(err: &Error) -> Error {
    let copy = Error::new(err.kind(), err.message().to_owned());
    if err.is_retryable() { copy.retryable() } else { copy }
}

pub(super) async fn apply(conn: &mut SqliteConnection, op: &WriteOp) -> Result<WriteOutcome, Refused> {
    match op {
        WriteOp::Commit(version) => apply_commit(conn, version)
            .await
            .map(|v| WriteOutcome::Version(Box::new(v))),
        WriteOp::DeleteVersion {
            key,
            version_id,
            actor,
            bypass_governance,
        } => apply_delete_version(conn, key, version_id, actor, *bypass_governance)
            .await
            .map(|deleted| WriteOutcome::Deleted(Box::new(deleted))),
        WriteOp::Annotate {
            key,
            version_id,
            annotation,
            actor,
        } => apply_annotate(conn, key, version_id, annotation, actor)
            .await
            .map(|v| WriteOutcome::Version(Box::new(v))),
        WriteOp::Prune {
            key,
            policy,
            actor,
            dry_run,
        } => apply_prune(conn, key, *policy, actor, *dry_run)
            .await
            .map(WriteOutcome::Pruned),
        WriteOp::Repair { repair, actor } => apply_repair(conn, repair, actor).await.map(|()| WriteOutcome::Done),
        WriteOp::PurgeAudit(purge) => apply_purge_audit(conn, purge).await.map(WriteOutcome::Count),
        WriteOp::RecordRead {
            key,
            version_id,
            actor,
            detail,
        } => bind_params!(
            sqlx::query(INSERT_AUDIT),
            audit_params(&plan::read_record(key, version_id, actor, detail, Timestamp::now()))
        )
        .execute(&mut *conn)
        .await
        .map(|_| WriteOutcome::Done)
        .map_err(|e| Refused::Dirty(db_error("recording a read", e))),
        WriteOp::Outbox(op) => outbox::apply(conn, op).await.map(WriteOutcome::Outbox),
        WriteOp::HotFlushed { versions, blobs } => hot::mark_flushed(Conn::from(&mut *conn), versions, blobs)
            .await
            .map(WriteOutcome::Leftovers)
            .map_err(Refused::Dirty),
        WriteOp::HotExpire { before, limit } => hot::expire_batch(Conn::from(&mut *conn), *before, *limit)
            .await
            .map(WriteOutcome::Count)
            .map_err(Refused::Dirty),
        // A missing or complete bundle, or a taken name, is refused before anything is written.
        WriteOp::Bundle(change) => bundles::apply(Conn::from(&mut *conn), change)
            .await
            .map(|()| WriteOutcome::Done)
            .map_err(refused_before_writing),
        // So is a taken name or a missing token.
        WriteOp::Token(change) => tokens::apply(Conn::from(&mut *conn), change)
            .await
            .map(|()| WriteOutcome::Done)
            .map_err(refused_before_writing),
        // So is a taken or missing bucket, or an upload not in progress.
        WriteOp::Multipart(change) => multipart::apply(Conn::from(&mut *conn), change)
            .await
            .map(WriteOutcome::Paths)
            .map_err(refused_before_writing),
    }
}

/// A change's `NotFound` and `Conflict` come from its checks, before it wrote anything.
fn refused_before_writing(e: Error) -> Refused {
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::Conflict => Refused::Clean(e),
        _ => Refused::Dirty(e),
    }
}

/// Run the batch in one transaction and answer each job only once it has
/// committed. Changes check everything they can before writing, so a refused
/// change leaves the transaction clean; if one fails half-way, the batch is
/// rolled back and every job is run again in a transaction of its own.
pub(super) async fn commit_batch(conn: &mut SqliteConnection, batch: Vec<WriteJob>) {
    match run_batch(conn, &batch).await {
        Ok(outcomes) => {
            for (job, outcome) in batch.into_iter().zip(outcomes) {
                let _ = job.reply.send(outcome);
            }
        }
        Err(_) if batch.len() > 1 => {
            for job in batch {
                let outcome = run_batch(conn, std::slice::from_ref(&job)).await;
                let _ = job.reply.send(outcome.and_then(|mut outcomes| {
                    outcomes
                        .pop()
                        .unwrap_or_else(|| Err(Error::new(ErrorKind::Catalog, "catalog lost a change")))
                }));
            }
        }
        Err(err) => {
            for job in batch {
                let _ = job.reply.send(Err(copy_error(&err)));
            }
        }
    }
}

/// One transaction over `jobs`: the outcome of each, or the error that rolled all back.
pub(super) async fn run_batch(conn: &mut SqliteConnection, jobs: &[WriteJob]) -> Result<Vec<Result<WriteOutcome>>> {
    exec(conn, "BEGIN IMMEDIATE").await?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        match apply(conn, &job.op).await {
            Ok(outcome) => outcomes.push(Ok(outcome)),
            Err(Refused::Clean(err)) => outcomes.push(Err(err)),
            Err(Refused::Dirty(err)) => {
                let _ = exec(conn, "ROLLBACK").await;
                return Err(err);
            }
        }
    }
    if let Err(err) = exec(conn, "COMMIT").await {
        let _ = exec(conn, "ROLLBACK").await;
        return Err(err);
    }
    Ok(outcomes)
}
