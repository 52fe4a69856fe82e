#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! The portal and web forms over a real socket, spoken to like a browser without JavaScript
//! (cookies kept by hand, forms posted as the page renders them): validation beside the
//! fields, CSRF, the honeypot, rate limits, upload limits, escaping, sign-in required versus
//! open forms, and never another requester's data.

mod common;
mod portal_setup;

use std::collections::BTreeMap;

use portal_setup::{PASSWORD, Portal, setup};
use reqwest::multipart::{Form, Part};
use reqwest::{Client, StatusCode, header};
use serde_json::json;

/// A browser without JavaScript: it keeps cookies and follows no redirects by itself.
struct Visitor {
    client: Client,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    text: String,
}

impl Page {
    /// The CSRF token of the page's first form.
    fn csrf(&self) -> String {
        let at = self
            .text
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no csrf field in {}", self.text));
        let rest = &self.text[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Visitor {
    fn new() -> Self {
        let client = Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { client, cookies: BTreeMap::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn finish(&mut self, response: reqwest::Response) -> Page {
        for value in response.headers().get_all(header::SET_COOKIE) {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let status = response.status();
        let location = response.headers().get(header::LOCATION).map(|v| v.to_str().unwrap().to_string());
        Page { status, location, text: response.text().await.unwrap() }
    }

    async fn get(&mut self, url: &str) -> Page {
        let response =
            self.client.get(url).header(header::COOKIE, self.cookie_header()).send().await.unwrap();
        self.finish(response).await
    }

    async fn post_form(&mut self, url: &str, fields: &[(&str, &str)]) -> Page {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let response = self
            .client
            .post(url)
            .header(header::COOKIE, self.cookie_header())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    async fn post_multipart(&mut self, url: &str, form: Form) -> Page {
        let response = self
            .client
            .post(url)
            .header(header::COOKIE, self.cookie_header())
            .multipart(form)
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    async fn sign_in(&mut self, portal: &Portal, email: &str) {
        let page = self.get(&portal.portal_url("/sign-in")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let csrf = page.csrf();
        let done = self
            .post_form(
                &portal.portal_url("/sign-in"),
                &[("csrf", &csrf), ("email", email), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
        assert!(self.cookies.contains_key("tandem_session"), "signed in with a session cookie");
    }
}

/// A filled-in IT support form; `with` adds or replaces parts.
fn it_form(csrf: &str, title: &str, extra: Vec<(&'static str, &str)>) -> Form {
    let mut form =
        Form::new().text("csrf", csrf.to_string()).text("website", "").text("title", title.to_string());
    let has = |k: &str| extra.iter().any(|(n, _)| *n == k);
    if !has("custom.location") {
        form = form.text("custom.location", "Toronto");
    }
    for (name, value) in extra {
        form = form.text(name, value.to_string());
    }
    form
}

async fn titles(portal: &Portal) -> Vec<String> {
    portal.items().await.iter().map(|i| i["title"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn every_field_error_shows_beside_its_field_and_nothing_is_created() {
    let portal = setup(&[], false).await;
    let mut tom = Visitor::new();
    tom.sign_in(&portal, "tom@pondsupply.example").await;
    let page = tom.get(&portal.form_url()).await;
    assert_eq!(page.status, StatusCode::OK);
    for expected in [
        "name=\"viewport\"",
        "<label for=\"f-location\"",
        "The site where the problem is.",
        "Report an IT problem",
        "--primary: #0b6e4f",
    ] {
        assert!(page.text.contains(expected), "{expected} in {}", page.text);
    }
    assert!(!page.text.contains("Asset tag"), "internal fields are not asked");
    let csrf = page.csrf();
    let form = Form::new()
        .text("csrf", csrf.clone())
        .text("title", "")
        .text("custom.affected_users", "0")
        .text("custom.noticed_on", "31/03/2026")
        .text("custom.symptoms", "Smoke");
    let again = tom.post_multipart(&portal.form_url(), form).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    for (id, error) in [
        ("f-location", "'Site' is required"),
        ("f-title", "must not be empty"),
        ("f-affected_users", "must be at least 1"),
        ("f-noticed_on", "must be a date like 2026-03-31"),
        ("f-symptoms", "'Smoke' is not one of"),
    ] {
        let error_id = format!("id=\"{id}-error\"");
        assert!(again.text.contains(&error_id), "an error element for {id}: {}", again.text);
        assert!(again.text.contains(error), "{error}: {}", again.text);
        assert!(
            again.text.contains(&format!("{id}-error")) && again.text.contains("aria-describedby"),
            "{id}"
        );
    }
    assert!(titles(&portal).await.is_empty(), "nothing was created");

    // The same form, corrected, creates one item with normalised values.
    let form = it_form(
        &csrf,
        "Till printer offline",
        vec![
            ("custom.affected_users", "3"),
            ("custom.noticed_on", "2026-03-31"),
            ("custom.symptoms", "Slow"),
            ("custom.symptoms", "No power"),
            ("custom.urgent", "true"),
        ],
    );
    let done = tom.post_multipart(&portal.form_url(), form).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let items = portal.items().await;
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item["title"], "Till printer offline");
    assert_eq!(item["channel"], "portal");
    assert_eq!(item["requester"], portal.tom.as_str());
    assert_eq!(item["custom"]["symptoms"], json!(["No power", "Slow"]));
    assert_eq!(item["custom"]["urgent"], json!(true));
    assert_eq!(item["custom"]["affected_users"], json!(3.0));
    assert_eq!(
        done.location.unwrap(),
        format!("/portal/{}/requests/{}?submitted=1", portal.ws, item["number"])
    );
}

#[tokio::test]
async fn forms_refuse_missing_csrf_tokens_honeypots_and_floods() {
    let portal = setup(&[], true).await;
    let mut guest = Visitor::new();
    let page = guest.get(&portal.form_url()).await;
    assert!(guest.cookies.contains_key("tandem_form"), "a guest gets the cookie their token is bound to");
    let csrf = page.csrf();
    let guest_fields = || vec![("name", "Walk-in customer"), ("email", "walkin@example.org")];

    // No token, a forged token, a token without its cookie.
    let missing = guest.post_multipart(&portal.form_url(), it_form("", "No token", guest_fields())).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let forged =
        guest.post_multipart(&portal.form_url(), it_form(&"0".repeat(64), "Forged", guest_fields())).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let mut stranger = Visitor::new();
    let stolen =
        stranger.post_multipart(&portal.form_url(), it_form(&csrf, "Without cookie", guest_fields())).await;
    assert_eq!(stolen.status, StatusCode::FORBIDDEN);

    // The honeypot: answered like a success, nothing stored.
    let bot = it_form(&csrf, "Cheap pills", guest_fields()).text("website", "http://spam.example");
    let answer = guest.post_multipart(&portal.form_url(), bot).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert!(titles(&portal).await.is_empty(), "{:?}", titles(&portal).await);

    // A guest on an open form: a contact is made from the name and address.
    let ok = guest
        .post_multipart(&portal.form_url(), it_form(&csrf, "Pump controller beeps", guest_fields()))
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    assert!(ok.location.as_deref().unwrap().contains("/thanks?n="));
    let items = portal.items().await;
    assert_eq!(items.len(), 1);
    let contact = portal.http.get(&format!("/users/{}", items[0]["requester"].as_str().unwrap())).await;
    assert_eq!(contact["email"], "walkin@example.org");
    assert_eq!(contact["role"], "customer");

    // Five submissions were counted so far (four were refused or dropped); the limit is ten a minute.
    for i in 0..5 {
        let r = guest
            .post_multipart(&portal.form_url(), it_form(&csrf, &format!("Flood {i}"), guest_fields()))
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    }
    let over = guest.post_multipart(&portal.form_url(), it_form(&csrf, "One too many", guest_fields())).await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS, "{}", over.text);
    assert!(!titles(&portal).await.contains(&"One too many".to_string()));
}

#[tokio::test]
async fn sign_in_is_limited_per_address_and_forms_can_require_it() {
    let portal = setup(&[], false).await;
    let mut guest = Visitor::new();
    // Sign-in required: a guest's submission goes to the sign-in page and creates nothing.
    let page = guest.get(&portal.form_url()).await;
    assert!(page.text.contains("to submit this form"), "{}", page.text);
    let csrf = page.csrf();
    let sent = guest
        .post_multipart(
            &portal.form_url(),
            it_form(&csrf, "Anonymous", vec![("name", "X"), ("email", "x@example.org")]),
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER);
    assert!(sent.location.unwrap().contains("/sign-in"));
    assert!(titles(&portal).await.is_empty());

    let page = guest.get(&portal.portal_url("/sign-in")).await;
    let csrf = page.csrf();
    let wrong = guest
        .post_form(
            &portal.portal_url("/sign-in"),
            &[("csrf", &csrf), ("email", "tom@pondsupply.example"), ("password", "nope")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text.contains("The email address or password is wrong."));
    let no_csrf = guest
        .post_form(
            &portal.portal_url("/sign-in"),
            &[("email", "tom@pondsupply.example"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN, "sign-in forms carry a CSRF token too");
    let mut refused = None;
    // Different addresses each time: no account is locked, the network address is limited.
    for i in 0..12 {
        let email = format!("nobody{i}@pondsupply.example");
        let r = guest
            .post_form(
                &portal.portal_url("/sign-in"),
                &[("csrf", &csrf), ("email", &email), ("password", "bad")],
            )
            .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("sign-in attempts from one address are limited");
    assert!(refused.text.contains("Too many attempts from your network"), "{}", refused.text);
}

#[tokio::test]
async fn uploads_are_limited_in_size_and_type() {
    let portal = setup(&["--max-attachment-bytes", "2000"], false).await;
    let mut tom = Visitor::new();
    tom.sign_in(&portal, "tom@pondsupply.example").await;
    let csrf = tom.get(&portal.form_url()).await.csrf();
    let file = |name: &str, mime: &str, size: usize| {
        Part::bytes(vec![b'a'; size]).file_name(name.to_string()).mime_str(mime).unwrap()
    };
    let html = it_form(&csrf, "With a page", vec![]).part("files", file("invoice.html", "text/html", 10));
    let r = tom.post_multipart(&portal.form_url(), html).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text.contains("id=\"f-files-error\"") && r.text.contains("is not a file type this form accepts"),
        "{}",
        r.text
    );
    let big = it_form(&csrf, "With a big photo", vec![]).part("files", file("photo.jpg", "image/jpeg", 5000));
    let r = tom.post_multipart(&portal.form_url(), big).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("is larger than"), "{}", r.text);
    assert!(titles(&portal).await.is_empty(), "nothing half-written");
    let fine =
        it_form(&csrf, "With a small photo", vec![]).part("files", file("photo.jpg", "image/jpeg", 1500));
    let r = tom.post_multipart(&portal.form_url(), fine).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let items = portal.items().await;
    let attachments = portal.http.get(&format!("/items/{}/attachments", items[0]["number"])).await;
    assert_eq!(attachments.as_array().unwrap().len(), 1);
    assert_eq!(attachments[0]["filename"], "photo.jpg");

    // Tom downloads it from the portal; Eva, of another organization, gets a 404.
    let download = format!("/attachments/{}", attachments[0]["id"].as_str().unwrap());
    let mine = tom.get(&portal.portal_url(&download)).await;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(mine.text.len(), 1500);
    let mut eva = Visitor::new();
    eva.sign_in(&portal, "eva@hearwell.example").await;
    let theirs = eva.get(&portal.portal_url(&download)).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert!(!theirs.text.contains("aaaa"));
}

#[tokio::test]
async fn the_portal_escapes_what_people_wrote_and_shows_nobody_else_s_requests() {
    let portal = setup(&[], false).await;
    let mut tom = Visitor::new();
    tom.sign_in(&portal, "tom@pondsupply.example").await;
    let csrf = tom.get(&portal.form_url()).await.csrf();
    let evil = "<script>alert('x')</script> pump";
    let r = tom
        .post_multipart(
            &portal.form_url(),
            it_form(&csrf, evil, vec![("custom.device", "<img src=x onerror=alert(1)>")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let number = portal.items().await[0]["number"].as_i64().unwrap();
    let page = tom.get(&portal.portal_url(&format!("/requests/{number}"))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.text.contains("<script>alert"), "{}", page.text);
    assert!(page.text.contains("&lt;script&gt;alert('x')&lt;/script&gt; pump"), "{}", page.text);
    assert!(!page.text.contains("<img src=x"));

    // Sara (same organization; the portal shows the organization's requests) sees it; Eva
    // (another organization) neither in her list nor by number.
    let mut sara = Visitor::new();
    sara.sign_in(&portal, "sara@pondsupply.example").await;
    let list = sara.get(&portal.portal_url("/requests")).await;
    assert!(list.text.contains("pump"), "{}", list.text);
    let mut eva = Visitor::new();
    eva.sign_in(&portal, "eva@hearwell.example").await;
    let list = eva.get(&portal.portal_url("/requests")).await;
    assert!(!list.text.contains("pump"), "{}", list.text);
    assert!(list.text.contains("You have no requests yet."));
    let page = eva.get(&portal.portal_url(&format!("/requests/{number}"))).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.text.contains("pump") && !page.text.contains("Till"), "{}", page.text);
    // Nor can she reply to it.
    let own_csrf = eva.get(&portal.portal_url("/requests")).await.csrf();
    let reply = Form::new().text("csrf", own_csrf).text("description", "Let me in");
    let r = eva.post_multipart(&portal.portal_url(&format!("/requests/{number}/reply")), reply).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let messages = portal.http.get(&format!("/items/{number}/messages")).await;
    assert!(messages.as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_sign_in_link_from_the_portal_signs_the_customer_in_once() {
    let portal = setup(&["--public-url", "https://desk.example", "--workers", "0"], false).await;
    let mut tom = Visitor::new();
    let csrf = tom.get(&portal.portal_url("/sign-in")).await.csrf();
    let asked = tom
        .post_form(&portal.portal_url("/magic-link"), &[("csrf", &csrf), ("email", "tom@pondsupply.example")])
        .await;
    assert_eq!(asked.status, StatusCode::SEE_OTHER);
    assert!(asked.location.unwrap().ends_with("/sign-in?sent=1"));
    // An unknown address gets the same answer.
    let unknown = tom
        .post_form(&portal.portal_url("/magic-link"), &[("csrf", &csrf), ("email", "who@nowhere.example")])
        .await;
    assert_eq!(unknown.status, StatusCode::SEE_OTHER);

    // The link is in the queued mail; the API hides it, so it is read from the database.
    let store = tandem_storage_sqlite::SqliteStore::open(
        portal._db.path().join("tandem.db"),
        tandem_storage_sqlite::SqliteOptions::default(),
    )
    .unwrap();
    let filter =
        tandem_core::store::JobFilter { kind: Some("mail.send".into()), limit: 10, ..Default::default() };
    let jobs = tandem_core::Store::jobs(&store, &filter).await.unwrap();
    assert_eq!(jobs.len(), 1, "one mail, for the known customer");
    let link = jobs[0].payload["vars"]["link"].as_str().unwrap().to_string();
    let prefix = format!("https://desk.example/portal/{}/magic/", portal.ws);
    let secret = link.strip_prefix(&prefix).unwrap_or_else(|| panic!("{link} points at the portal"));

    let mut browser = Visitor::new();
    let used = browser.get(&portal.portal_url(&format!("/magic/{secret}"))).await;
    assert_eq!(used.status, StatusCode::SEE_OTHER, "{}", used.text);
    assert!(browser.cookies.contains_key("tandem_session"));
    let list = browser.get(&portal.portal_url("/requests")).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.text.contains("My requests"));
    let again = Visitor::new().get(&portal.portal_url(&format!("/magic/{secret}"))).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "single use");
}

#[tokio::test]
async fn portal_settings_refuse_unsafe_branding_and_unknown_types() {
    let portal = setup(&[], false).await;
    for (body, field) in [
        (json!({"branding": {"primary_color": "red;}</style><script>"}}), "branding.primary_color"),
        (json!({"branding": {"logo_url": "javascript:alert(1)"}}), "branding.logo_url"),
        (
            json!({"forms": {"00000000-0000-0000-0000-000000000000": {"survey": true}}}),
            "forms.00000000-0000-0000-0000-000000000000",
        ),
        (json!({"forms": {portal.form_type.clone(): {"title": ""}}}), "title"),
    ] {
        let answer = portal
            .http
            .call(reqwest::Method::PATCH, "/portal", Some(body), StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        assert!(answer["error"]["field"].as_str().unwrap().contains(field), "{answer}");
    }
    // A type without a form has no form page.
    let page =
        Visitor::new().get(&format!("{}/forms/{}/{}", portal.origin, portal.ws, portal.plain_type)).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_survey_records_each_answer_set_as_an_item() {
    let portal = setup(&[], true).await;
    portal
        .patch_portal(
            json!({"forms": {portal.form_type.clone(): {"title": "Site IT survey", "survey": true}}}),
        )
        .await;
    let mut guest = Visitor::new();
    let page = guest.get(&portal.form_url()).await;
    assert!(!page.text.contains("id=\"f-title\""), "a survey asks no subject");
    let form = Form::new()
        .text("csrf", page.csrf())
        .text("name", "Sara Nguyen")
        .text("email", "sara@pondsupply.example")
        .text("custom.location", "Seattle")
        .text("custom.affected_users", "12");
    let done = guest.post_multipart(&portal.form_url(), form).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let items = portal.items().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["title"], "Site IT survey — Sara Nguyen");
    assert_eq!(items[0]["requester"], portal.sara.as_str(), "a known address is its customer");
    assert_eq!(items[0]["custom"]["affected_users"], json!(12.0));
    let thanks = guest.get(&format!("{}{}", portal.origin, done.location.unwrap())).await;
    assert!(thanks.text.contains("Your answers to Site IT survey were recorded"), "{}", thanks.text);
}

#[tokio::test]
async fn a_signed_in_customer_s_widget_chats_stay_on_their_requests_page() {
    let portal = setup(&[], false).await;
    let mut tom = Visitor::new();
    tom.sign_in(&portal, "tom@pondsupply.example").await;
    let before = tom.get(&portal.portal_url("/requests")).await;
    assert!(!before.text.contains("My chats"), "{}", before.text);

    // Tom opens the widget's messenger while signed in: the chat is his, not an anonymous one.
    let started = tom
        .client
        .post(format!("{}/widget/chats", portal.origin))
        .header(header::COOKIE, tom.cookie_header())
        .header("x-tandem-widget", "1")
        .header(header::CONTENT_TYPE, "application/json")
        .body(json!({"workspace": portal.ws, "text": "Is the pump <b>in stock</b>?"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::CREATED, "{}", started.text().await.unwrap());

    let page = tom.get(&portal.portal_url("/requests")).await;
    assert!(page.text.contains("My chats") && page.text.contains("waiting"), "{}", page.text);
    // Sara, of the same organization, does not see Tom's chat.
    let mut sara = Visitor::new();
    sara.sign_in(&portal, "sara@pondsupply.example").await;
    let hers = sara.get(&portal.portal_url("/requests")).await;
    assert!(!hers.text.contains("My chats"), "{}", hers.text);
}
