#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! Signing in through the real router: passwords and lockout, session cookies and CSRF, token
//! scopes, revocation and last use, sign-in links. Lockout is shown to hold across a restart
//! (SQLite) and across two servers on one PostgreSQL database.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use chrono::Duration;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tandem_core::store::{self, JobFilter};
use tandem_core::{ApiToken, Desk, Limits, SignInPolicy, Store, ThrottlePolicy};
use tandem_server::{AdminToken, AppState, SignInConfig, router};
use tandem_storage_postgres::{PostgresOptions, PostgresStore};
use tandem_storage_sqlite::{SqliteOptions, SqliteStore};
use tandem_tests::fixture::{ManualClock, TestIds, t0};
use tower::ServiceExt;

const ADMIN: &str = "tdm_sign_in_test_admin_token";
const PASSWORD: &str = "correct horse battery";

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    #[track_caller]
    fn expect(&self, status: StatusCode) -> &Value {
        assert_eq!(self.status, status, "{}", self.body);
        &self.body
    }

    #[track_caller]
    fn error(&self, status: StatusCode, code: &str) -> String {
        self.expect(status);
        assert_eq!(self.body["error"]["code"], code, "{}", self.body);
        self.body["error"]["message"].as_str().unwrap().to_string()
    }

    fn cookie(&self) -> String {
        self.headers.get(header::SET_COOKIE).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
    }

    /// The `name=value` part of the session cookie, as a browser would send it back.
    fn session(&self) -> String {
        self.cookie().split(';').next().unwrap().to_string()
    }
}

/// What a request carries besides its method, path and body.
#[derive(Default, Clone)]
struct Creds {
    bearer: Option<String>,
    cookie: Option<String>,
    csrf: Option<String>,
    from: Option<SocketAddr>,
}

fn bearer(token: &str) -> Creds {
    Creds { bearer: Some(token.to_string()), ..Creds::default() }
}

fn browser(session: &Reply) -> Creds {
    Creds {
        cookie: Some(session.session()),
        csrf: session.body["csrf_token"].as_str().map(str::to_string),
        ..Creds::default()
    }
}

struct App {
    app: Router,
    clock: Arc<ManualClock>,
    store: Arc<dyn Store>,
}

impl App {
    fn new(store: Arc<dyn Store>, config: SignInConfig) -> App {
        let clock = Arc::new(ManualClock::new(t0()));
        let desk = Desk::new(store.clone(), clock.clone(), Arc::new(TestIds), Limits::default());
        let app = router(AppState::with_sign_in(desk, AdminToken::from_secret(ADMIN), config));
        App { app, clock, store }
    }

    async fn call(&self, method: Method, path: &str, creds: &Creds, body: Option<Value>) -> Reply {
        let mut req = Request::builder().method(method).uri(format!("/api/v1{path}"));
        if let Some(token) = &creds.bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(cookie) = &creds.cookie {
            req = req.header(header::COOKIE, cookie);
        }
        if let Some(csrf) = &creds.csrf {
            req = req.header("x-csrf-token", csrf);
        }
        let body = match body {
            Some(json) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let mut req = req.body(body).unwrap();
        if let Some(addr) = creds.from {
            req.extensions_mut().insert(ConnectInfo(addr));
        }
        let response = self.app.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        Reply { status, headers, body }
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call(method, path, &bearer(ADMIN), body).await
    }

    /// A person, with a password when one is given; returns their id.
    async fn person(&self, name: &str, email: &str, role: &str, password: Option<&str>) -> String {
        let user = self
            .admin(Method::POST, "/users", Some(json!({"name": name, "email": email, "role": role})))
            .await;
        let id = user.expect(StatusCode::CREATED)["id"].as_str().unwrap().to_string();
        if let Some(password) = password {
            self.admin(Method::POST, &format!("/users/{id}/password"), Some(json!({"password": password})))
                .await
                .expect(StatusCode::NO_CONTENT);
        }
        id
    }

    async fn token(&self, user: &str, scope: &str) -> (String, String) {
        let issued = self
            .admin(Method::POST, &format!("/users/{user}/tokens"), Some(json!({"name": "t", "scope": scope})))
            .await;
        let body = issued.expect(StatusCode::CREATED);
        (body["token"]["id"].as_str().unwrap().to_string(), body["secret"].as_str().unwrap().to_string())
    }

    async fn login(&self, email: &str, password: &str, from: Option<SocketAddr>) -> Reply {
        let creds = Creds { from, ..Creds::default() };
        self.call(Method::POST, "/auth/login", &creds, Some(json!({"email": email, "password": password})))
            .await
    }
}

fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(dir.path().join("t.db"), SqliteOptions::default()).unwrap())
}

