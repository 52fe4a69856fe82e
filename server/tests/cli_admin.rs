#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! `tandem user …` and `tandem token …`: the real binary on a real database file, its output and
//! exit codes, and the API accepting (or refusing) what it made.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;
use tandem_core::commands::CreateWorkspace;
use tandem_core::{Actor, Desk, Limits, WorkspaceId};
use tandem_server::{AdminToken, AppState, SystemClock, UuidV7Ids, router};
use tandem_storage_sqlite::{SqliteOptions, SqliteStore};
use tower::ServiceExt;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn tandem(db: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .arg("--db")
        .arg(db)
        .env_remove("TANDEM_DB")
        .env_remove("TANDEM_WORKSPACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

#[track_caller]
fn fails(run: &Run, code: i32, says: &str) {
    assert_eq!(run.code, code, "stdout: {} stderr: {}", run.stdout, run.stderr);
    assert!(run.stderr.contains(says), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

async fn workspace(db: &Path) -> WorkspaceId {
    let store = SqliteStore::open(db, SqliteOptions::default()).unwrap();
    let desk = Desk::new(Arc::new(store), Arc::new(SystemClock), Arc::new(UuidV7Ids), Limits::default());
    let ws = desk
        .execute(
            &Actor::server_admin(WorkspaceId(uuid::Uuid::nil())),
            &CreateWorkspace { name: "Clinics".into() },
        )
        .await
        .unwrap();
    ws.id
}

/// The API on the same database file.
async fn api(
    db: &Path,
    method: Method,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> StatusCode {
    let store = SqliteStore::open(db, SqliteOptions::default()).unwrap();
    let desk = Desk::new(Arc::new(store), Arc::new(SystemClock), Arc::new(UuidV7Ids), Limits::default());
    let app = router(AppState::new(desk, AdminToken::from_secret("tdm_unused_admin_token")));
    let mut req = Request::builder().method(method).uri(format!("/api/v1{path}"));
    if !token.is_empty() {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(json) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    app.oneshot(req.body(body).unwrap()).await.unwrap().status()
}

#[tokio::test]
async fn users_and_tokens_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");

    fails(&tandem(&db, &["user", "list"], None), 4, "no workspace yet");
    let ws = workspace(&db).await;

    let added = tandem(
        &db,
        &["user", "add", "--name", "Ana Agent", "--email", "Ana@Desk.example", "--role", "agent"],
        None,
    );
    assert_eq!(added.code, 0, "{}", added.stderr);
    let ana = added.stdout.split('\t').next().unwrap().to_string();
    assert!(added.stdout.contains("agent\tactive\tana@desk.example\tAna Agent"), "{}", added.stdout);

    // Bad input: each with its own exit code and a message naming what is wrong.
    let again = tandem(
        &db,
        &["user", "add", "--name", "Ana 2", "--email", "ana@desk.example", "--role", "agent"],
        None,
    );
    fails(&again, 5, "already uses ana@desk.example");
    fails(
        &tandem(&db, &["user", "add", "--name", "W", "--email", "w@x.example", "--role", "wizard"], None),
        2,
        "not a role",
    );
    fails(
        &tandem(&db, &["user", "add", "--name", "B", "--email", "not-an-address", "--role", "agent"], None),
        3,
        "email",
    );
    fails(&tandem(&db, &["user", "add", "--name", "S", "--role", "agent"], None), 3, "staff need an email");
    let weak = tandem(
        &db,
        &["user", "add", "--name", "P", "--email", "p@x.example", "--role", "agent", "--password-stdin"],
        Some("short\n"),
    );
    fails(&weak, 3, "at least 12");
    fails(
        &tandem(&db, &["user", "list", "--workspace", "0190f0f0-0000-7000-8000-000000000000"], None),
        4,
        "not found",
    );
    fails(&tandem(&db, &["user", "list", "--workspace", "nope"], None), 2, "invalid value");

    // A customer with a password: the API signs them in.
    let carl = tandem(
        &db,
        &[
            "user",
            "add",
            "--name",
            "Carl",
            "--email",
            "carl@clinic.example",
            "--role",
            "customer",
            "--password-stdin",
        ],
        Some("correct horse battery\n"),
    );
    assert_eq!(carl.code, 0, "{}", carl.stderr);
    let login = json!({"email": "carl@clinic.example", "password": "correct horse battery", "workspace": ws});
    assert_eq!(api(&db, Method::POST, "/auth/login", "", Some(login)).await, StatusCode::OK);

    let list = tandem(&db, &["user", "list", "--workspace", &ws.to_string()], None);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(list.stdout.lines().count(), 2, "{}", list.stdout);
    assert!(list.stdout.contains("carl@clinic.example") && list.stdout.contains(&ana), "{}", list.stdout);

    // Tokens: created for a person by address, shown once, scoped; revoked at once.
    let created = tandem(
        &db,
        &["token", "create", "--user", "ana@desk.example", "--name", "ci", "--scope", "read"],
        None,
    );
    assert_eq!(created.code, 0, "{}", created.stderr);
    let (id, secret) = created.stdout.trim().split_once('\t').unwrap();
    assert!(secret.starts_with("tdm_"), "{}", created.stdout);
    assert_eq!(api(&db, Method::GET, "/items", secret, None).await, StatusCode::OK);
    let item = json!({"title": "x", "item_type": "0190f0f0-0000-7000-8000-000000000000"});
    assert_eq!(api(&db, Method::POST, "/items", secret, Some(item)).await, StatusCode::FORBIDDEN);
    fails(
        &tandem(
            &db,
            &["token", "create", "--user", "nobody@desk.example", "--name", "x", "--scope", "read"],
            None,
        ),
        4,
        "no user",
    );
    fails(
        &tandem(&db, &["token", "create", "--user", &ana, "--name", "x", "--scope", "root"], None),
        2,
        "not a scope",
    );
    let revoked = tandem(&db, &["token", "revoke", id], None);
    assert_eq!(
        (revoked.code, revoked.stdout.trim()),
        (0, format!("{id}\trevoked").as_str()),
        "{}",
        revoked.stderr
    );
    assert_eq!(api(&db, Method::GET, "/items", secret, None).await, StatusCode::UNAUTHORIZED);
    fails(&tandem(&db, &["token", "revoke", "not-an-id"], None), 3, "not a token id");
    fails(&tandem(&db, &["token", "revoke", "0190f0f0-0000-7000-8000-000000000000"], None), 4, "not found");

    // Disabling: by address or id; the person's tokens stop working.
    let (_, other) = {
        let t =
            tandem(&db, &["token", "create", "--user", &ana, "--name", "laptop", "--scope", "write"], None);
        let (id, secret) = t.stdout.trim().split_once('\t').unwrap();
        (id.to_string(), secret.to_string())
    };
    assert_eq!(api(&db, Method::GET, "/items", &other, None).await, StatusCode::OK);
    let disabled = tandem(&db, &["user", "disable", "ANA@desk.example"], None);
    assert_eq!(disabled.code, 0, "{}", disabled.stderr);
    assert!(disabled.stdout.contains("\tdisabled\t"), "{}", disabled.stdout);
    assert_eq!(api(&db, Method::GET, "/items", &other, None).await, StatusCode::UNAUTHORIZED);
    fails(&tandem(&db, &["user", "disable", "nobody@desk.example"], None), 4, "no user");
}

/// Runs a command on the database as a stored user (a collaborator asking to join, say), or as
/// the server administrator.
async fn as_user<C: tandem_core::Command>(
    db: &Path,
    ws: WorkspaceId,
    email: Option<&str>,
    cmd: &C,
) -> C::Output {
    let store = SqliteStore::open(db, SqliteOptions::default()).unwrap();
    let actor = match email {
        Some(email) => {
            let user = tandem_core::Store::user_by_email(&store, ws, email).await.unwrap().unwrap();
            Actor::user(user, tandem_core::TokenScope::Write)
        }
        None => Actor::server_admin(ws),
    };
    let desk = Desk::new(Arc::new(store), Arc::new(SystemClock), Arc::new(UuidV7Ids), Limits::default());
    desk.execute(&actor, cmd).await.unwrap()
}

#[tokio::test]
async fn organizations_teams_memberships_and_join_requests_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let ws = workspace(&db).await;
    let ok = |run: Run| {
        assert_eq!(run.code, 0, "stderr: {}", run.stderr);
        run.stdout
    };

    // An organization owns a domain; a customer at it joins when added; a second owner is refused.
    let org = ok(tandem(&db, &["org", "add", "--name", "Clinic group", "--domain", "Clinic.example"], None));
    assert!(org.ends_with("\tClinic group\tclinic.example\n"), "{org}");
    let carla = ok(tandem(
        &db,
        &["user", "add", "--name", "Carla", "--email", "carla@clinic.example", "--role", "customer"],
        None,
    ));
    fails(&tandem(&db, &["org", "add", "--name", "Other", "--domain", "clinic.example"], None), 3, "domains");
    let listed = ok(tandem(&db, &["org", "list"], None));
    assert_eq!(listed.lines().count(), 1, "{listed}");
    let org_id: tandem_core::OrganizationId = org.split('\t').next().unwrap().parse().unwrap();
    let store = SqliteStore::open(&db, SqliteOptions::default()).unwrap();
    let desk = Desk::new(Arc::new(store), Arc::new(SystemClock), Arc::new(UuidV7Ids), Limits::default());
    let members = desk.organization_members(&Actor::server_admin(ws), org_id, 10).await.unwrap();
    assert_eq!(
        members.iter().map(|u| u.id.to_string()).collect::<Vec<_>>(),
        [carla.split('\t').next().unwrap()]
    );
    drop(desk);
    // Replacing the domains by name.
    let moved = ok(tandem(&db, &["org", "domains", "clinic GROUP", "--domain", "clinics.example"], None));
    assert!(moved.ends_with("\tClinic group\tclinics.example\n"), "{moved}");
    fails(&tandem(&db, &["org", "domains", "Nobody", "--domain", "x.example"], None), 4, "no organization");
    fails(&tandem(&db, &["org", "domains", "Clinic group"], None), 2, "--domain");

    // Teams by member address.
    ok(tandem(&db, &["user", "add", "--name", "Ana", "--email", "ana@fed.example", "--role", "agent"], None));
    let team = ok(tandem(&db, &["team", "add", "--name", "Front desk", "--member", "ana@fed.example"], None));
    assert!(team.contains("\tFront desk\t"), "{team}");
    assert_eq!(ok(tandem(&db, &["team", "list"], None)).lines().count(), 1);
    fails(
        &tandem(&db, &["team", "add", "--name", "Ghosts", "--member", "nobody@fed.example"], None),
        4,
        "nobody",
    );

    // Memberships and a join request, approved from the command line.
    let project = as_user(
        &db,
        ws,
        None,
        &tandem_core::commands::CreateProject {
            name: "Rollout".into(),
            description: String::new(),
            portfolio: None,
        },
    )
    .await;
    let p = project.id.to_string();
    let set = ok(tandem(
        &db,
        &["member", "set", "--project", &p, "--user", "ana@fed.example", "--role", "manager"],
        None,
    ));
    assert!(set.ends_with("\tmanager\n"), "{set}");
    fails(
        &tandem(
            &db,
            &["member", "set", "--project", &p, "--user", "ana@fed.example", "--role", "boss"],
            None,
        ),
        2,
        "boss",
    );
    assert!(ok(tandem(&db, &["member", "list", "--project", &p], None)).ends_with("\tmanager\n"));
    assert!(
        ok(tandem(&db, &["member", "remove", "--project", &p, "--user", "ana@fed.example"], None))
            .ends_with("removed\n")
    );
    assert_eq!(ok(tandem(&db, &["member", "list", "--project", &p], None)), "");

    ok(tandem(
        &db,
        &["user", "add", "--name", "Cole", "--email", "cole@fed.example", "--role", "collaborator"],
        None,
    ));
    let request = as_user(
        &db,
        ws,
        Some("cole@fed.example"),
        &tandem_core::commands::RequestToJoin {
            project: project.id,
            note: "I run phase 2".into(),
            role: None,
        },
    )
    .await;
    let pending = ok(tandem(&db, &["join-request", "list", "--project", &p], None));
    assert!(pending.starts_with(&format!("{}\tpending\t", request.id)), "{pending}");
    let approved =
        ok(tandem(&db, &["join-request", "approve", &request.id.to_string(), "--role", "commenter"], None));
    assert!(approved.contains("\tapproved\t") && approved.ends_with("\tcommenter\n"), "{approved}");
    fails(&tandem(&db, &["join-request", "deny", &request.id.to_string()], None), 5, "approved");
    assert!(ok(tandem(&db, &["member", "list", "--project", &p], None)).ends_with("\tcommenter\n"));
    fails(
        &tandem(&db, &["join-request", "deny", "0190f0f0-0000-7000-8000-000000000000"], None),
        4,
        "not found",
    );
}

/// Tandem itself starts a run of the flow and records its only step as failed for good.
async fn failed_run(db: &Path, ws: WorkspaceId, flow: &str) -> String {
    use tandem_core::commands::{RecordFlowStep, SeenItem, TriggerFlow};
    use tandem_core::flows::{ErrorClass, StepError, StepRecord};
    let store = SqliteStore::open(db, SqliteOptions::default()).unwrap();
    let desk = Desk::new(Arc::new(store), Arc::new(SystemClock), Arc::new(UuidV7Ids), Limits::default());
    let system = Actor::system(ws);
    let flow: tandem_core::FlowId = flow.parse().unwrap();
    let items = vec![SeenItem { id: "d1".into(), data: json!({"ticket": 9999, "note": "hi"}) }];
    let started = desk.execute(&system, &TriggerFlow { flow, items, remember_ids: true }).await.unwrap();
    let run = started.runs[0];
    let step = StepRecord {
        index: 0,
        kind: "add_message".into(),
        input: json!({"item": 9999, "body": "Form says hi"}),
        output: None,
        error: Some(StepError { class: ErrorClass::Fatal, message: "item #9999 not found".into() }),
        attempts: 1,
        log: vec![],
        at: chrono::Utc::now(),
    };
    let record = RecordFlowStep { run, attempt: 1, step, final_attempt: true, counts: true };
    desk.execute(&system, &record).await.unwrap();
    run.to_string()
}

#[tokio::test]
async fn flows_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let ws = workspace(&db).await;
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let notes = file(
        "notes.json",
        &json!({"name": "Form notes", "trigger": {"type": "incoming_webhook"},
                "steps": [{"type": "add_message", "item": "{{trigger.ticket}}", "body": "Form says {{trigger.note}}"}]})
        .to_string(),
    );

    // Bad files: a clear message, exit 3, nothing written.
    fails(
        &tandem(&db, &["flow", "create", "--file", &file("broken.json", "{\"name\": ")], None),
        3,
        "is not JSON",
    );
    let teleport = file(
        "teleport.json",
        r#"{"name": "x", "trigger": {"type": "incoming_webhook"}, "steps": [{"type": "teleport"}]}"#,
    );
    fails(&tandem(&db, &["flow", "create", "--file", &teleport], None), 3, "steps[0]");
    let missing = dir.path().join("missing.json");
    fails(&tandem(&db, &["flow", "create", "--file", missing.to_str().unwrap()], None), 3, "cannot read");
    let listed = tandem(&db, &["flow", "list"], None);
    assert_eq!((listed.code, listed.stdout.as_str()), (0, ""), "refused files write nothing");

    let created = tandem(&db, &["flow", "create", "--file", &notes], None);
    assert_eq!(created.code, 0, "{}", created.stderr);
    let id = created.stdout.split('\t').next().unwrap().to_string();
    assert_eq!(created.stdout.trim_end(), format!("{id}\tenabled\tincoming_webhook\t1\tForm notes"));
    assert_eq!(tandem(&db, &["flow", "list"], None).stdout, created.stdout);

    let shown = tandem(&db, &["flow", "show", &id], None);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let shown: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!((shown["name"].as_str(), shown["state"].as_str()), (Some("Form notes"), Some("enabled")));
    assert_eq!(shown["steps"][0]["type"], "add_message");

    // Update: the same body; a stale version and an unknown flow are refused.
    let renamed = file(
        "renamed.json",
        &json!({"name": "Form notes (v2)", "version": 1, "trigger": {"type": "incoming_webhook"},
                "steps": [{"type": "add_message", "item": "{{trigger.ticket}}", "body": "Note: {{trigger.note}}"}]})
        .to_string(),
    );
    let updated = tandem(&db, &["flow", "update", &id, "--file", &renamed], None);
    assert_eq!(updated.code, 0, "{}", updated.stderr);
    assert!(updated.stdout.ends_with("\tForm notes (v2)\n"), "{}", updated.stdout);
    fails(&tandem(&db, &["flow", "update", &id, "--file", &renamed], None), 5, "version 2, not 1");
    let nobody = "0190f0f0-0000-7000-8000-000000000000";
    fails(&tandem(&db, &["flow", "update", nobody, "--file", &notes], None), 4, "not found");
    fails(&tandem(&db, &["flow", "show", nobody], None), 4, "not found");
    fails(&tandem(&db, &["flow", "enable", nobody], None), 4, "not found");
    fails(&tandem(&db, &["flow", "runs", nobody], None), 4, "not found");
    fails(&tandem(&db, &["flow", "show", "not-an-id"], None), 2, "invalid value");

    let off = tandem(&db, &["flow", "disable", &id], None);
    assert!(off.stdout.contains("\tdisabled\t"), "{}", off.stdout);
    let on = tandem(&db, &["flow", "enable", &id], None);
    assert!(on.stdout.contains("\tenabled\t"), "{}", on.stdout);

    // Runs and replaying a failed one.
    assert_eq!(tandem(&db, &["flow", "runs", &id], None).stdout, "");
    let run = failed_run(&db, ws, &id).await;
    let runs = tandem(&db, &["flow", "runs", &id, "--limit", "5"], None);
    assert_eq!(runs.code, 0, "{}", runs.stderr);
    let fields: Vec<&str> = runs.stdout.trim_end().split('\t').collect();
    assert_eq!(fields[0], run);
    assert_eq!((fields[1], fields[2], fields[4]), ("failed", "1", "0"));
    assert_eq!(fields[5], "step 0 (add_message): item #9999 not found");
    let replayed = tandem(&db, &["flow", "replay", &run], None);
    assert_eq!(replayed.code, 0, "{}", replayed.stderr);
    assert!(replayed.stdout.starts_with(&format!("{run}\trunning\t2\t")), "{}", replayed.stdout);
    fails(&tandem(&db, &["flow", "replay", &run], None), 5, "only failed runs are replayed");
    fails(&tandem(&db, &["flow", "replay", nobody], None), 4, "not found");

    let deleted = tandem(&db, &["flow", "delete", &id], None);
    assert_eq!(deleted.stdout, format!("{id}\tdeleted\n"));
    fails(&tandem(&db, &["flow", "delete", &id], None), 4, "not found");
    assert_eq!(tandem(&db, &["flow", "list"], None).stdout, "");
}
