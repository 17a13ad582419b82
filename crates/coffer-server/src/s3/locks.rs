//! Object Lock through S3: PutObjectRetention / GetObjectRetention and
//! PutObjectLegalHold / GetObjectLegalHold on coffer's retention and legal
//! holds, and the lock headers of puts and reads.

use coffer::access::Scope;
use coffer::{ObjectVersion, Retention, RetentionMode, VersionId};
use s3s::dto::{self, ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetentionMode, Timestamp};
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};

use super::auth::S3Caller;
use super::errors::{refused, s3_error, s3_error_as};
use super::{CofferS3, key_in, missing, version_id};

/// The retention a put's lock headers ask for.
pub fn retention_of(mode: Option<&ObjectLockMode>, until: Option<&Timestamp>) -> S3Result<Option<Retention>> {
    match (mode, until) {
        (None, None) => Ok(None),
        (Some(mode), Some(until)) => Ok(Some(Retention {
            mode: mode_of(mode.as_str())?,
            until: coffer_time(until),
        })),
        _ => Err(refused(
            S3ErrorCode::InvalidArgument,
            "x-amz-object-lock-mode and x-amz-object-lock-retain-until-date go together",
        )),
    }
}

/// Whether a put's legal-hold header puts a hold on.
pub fn legal_hold_on(status: Option<&ObjectLockLegalHoldStatus>) -> bool {
    status.is_some_and(|s| s.as_str() == ObjectLockLegalHoldStatus::ON)
}

/// Fill a read's lock fields from `version`.
pub fn describe(
    version: &ObjectVersion,
    mode: &mut Option<ObjectLockMode>,
    until: &mut Option<Timestamp>,
    legal_hold: &mut Option<ObjectLockLegalHoldStatus>,
) {
    if let Some(retention) = version.retention {
        *mode = Some(ObjectLockMode::from(mode_name(retention.mode).to_owned()));
        *until = Some(s3_time(retention.until));
    }
    if version.legal_hold {
        *legal_hold = Some(ObjectLockLegalHoldStatus::from_static(ObjectLockLegalHoldStatus::ON));
    }
}

fn mode_of(mode: &str) -> S3Result<RetentionMode> {
    mode.to_ascii_lowercase().parse().map_err(|_| {
        refused(
            S3ErrorCode::InvalidArgument,
            format!("unknown retention mode {mode}: GOVERNANCE or COMPLIANCE"),
        )
    })
}

fn mode_name(mode: RetentionMode) -> &'static str {
    match mode {
        RetentionMode::Governance => ObjectLockRetentionMode::GOVERNANCE,
        RetentionMode::Compliance => ObjectLockRetentionMode::COMPLIANCE,
    }
}

fn coffer_time(at: &Timestamp) -> coffer::Timestamp {
    coffer::Timestamp::from_system(std::time::SystemTime::from(time::OffsetDateTime::from(at.clone())))
}

pub fn s3_time(at: coffer::Timestamp) -> Timestamp {
    let micros = u64::try_from(at.as_micros()).unwrap_or(0);
    Timestamp::from(std::time::UNIX_EPOCH + std::time::Duration::from_micros(micros))
}

impl CofferS3 {
    /// The version a lock call names: the latest unless `version`.
    async fn locked_version(&self, caller: &S3Caller, key: &str, version: Option<&str>) -> S3Result<VersionId> {
        let wanted = version_id(version)?;
        let not_found = missing(wanted.as_ref());
        let found = caller
            .store
            .head(key, wanted.as_ref())
            .await
            .map_err(|e| s3_error_as(e, not_found))?;
        Ok(found.version_id)
    }