fn quick_lockout() -> SignInConfig {
    let policy = SignInPolicy {
        account: ThrottlePolicy {
            max_failures: 5,
            window: Duration::minutes(15),
            lockout: Duration::minutes(15),
        },
        address: ThrottlePolicy {
            max_failures: 8,
            window: Duration::minutes(15),
            lockout: Duration::minutes(15),
        },
        ..SignInPolicy::default()
    };
    SignInConfig { policy, ..SignInConfig::default() }
}

async fn workspace(app: &App) {
    app.admin(Method::POST, "/workspaces", Some(json!({"name": "Clinics"})))
        .await
        .expect(StatusCode::CREATED);
}

#[tokio::test]
async fn sessions_use_cookies_and_need_csrf_tokens_for_changes() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(sqlite(&dir), SignInConfig::default());
    workspace(&app).await;
    let ana = app.person("Ana Agent", "ana@desk.example", "agent", Some(PASSWORD)).await;
    let types = app.admin(Method::GET, "/item-types", None).await;
    let ticket = types.body[0]["id"].as_str().unwrap().to_string();

    // Wrong password, unknown address, malformed address: one answer, word for word.
    let wrong = app.login("ana@desk.example", "not the password", None).await;
    let unknown = app.login("nobody@desk.example", PASSWORD, None).await;
    let malformed = app.login("not an address", PASSWORD, None).await;
    wrong.error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.body, malformed.body);
    let missing =
        app.call(Method::POST, "/auth/login", &Creds::default(), Some(json!({"email": "a@b.c"}))).await;
    missing.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(missing.body["error"]["field"], "password");

    let session = app.login(" ANA@desk.example ", PASSWORD, None).await;
    session.expect(StatusCode::OK);
    let cookie = session.cookie();
    for part in ["tandem_session=tdm_", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=604800"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP without a public https URL: {cookie}");
    assert_eq!(session.body["user"]["id"], ana.as_str());
    assert_eq!(session.body["session"]["method"], "password");
    let text = session.body.to_string();
    assert!(!text.contains("argon2") && !text.contains("secret_sha256"), "{text}");

    let me = browser(&session);
    let who = app.call(Method::GET, "/auth/session", &me, None).await;
    assert_eq!(who.expect(StatusCode::OK)["via"], "session");
    assert_eq!(who.body["csrf_token"], session.body["csrf_token"]);
    app.call(Method::GET, "/items", &Creds { csrf: None, ..me.clone() }, None).await.expect(StatusCode::OK);

    // A change by cookie needs the session's CSRF token; a bearer token needs none.
    let new_item = json!({"item_type": ticket, "title": "Printer on fire"});
    let no_csrf = Creds { csrf: None, ..me.clone() };
    let refused = app.call(Method::POST, "/items", &no_csrf, Some(new_item.clone())).await;
    assert!(refused.error(StatusCode::FORBIDDEN, "csrf").contains("X-CSRF-Token"));
    let wrong_csrf = Creds { csrf: Some("0".repeat(64)), ..me.clone() };
    app.call(Method::POST, "/items", &wrong_csrf, Some(new_item.clone()))
        .await
        .error(StatusCode::FORBIDDEN, "csrf");
    let items = app.admin(Method::GET, "/items", None).await;
    assert_eq!(items.body["items"].as_array().unwrap().len(), 0, "refused requests wrote nothing");
    let created = app.call(Method::POST, "/items", &me, Some(new_item.clone())).await;
    assert_eq!(created.expect(StatusCode::CREATED)["created_by"]["id"], ana.as_str(), "{}", created.body);
    let (_, token) = app.token(&ana, "write").await;
    app.call(Method::POST, "/items", &bearer(&token), Some(new_item)).await.expect(StatusCode::CREATED);

    // No password hash in any output.
    let user = app.admin(Method::GET, &format!("/users/{ana}"), None).await;
    assert!(!user.body.to_string().contains("argon2"), "{}", user.body);
    let events = app.admin(Method::GET, "/events", None).await;
    assert!(!events.body.to_string().contains("argon2"), "{}", events.body);

    // Signing out needs the token too; afterwards the cookie is worthless.
    app.call(Method::POST, "/auth/logout", &no_csrf, None).await.error(StatusCode::FORBIDDEN, "csrf");
    let out = app.call(Method::POST, "/auth/logout", &me, None).await;
    out.expect(StatusCode::NO_CONTENT);
    assert!(out.cookie().contains("Max-Age=0"), "{}", out.cookie());
    let after = app.call(Method::GET, "/items", &me, None).await;
    assert!(after.error(StatusCode::UNAUTHORIZED, "unauthorized").contains("sign in again"));
    // Signing out again (a stale cookie) just clears it.
    app.call(Method::POST, "/auth/logout", &me, None).await.expect(StatusCode::NO_CONTENT);
    let forged = Creds { cookie: Some("tandem_session=tdm_forged".into()), ..Creds::default() };
    app.call(Method::GET, "/items", &forged, None).await.error(StatusCode::UNAUTHORIZED, "unauthorized");

    // Sessions expire.
    let session = app.login("ana@desk.example", PASSWORD, None).await;
    app.clock.advance(Duration::days(7) + Duration::seconds(1));
    app.call(Method::GET, "/items", &browser(&session), None)
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");

    // A disabled account cannot sign in, and says nothing more than a wrong password does.
    app.admin(Method::PATCH, &format!("/users/{ana}"), Some(json!({"active": false})))
        .await
        .expect(StatusCode::OK);
    let disabled = app.login("ana@desk.example", PASSWORD, None).await;
    assert_eq!(disabled.body, wrong.body);
}

