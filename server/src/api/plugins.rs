//! Plugins: upload (multipart: `wasm` + `manifest`), list, show, upgrade, approve capabilities and
//! secrets, configure, enable, disable, remove. Administrators only (`Desk` checks). Secrets are
//! write-only: reads show which header goes to which host, never the value.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use tandem_core::plugins::{
    ApprovePlugin, ConfigurePlugin, InstallPlugin, PluginSecret, PluginView, RemovePlugin, SetPluginEnabled,
    UpgradePlugin,
};

use super::conversation::{is_multipart, multipart, multipart_error};
use super::{Param, created};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::state::AppState;

/// What an upload form carries.
struct Upload {
    wasm: Vec<u8>,
    manifest: String,
    approve: bool,
    config: Value,
}

async fn read_upload(req: Request, s: &AppState, install: bool) -> ApiResult<Upload> {
    if !is_multipart(&req) {
        return Err(ApiError::bad_request(
            "expected a multipart/form-data body with 'wasm' (the component) and 'manifest' (plugin.toml) parts",
        ));
    }
    let mut form = multipart(req, s).await?;
    let (mut wasm, mut manifest, mut approve, mut config) = (None, None, false, Value::Null);
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "wasm" if wasm.is_none() => wasm = Some(field.bytes().await.map_err(multipart_error)?.to_vec()),
            "manifest" if manifest.is_none() => {
                let bytes = field.bytes().await.map_err(multipart_error)?;
                manifest = Some(
                    String::from_utf8(bytes.to_vec())
                        .map_err(|_| ApiError::invalid("manifest", "plugin.toml must be UTF-8 text"))?,
                );
            }
            "wasm" | "manifest" => return Err(ApiError::invalid(name, "given twice")),
            "approve" if install => {
                let text = field.text().await.map_err(multipart_error)?;
                approve = match text.trim() {
                    "true" | "1" | "yes" => true,
                    "false" | "0" | "no" | "" => false,
                    other => {
                        return Err(ApiError::invalid("approve", format!("{other:?} is not true or false")));
                    }
                };
            }
            "config" if install => {
                let text = field.text().await.map_err(multipart_error)?;
                config = serde_json::from_str(&text)
                    .map_err(|e| ApiError::invalid("config", format!("not JSON: {e}")))?;
            }
            other => {
                let expected = if install { "wasm, manifest, approve or config" } else { "wasm or manifest" };
                return Err(ApiError::invalid(
                    other.to_string(),
                    format!("unknown form field; expected {expected}"),
                ));
            }
        }
    }
    Ok(Upload {
        wasm: wasm.ok_or_else(|| ApiError::invalid("wasm", "is required (the .wasm component)"))?,
        manifest: manifest.ok_or_else(|| ApiError::invalid("manifest", "is required (plugin.toml)"))?,
        approve,
        config,
    })
}

pub async fn list_plugins(State(s): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<Vec<PluginView>>> {
    Ok(Json(s.desk().plugins(&actor).await?))
}

/// Installs a plugin: `wasm` and `manifest` parts, optional `approve` (`true` approves the hosts
/// the manifest asks for) and `config` (a JSON object).
pub async fn install_plugin(
    State(s): State<AppState>,
    Auth(actor): Auth,
    req: Request,
) -> ApiResult<(StatusCode, Json<PluginView>)> {
    s.desk().may_manage_plugins(&actor)?;
    let upload = read_upload(req, &s, true).await?;
    let package = s.plugins()?.package(&upload.manifest, upload.wasm).await?;
    let cmd = InstallPlugin { package, approve: upload.approve, config: upload.config };
    Ok(created(s.desk().execute(&actor, &cmd).await?))
}

/// Upgrades an installed plugin to a newer version of the same plugin (`wasm` + `manifest`).
pub async fn upgrade_plugin(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    req: Request,
) -> ApiResult<Json<PluginView>> {
    s.desk().may_manage_plugins(&actor)?;
    let upload = read_upload(req, &s, false).await?;
    let package = s.plugins()?.package(&upload.manifest, upload.wasm).await?;
    if package.plugin != id.0 {
        return Err(ApiError::invalid(
            "manifest.id",
            format!("{:?} is another plugin than {:?}", package.plugin, id.0),
        ));
    }
    Ok(Json(s.desk().execute(&actor, &UpgradePlugin { package }).await?))
}

pub async fn get_plugin(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<PluginView>> {
    Ok(Json(s.desk().plugin(&actor, &id.0).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// Hosts approved (all the manifest asks for when absent).
    #[serde(default)]
    hosts: Option<Vec<String>>,
    /// Replaces the secrets when present.
    #[serde(default)]
    secrets: Option<Vec<PluginSecret>>,
}

pub async fn approve_plugin(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(body): JsonBody<Approval>,
) -> ApiResult<Json<PluginView>> {
    let cmd = ApprovePlugin { plugin: id.0, hosts: body.hosts, secrets: body.secrets };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

/// Replaces the installation's settings with the body (a JSON object).
pub async fn configure_plugin(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(config): JsonBody<Value>,
) -> ApiResult<Json<PluginView>> {
    Ok(Json(s.desk().execute(&actor, &ConfigurePlugin { plugin: id.0, config }).await?))
}

pub async fn enable_plugin(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<PluginView>> {
    Ok(Json(s.desk().execute(&actor, &SetPluginEnabled { plugin: id.0, enabled: true }).await?))
}

pub async fn disable_plugin(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<PluginView>> {
    Ok(Json(s.desk().execute(&actor, &SetPluginEnabled { plugin: id.0, enabled: false }).await?))
}

pub async fn delete_plugin(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<StatusCode> {
    s.desk().execute(&actor, &RemovePlugin { plugin: id.0 }).await?;
    Ok(StatusCode::NO_CONTENT)
}