    pub(super) async fn put_object_retention(
        &self,
        req: S3Request<dto::PutObjectRetentionInput>,
    ) -> S3Result<S3Response<dto::PutObjectRetentionOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let key = key_in(&input.bucket, &input.key);
        caller.allow(Scope::Write, Some(&key))?;
        let bypass = input.bypass_governance_retention.unwrap_or(false);
        if bypass {
            caller.allow(Scope::Admin, Some(&key))?;
        }
        let version = self.locked_version(&caller, &key, input.version_id.as_deref()).await?;
        let retention = input.retention.unwrap_or_default();
        let mode = retention
            .mode
            .as_ref()
            .map(|m| ObjectLockMode::from(m.as_str().to_owned()));
        match retention_of(mode.as_ref(), retention.retain_until_date.as_ref())? {
            Some(retention) => caller.store.set_retention(&key, &version, retention, bypass).await,
            None => caller.store.remove_retention(&key, &version, bypass).await,
        }
        .map_err(s3_error)?;
        Ok(S3Response::new(dto::PutObjectRetentionOutput::default()))
    }

    pub(super) async fn get_object_retention(
        &self,
        req: S3Request<dto::GetObjectRetentionInput>,
    ) -> S3Result<S3Response<dto::GetObjectRetentionOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let key = key_in(&input.bucket, &input.key);
        caller.allow(Scope::Read, Some(&key))?;
        let wanted = version_id(input.version_id.as_deref())?;
        let version = caller.store.head(&key, wanted.as_ref()).await.map_err(s3_error)?;
        let Some(retention) = version.retention else {
            return Err(refused(
                S3ErrorCode::NoSuchObjectLockConfiguration,
                format!("{key} has no retention"),
            ));
        };
        Ok(S3Response::new(dto::GetObjectRetentionOutput {
            retention: Some(dto::ObjectLockRetention {
                mode: Some(ObjectLockRetentionMode::from(mode_name(retention.mode).to_owned())),
                retain_until_date: Some(s3_time(retention.until)),
            }),
        }))
    }

    pub(super) async fn put_object_legal_hold(
        &self,
        req: S3Request<dto::PutObjectLegalHoldInput>,
    ) -> S3Result<S3Response<dto::PutObjectLegalHoldOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let key = key_in(&input.bucket, &input.key);
        caller.allow(Scope::Write, Some(&key))?;
        let version = self.locked_version(&caller, &key, input.version_id.as_deref()).await?;
        let on = legal_hold_on(input.legal_hold.and_then(|h| h.status).as_ref());
        caller
            .store
            .set_legal_hold(&key, &version, on)
            .await
            .map_err(s3_error)?;
        Ok(S3Response::new(dto::PutObjectLegalHoldOutput::default()))
    }

    pub(super) async fn get_object_legal_hold(
        &self,
        req: S3Request<dto::GetObjectLegalHoldInput>,
    ) -> S3Result<S3Response<dto::GetObjectLegalHoldOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let key = key_in(&input.bucket, &input.key);
        caller.allow(Scope::Read, Some(&key))?;
        let wanted = version_id(input.version_id.as_deref())?;
        let version = caller.store.head(&key, wanted.as_ref()).await.map_err(s3_error)?;
        let status = if version.legal_hold {
            ObjectLockLegalHoldStatus::ON
        } else {
            ObjectLockLegalHoldStatus::OFF
        };
        Ok(S3Response::new(dto::GetObjectLegalHoldOutput {
            legal_hold: Some(dto::ObjectLockLegalHold {
                status: Some(ObjectLockLegalHoldStatus::from_static(status)),
            }),
        }))
    }

    pub(super) async fn get_object_lock_configuration(
        &self,
        req: S3Request<dto::GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<dto::GetObjectLockConfigurationOutput>> {
        S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        self.require_bucket(&req.input.bucket).await?;
        // Every version can take a retention or a hold: Object Lock is always on.
        Ok(S3Response::new(dto::GetObjectLockConfigurationOutput {
            object_lock_configuration: Some(dto::ObjectLockConfiguration {
                object_lock_enabled: Some(dto::ObjectLockEnabled::from_static(dto::ObjectLockEnabled::ENABLED)),
                rule: None,
            }),
        }))
    }
}
