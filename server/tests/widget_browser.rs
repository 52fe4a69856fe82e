//! The widget in a real headless Chromium against the real `tandem` binary: a host page (served
//! here on loopback, like an operator's site) pastes the snippet from the admin API; the widget
//! opens, searches the knowledge base (a published public article is found, an internal one is
//! not), and a visitor chats live with an agent who answers through the API. The screenshot of
//! the open widget is kept as an artefact (`widget.png`).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::response::Html;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tandem_tests::browser::Browser;

use common::{ADMIN, Backend, Db, Http, eventually, start};

/// An operator's site: a shop page with the snippet pasted into it.
async fn host_page(snippet: String) -> String {
    let page = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>North Ponds shop</title></head>\
         <body style=\"font-family:sans-serif;background:#eef5ee\"><h1>North Ponds — pumps and filters</h1>\
         <p>Everything for your pond.</p>{snippet}</body></html>"
    );
    let app = axum::Router::new().route("/", axum::routing::get(move || async move { Html(page.clone()) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn in_panel(browser: &Browser, script: &str) -> Value {
    browser.eval(script, vec![]).await
}

/// Reads an SSE response until its text contains `needle`.
async fn stream_until(mut response: reqwest::Response, needle: &str) -> String {
    let mut seen = String::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = response.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(needle) {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the agent's stream never carried {needle:?}; it carried:\n{seen}"));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_searches_the_knowledge_base_and_chats_with_an_agent() {
    let Some(browser) = Browser::start().await else { return };
    let db = Db::new(Backend::Sqlite).await.unwrap();
    let server = start(&db.arg, Some(ADMIN), &[]).await;
    let admin = Http::new(&server, ADMIN);

    // The aquarium supplier's desk: an agent, a public article and an internal one.
    let ws = admin.post("/workspaces", json!({"name": "Pond supplies"}), StatusCode::CREATED).await;
    let ws_id = ws["id"].as_str().unwrap().to_string();
    let ana = admin
        .post(
            "/users",
            json!({"name": "Ana Agent", "email": "ana@pond-supplies.example", "role": "agent"}),
            StatusCode::CREATED,
        )
        .await;
    let token = admin
        .post(
            &format!("/users/{}/tokens", ana["id"].as_str().unwrap()),
            json!({"name": "desk", "scope": "write"}),
            StatusCode::CREATED,
        )
        .await;
    let agent = Http::new(&server, token["secret"].as_str().unwrap());
    let pumps = agent.post("/kb/categories", json!({"name": "Pumps"}), StatusCode::CREATED).await;
    for (title, visibility) in
        [("Cleaning the pond pump", "public"), ("Pump supplier escalation contacts", "internal")]
    {
        agent
            .post(
                "/kb/articles",
                json!({"title": title, "category": pumps["id"], "visibility": {"type": visibility}, "published": true,
                       "body": {"format": "html", "content": format!("<p>{title}: unplug the pump first.</p>")}}),
                StatusCode::CREATED,
            )
            .await;
    }

    let snippet = admin.get("/widget/snippet").await;
    let snippet = snippet["snippet"].as_str().unwrap().to_string();
    assert!(snippet.contains(&ws_id) && snippet.contains("/widget.js"), "{snippet}");
    let site = host_page(snippet).await;

    // The visitor opens the widget on the operator's site.
    browser.goto(&site).await;
    browser.find("#tandem-widget-button").await.click().await.unwrap();
    let frame = browser.find("#tandem-widget-frame").await;
    assert!(frame.is_displayed().await.unwrap(), "the panel opens");
    frame.enter_frame().await.unwrap();

    // Knowledge base search: the public article, not the internal one.
    browser.find("#tab-button-kb").await.click().await.unwrap();
    browser.find("#kb-q").await.send_keys("pump").await.unwrap();
    browser.find("#kb-search").await.click().await.unwrap();
    let results = browser.find("#kb-results").await.text().await.unwrap();
    assert!(results.contains("Cleaning the pond pump"), "{results}");
    assert!(!results.contains("escalation"), "an internal article is never found: {results}");

    // The messenger: an anonymous visitor starts a chat.
    browser.find("#tab-button-chat").await.click().await.unwrap();
    browser.find("#chat-name").await.send_keys("Vera Visitor").await.unwrap();
    browser.find("#chat-email").await.send_keys("vera@north-ponds.example").await.unwrap();
    browser.find("#chat-first").await.send_keys("My pump <b>stopped</b>").await.unwrap();
    browser.find("#chat-start-button").await.click().await.unwrap();
    eventually("the chat to open in the panel", Duration::from_secs(20), || async {
        let n = in_panel(&browser, "return document.querySelectorAll('#chat-log li').length").await;
        (n.as_u64() == Some(1)).then_some(())
    })
    .await;
    assert_eq!(
        in_panel(&browser, "return document.querySelector('#chat-log b') === null").await,
        json!(true),
        "the visitor's text is shown as text"
    );

    // The agent finds it waiting, takes it and sees the visitor's message through the API.
    let chat = eventually("a waiting chat", Duration::from_secs(20), || async {
        let waiting = agent.get("/chats?status=waiting").await;
        waiting.as_array().unwrap().first().cloned()
    })
    .await;
    let chat_id = chat["id"].as_str().unwrap().to_string();
    assert_eq!(chat["visitor_name"], "Vera Visitor");
    assert_eq!(chat["page"], site.as_str(), "the chat says which page the visitor was on");
    assert!(chat.get("token_sha256").is_none(), "the token's digest is not in the API: {chat}");
    agent.post(&format!("/chats/{chat_id}/take"), Value::Null, StatusCode::OK).await;
    let seen = agent.get(&format!("/chats/{chat_id}")).await;
    let texts: Vec<&str> =
        seen["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert!(texts.contains(&"My pump <b>stopped</b>"), "{texts:?}");

    // The agent's live stream carries what the visitor sends next.
    let stream = agent.request(Method::GET, &format!("/chats/{chat_id}/stream")).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    // The agent's arrival shows in the panel first (the log grows, moving the send button).
    eventually("the agent's arrival in the panel", Duration::from_secs(20), || async {
        let log = in_panel(&browser, "return document.getElementById('chat-log').innerText").await;
        log.as_str().unwrap().contains("Ana Agent joined the chat").then_some(())
    })
    .await;
    browser.find("#chat-text").await.send_keys("It hums but no water moves").await.unwrap();
    browser.find("#chat-send").await.click().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let state = in_panel(
            &browser,
            "return [document.getElementById('chat-log').innerText, document.getElementById('chat-error').innerText, \
             document.getElementById('chat-text').value, document.getElementById('chat-send').disabled]",
        )
        .await;
        let error = state[1].as_str().unwrap();
        assert!(error.is_empty(), "sending failed: {error}");
        if state[0].as_str().unwrap().contains("It hums but no water moves") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the visitor's message never showed in the panel: {state}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stream_until(stream, "It hums but no water moves").await;

    // The agent answers through the API; the answer appears in the panel live.
    agent
        .post(
            &format!("/chats/{chat_id}/messages"),
            json!({"text": "Please unplug it and clean the intake filter."}),
            StatusCode::CREATED,
        )
        .await;
    eventually("the agent's reply in the panel", Duration::from_secs(20), || async {
        let log = in_panel(&browser, "return document.getElementById('chat-log').innerText").await;
        log.as_str().unwrap().contains("Please unplug it and clean the intake filter.").then_some(())
    })
    .await;
    browser.screenshot("widget").await;

    // The visitor ends the chat: it becomes a ticket with the transcript.
    browser.find("#chat-end").await.click().await.unwrap();
    eventually("the panel to show the chat ended", Duration::from_secs(20), || async {
        let hidden = in_panel(&browser, "return document.getElementById('chat-ended').hidden").await;
        (hidden == json!(false)).then_some(())
    })
    .await;
    let ended = agent.get(&format!("/chats/{chat_id}")).await;
    assert_eq!(ended["chat"]["status"], "ended");
    let item = ended["chat"]["item"].as_str().unwrap().to_string();
    let messages = admin.get(&format!("/items/{item}/messages")).await;
    let transcript: Vec<&str> =
        messages.as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(
        transcript,
        [
            "My pump <b>stopped</b>",
            "It hums but no water moves",
            "Please unplug it and clean the intake filter."
        ]
    );
    let ticket = admin.get(&format!("/items/{item}")).await;
    assert_eq!(ticket["channel"], "widget");

    browser.close().await;
    server.stop().await;
}
