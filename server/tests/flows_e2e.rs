#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! Flows end to end through the real `tandem` binary on both backends: an event-triggered flow
//! with every built-in step (add message, update field, signed outgoing webhook checked by a
//! receiver on loopback), its run history; incoming webhook endpoints (token, signature,
//! mapping, a flow fed once per delivery id); REST-hook subscriptions (a 410 Gone unsubscribes); bad input refused with the path
//! named and nothing written.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{ADMIN, Backend, Db, Http, Receiver, eventually, start, type_id};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const RECEIVER_SECRET: &str = "whsec_flow_receiver_secret";
const HOOK_SECRET: &str = "incoming-signing-secret-0123";
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn flows_run_end_to_end_on_sqlite() {
    flows_run_end_to_end(Backend::Sqlite).await;
}

#[tokio::test]
async fn flows_run_end_to_end_on_postgres() {
    flows_run_end_to_end(Backend::Postgres).await;
}

/// A receiver that answers 410 Gone, counting requests.
async fn gone_receiver() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/gone",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::http::StatusCode::GONE
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/gone", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits)
}

async fn flows_run_end_to_end(backend: Backend) {
    let Some(db) = Db::new(backend).await else { return };
    let server = start(&db.arg, Some(ADMIN), &["--allow-private-webhooks", "--job-poll-ms", "50"]).await;
    let http = Http::new(&server, ADMIN);
    http.post("/workspaces", json!({"name": "Hearing clinics marketing"}), StatusCode::CREATED).await;
    let ticket_type = type_id(&http.get("/item-types").await, "ticket");
    let receiver = Receiver::start().await;
    receiver.set_secret(RECEIVER_SECRET);

    // Bad input: the path is named and nothing is written.
    let bad = [
        (
            json!({"name": "x", "trigger": {"type": "incoming_webhook"}, "steps": [{"type": "teleport"}]}),
            "steps[0]",
        ),
        (
            json!({"name": "x", "trigger": {"type": "incoming_webhook"},
                   "steps": [{"type": "add_message", "item": "{{trigger.number}}", "body": "{{steps.3.output.x}}"}]}),
            "steps[0].input.body",
        ),
        (
            json!({"name": "x", "trigger": {"type": "incoming_webhook"},
                   "steps": [{"type": "plugin_action", "plugin": "chat-notifier", "action": "post"}]}),
            "steps[0].plugin",
        ),
    ];
    for (body, field) in bad {
        let refused = http.post("/flows", body, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(refused["error"]["field"], field, "{refused}");
    }
    assert_eq!(http.get("/flows").await, json!([]), "refused flows write nothing");

    // An event-triggered flow with every built-in step.
    let flow = http
        .post(
            "/flows",
            json!({
                "name": "Urgent printers",
                "trigger": {"type": "event", "on": {"type": "item_created"}},
                "filters": {"field": "trigger.item.title", "op": "contains", "value": "printer"},
                "steps": [
                    {"type": "add_message", "item": "{{trigger.item.number}}",
                     "body": "Flow saw: {{trigger.item.title}}"},
                    {"type": "update_field", "item": "{{trigger.item.id}}", "field": "priority", "value": "urgent"},
                    {"type": "webhook", "url": receiver.url, "secret": RECEIVER_SECRET,
                     "body": {"number": "{{trigger.item.number}}", "message": "{{steps.0.output.message}}",
                              "priority": "{{steps.1.output.title}}"}}
                ]
            }),
            StatusCode::CREATED,
        )
        .await;
    let flow_id = flow["id"].as_str().unwrap().to_string();
    assert_eq!(flow["enabled"], true);

    let printer = http
        .post(
            "/items",
            json!({"item_type": ticket_type, "title": "Printer on fire in Leeds"}),
            StatusCode::CREATED,
        )
        .await;
    http.post("/items", json!({"item_type": ticket_type, "title": "Scanner jams"}), StatusCode::CREATED)
        .await;
    let n = printer["number"].as_i64().unwrap();

    let delivery = eventually("the flow's signed webhook", WAIT, || async {
        receiver.deliveries().into_iter().find(|d| d.event == "flow.step")
    })
    .await;
    assert!(delivery.signed, "the receiver verified Tandem-Signature");
    assert_eq!(delivery.body["number"], json!(n));
    assert!(delivery.body["message"].is_string());

    let runs = eventually("a succeeded run", WAIT, || async {
        let runs = http.get(&format!("/flows/{flow_id}/runs")).await;
        (runs[0]["status"] == "succeeded").then_some(runs)
    })
    .await;
    assert_eq!(runs.as_array().unwrap().len(), 1, "the filter kept the scanner out: {runs}");
    let run = &runs[0];
    let steps = run["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[0]["input"]["body"], "Flow saw: Printer on fire in Leeds");
    assert_eq!(steps[1]["input"]["item"], printer["id"]);
    assert_eq!(steps[2]["output"]["status"], 200);
    let shown = http.get(&format!("/flow-runs/{}", run["id"].as_str().unwrap())).await;
    assert_eq!(shown["id"], run["id"]);
    let item = http.get(&format!("/items/{n}")).await;
    assert_eq!(item["priority"], "urgent");
    let messages = http.get(&format!("/items/{n}/messages")).await;
    assert!(messages.to_string().contains("Flow saw: Printer on fire in Leeds"), "{messages}");
    // Replaying a run that did not fail is refused.
    let path = format!("/flow-runs/{}/replay", run["id"].as_str().unwrap());
    http.call(Method::POST, &path, None, StatusCode::CONFLICT).await;

    // Incoming webhooks: an endpoint that creates items, signed.
    let endpoint = http
        .post(
            "/hook-endpoints",
            json!({"name": "Location form", "signing_secret": HOOK_SECRET,
                   "target": {"type": "create_item", "item_type": ticket_type,
                              "title": "{{trigger.location}}: {{trigger.subject}}",
                              "description": "From {{trigger.owner}}"}}),
            StatusCode::CREATED,
        )
        .await;
    let hook_path = endpoint["token"].as_str().unwrap().to_string();
    assert_eq!(endpoint["path"], format!("/api/v1/hooks/in/{hook_path}"));
    let items_before = http.item_numbers().await.len();
    let client = reqwest::Client::new();
    let body = json!({"location": "Bristol", "subject": "New flyer", "owner": "Ana"}).to_string();
    let send = |signature: Option<String>, token: String, body: String| {
        let mut req = client
            .post(format!("{}/hooks/in/{token}", server.base))
            .header("content-type", "application/json");
        if let Some(s) = signature {
            req = req.header("tandem-signature", s);
        }
        req.body(body).send()
    };
    let unsigned = send(None, hook_path.clone(), body.clone()).await.unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let forged = tandem_integrations::webhooks::sign(
        "not-the-secret-at-all",
        chrono::Utc::now().timestamp(),
        body.as_bytes(),
    );
    let forged = send(Some(forged), hook_path.clone(), body.clone()).await.unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let wrong_token = send(None, "hk_nope".into(), body.clone()).await.unwrap();
    assert_eq!(wrong_token.status(), StatusCode::NOT_FOUND);
    assert_eq!(http.item_numbers().await.len(), items_before, "refused requests create nothing");
    let signed =
        tandem_integrations::webhooks::sign(HOOK_SECRET, chrono::Utc::now().timestamp(), body.as_bytes());
    let accepted = send(Some(signed), hook_path.clone(), body.clone()).await.unwrap();
    assert_eq!(accepted.status(), StatusCode::CREATED);
    let made: Value = accepted.json().await.unwrap();
    let created = http.get(&format!("/items/{}", made["item"]["number"])).await;
    assert_eq!(created["title"], "Bristol: New flyer");
    assert_eq!(created["description"], "From Ana");
    // An endpoint that updates the item a request names.
    let updater = http
        .post(
            "/hook-endpoints",
            json!({"name": "Print status", "target": {"type": "update_item", "item": "{{trigger.ticket}}",
                   "fields": {"title": "{{trigger.title}}", "priority": "{{trigger.priority}}"}}}),
            StatusCode::CREATED,
        )
        .await;
    let updater = updater["token"].as_str().unwrap().to_string();
    let number = made["item"]["number"].as_i64().unwrap();
    let update = json!({"ticket": number, "title": "Bristol: New flyer (printed)", "priority": "low"});
    let updated = send(None, updater.clone(), update.to_string()).await.unwrap();
    assert_eq!(updated.status(), StatusCode::OK);
    let item = http.get(&format!("/items/{number}")).await;
    assert_eq!(
        (item["title"].as_str(), item["priority"].as_str()),
        (Some("Bristol: New flyer (printed)"), Some("low"))
    );
    let missing = json!({"ticket": 9999, "title": "x", "priority": "low"}).to_string();
    let missing = send(None, updater.clone(), missing).await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let bad_priority = json!({"ticket": number, "title": "Changed?", "priority": "whenever"}).to_string();
    let bad_priority = send(None, updater, bad_priority).await.unwrap();
    assert_eq!(bad_priority.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        http.get(&format!("/items/{number}")).await["title"],
        "Bristol: New flyer (printed)",
        "nothing half-written"
    );
    // The endpoint list never shows the token.
    let listed = http.get("/hook-endpoints").await;
    assert!(!listed.to_string().contains(&hook_path));

    // An incoming webhook feeding a flow.
    let fed = http
        .post(
            "/flows",
            json!({"name": "Form to note", "trigger": {"type": "incoming_webhook"},
                   "steps": [{"type": "add_message", "item": "{{trigger.ticket}}", "body": "Form says {{trigger.note}}"}]}),
            StatusCode::CREATED,
        )
        .await;
    let flow_endpoint = http
        .post(
            "/hook-endpoints",
            json!({"name": "Notes", "target": {"type": "flow", "flow": fed["id"]}}),
            StatusCode::CREATED,
        )
        .await;
    let note = json!({"ticket": n, "note": "call back"}).to_string();
    let started = send(None, flow_endpoint["token"].as_str().unwrap().to_string(), note).await.unwrap();
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    eventually("the fed flow's message", WAIT, || async {
        let messages = http.get(&format!("/items/{n}/messages")).await;
        messages.to_string().contains("Form says call back").then_some(())
    })
    .await;
    // A delivery id seen before starts nothing: 200 naming the duplicate; another id runs.
    let fed_token = flow_endpoint["token"].as_str().unwrap().to_string();
    let deliver = |id: &'static str| {
        client
            .post(format!("{}/hooks/in/{fed_token}", server.base))
            .header("content-type", "application/json")
            .header("Idempotency-Key", id)
            .body(json!({"ticket": n, "note": id}).to_string())
            .send()
    };
    let first = deliver("form-1").await.unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let repeat = deliver("form-1").await.unwrap();
    assert_eq!(repeat.status(), StatusCode::OK);
    let repeat: Value = repeat.json().await.unwrap();
    assert_eq!(repeat, json!({"result": "flow_started", "runs": [], "duplicates": ["form-1"]}));
    let other = deliver("form-2").await.unwrap();
    assert_eq!(other.status(), StatusCode::ACCEPTED);
    let fed_runs = format!("/flows/{}/runs", fed["id"].as_str().unwrap());
    eventually("three runs of the fed flow", WAIT, || async {
        let runs = http.get(&fed_runs).await;
        let runs = runs.as_array().unwrap().clone();
        (runs.len() == 3 && runs.iter().all(|r| r["status"] == "succeeded")).then_some(())
    })
    .await;
    let fed_flow = http.get(&format!("/flows/{}", fed["id"].as_str().unwrap())).await;
    assert_eq!(fed_flow["poll"]["seen"], json!(["form-1", "form-2"]), "{fed_flow}");

    // A created item's number is in the step's output (given by the same commit).
    let maker = http
        .post(
            "/flows",
            json!({"name": "Form to ticket", "trigger": {"type": "incoming_webhook"},
                   "steps": [{"type": "create_item", "item_type": ticket_type, "title": "Form: {{trigger.note}}"}]}),
            StatusCode::CREATED,
        )
        .await;
    let maker_endpoint = http
        .post(
            "/hook-endpoints",
            json!({"name": "Tickets", "target": {"type": "flow", "flow": maker["id"]}}),
            StatusCode::CREATED,
        )
        .await;
    let made_ticket = send(
        None,
        maker_endpoint["token"].as_str().unwrap().to_string(),
        json!({"note": "new toner"}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(made_ticket.status(), StatusCode::ACCEPTED);
    let maker_runs = format!("/flows/{}/runs", maker["id"].as_str().unwrap());
    let output = eventually("the ticket-making run", WAIT, || async {
        let runs = http.get(&maker_runs).await;
        (runs[0]["status"] == "succeeded").then(|| runs[0]["steps"][0]["output"].clone())
    })
    .await;
    let ticket = http.get(&format!("/items/{}", output["number"])).await;
    assert_eq!((&ticket["id"], &ticket["title"]), (&output["id"], &json!("Form: new toner")));

    // REST hooks: subscribe; the target's 410 Gone unsubscribes.
    let (gone_url, hits) = gone_receiver().await;
    let sub = http
        .post(
            "/hooks/subscriptions",
            json!({"event": "item.created", "target_url": gone_url}),
            StatusCode::CREATED,
        )
        .await;
    assert!(sub["secret"].as_str().unwrap().starts_with("whsec_"));
    let refused = http
        .post(
            "/hooks/subscriptions",
            json!({"event": "item.exploded", "target_url": gone_url}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(refused["error"]["field"], "event", "{refused}");
    http.post("/items", json!({"item_type": ticket_type, "title": "Brochure reprint"}), StatusCode::CREATED)
        .await;
    eventually("the subscription to be removed after 410", WAIT, || async {
        let hooks = http.get("/webhooks").await;
        let still = hooks.as_array().unwrap().iter().any(|h| h["id"] == sub["id"]);
        (hits.load(Ordering::SeqCst) > 0 && !still).then_some(())
    })
    .await;
    let sub_path = format!("/hooks/subscriptions/{}", sub["id"].as_str().unwrap());
    http.call(Method::DELETE, &sub_path, None, StatusCode::NOT_FOUND).await;

    // Disable, enable, delete.
    let off = http.call(Method::POST, &format!("/flows/{flow_id}/disable"), None, StatusCode::OK).await;
    assert_eq!(off["enabled"], false);
    let on = http.call(Method::POST, &format!("/flows/{flow_id}/enable"), None, StatusCode::OK).await;
    assert_eq!(on["enabled"], true);
    http.call(Method::DELETE, &format!("/flows/{flow_id}"), None, StatusCode::NO_CONTENT).await;
    http.call(Method::GET, &format!("/flows/{flow_id}"), None, StatusCode::NOT_FOUND).await;
    server.stop().await;
}
