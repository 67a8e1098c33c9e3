//! The audit log.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use strongroom_core::Error;
use strongroom_engine::{AuditEvent, AuditFilter};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::AppState;
use crate::extract::Auth;
use crate::problem::ApiResult;

/// Filters of `GET /v1/audit/events`.
#[derive(Deserialize, Default, utoipa::IntoParams)]
pub struct EventsQuery {
    action: Option<String>,
    actor_id: Option<String>,
    resource_id: Option<String>,
    /// RFC 3339.
    from: Option<String>,
    /// RFC 3339.
    to: Option<String>,
    /// Default 100; more than 1000 is 1000, 0 is 1.
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    limit: Option<u32>,
    /// Events to skip (newest first).
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    offset: Option<u32>,
}

/// One audit event.
#[derive(Serialize, ToSchema)]
pub struct AuditEventResponse {
    id: String,
    seq: u64,
    org_id: String,
    actor_type: String,
    actor_id: String,
    action: String,
    resource_type: String,
    resource_id: String,
    #[schema(value_type = Object)]
    details: Value,
    ip_address: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    prev_event_id: Option<String>,
    integrity_hash: String,
}

impl From<AuditEvent> for AuditEventResponse {
    fn from(e: AuditEvent) -> Self {
        AuditEventResponse {
            id: e.id,
            seq: e.seq,
            org_id: e.org_id,
            actor_type: e.actor_type,
            actor_id: e.actor_id,
            action: e.action,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            details: e.details,
            ip_address: e.ip_address,
            created_at: e.created_at,
            prev_event_id: e.prev_event_id,
            integrity_hash: e.integrity_hash,
        }
    }
}

/// `{events, count}`.
#[derive(Serialize, ToSchema)]
pub struct AuditEventList {
    events: Vec<AuditEventResponse>,
    /// How many events match the filter in all (the page may hold fewer).
    count: u64,
}

fn time_param(name: &str, v: Option<&str>) -> ApiResult<Option<OffsetDateTime>> {
    v.map(|s| {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map_err(|_| Error::invalid(format!("{name} must be an RFC 3339 timestamp")).into())
    })
    .transpose()
}

/// The caller's organisation's events, newest first.
#[utoipa::path(get, path = "/v1/audit/events", tag = "audit", params(EventsQuery),
    responses((status = 200, body = AuditEventList), (status = 400, description = "a malformed timestamp, limit or offset"),
        (status = 403, description = "the caller may not read the audit log")), security(("bearer" = [])))]
pub async fn audit_events(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Json<AuditEventList>> {
    let filter = AuditFilter {
        from: time_param("from", q.from.as_deref())?,
        to: time_param("to", q.to.as_deref())?,
        action: q.action,
        actor_id: q.actor_id,
        resource_id: q.resource_id,
        limit: q.limit,
        offset: q.offset,
    };
    let page = s.engine.audit_events(&p, filter).await?;
    Ok(Json(AuditEventList {
        events: page.events.into_iter().map(Into::into).collect(),
        count: page.total,
    }))
}

/// How the chain is built, for clients that verify it themselves.
#[derive(Serialize, ToSchema)]
pub struct ChainScheme {
    algorithm: &'static str,
    chain_structure: &'static str,
    hash_field: &'static str,
    link_field: &'static str,
    documentation: &'static str,
}

/// `GET /v1/audit/verify`.
#[derive(Serialize, ToSchema)]
pub struct VerifyResponse {
    chain_valid: bool,
    events_verified: u64,
    events_checked: u64,
    checkpoints_verified: u64,
    broken_at_event_id: Option<String>,
    broken_at_seq: Option<u64>,
    reason: Option<String>,
    scheme: ChainScheme,
}

/// Verifies the caller's organisation's chain and signed checkpoints.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit",
    responses((status = 200, body = VerifyResponse), (status = 403, description = "the caller may not read the audit log")), security(("bearer" = [])))]
pub async fn audit_verify(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<Json<VerifyResponse>> {
    let r = s.engine.verify_audit(&p).await?;
    Ok(Json(VerifyResponse {
        chain_valid: r.chain_valid,
        events_verified: r.events_verified,
        events_checked: r.events_checked,
        checkpoints_verified: r.checkpoints_verified,
        broken_at_event_id: r.broken_at_event_id,
        broken_at_seq: r.broken_at_seq,
        reason: r.reason,
        scheme: ChainScheme {
            algorithm: "SHA-256 over a length-prefixed canonical encoding; checkpoints signed with Ed25519",
            chain_structure: "one chain per organisation: each event hashes its fields and the previous event's hash",
            hash_field: "integrity_hash",
            link_field: "prev_event_id",
            documentation: "docs/audit.md",
        },
    }))
}
