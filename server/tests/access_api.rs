#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! Organizations, project members and grants, join requests and portal visibility through the
//! REST API, in-process (`tower::ServiceExt::oneshot`): what each role may do, the portal scope
//! that follows from the settings, and the 4xx answers naming what was wrong.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tandem_core::{Desk, Limits};
use tandem_server::{AdminToken, AppState, SystemClock, UuidV7Ids, router};
use tandem_storage_sqlite::{SqliteOptions, SqliteStore};
use tower::ServiceExt;

const ADMIN: &str = "tdm_access_test_admin_token";

struct Api {
    app: Router,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    body: Value,
}

impl Reply {
    #[track_caller]
    fn expect(self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        self.body
    }

    /// Asserts the API error shape; returns the error's `field` (or "").
    #[track_caller]
    fn error(self, status: StatusCode, code: &str) -> String {
        let body = self.expect(status);
        assert_eq!(body["error"]["code"], code, "{body}");
        body["error"]["field"].as_str().unwrap_or_default().to_string()
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

impl Api {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("access.db"), SqliteOptions::default()).unwrap();
        let desk = Desk::new(Arc::new(store), Arc::new(SystemClock), Arc::new(UuidV7Ids), Limits::default());
        let api = Api { app: router(AppState::new(desk, AdminToken::from_secret(ADMIN))), _dir: dir };
        api.call(Method::POST, "/workspaces", ADMIN, Some(json!({"name": "Clinics"})))
            .await
            .expect(StatusCode::CREATED);
        api
    }

    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/api/v1{path}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let response = self.app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        Reply { status, body }
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Creates a user and returns (id, a write token of theirs).
    async fn person(&self, name: &str, email: &str, role: &str) -> (String, String) {
        let user = self
            .post("/users", ADMIN, json!({"name": name, "email": email, "role": role}))
            .await
            .expect(StatusCode::CREATED);
        let issued = self
            .post(&format!("/users/{}/tokens", id(&user)), ADMIN, json!({"name": "t", "scope": "write"}))
            .await
            .expect(StatusCode::CREATED);
        (id(&user), issued["secret"].as_str().unwrap().to_string())
    }

    async fn numbers(&self, token: &str) -> Vec<i64> {
        let page = self.get("/items?limit=500", token).await.expect(StatusCode::OK);
        page["items"].as_array().unwrap().iter().map(|i| i["number"].as_i64().unwrap()).collect()
    }

    async fn ticket(&self, token: &str, title: &str, extra: Value) -> i64 {
        let types = self.get("/item-types", ADMIN).await.expect(StatusCode::OK);
        let ticket = types.as_array().unwrap().iter().find(|t| t["kind"] == "ticket").unwrap();
        let mut body = json!({"item_type": ticket["id"], "title": title});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.post("/items", token, body).await.expect(StatusCode::CREATED)["number"].as_i64().unwrap()
    }
}

