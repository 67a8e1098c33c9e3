//! The audit log as a use case: querying, verifying, and signing checkpoints.
//!
//! Appends happen inside the store, in the same transaction as the change they
//! record (see `strongroom_store`). This module adds what needs the key provider
//! or the caller's identity: signed checkpoints of every chain head, and the
//! org-scoped query and verification endpoints.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use strongroom_core::audit::{
    Attempt, ChainVerifier, Checkpoint, GENESIS_HASH, VerifyReport, checkpoint_message, parse_hash,
};
use strongroom_core::authz::OrgAction;
use strongroom_core::time_util::{now, to_micros};
use strongroom_core::{Error, OrgId, Principal, Result};
use strongroom_store::{AuditAppendSignal, AuditHead, AuditQuery};

use crate::Engine;
use crate::views::{AUDIT_PAGE_DEFAULT, AUDIT_PAGE_MAX, AuditFilter, AuditPage};

/// When to sign a checkpoint of a chain that has grown.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointPolicy {
    /// After this many new events.
    pub every_events: u64,
    /// Or after this long with any new event.
    pub every: Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            every_events: 1000,
            every: Duration::from_secs(60),
        }
    }
}

/// How often the checkpointer looks at the count of appended events.
const CHECKPOINT_POLL: Duration = Duration::from_millis(100);

/// Pages of this many events are read while verifying.
const VERIFY_PAGE: u32 = 5000;

impl Engine {
    async fn require_auditor(&self, who: &Principal, attempted: Attempt) -> Result<()> {
        let resource = crate::org_resource(who);
        self.org_allowed(who, OrgAction::ReadAudit, attempted, resource)
            .await
    }

    /// Events of the caller's organisation, newest first, with the total count.
    pub async fn audit_events(&self, who: &Principal, filter: AuditFilter) -> Result<AuditPage> {
        self.require_auditor(who, Attempt::AuditRead).await?;
        let q = AuditQuery {
            org_id: who.org_id.to_string(),
            action: filter.action,
            actor_id: filter.actor_id,
            resource_id: filter.resource_id,
            from_us: filter.from.map(to_micros),
            to_us: filter.to.map(to_micros),
            limit: filter
                .limit
                .unwrap_or(AUDIT_PAGE_DEFAULT)
                .clamp(1, AUDIT_PAGE_MAX),
            offset: filter.offset.unwrap_or(0),
        };
        let (events, total) = self.store.audit_query(&q).await?;
        Ok(AuditPage {
            events: events.into_iter().map(Into::into).collect(),
            total,
        })
    }

    /// Verifies the caller's organisation's whole chain and its checkpoints.
    pub async fn verify_audit(&self, who: &Principal) -> Result<VerifyReport> {
        self.require_auditor(who, Attempt::AuditVerify).await?;
        self.verify_chain_of(who.org_id).await
    }

    /// Verifies one chain (any organisation; for administrative use, through
    /// [`crate::Admin`]).
    pub(crate) async fn verify_chain_of(&self, org: OrgId) -> Result<VerifyReport> {
        let checkpoints = self.store.checkpoints(org).await?;
        let mut v = ChainVerifier::new(&checkpoints, 1, (GENESIS_HASH, None));
        let mut from = 1u64;
        loop {
            let page = self.store.audit_chain(org, from, VERIFY_PAGE).await?;
            let n = page.len();
            v.feed(&page);
            if n < VERIFY_PAGE as usize || !v.intact() {
                break;
            }
            from = page.last().map(|e| e.seq + 1).unwrap_or(from);
        }
        let public = self.kms.signing_public_key();
        Ok(v.finish(&checkpoints, &|kid, msg, sig| {
            kid == public.kid && strongroom_crypto::verify_ed25519(&public.ed25519, msg, sig)
        }))
    }

    /// Signs a checkpoint of every chain that grew past the policy's bounds.
    /// Returns how many were signed.
    pub(crate) async fn checkpoint_due(&self, policy: CheckpointPolicy) -> Result<usize> {
        let mut signed = 0;
        for head in self.store.audit_heads().await? {
            // Only a tampered log names a chain by something else than an
            // organisation id: leave it to `audit verify`, sign the others.
            let Ok(org) = head.org_id.parse::<OrgId>() else {
                tracing::warn!(org = %head.org_id, "an audit chain is named by no organisation id");
                continue;
            };
            let last = self.store.latest_checkpoint(org).await?;
            let due = match &last {
                None => true,
                Some(cp) if cp.seq >= head.seq => false,
                Some(cp) => {
                    head.seq - cp.seq >= policy.every_events
                        || to_micros(now()) - cp.created_at_us >= policy.every.as_micros() as i64
                }
            };
            if due {
                self.sign_checkpoint(&head).await?;
                signed += 1;
            }
        }
        Ok(signed)
    }

    /// Signs a checkpoint of the current head of every chain that has none at
    /// its head (if this node holds the checkpoint lease: on a database
    /// shared by many nodes, the signer does).
    pub(crate) async fn checkpoint_all(&self) -> Result<usize> {
        if !self.store.checkpoint_lease().await? {
            return Ok(0);
        }
        self.checkpoint_due(CheckpointPolicy {
            every_events: 1,
            every: Duration::ZERO,
        })
        .await
    }

    async fn sign_checkpoint(&self, head: &AuditHead) -> Result<()> {
        let hash =
            parse_hash(&head.hash).ok_or_else(|| Error::internal("malformed audit head hash"))?;
        let created_at_us = to_micros(now());
        let msg = checkpoint_message(&head.org_id, head.seq, &head.event_id, &hash, created_at_us);
        let sig = self.kms.sign(&msg).await?;
        let cp = Checkpoint {
            org_id: head.org_id.clone(),
            seq: head.seq,
            event_id: head.event_id.clone(),
            head_hash: head.hash.clone(),
            created_at_us,
            kid: self.kms.signing_public_key().kid,
            signature: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig),
        };
        Ok(self.store.insert_checkpoint(&cp).await?)
    }

    /// Runs [`Engine::checkpoint_due`] until the engine is dropped, while this
    /// node holds the checkpoint lease (always, on a single-node store): whenever
    /// `every_events` events were appended since the last run (`appends`, the
    /// store handle's count of committed events, is polled every 100 ms), and
    /// at least every `every` (at most 5 s apart) for chains that grew more
    /// slowly.
    pub(crate) fn spawn_checkpointer(
        self: &Arc<Self>,
        policy: CheckpointPolicy,
        appends: AuditAppendSignal,
    ) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let sweep = policy
            .every
            .min(Duration::from_secs(5))
            .max(CHECKPOINT_POLL);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(CHECKPOINT_POLL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let (mut seen, mut swept) = (0u64, None::<tokio::time::Instant>);
            loop {
                interval.tick().await;
                let Some(engine) = weak.upgrade() else { return };
                let appended = appends.appended();
                let grown = appended.saturating_sub(seen) >= policy.every_events;
                if !grown && swept.is_some_and(|t| t.elapsed() < sweep) {
                    continue;
                }
                (seen, swept) = (appended, Some(tokio::time::Instant::now()));
                // Nodes sharing a database sign one at a time.
                match engine.store.checkpoint_lease().await {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not take the checkpoint lease");
                        continue;
                    }
                }
                if let Err(e) = engine.checkpoint_due(policy).await {
                    tracing::warn!(error = %e.chain(), "could not sign audit checkpoints");
                }
            }
        })
    }
}
