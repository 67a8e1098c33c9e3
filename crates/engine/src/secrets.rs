//! Secret use cases: the envelope on the way in and out.
//!
//! Write: a fresh DEK seals the value (AAD = vault, path, version); the provider
//! wraps the DEK under the vault KEK with a wrap AAD over the same context; the
//! store appends the version with a compare-and-set on the head, retrying with a
//! fresh DEK if another writer took the number.
//!
//! Read: the row is checked (deleted, disabled, expired, over-count), the DEK
//! unwrapped and the payload opened with the AAD of the place it was read from
//! — so a row copied anywhere else fails — then the read is counted and audited
//! in one commit before the value is returned.

use serde_json::{Value, json};
use strongroom_core::audit::details::{Grant, Outcome, ReadRefusal, SecretEvent};
use strongroom_core::audit::{AuditAction, AuditRecord, AuditResource};
use strongroom_core::authz::{Action, PolicyDecision, ReadFilter};
use strongroom_core::secret::{Charset, ROTATE_LENGTH, parse_secret_type};
use strongroom_core::time_util::now;
use strongroom_core::{Error, GoneReason, Principal, Result, SecretId, SecretPath, VaultId};
use strongroom_crypto::{SecretBytes, SecretContext};
use strongroom_store::{NewSecretVersion, SecretMeta, StoreError, VaultRow, VersionRow};
use time::OffsetDateTime;

use crate::{Engine, views};

/// Secret types an agent with the Intents API enabled may not read.
const KEY_MATERIAL_TYPES: &[&str] = &["private_key", "ssh_key"];

/// How many times a write retries after losing a version race.
const WRITE_ATTEMPTS: u32 = 12;

/// After a lost race, a writer waits a random time up to this doubled per
/// attempt (2, 4 … 128 ms), so writers of one path on many nodes spread out
/// instead of colliding again in step.
fn backoff(attempt: u32) -> std::time::Duration {
    let mut b = [0u8; 2];
    strongroom_crypto::random::fill(&mut b);
    let cap = 1u64 << attempt.min(7);
    std::time::Duration::from_micros(u64::from(u16::from_le_bytes(b)) * cap * 1000 / 65536)
}
/// The largest metadata object accepted, serialized.
const MAX_METADATA_BYTES: usize = 64 * 1024;

/// A new secret version.
pub struct PutSecret {
    /// The value.
    pub value: SecretBytes,
    /// Type (validated; default `generic`).
    pub secret_type: Option<String>,
    /// Client metadata: a JSON object.
    pub metadata: Option<Value>,
    /// Expiry.
    pub expires_at: Option<OffsetDateTime>,
    /// Maximum reads.
    pub max_access_count: Option<i64>,
}

/// A decrypted value with its metadata.
#[derive(Debug)]
pub struct SecretValue {
    /// Metadata of the version read.
    pub meta: views::SecretMeta,
    /// The plaintext.
    pub value: SecretBytes,
}

