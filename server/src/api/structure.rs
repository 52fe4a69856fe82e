//! Workspaces, portfolios, projects, folders and item types (with their workflows and fields).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use tandem_core::commands::{
    CreateFolder, CreateItemType, CreatePortfolio, CreateProject, CreateWorkspace, DeleteFolder,
    DeletePortfolio, EditFields, EditWorkflow, FieldEdit, FolderPatch, ItemTypePatch, PortfolioPatch,
    ProjectPatch, RenameWorkspace, UpdateFolder, UpdateItemType, UpdatePortfolio, UpdateProject,
    WorkflowEdit,
};
use tandem_core::store::RecordQuery;
use tandem_core::{Folder, ItemType, ItemTypeId, Portfolio, Project, ProjectId, Workspace};

use super::{Param, created};
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::JsonBody;
use crate::state::AppState;

type Created<T> = (StatusCode, Json<T>);

pub async fn list_workspaces(
    State(s): State<AppState>,
    Auth(actor): Auth,
) -> ApiResult<Json<Vec<Workspace>>> {
    Ok(Json(s.desk().workspaces(&actor).await?))
}

pub async fn create_workspace(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(cmd): JsonBody<CreateWorkspace>,
) -> ApiResult<Created<Workspace>> {
    Ok(created(s.desk().execute(&actor, &cmd).await?))
}

pub async fn get_workspace(State(s): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<Workspace>> {
    Ok(Json(s.desk().workspace(&actor).await?))
}

pub async fn rename_workspace(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(cmd): JsonBody<RenameWorkspace>,
) -> ApiResult<Json<Workspace>> {
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

pub async fn list_portfolios(
    State(s): State<AppState>,
    Auth(actor): Auth,
) -> ApiResult<Json<Vec<Portfolio>>> {
    Ok(Json(s.desk().directory(&actor, &RecordQuery::all()).await?))
}

pub async fn create_portfolio(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(cmd): JsonBody<CreatePortfolio>,
) -> ApiResult<Created<Portfolio>> {
    Ok(created(s.desk().execute(&actor, &cmd).await?))
}

pub async fn get_portfolio(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<Portfolio>> {
    Ok(Json(s.desk().directory_entry(&actor, id.id("portfolio")?).await?))
}

pub async fn update_portfolio(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(patch): JsonBody<PortfolioPatch>,
) -> ApiResult<Json<Portfolio>> {
    let cmd = UpdatePortfolio { id: id.id("portfolio")?, patch };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

pub async fn delete_portfolio(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<StatusCode> {
    s.desk().execute(&actor, &DeletePortfolio { id: id.id("portfolio")? }).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_projects(State(s): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<Vec<Project>>> {
    Ok(Json(s.desk().directory(&actor, &RecordQuery::all()).await?))
}

pub async fn create_project(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(cmd): JsonBody<CreateProject>,
) -> ApiResult<Created<Project>> {
    Ok(created(s.desk().execute(&actor, &cmd).await?))
}

pub async fn get_project(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<Project>> {
    Ok(Json(s.desk().directory_entry(&actor, id.id("project")?).await?))
}

pub async fn update_project(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(patch): JsonBody<ProjectPatch>,
) -> ApiResult<Json<Project>> {
    let cmd = UpdateProject { id: id.id("project")?, patch };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

pub async fn list_folders(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<Vec<Folder>>> {
    let project: ProjectId = id.id("project")?;
    // An unknown project is a 404, not an empty list.
    let project: Project = s.desk().directory_entry(&actor, project.0).await?;
    Ok(Json(s.desk().directory(&actor, &RecordQuery::children_of(project.id.0)).await?))
}

pub async fn create_folder(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(cmd): JsonBody<CreateFolder>,
) -> ApiResult<Created<Folder>> {
    Ok(created(s.desk().execute(&actor, &cmd).await?))
}

pub async fn update_folder(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(patch): JsonBody<FolderPatch>,
) -> ApiResult<Json<Folder>> {
    let cmd = UpdateFolder { id: id.id("folder")?, patch };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

pub async fn delete_folder(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<StatusCode> {
    s.desk().execute(&actor, &DeleteFolder { id: id.id("folder")? }).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_item_types(State(s): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<Vec<ItemType>>> {
    Ok(Json(s.desk().directory(&actor, &RecordQuery::all()).await?))
}

pub async fn create_item_type(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(cmd): JsonBody<CreateItemType>,
) -> ApiResult<Created<ItemType>> {
    Ok(created(s.desk().execute(&actor, &cmd).await?))
}

pub async fn get_item_type(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<ItemType>> {
    Ok(Json(s.desk().directory_entry(&actor, id.id("item type")?).await?))
}

pub async fn update_item_type(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(patch): JsonBody<ItemTypePatch>,
) -> ApiResult<Json<ItemType>> {
    let cmd = UpdateItemType { id: id.id("item type")?, patch };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

pub async fn edit_workflow(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(edit): JsonBody<WorkflowEdit>,
) -> ApiResult<Json<ItemType>> {
    let item_type: ItemTypeId = id.id("item type")?;
    Ok(Json(s.desk().execute(&actor, &EditWorkflow { item_type, edit }).await?))
}

pub async fn edit_fields(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(edit): JsonBody<FieldEdit>,
) -> ApiResult<Json<ItemType>> {
    let item_type: ItemTypeId = id.id("item type")?;
    Ok(Json(s.desk().execute(&actor, &EditFields { item_type, edit }).await?))
}