#[tokio::test]
async fn secure_cookies_behind_tls() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        SignInConfig { public_url: Some("https://desk.example".parse().unwrap()), ..SignInConfig::default() };
    let app = App::new(sqlite(&dir), config);
    workspace(&app).await;
    app.person("Ana Agent", "ana@desk.example", "agent", Some(PASSWORD)).await;
    let session = app.login("ana@desk.example", PASSWORD, None).await;
    assert!(session.cookie().contains("; Secure"), "{}", session.cookie());
}

#[tokio::test]
async fn passwords_follow_the_policy_and_your_own_needs_the_current_one() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(sqlite(&dir), SignInConfig::default());
    workspace(&app).await;
    let ana = app.person("Ana Agent", "ana@desk.example", "agent", None).await;
    let cleo = app.person("Cleo Collab", "cleo@desk.example", "collaborator", Some(PASSWORD)).await;
    let path = format!("/users/{ana}/password");
    for (password, says) in [
        ("short", "at least 12"),
        ("ana@desk.example", "email address or name"),
        ("zzzzzzzzzzzzzzzz", "repeated"),
    ] {
        let reply = app.admin(Method::POST, &path, Some(json!({"password": password}))).await;
        assert!(reply.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid").contains(says), "{}", reply.body);
        assert_eq!(reply.body["error"]["field"], "password");
    }
    app.admin(Method::POST, &path, Some(json!({"password": 12})))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    app.admin(Method::POST, &path, Some(json!({"password": PASSWORD}))).await.expect(StatusCode::NO_CONTENT);

    // Two sessions; changing the password from the first ends the second.
    let first = app.login("ana@desk.example", PASSWORD, None).await;
    let second = app.login("ana@desk.example", PASSWORD, None).await;
    let me = browser(&first);
    let new = "a much better passphrase";
    let no_current = app.call(Method::POST, &path, &me, Some(json!({"password": new}))).await;
    no_current.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(no_current.body["error"]["field"], "current_password");
    let wrong = app
        .call(Method::POST, &path, &me, Some(json!({"password": new, "current_password": "nope nope nope"})))
        .await;
    assert!(wrong.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid").contains("not your current password"));
    app.call(Method::POST, &path, &me, Some(json!({"password": new, "current_password": PASSWORD})))
        .await
        .expect(StatusCode::NO_CONTENT);
    app.call(Method::GET, "/items", &me, None).await.expect(StatusCode::OK);
    app.call(Method::GET, "/items", &browser(&second), None)
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    app.login("ana@desk.example", PASSWORD, None).await.error(StatusCode::UNAUTHORIZED, "unauthorized");
    app.login("ana@desk.example", new, None).await.expect(StatusCode::OK);

    // Someone else's password is managing people: not for agents.
    let other = format!("/users/{cleo}/password");
    let refused = app.call(Method::POST, &other, &me, Some(json!({"password": new}))).await;
    refused.error(StatusCode::FORBIDDEN, "forbidden");
    app.login("cleo@desk.example", PASSWORD, None).await.expect(StatusCode::OK);
}

#[tokio::test]
async fn failed_sign_ins_lock_the_account_and_the_address_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(sqlite(&dir), quick_lockout());
    workspace(&app).await;
    app.person("Ana Agent", "ana@desk.example", "agent", Some(PASSWORD)).await;
    let here: SocketAddr = "192.0.2.10:50000".parse().unwrap();
    for attempt in 1..=4 {
        let reply = app.login("ana@desk.example", "guess guess guess", Some(here)).await;
        reply.error(StatusCode::UNAUTHORIZED, "unauthorized");
        let _ = attempt;
    }
    let fifth = app.login("ana@desk.example", "guess guess guess", Some(here)).await;
    assert!(fifth.error(StatusCode::TOO_MANY_REQUESTS, "locked").contains("15 minute"));
    assert_eq!(fifth.headers.get(header::RETRY_AFTER).unwrap(), "900");
    // Locked: even the right password is refused, from anywhere.
    let elsewhere: SocketAddr = "198.51.100.7:40000".parse().unwrap();
    app.login("ana@desk.example", PASSWORD, Some(elsewhere))
        .await
        .error(StatusCode::TOO_MANY_REQUESTS, "locked");
    // An address nobody has locks the same way: a lockout says nothing about who exists.
    for _ in 0..4 {
        app.login("ghost@desk.example", "guess guess guess", Some(elsewhere))
            .await
            .error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let ghost = app.login("ghost@desk.example", "guess guess guess", Some(elsewhere)).await;
    assert_eq!(ghost.body, fifth.body);

    // A restart changes nothing: the counts are stored.
    drop(app);
    let app = App::new(sqlite(&dir), quick_lockout());
    app.clock.advance(Duration::minutes(14));
    app.login("ana@desk.example", PASSWORD, None).await.error(StatusCode::TOO_MANY_REQUESTS, "locked");
    app.clock.advance(Duration::minutes(2));
    app.login("ana@desk.example", PASSWORD, None).await.expect(StatusCode::OK);

    // One network address trying many accounts is locked as an address (8 here).
    let scanner: SocketAddr = "203.0.113.5:1234".parse().unwrap();
    for n in 0..7 {
        app.login(&format!("user{n}@desk.example"), "guess guess guess", Some(scanner))
            .await
            .error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    app.login("user7@desk.example", "guess guess guess", Some(scanner))
        .await
        .error(StatusCode::TOO_MANY_REQUESTS, "locked");
    app.login("ana@desk.example", PASSWORD, Some(scanner))
        .await
        .error(StatusCode::TOO_MANY_REQUESTS, "locked");
    app.login("ana@desk.example", PASSWORD, Some(elsewhere)).await.expect(StatusCode::OK);
}

#[tokio::test]
async fn lockout_holds_across_servers_on_postgres() {
    let Some(database) = tandem_tests::backends::postgres_database().await else { return };
    let open = || async {
        let store = PostgresStore::connect(database.url(), PostgresOptions::default()).await.unwrap();
        Arc::new(store) as Arc<dyn Store>
    };
    let one = App::new(open().await, quick_lockout());
    let two = App::new(open().await, quick_lockout());
    workspace(&one).await;
    one.person("Ana Agent", "ana@desk.example", "agent", Some(PASSWORD)).await;
    // Failures alternate between the servers; they add up.
    for n in 0..4 {
        let server = if n % 2 == 0 { &one } else { &two };
        server
            .login("ana@desk.example", "guess guess guess", None)
            .await
            .error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    two.login("ana@desk.example", "guess guess guess", None)
        .await
        .error(StatusCode::TOO_MANY_REQUESTS, "locked");
    one.login("ana@desk.example", PASSWORD, None).await.error(StatusCode::TOO_MANY_REQUESTS, "locked");
    // A session made on one server works on the other.
    one.clock.advance(Duration::minutes(16));
    two.clock.advance(Duration::minutes(16));
    let session = one.login("ana@desk.example", PASSWORD, None).await;
    session.expect(StatusCode::OK);
    two.call(Method::GET, "/items", &browser(&session), None).await.expect(StatusCode::OK);
}

#[tokio::test]
async fn token_scopes_revocation_and_last_use() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(sqlite(&dir), SignInConfig::default());
    workspace(&app).await;
    let ana = app.person("Ana Agent", "ana@desk.example", "agent", None).await;
    let (read_id, read) = app.token(&ana, "read").await;
    let (write_id, write) = app.token(&ana, "write").await;
    let types = app.admin(Method::GET, "/item-types", None).await;
    let new_item = json!({"item_type": types.body[0]["id"], "title": "Scanner jams"});

    app.call(Method::GET, "/items", &bearer(&read), None).await.expect(StatusCode::OK);
    let refused = app.call(Method::POST, "/items", &bearer(&read), Some(new_item.clone())).await;
    assert!(refused.error(StatusCode::FORBIDDEN, "forbidden").contains("read-only"));
    app.call(Method::POST, "/items", &bearer(&write), Some(new_item.clone()))
        .await
        .expect(StatusCode::CREATED);

    // Last use: written once per minute at most.
    let stored = |id: String| {
        let store = app.store.clone();
        async move {
            let ws = store.workspaces().await.unwrap()[0].id;
            store::get::<ApiToken>(store.as_ref(), ws, id.parse().unwrap()).await.unwrap().unwrap()
        }
    };
    let first = stored(read_id.clone()).await;
    assert_eq!(first.last_used_at, Some(t0()));
    app.clock.advance(Duration::seconds(30));
    app.call(Method::GET, "/items", &bearer(&read), None).await.expect(StatusCode::OK);
    assert_eq!(stored(read_id.clone()).await, first, "no write within the minute");
    app.clock.advance(Duration::seconds(31));
    app.call(Method::GET, "/items", &bearer(&read), None).await.expect(StatusCode::OK);
    let later = stored(read_id.clone()).await;
    assert_eq!(later.last_used_at, Some(t0() + Duration::seconds(61)));
    assert_eq!(later.version, first.version + 1);

    // Revocation takes effect on the next request, even right after a recorded use.
    app.admin(Method::DELETE, &format!("/tokens/{write_id}"), None).await.expect(StatusCode::OK);
    let revoked = app.call(Method::GET, "/items", &bearer(&write), None).await;
    assert!(revoked.error(StatusCode::UNAUTHORIZED, "unauthorized").contains("revoked"));
    app.admin(Method::DELETE, &format!("/tokens/{read_id}"), None).await.expect(StatusCode::OK);
    app.call(Method::GET, "/items", &bearer(&read), None)
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
}

async fn ask(app: &App, email: &str) -> Reply {
    app.call(Method::POST, "/auth/magic-link", &Creds::default(), Some(json!({"email": email}))).await
}

fn link_secret(job: &tandem_core::store::Job) -> String {
    let link = job.payload["vars"]["link"].as_str().unwrap();
    link.strip_prefix("https://desk.example/api/v1/auth/magic/").unwrap().to_string()
}

async fn mail_jobs(store: &Arc<dyn Store>) -> Vec<tandem_core::store::Job> {
    let filter = JobFilter { kind: Some("mail.send".into()), limit: 100, ..JobFilter::default() };
    store.jobs(&filter).await.unwrap()
}

#[tokio::test]
async fn sign_in_links_are_single_use_and_short_lived() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir);
    let config = SignInConfig {
        public_url: Some("https://desk.example/".parse().unwrap()),
        ..SignInConfig::default()
    };
    let app = App::new(store.clone(), config);
    workspace(&app).await;
    let carl = app.person("Carl Customer", "carl@clinic.example", "customer", None).await;
    app.person("Ana Agent", "ana@desk.example", "agent", None).await;

    // Every well-formed request gets the same answer; only the customer gets mail.
    let answer = ask(&app, "Carl@Clinic.example").await;
    answer.expect(StatusCode::ACCEPTED);
    for other in ["nobody@clinic.example", "ana@desk.example"] {
        assert_eq!(ask(&app, other).await.body, answer.body, "{other}");
    }
    let jobs = mail_jobs(&store).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].payload["template"], "magic_link");
    assert_eq!(jobs[0].payload["to"], "carl@clinic.example");
    assert_eq!(jobs[0].payload["automatic"], false);
    assert_eq!(jobs[0].payload["vars"]["name"], "Carl Customer");
    let secret = link_secret(&jobs[0]);
    let bad = ask(&app, "not an address").await;
    bad.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(bad.body["error"]["field"], "email");

    // Staff reading the job queue do not see the link.
    let queue = app.admin(Method::GET, "/jobs?kind=mail.send", None).await;
    assert!(!queue.body.to_string().contains(&secret), "{}", queue.body);

    // The link signs in once.
    let path = format!("/auth/magic/{secret}");
    let session = app.call(Method::GET, &path, &Creds::default(), None).await;
    assert_eq!(session.expect(StatusCode::OK)["user"]["id"], carl.as_str());
    assert_eq!(session.body["session"]["method"], "magic_link");
    assert!(session.cookie().contains("; Secure"), "{}", session.cookie());
    app.call(Method::GET, "/auth/session", &browser(&session), None).await.expect(StatusCode::OK);
    let again = app.call(Method::GET, &path, &Creds::default(), None).await;
    assert!(again.error(StatusCode::UNAUTHORIZED, "unauthorized").contains("already been used"));
    let forged = app.call(Method::GET, "/auth/magic/tdm_made_up", &Creds::default(), None).await;
    assert!(forged.error(StatusCode::UNAUTHORIZED, "unauthorized").contains("not valid"));

    // And only for a while.
    ask(&app, "carl@clinic.example").await.expect(StatusCode::ACCEPTED);
    let jobs = mail_jobs(&store).await;
    let fresh = jobs.iter().map(link_secret).find(|s| *s != secret).unwrap();
    app.clock.advance(Duration::minutes(15));
    let late = app.call(Method::GET, &format!("/auth/magic/{fresh}"), &Creds::default(), None).await;
    assert!(late.error(StatusCode::UNAUTHORIZED, "unauthorized").contains("expired"));

    // Asking over and over mails a few links, then none, with the same answer.
    for _ in 0..8 {
        assert_eq!(ask(&app, "carl@clinic.example").await.body, answer.body);
    }
    // The window had passed, so counting started again: four more links, then none.
    assert_eq!(mail_jobs(&store).await.len(), 2 + 4, "the per-address limit holds");
}

#[tokio::test]
async fn sign_in_links_need_the_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(sqlite(&dir), SignInConfig::default());
    workspace(&app).await;
    let reply = app
        .call(Method::POST, "/auth/magic-link", &Creds::default(), Some(json!({"email": "a@b.example"})))
        .await;
    assert!(reply.error(StatusCode::SERVICE_UNAVAILABLE, "unavailable").contains("--public-url"));
}