impl Engine {
    /// Stores a new version of `path`.
    pub async fn put_secret(
        &self,
        who: &Principal,
        vault_id: VaultId,
        path: &SecretPath,
        input: PutSecret,
    ) -> Result<views::SecretMeta> {
        let (vault, decision) = self
            .vault_for(who, vault_id, Action::Write, Some(path))
            .await?;
        let secret_type = parse_secret_type(input.secret_type.as_deref())?;
        let metadata = match input.metadata {
            None | Some(Value::Null) => json!({}),
            Some(v @ Value::Object(_)) => v,
            Some(_) => return Err(Error::invalid("metadata must be a JSON object")),
        };
        if metadata.to_string().len() > MAX_METADATA_BYTES {
            return Err(Error::invalid("metadata is larger than 64 KiB"));
        }
        if input.max_access_count.is_some_and(|n| n < 1) {
            return Err(Error::invalid("max_access_count must be at least 1"));
        }
        self.write_version(
            who,
            &vault,
            path,
            &input.value,
            secret_type,
            metadata,
            input.expires_at,
            input.max_access_count,
            AuditAction::SecretWrite,
            &decision,
        )
        .await
        .map(Into::into)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn write_version(
        &self,
        who: &Principal,
        vault: &VaultRow,
        path: &SecretPath,
        value: &SecretBytes,
        secret_type: String,
        metadata: Value,
        expires_at: Option<OffsetDateTime>,
        max_access_count: Option<i64>,
        action: AuditAction,
        decision: &PolicyDecision,
    ) -> Result<SecretMeta> {
        for attempt in 0..WRITE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let head = self.store.secret_head(vault.id, path).await?;
            let (secret_id, expected) = head
                .map(|h| (h.id, h.latest_version))
                .unwrap_or((SecretId::new(), 0));
            let version = expected
                .checked_add(1)
                .ok_or_else(|| Error::Conflict("version numbers exhausted".into()))?;
            let ctx = SecretContext {
                vault: vault.id,
                path,
                version,
            };
            let envelope = self.envelopes.seal(&ctx, &vault.kek_ref, value).await?;
            let created_at = now();
            let row = NewSecretVersion {
                secret_id,
                vault_id: vault.id,
                path: path.clone(),
                version,
                expected_latest: expected,
                secret_type: secret_type.clone(),
                metadata: metadata.clone(),
                expires_at,
                max_access_count,
                envelope,
                created_by: who.subject,
                created_at,
            };
            let audit = AuditRecord::by(who, action, AuditResource::Secret(secret_id))
                .with_details(SecretEvent {
                    vault_id: vault.id,
                    path,
                    version: Some(version),
                    grant: Some(decision.into()),
                });
            match self.store.insert_version(&row, &audit).await {
                Ok(()) => {
                    return Ok(SecretMeta {
                        id: secret_id,
                        vault_id: vault.id,
                        path: path.clone(),
                        version,
                        secret_type,
                        metadata,
                        expires_at,
                        disabled: false,
                        created_by: who.subject.to_string(),
                        created_at,
                    });
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict(
            "too many concurrent writes to this secret; try again".into(),
        ))
    }

    /// Reads and decrypts the latest version (or `version`) of `path`.
    pub async fn read_secret(
        &self,
        who: &Principal,
        vault_id: VaultId,
        path: &SecretPath,
        version: Option<u32>,
    ) -> Result<SecretValue> {
        let (vault, decision) = self
            .vault_for(who, vault_id, Action::Read, Some(path))
            .await?;
        let row = self
            .store
            .version(vault.id, path, version)
            .await?
            .ok_or_else(|| match version {
                None => Error::not_found("secret not found"),
                Some(_) => Error::not_found("secret version not found"),
            })?;
        let context = || SecretEvent {
            vault_id: vault.id,
            path,
            version: Some(row.meta.version),
            grant: Some(Grant::from(&decision)),
        };
        if who.intents_api && KEY_MATERIAL_TYPES.contains(&row.meta.secret_type.as_str()) {
            // The Intents API signs with such keys on the agent's behalf; the
            // agent itself never holds them (1claw's rule).
            let refused = Error::forbidden(
                "agents with the Intents API enabled may not read private_key or ssh_key secrets",
            );
            return Err(self
                .refused_read(who, &row, context(), "intents_api", refused)
                .await);
        }
        if let Err(gone) = check_readable(&row) {
            return Err(self.refused_gone(who, &row, context(), gone).await);
        }
        let value = self.open(&vault, &row, who).await?;
        let audit = AuditRecord::by(
            who,
            AuditAction::SecretRead,
            AuditResource::Secret(row.meta.id),
        )
        .with_details(context());
        if !self
            .store
            .record_read(row.meta.id, row.meta.version, &audit)
            .await?
        {
            let gone = GoneReason::AccessLimitReached;
            return Err(self.refused_gone(who, &row, context(), gone).await);
        }
        Ok(SecretValue {
            meta: row.meta.into(),
            value,
        })
    }

    /// Records a read the policy allowed but the secret's state refused
    /// (deleted, disabled, expired, used up) as `access.denied`, and returns
    /// the refusal.
    async fn refused_gone(
        &self,
        who: &Principal,
        row: &VersionRow,
        details: SecretEvent<'_>,
        gone: GoneReason,
    ) -> Error {
        self.refused_read(who, row, details, gone.as_str(), Error::Gone(gone))
            .await
    }

    /// Records a read the policy allowed but `rule` refused as
    /// `access.denied`, and returns `refusal`.
    async fn refused_read(
        &self,
        who: &Principal,
        row: &VersionRow,
        details: SecretEvent<'_>,
        rule: &str,
        refusal: Error,
    ) -> Error {
        let details = ReadRefusal {
            secret: details,
            attempted: Action::Read,
            outcome: Outcome::Denied,
            rule,
        };
        let rec = AuditRecord::by(
            who,
            AuditAction::AccessDenied,
            AuditResource::Secret(row.meta.id),
        )
        .with_details(details);
        self.audit_best_effort(rec).await;
        refusal
    }

    /// Unwraps the DEK and opens the payload, bound to where the row was read from.
    async fn open(
        &self,
        vault: &VaultRow,
        row: &VersionRow,
        who: &Principal,
    ) -> Result<SecretBytes> {
        let ctx = SecretContext {
            vault: vault.id,
            path: &row.meta.path,
            version: row.meta.version,
        };
        let result = self.envelopes.open(&ctx, &row.envelope).await;
        if matches!(result, Err(Error::Integrity)) {
            tracing::error!(vault_id = %vault.id, path = %row.meta.path, version = row.meta.version, "stored secret failed its integrity check");
            let rec = AuditRecord::by(
                who,
                AuditAction::SecretIntegrityFailure,
                AuditResource::Secret(row.meta.id),
            )
            .with_details(SecretEvent {
                vault_id: vault.id,
                path: &row.meta.path,
                version: Some(row.meta.version),
                grant: None,
            });
            self.audit_best_effort(rec).await;
        }
        result
    }

    /// Metadata of the live secrets under `prefix` (no values; no prefix: all).
    pub async fn list_secrets(
        &self,
        who: &Principal,
        vault_id: VaultId,
        prefix: Option<&str>,
    ) -> Result<Vec<views::SecretMeta>> {
        let prefix = prefix.unwrap_or("");
        if prefix.len() > strongroom_core::path::MAX_PATH_LEN {
            return Err(Error::invalid("prefix is too long"));
        }
        let (vault, _, policies) = self
            .vault_access(who, vault_id, Action::ViewVault, None)
            .await?;
        // Only the paths the caller may read: listing must not reveal the rest.
        // What a read of each path would be told, with what doesn't depend on
        // the path decided once for the whole listing.
        let facts = crate::facts(&vault);
        let readable = ReadFilter::new(who, &facts, &policies, strongroom_core::time_util::now());
        Ok(self
            .store
            .list_secrets(vault.id, prefix)
            .await?
            .into_iter()
            .filter(|m| readable.allows(&m.path))
            .map(Into::into)
            .collect())
    }

    /// Every live version's metadata of `path` (a deleted secret is 410; the
    /// versions a deletion removed are not listed after a later write).
    pub async fn list_versions(
        &self,
        who: &Principal,
        vault_id: VaultId,
        path: &SecretPath,
    ) -> Result<Vec<views::SecretMeta>> {
        let (vault, _) = self
            .vault_for(who, vault_id, Action::Read, Some(path))
            .await?;
        let head = self
            .store
            .secret_head(vault.id, path)
            .await?
            .ok_or_else(|| Error::not_found("secret not found"))?;
        if head.deleted {
            return Err(Error::Gone(GoneReason::Deleted));
        }
        let versions = self.store.list_versions(head.id).await?;
        Ok(versions.into_iter().map(Into::into).collect())
    }

    /// Disables one version; reads of it answer 410 afterwards.
    pub async fn disable_version(
        &self,
        who: &Principal,
        vault_id: VaultId,
        path: &SecretPath,
        version: u32,
    ) -> Result<()> {
        let (vault, decision) = self
            .vault_for(who, vault_id, Action::Write, Some(path))
            .await?;
        let head = self
            .store
            .secret_head(vault.id, path)
            .await?
            .ok_or_else(|| Error::not_found("secret not found"))?;
        let audit = AuditRecord::by(
            who,
            AuditAction::SecretVersionDisable,
            AuditResource::Secret(head.id),
        )
        .with_details(SecretEvent {
            vault_id: vault.id,
            path,
            version: Some(version),
            grant: Some(Grant::from(&decision)),
        });
        if !self.store.disable_version(head.id, version, &audit).await? {
            return Err(Error::not_found("secret version not found"));
        }
        Ok(())
    }

    /// Soft-deletes every version `path` has now: a later write starts a new
    /// live version (numbering continues) and never brings these back.
    pub async fn delete_secret(
        &self,
        who: &Principal,
        vault_id: VaultId,
        path: &SecretPath,
    ) -> Result<()> {
        let (vault, decision) = self
            .vault_for(who, vault_id, Action::Delete, Some(path))
            .await?;
        let head = self
            .store
            .secret_head(vault.id, path)
            .await?
            .ok_or_else(|| Error::not_found("secret not found"))?;
        if head.deleted {
            return Err(Error::Gone(GoneReason::Deleted));
        }
        let audit = AuditRecord::by(
            who,
            AuditAction::SecretDelete,
            AuditResource::Secret(head.id),
        )
        .with_details(SecretEvent {
            vault_id: vault.id,
            path,
            version: None,
            grant: Some(Grant::from(&decision)),
        });
        Ok(self.store.delete_secret(head.id, &audit).await?)
    }

    /// Stores a new, server-generated random version of `path`.
    pub async fn rotate_secret(
        &self,
        who: &Principal,
        vault_id: VaultId,
        path: &SecretPath,
        length: Option<u32>,
        charset: Option<&str>,
        secret_type: Option<String>,
    ) -> Result<views::SecretMeta> {
        let length = length.unwrap_or(32);
        if !ROTATE_LENGTH.contains(&length) {
            return Err(Error::invalid(format!(
                "length must be between {} and {}",
                ROTATE_LENGTH.start(),
                ROTATE_LENGTH.end()
            )));
        }
        let charset: Charset = charset.unwrap_or("hex").parse()?;
        let (vault, decision, policies) = self
            .vault_access(who, vault_id, Action::Rotate, Some(path))
            .await?;
        let previous = self.store.version(vault.id, path, None).await?;
        let secret_type = match secret_type {
            Some(t) => parse_secret_type(Some(&t))?,
            None => previous
                .as_ref()
                .map(|p| p.meta.secret_type.clone())
                .unwrap_or_else(|| "generic".into()),
        };
        let metadata = previous
            .as_ref()
            .map(|p| p.meta.metadata.clone())
            .unwrap_or_else(|| json!({}));
        let value = SecretBytes::from(strongroom_crypto::random::string_from(
            charset.alphabet(),
            length as usize,
        ));
        let mut meta = self
            .write_version(
                who,
                &vault,
                path,
                &value,
                secret_type,
                metadata,
                None,
                None,
                AuditAction::SecretRotate,
                &decision,
            )
            .await?;
        // The new version inherits the previous one's metadata; a caller who
        // may rotate but not read learns nothing of it from the answer.
        let may_read = strongroom_core::authz::authorize(
            who,
            &crate::facts(&vault),
            Action::Read,
            Some(path),
            &policies,
            now(),
        )
        .is_ok();
        if !may_read {
            meta.metadata = json!({});
        }
        Ok(meta.into())
    }
}

/// Refuses rows that may no longer be served. A version deleted with its
/// secret stays gone even after a later write made the path live again.
fn check_readable(row: &VersionRow) -> std::result::Result<(), GoneReason> {
    if row.deleted {
        return Err(GoneReason::Deleted);
    }
    if row.meta.disabled {
        return Err(GoneReason::Disabled);
    }
    if row
        .meta
        .expires_at
        .is_some_and(|t| t <= OffsetDateTime::now_utc())
    {
        return Err(GoneReason::Expired);
    }
    if row.max_access_count.is_some_and(|m| row.access_count >= m) {
        return Err(GoneReason::AccessLimitReached);
    }
    Ok(())
}
