//! The portal tests' workspace, set up through the API of a real `tandem` binary: the B2B pond
//! supplier's IT help desk (team 5 of the use cases) with two customer organizations — Pond
//! Supply's sites and, as "another organization", a Hearwell clinic — and one IT support form.

#![allow(dead_code)] // Each test binary uses part of this.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{ADMIN, Http, Server, start};

pub const PASSWORD: &str = "koi pond filter 2026";

pub struct Portal {
    pub server: Server,
    pub http: Http,
    /// The origin (`http://127.0.0.1:port`).
    pub origin: String,
    pub ws: String,
    pub form_type: String,
    /// A type without a public form.
    pub plain_type: String,
    pub tom: String,
    pub sara: String,
    pub eva: String,
    pub _db: tempfile::TempDir,
}

impl Portal {
    pub fn form_url(&self) -> String {
        format!("{}/forms/{}/{}", self.origin, self.ws, self.form_type)
    }

    pub fn portal_url(&self, rest: &str) -> String {
        format!("{}/portal/{}{rest}", self.origin, self.ws)
    }

    /// Every item's number and title, through the API as the administrator.
    pub async fn items(&self) -> Vec<Value> {
        self.http.items().await
    }

    pub async fn patch_portal(&self, body: Value) {
        self.http.call(reqwest::Method::PATCH, "/portal", Some(body), StatusCode::OK).await;
    }
}

async fn customer(http: &Http, name: &str, email: &str) -> String {
    let user = http
        .post("/users", json!({"name": name, "email": email, "role": "customer"}), StatusCode::CREATED)
        .await;
    let id = user["id"].as_str().unwrap().to_string();
    http.post(&format!("/users/{id}/password"), json!({"password": PASSWORD}), StatusCode::NO_CONTENT).await;
    id
}

/// Starts `tandem serve` on a fresh SQLite database and sets the workspace up.
pub async fn setup(extra: &[&str], open_forms: bool) -> Portal {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tandem.db").display().to_string();
    let server = start(&db, Some(ADMIN), extra).await;
    let http = Http::new(&server, ADMIN);
    let origin = server.base.trim_end_matches("/api/v1").to_string();
    let ws = http.post("/workspaces", json!({"name": "Pond Supply"}), StatusCode::CREATED).await;
    let ws = ws["id"].as_str().unwrap().to_string();
    for (name, domain) in
        [("Pond Supply sites", "pondsupply.example"), ("Hearwell Clinics", "hearwell.example")]
    {
        http.post("/organizations", json!({"name": name, "domains": [domain]}), StatusCode::CREATED).await;
    }
    let tom = customer(&http, "Tom Becker", "tom@pondsupply.example").await;
    let sara = customer(&http, "Sara Nguyen", "sara@pondsupply.example").await;
    let eva = customer(&http, "Eva de Vries", "eva@hearwell.example").await;
    let field = |key: &str, label: &str, kind: &str| json!({"key": key, "label": label, "kind": kind});
    let it = http
        .post(
            "/item-types",
            json!({
                "name": "IT support",
                "kind": "ticket",
                "description": "Hardware, software and network problems at the sites.",
                "fields": [
                    {"key": "location", "label": "Site", "kind": "choice", "required": true,
                     "help": "The site where the problem is.",
                     "rules": {"options": ["Toronto", "Vancouver", "Seattle"]}},
                    field("device", "Device", "text"),
                    {"key": "affected_users", "label": "Affected users", "kind": "number", "rules": {"min": 1.0}},
                    field("noticed_on", "Noticed on", "date"),
                    {"key": "symptoms", "label": "Symptoms", "kind": "multi_choice",
                     "rules": {"options": ["No power", "Slow", "Error message"]}},
                    field("urgent", "Stops sales", "checkbox"),
                    field("steps", "What have you tried?", "long_text"),
                    {"key": "asset_tag", "label": "Asset tag", "kind": "text", "internal": true},
                ],
            }),
            StatusCode::CREATED,
        )
        .await;
    let form_type = it["id"].as_str().unwrap().to_string();
    http.post(
        &format!("/item-types/{form_type}/workflow"),
        json!({"op": "update_status", "key": "execution", "public_label": "We are on it"}),
        StatusCode::OK,
    )
    .await;
    let types = http.get("/item-types").await;
    let plain_type = types.as_array().unwrap().iter().find(|t| t["id"] != form_type.as_str()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let portal = Portal { server, http, origin, ws, form_type, plain_type, tom, sara, eva, _db: dir };
    portal
        .patch_portal(json!({
            "visibility": "organization",
            "open_forms": open_forms,
            "branding": {"name": "Pond Supply IT", "primary_color": "#0b6e4f", "background_color": "#f3f8f5"},
            "forms": {portal.form_type.clone(): {"title": "Report an IT problem",
                       "intro": "Tell us what is broken; we answer within a working day.", "attachments": true}},
        }))
        .await;
    portal
}
