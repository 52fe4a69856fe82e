#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! The portal in a real headless Chromium against the real `tandem` binary: a requester signs
//! in, fills in and submits a form with an attachment (and first forgets a required field),
//! follows the conversation, and a customer of another organization cannot open the item.
//! Screenshots of the form and the portal list are kept as test artefacts.

mod common;
mod portal_setup;

use portal_setup::{PASSWORD, Portal, setup};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tandem_tests::browser::Browser;

async fn sign_in(browser: &Browser, portal: &Portal, email: &str) {
    browser.goto(&portal.portal_url("/sign-in")).await;
    browser.find("#s-email").await.send_keys(email).await.unwrap();
    browser.find("#s-password").await.send_keys(PASSWORD).await.unwrap();
    browser.find("main form button[type=submit]").await.click().await.unwrap();
    browser.find("header.brand form button").await; // the sign-out button: signed in
}

async fn attribute(browser: &Browser, css: &str, name: &str) -> String {
    browser.find(css).await.attr(name).await.unwrap().unwrap_or_default()
}

#[tokio::test]
async fn a_form_with_an_attachment_becomes_a_ticket_and_a_missing_field_creates_nothing() {
    let portal = setup(&[], false).await;
    let Some(browser) = Browser::start().await else { return };
    sign_in(&browser, &portal, "tom@pondsupply.example").await;

    browser.goto(&portal.form_url()).await;
    browser.find("#f-title").await.send_keys("Pond pump controller keeps rebooting").await.unwrap();
    browser.find("#f-device").await.send_keys("PC-200 controller").await.unwrap();
    browser.screenshot("portal-form").await;

    // The required site is missing: the error is beside its field, tied to it, and nothing is created.
    browser.find("main form button[type=submit]").await.click().await.unwrap();
    let error = browser.find("#f-location-error").await.text().await.unwrap();
    assert!(error.contains("'Site' is required"), "{error}");
    assert!(attribute(&browser, "#f-location", "aria-describedby").await.contains("f-location-error"));
    assert_eq!(attribute(&browser, "#f-location", "aria-invalid").await, "true");
    assert!(portal.items().await.is_empty(), "a refused form creates nothing");
    assert_eq!(
        attribute(&browser, "#f-title", "value").await,
        "Pond pump controller keeps rebooting",
        "what was typed is kept"
    );

    // Completed, with a photo attached.
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("controller.jpg");
    let bytes: Vec<u8> = (0..30_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    std::fs::write(&photo, &bytes).unwrap();
    browser.find("#f-location").await.select_by_value("Vancouver").await.unwrap();
    browser.find("#f-symptoms-1").await.click().await.unwrap();
    browser.find("#f-files").await.send_keys(photo.to_str().unwrap()).await.unwrap();
    browser.find("main form button[type=submit]").await.click().await.unwrap();
    let status = browser.find("#status").await.text().await.unwrap();
    assert_eq!(status, "Triage");
    assert!(browser.text().await.contains("controller.jpg"));

    // The ticket, through the API.
    let items = portal.items().await;
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item["title"], "Pond pump controller keeps rebooting");
    assert_eq!(item["requester"], portal.tom.as_str());
    assert_eq!(item["channel"], "portal");
    assert_eq!(item["custom"]["location"], "Vancouver");
    assert_eq!(item["custom"]["symptoms"], json!(["Slow"]));
    let n = item["number"].as_i64().unwrap();
    let attachments = portal.http.get(&format!("/items/{n}/attachments")).await;
    assert_eq!(attachments.as_array().unwrap().len(), 1);
    assert_eq!(attachments[0]["filename"], "controller.jpg");
    let download = portal
        .http
        .request(reqwest::Method::GET, &format!("/attachments/{}", attachments[0]["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.bytes().await.unwrap().as_ref(), bytes.as_slice());
    browser.close().await;
}

#[tokio::test]
async fn a_requester_sees_public_replies_only_and_another_organization_sees_nothing() {
    let portal = setup(&[], false).await;
    let Some(browser) = Browser::start_sized(390, 844).await else { return };
    sign_in(&browser, &portal, "tom@pondsupply.example").await;
    browser.goto(&portal.form_url()).await;
    browser.find("#f-title").await.send_keys("Card terminal at the Seattle store").await.unwrap();
    browser.find("#f-location").await.select_by_value("Seattle").await.unwrap();
    browser.find("main form button[type=submit]").await.click().await.unwrap();
    browser.find("#status").await;
    let n = portal.items().await[0]["number"].as_i64().unwrap();

    let text = |visibility: &str, content: &str| -> Value {
        json!({"visibility": visibility, "body": {"format": "text", "content": content}})
    };
    let messages = format!("/items/{n}/messages");
    portal.http.post(&messages, text("public", "A technician visits on Tuesday."), StatusCode::CREATED).await;
    portal
        .http
        .post(&messages, text("internal", "Vendor contract expired; quote needed."), StatusCode::CREATED)
        .await;
    portal.http.post(&format!("/items/{n}/transition"), json!({"status": "execution"}), StatusCode::OK).await;

    browser.goto(&portal.portal_url(&format!("/requests/{n}"))).await;
    let page = browser.text().await;
    assert!(page.contains("A technician visits on Tuesday."), "{page}");
    assert!(!page.contains("Vendor contract"), "internal notes never reach the portal: {page}");
    assert_eq!(browser.find("#status").await.text().await.unwrap(), "We are on it", "the public label");

    // The requester answers from the reply box; the agent sees it through the API.
    browser.find("#r-body").await.send_keys("Tuesday works, thanks.").await.unwrap();
    browser.find("main form.card button[type=submit]").await.click().await.unwrap();
    browser.find(".notice").await;
    assert!(browser.text().await.contains("Tuesday works, thanks."));
    let thread = portal.http.get(&messages).await;
    assert!(thread.as_array().unwrap().iter().any(|m| m["text"] == "Tuesday works, thanks."));

    browser.goto(&portal.portal_url("/requests")).await;
    assert!(browser.text().await.contains("Card terminal at the Seattle store"));
    browser.screenshot("portal-list").await;

    // Eva is a customer of another organization: no list entry, and the item's page is a
    // not-found page with nothing of the item on it.
    browser.find("header.brand form button").await.click().await.unwrap();
    browser.find("header.brand a[href$='/sign-in']").await;
    sign_in(&browser, &portal, "eva@hearwell.example").await;
    browser.goto(&portal.portal_url("/requests")).await;
    assert!(!browser.text().await.contains("Card terminal"));
    browser.goto(&portal.portal_url(&format!("/requests/{n}"))).await;
    let page = browser.text().await;
    assert!(page.contains("Not found"), "{page}");
    for secret in ["Card terminal", "technician", "Vendor", "Tuesday"] {
        assert!(!page.contains(secret), "{secret} leaked: {page}");
    }
    let html = browser.eval("return document.documentElement.outerHTML", vec![]).await;
    assert!(!html.as_str().unwrap().contains("Seattle store"));
    browser.close().await;
}
