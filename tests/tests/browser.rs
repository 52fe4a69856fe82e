//! The browser harness itself: a headless Chromium starts, renders a page, runs script and
//! takes a screenshot.

#![allow(clippy::unwrap_used)]

use tandem_tests::browser::Browser;

#[tokio::test]
async fn chromium_renders_a_page_and_takes_a_screenshot() {
    let Some(browser) = Browser::start().await else { return };
    browser.goto("data:text/html,<title>t</title><label for=n>Name</label><input id=n value=Ana>").await;
    let value =
        browser.eval("return document.getElementById('n').value + ' ' + document.title", vec![]).await;
    assert_eq!(value, "Ana t");
    assert!(browser.text().await.contains("Name"));
    let path = browser.screenshot("harness-self-test").await;
    let png = std::fs::read(&path).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", path.display());
    browser.close().await;
}
