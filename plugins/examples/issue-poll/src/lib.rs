//! A poll trigger reading issues from a GitHub-compatible REST API.
//!
//! Trigger `issue-updated`. Config: `{"api_url": "https://api.github.com", "repo": "owner/name"}`
//! (credentials for the API's host are added by Tandem, never seen here).
//!
//! - The cursor is `"<updated_at>|<id>"` of the last issue seen. The first poll (no cursor) asks
//!   for the most recently updated issue and returns it as the cursor without any items: a new
//!   flow starts from now.
//! - Later polls ask for issues updated since the cursor's time, oldest first
//!   (`sort=updated&direction=asc&since=...&per_page=...`), follow `Link: <...>; rel="next"` for
//!   up to `max_pages` pages, and skip what the cursor already covers (same time, id not greater).
//!   The item id is `<id>@<updated_at>`, so an issue updated again fires again.

use tandem_plugin_sdk::{Error, Invocation, Plugin, Poll, TriggerItem, Value, http, json, log};

pub struct IssuePoll;

/// Issues per page.
const PER_PAGE: u32 = 50;
/// Pages read in one poll unless the config says otherwise (the host's per-call budget caps it too).
const MAX_PAGES: u64 = 5;

struct Config {
    api: String,
    repo: String,
    max_pages: u64,
}

fn read_config(config: &Value) -> Result<Config, Error> {
    let api = config
        .get("api_url")
        .and_then(Value::as_str)
        .unwrap_or("https://api.github.com")
        .trim_end_matches('/')
        .to_string();
    let repo = config
        .get("repo")
        .and_then(Value::as_str)
        .filter(|r| r.split('/').count() == 2 && !r.starts_with('/') && !r.ends_with('/'))
        .ok_or_else(|| Error::invalid_input("config.repo: \"owner/name\" is required"))?
        .to_string();
    let max_pages = config.get("max_pages").and_then(Value::as_u64).unwrap_or(MAX_PAGES).clamp(1, 50);
    Ok(Config { api, repo, max_pages })
}

/// `(updated_at, id)`: the position of an issue in the feed.
fn position(issue: &Value) -> Result<(String, u64), Error> {
    let updated = issue.get("updated_at").and_then(Value::as_str);
    let id = issue.get("id").and_then(Value::as_u64);
    match (updated, id) {
        (Some(updated), Some(id)) => Ok((updated.to_string(), id)),
        _ => Err(Error::fatal(format!("the API returned an issue without updated_at or id: {issue}"))),
    }
}

fn cursor_of((updated, id): &(String, u64)) -> String {
    format!("{updated}|{id}")
}

fn parse_cursor(cursor: &str) -> Result<(String, u64), Error> {
    let (updated, id) = cursor
        .rsplit_once('|')
        .ok_or_else(|| Error::invalid_input(format!("cursor {cursor:?} is not \"<updated_at>|<id>\"")))?;
    let id =
        id.parse().map_err(|_| Error::invalid_input(format!("cursor {cursor:?}: the id is not a number")))?;
    Ok((updated.to_string(), id))
}

/// The `rel="next"` target of a `Link` header.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| matches!(p.trim().split_once('='), Some(("rel", v)) if v.trim_matches('"').split(' ').any(|r| r == "next")))
            .then(|| target.to_string())
    })
}

fn get(url: &str) -> Result<(Value, Option<String>), Error> {
    let request = http::Request {
        method: "GET".into(),
        url: url.to_string(),
        headers: vec![("accept".into(), "application/vnd.github+json".into())],
        body: None,
    };
    let response = http::fetch(&request).map_err(http::transport_error)?;
    http::check_status(&response)?;
    let body = tandem_plugin_sdk::serde_json::from_slice(&response.body)
        .map_err(|e| Error::fatal(format!("{url} answered with something that is not JSON: {e}")))?;
    Ok((body, http::header(&response, "link").and_then(next_link)))
}

fn issues(page: Value, url: &str) -> Result<Vec<Value>, Error> {
    match page {
        Value::Array(issues) => Ok(issues),
        other => Err(Error::fatal(format!("{url} answered {other} where a list of issues was expected"))),
    }
}

fn item(issue: &Value, (updated, id): &(String, u64)) -> TriggerItem {
    TriggerItem {
        id: format!("{id}@{updated}"),
        data: json!({
            "id": id,
            "number": issue.get("number"),
            "title": issue.get("title"),
            "state": issue.get("state"),
            "url": issue.get("html_url"),
            "user": issue.pointer("/user/login"),
            "labels": issue.get("labels").and_then(Value::as_array).map(|ls| ls.iter().filter_map(|l| l.get("name").cloned()).collect::<Vec<_>>()),
            "updated_at": updated,
        }),
    }
}

impl Plugin for IssuePoll {
    fn poll(_ctx: &Invocation, trigger: &str, config: &Value, cursor: Option<String>) -> Result<Poll, Error> {
        if trigger != "issue-updated" {
            return Err(Error::invalid_input(format!(
                "no trigger {trigger:?}; this plugin has \"issue-updated\""
            )));
        }
        let config = read_config(config)?;
        let base = format!("{}/repos/{}/issues?state=all&sort=updated", config.api, config.repo);
        let Some(cursor) = cursor else {
            // The first poll: start from the newest issue, fire nothing.
            let url = format!("{base}&direction=desc&per_page=1");
            let (page, _) = get(&url)?;
            let newest = issues(page, &url)?;
            let cursor = match newest.first() {
                Some(issue) => cursor_of(&position(issue)?),
                None => "|0".to_string(),
            };
            return Ok(Poll { items: vec![], cursor: Some(cursor) });
        };
        let last = parse_cursor(&cursor)?;
        let mut url = format!("{base}&direction=asc&per_page={PER_PAGE}");
        if !last.0.is_empty() {
            url.push_str(&format!("&since={}", last.0));
        }
        let mut found = Vec::new();
        let mut newest = last.clone();
        for page_number in 1..=config.max_pages {
            let (page, next) = get(&url)?;
            for issue in issues(page, &url)? {
                let at = position(&issue)?;
                if at <= last {
                    continue;
                }
                found.push(item(&issue, &at));
                if at > newest {
                    newest = at;
                }
            }
            match next {
                Some(next) if page_number < config.max_pages => url = next,
                Some(_) => {
                    log::info("more pages are left for the next poll");
                    break;
                }
                None => break,
            }
        }
        Ok(Poll { items: found, cursor: Some(cursor_of(&newest)) })
    }
}

tandem_plugin_sdk::export_plugin!(IssuePoll);