#[tokio::test]
async fn organizations_join_contacts_by_domain_and_drive_the_portal() {
    let api = Api::new().await;
    let (_, agent) = api.person("Ana", "ana@desk.example", "agent").await;
    let (carl_id, carl) = api.person("Carl", "carl@north.clinic.example", "customer").await;
    let (_, cleo) = api.person("Cleo", "cleo@north.clinic.example", "customer").await;
    let (_, sam) = api.person("Sam", "sam@south.clinic.example", "customer").await;

    // Customers cannot manage organizations; agents cannot either.
    api.post("/organizations", &carl, json!({"name": "North"}))
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    api.post("/organizations", &agent, json!({"name": "North"}))
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    // Bad input names the field.
    let field = api
        .post(
            "/organizations",
            ADMIN,
            json!({"name": "North", "domains": ["north.clinic.example", "not a domain"]}),
        )
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(field, "domains[1]");
    let field = api
        .post("/organizations", ADMIN, json!({"name": "  "}))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(field, "name");
    api.post("/organizations", ADMIN, json!({"name": "North", "domain": "x.example"}))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");

    // Existing contacts at the domain join in the same commit as the organization.
    let north = api
        .post("/organizations", ADMIN, json!({"name": "North", "domains": ["North.Clinic.Example"]}))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(north["domains"], json!(["north.clinic.example"]));
    let members =
        api.get(&format!("/organizations/{}/members", id(&north)), ADMIN).await.expect(StatusCode::OK);
    assert_eq!(members.as_array().unwrap().len(), 2);
    // A domain belongs to one organization: 422 naming the domain.
    let field = api
        .post(
            "/organizations",
            ADMIN,
            json!({"name": "South", "domains": ["south.clinic.example", "north.clinic.example"]}),
        )
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(field, "domains[1]");
    let south = api.post("/organizations", ADMIN, json!({"name": "South"})).await.expect(StatusCode::CREATED);
    // Adding a domain later joins its contacts too.
    let south = api
        .call(
            Method::PATCH,
            &format!("/organizations/{}", id(&south)),
            ADMIN,
            Some(json!({"domains": ["south.clinic.example"]})),
        )
        .await
        .expect(StatusCode::OK);
    // New contacts join on creation.
    let (newbie_id, newbie) = api.person("Nina", "nina@north.clinic.example", "customer").await;
    let user = api.get(&format!("/users/{newbie_id}"), ADMIN).await.expect(StatusCode::OK);
    assert_eq!(user["organization"], north["id"]);

    let carls = api.ticket(&carl, "Hearing booth is broken", json!({})).await;
    let cleos = api.ticket(&cleo, "Posters for the open day", json!({})).await;
    let sams = api.ticket(&sam, "South invoice", json!({})).await;
    let staff = api.ticket(&agent, "Internal cleanup", json!({})).await;

    // Own items by default.
    assert_eq!(api.numbers(&carl).await, [carls]);
    api.get(&format!("/items/{cleos}"), &carl).await.error(StatusCode::NOT_FOUND, "not_found");
    // Organization visibility: North sees North's items, never South's.
    api.call(Method::PATCH, "/portal", &carl, Some(json!({"visibility": "organization"})))
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    let field = api
        .call(Method::PATCH, "/portal", ADMIN, Some(json!({"visibility": "everything"})))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(field, "visibility");
    api.call(Method::PATCH, "/portal", ADMIN, Some(json!({"visibility": "organization"})))
        .await
        .expect(StatusCode::OK);
    assert_eq!(api.numbers(&carl).await, [carls, cleos]);
    assert_eq!(api.numbers(&newbie).await, [carls, cleos]);
    assert_eq!(api.numbers(&sam).await, [sams]);
    api.get(&format!("/items/{cleos}"), &carl).await.expect(StatusCode::OK);
    api.get(&format!("/items/{sams}"), &carl).await.error(StatusCode::NOT_FOUND, "not_found");
    // Seeing an organization-mate's request does not mean answering on it: commands check the
    // item without the requester's organization, so it is refused as not found.
    api.post(
        &format!("/items/{cleos}/messages"),
        &carl,
        json!({"visibility": "public", "body": {"format": "text", "content": "me too"}}),
    )
    .await
    .error(StatusCode::NOT_FOUND, "not_found");
    let hits = api.get("/search?q=posters", &carl).await.expect(StatusCode::OK);
    assert_eq!(hits.as_array().unwrap().len(), 1);
    let hits = api.get("/search?q=invoice", &carl).await.expect(StatusCode::OK);
    assert!(hits.as_array().unwrap().is_empty());

    // Taking Carl out of the organization ends it at once.
    api.call(Method::PATCH, &format!("/users/{carl_id}"), ADMIN, Some(json!({"organization": null})))
        .await
        .expect(StatusCode::OK);
    assert_eq!(api.numbers(&carl).await, [carls]);

    // All public for one type: every item of it, other organizations' included.
    let types = api.get("/item-types", ADMIN).await.expect(StatusCode::OK);
    let ticket = types.as_array().unwrap().iter().find(|t| t["kind"] == "ticket").unwrap()["id"].clone();
    let field = api
        .call(Method::PATCH, "/portal", ADMIN, Some(json!({"by_type": {uuid_nil(): "all_public"}})))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert!(field.starts_with("by_type."), "{field}");
    let portal = api
        .call(
            Method::PATCH,
            "/portal",
            ADMIN,
            Some(json!({"by_type": {ticket.as_str().unwrap(): "all_public"}})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(portal["by_type"][ticket.as_str().unwrap()], "all_public");
    assert_eq!(api.numbers(&sam).await, [carls, cleos, sams, staff]);
    let _ = south;
}

fn uuid_nil() -> &'static str {
    "00000000-0000-0000-0000-000000000000"
}

#[tokio::test]
async fn members_grants_and_join_requests() {
    let api = Api::new().await;
    let (_, manager) = api.person("Mia", "mia@union.example", "manager").await;
    let (agent_id, agent) = api.person("Ali", "ali@union.example", "agent").await;
    let (col_id, col) = api.person("Cole", "cole@union.example", "collaborator").await;
    let (cust_id, cust) = api.person("Stu", "stu@students.example", "customer").await;
    let it = api.post("/projects", ADMIN, json!({"name": "IT"})).await.expect(StatusCode::CREATED);
    let design = api.post("/projects", ADMIN, json!({"name": "Design"})).await.expect(StatusCode::CREATED);
    let (it_id, design_id) = (id(&it), id(&design));
    let in_it = api.ticket(&agent, "Laptop for the new designer", json!({"project": it_id})).await;
    let in_design = api.ticket(&agent, "Freshers poster", json!({"project": design_id})).await;
    let loose = api.ticket(&agent, "Unfiled", json!({})).await;

    // A collaborator on no project sees nothing.
    assert!(api.numbers(&col).await.is_empty());
    api.get(&format!("/items/{in_it}"), &col).await.error(StatusCode::NOT_FOUND, "not_found");

    // They ask to join; an agent who is no project manager cannot approve; the manager can.
    let request = api
        .post(&format!("/projects/{it_id}/join-requests"), &col, json!({"note": "I fix laptops"}))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(request["state"], "pending");
    api.post(&format!("/projects/{it_id}/join-requests"), &cust, json!({}))
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    let listed = api.get(&format!("/projects/{it_id}/join-requests"), &manager).await.expect(StatusCode::OK);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    api.post(&format!("/join-requests/{}/approve", id(&request)), &agent, json!({}))
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
    let approved = api
        .call(Method::POST, &format!("/join-requests/{}/approve", id(&request)), &manager, None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(approved["state"], "approved");
    api.post(&format!("/join-requests/{}/deny", id(&request)), &manager, json!({}))
        .await
        .error(StatusCode::CONFLICT, "conflict");
    assert_eq!(api.numbers(&col).await, [in_it]);
    api.get(&format!("/items/{in_design}"), &col).await.error(StatusCode::NOT_FOUND, "not_found");
    api.get(&format!("/items/{loose}"), &col).await.error(StatusCode::NOT_FOUND, "not_found");
    // Members work on their project's items, and file new ones only there.
    api.post(
        &format!("/items/{in_it}/messages"),
        &col,
        json!({"visibility": "internal", "body": {"format": "text", "content": "on it"}}),
    )
    .await
    .expect(StatusCode::CREATED);
    api.ticket(&col, "Second laptop", json!({"project": it_id})).await;
    let types = api.get("/item-types", ADMIN).await.expect(StatusCode::OK);
    let ticket = types.as_array().unwrap().iter().find(|t| t["kind"] == "ticket").unwrap()["id"].clone();
    api.post("/items", &col, json!({"item_type": ticket, "title": "Elsewhere", "project": design_id}))
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");

    // The agent becomes the project's manager and then manages its members.
    api.call(
        Method::PUT,
        &format!("/projects/{it_id}/members/{agent_id}"),
        &manager,
        Some(json!({"role": "manager"})),
    )
    .await
    .expect(StatusCode::OK);
    // A customer gets a grant; they cannot be made a member.
    let field = api
        .call(
            Method::PUT,
            &format!("/projects/{design_id}/members/{cust_id}"),
            ADMIN,
            Some(json!({"role": "member"})),
        )
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(field, "role");
    api.call(
        Method::PUT,
        &format!("/projects/{design_id}/members/{cust_id}"),
        ADMIN,
        Some(json!({"role": "commenter"})),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(api.numbers(&cust).await, [in_design]);
    api.post(
        &format!("/items/{in_design}/messages"),
        &cust,
        json!({"visibility": "public", "body": {"format": "text", "content": "Looks great"}}),
    )
    .await
    .expect(StatusCode::CREATED);
    let field = api
        .call(
            Method::PUT,
            &format!("/projects/{it_id}/members/{col_id}"),
            &agent,
            Some(json!({"role": "boss"})),
        )
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(field, "role");
    api.call(
        Method::PUT,
        &format!("/projects/{it_id}/members/not-a-uuid"),
        &agent,
        Some(json!({"role": "viewer"})),
    )
    .await
    .error(StatusCode::NOT_FOUND, "not_found");
    let members = api.get(&format!("/projects/{it_id}/members"), &agent).await.expect(StatusCode::OK);
    assert_eq!(members.as_array().unwrap().len(), 2);

    // Removing a membership removes access at once.
    api.call(Method::DELETE, &format!("/projects/{it_id}/members/{col_id}"), &agent, None)
        .await
        .expect(StatusCode::NO_CONTENT);
    assert!(api.numbers(&col).await.is_empty());
    api.get(&format!("/items/{in_it}"), &col).await.error(StatusCode::NOT_FOUND, "not_found");
    api.call(Method::DELETE, &format!("/projects/{it_id}/members/{col_id}"), &agent, None)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
}
