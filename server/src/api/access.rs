//! Organizations, project members and grants, join requests and the portal's visibility.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use tandem_core::commands::{
    ConfigurePortal, CreateOrganization, DecideJoinRequest, DeleteOrganization, OrganizationPatch,
    RemoveProjectMember, RequestToJoin, SetProjectMember, UpdateOrganization,
};
use tandem_core::store::RecordQuery;
use tandem_core::{
    JoinRequest, Organization, PortalSettings, ProjectId, ProjectMember, ProjectRole, User, UserId,
};

use super::{Param, created};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, OptionalJson, path_id};
use crate::state::AppState;

type Created<T> = (StatusCode, Json<T>);

pub async fn list_organizations(
    State(s): State<AppState>,
    Auth(actor): Auth,
) -> ApiResult<Json<Vec<Organization>>> {
    Ok(Json(s.desk().directory(&actor, &RecordQuery::all()).await?))
}

pub async fn create_organization(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(cmd): JsonBody<CreateOrganization>,
) -> ApiResult<Created<Organization>> {
    Ok(created(s.desk().execute(&actor, &cmd).await?))
}

pub async fn get_organization(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<Organization>> {
    Ok(Json(s.desk().directory_entry(&actor, id.id("organization")?).await?))
}

pub async fn update_organization(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(patch): JsonBody<OrganizationPatch>,
) -> ApiResult<Json<Organization>> {
    let cmd = UpdateOrganization { id: id.id("organization")?, patch };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

pub async fn delete_organization(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<StatusCode> {
    s.desk().execute(&actor, &DeleteOrganization { id: id.id("organization")? }).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn organization_members(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(s.desk().organization_members(&actor, id.id("organization")?, 10_000).await?))
}

pub async fn project_members(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<Vec<ProjectMember>>> {
    Ok(Json(s.desk().project_members(&actor, id.id("project")?).await?))
}

/// `/projects/{id}/members/{user}`: both ids, each a 404 naming it when malformed.
fn member_path(raw: Result<Path<(String, String)>, PathRejection>) -> Result<(ProjectId, UserId), ApiError> {
    let Path((project, user)) = raw.map_err(|e| ApiError::bad_request(e.body_text()))?;
    Ok((path_id(&project, "project")?, path_id(&user, "user")?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberRole {
    role: ProjectRole,
}

/// Adds a member or grant, or changes its role.
pub async fn set_project_member(
    State(s): State<AppState>,
    Auth(actor): Auth,
    path: Result<Path<(String, String)>, PathRejection>,
    JsonBody(body): JsonBody<MemberRole>,
) -> ApiResult<Json<ProjectMember>> {
    let (project, user) = member_path(path)?;
    Ok(Json(s.desk().execute(&actor, &SetProjectMember { project, user, role: body.role }).await?))
}

pub async fn remove_project_member(
    State(s): State<AppState>,
    Auth(actor): Auth,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<StatusCode> {
    let (project, user) = member_path(path)?;
    s.desk().execute(&actor, &RemoveProjectMember { project, user }).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_join_requests(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<Vec<JoinRequest>>> {
    Ok(Json(s.desk().join_requests(&actor, id.id("project")?).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewJoinRequest {
    #[serde(default)]
    note: String,
    #[serde(default)]
    role: Option<ProjectRole>,
}

pub async fn request_to_join(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(body): JsonBody<NewJoinRequest>,
) -> ApiResult<Created<JoinRequest>> {
    let cmd = RequestToJoin { project: id.id("project")?, note: body.note, role: body.role };
    Ok(created(s.desk().execute(&actor, &cmd).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    #[serde(default)]
    role: Option<ProjectRole>,
}

pub async fn approve_join_request(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    OptionalJson(body): OptionalJson<Approval>,
) -> ApiResult<Json<JoinRequest>> {
    let role = body.role;
    let cmd = DecideJoinRequest { id: id.id("join request")?, approve: true, role };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

pub async fn deny_join_request(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<JoinRequest>> {
    let cmd = DecideJoinRequest { id: id.id("join request")?, approve: false, role: None };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

pub async fn get_portal(State(s): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<PortalSettings>> {
    Ok(Json(s.desk().portal_settings(&actor).await?))
}

pub async fn configure_portal(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(cmd): JsonBody<ConfigurePortal>,
) -> ApiResult<Json<PortalSettings>> {
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}
