//! Plugin installations and their key-value state on every backend, through `Desk`: install,
//! approve, upgrade, remove (state goes with the installation), and compare-and-swap that admits
//! exactly one winner among racing writers.

use std::sync::Arc;

use serde_json::json;
use tandem_core::plugins::{
    ApprovePlugin, ConfigurePlugin, InstallPlugin, PluginPackage, PluginSecret, RemovePlugin,
    SetPluginEnabled, SetPluginState, StateWritten, UpgradePlugin,
};
use tandem_core::*;

use crate::TestStore;
use crate::fixture::workspace;

fn package(version: &str, hosts: &[&str], wasm: &[u8]) -> PluginPackage {
    PluginPackage {
        plugin: "issue-poll".into(),
        name: "Issues".into(),
        plugin_version: version.into(),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        state: true,
        manifest: json!({ "triggers": { "issue-updated": { "title": "t", "kind": "poll" } } }),
        wasm: Arc::from(wasm),
    }
}

pub async fn plugin_installations_and_state(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    let other = workspace(store.as_ref(), "other").await;
    let (desk, _clock) = crate::fixture::desk(store.clone());
    let admin = Actor::server_admin(ws.id);
    let system = Actor::system(ws.id);

    let installed = desk
        .execute(
            &admin,
            &InstallPlugin {
                package: package("0.1.0", &["api.github.com"], b"v1"),
                approve: false,
                config: json!(null),
            },
        )
        .await
        .unwrap();
    assert!(!installed.approved && installed.enabled);
    assert_eq!(installed.config, json!({}));
    let stored = desk.plugin_installation(&system, "issue-poll").await.unwrap();
    assert_eq!(stored.sha256, tandem_core::plugins::digest(b"v1"));
    assert_eq!(store.blob(ws.id, &stored.sha256).await.unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(
        stored.runnable().unwrap_err(),
        "plugin issue-poll asks for capabilities an administrator has not approved yet"
    );
    // One installation per plugin per workspace.
    let again = InstallPlugin { package: package("0.1.0", &[], b"v1"), approve: true, config: json!({}) };
    assert!(matches!(desk.execute(&admin, &again).await, Err(DeskError::Conflict(_))));
    // Another workspace knows nothing of it.
    assert!(matches!(
        desk.plugin_installation(&Actor::system(other.id), "issue-poll").await,
        Err(DeskError::NotFound(_))
    ));

    let secret = PluginSecret {
        host: "api.github.com".into(),
        header: "authorization".into(),
        value: "Bearer t".into(),
    };
    let approve =
        ApprovePlugin { plugin: "issue-poll".into(), hosts: None, secrets: Some(vec![secret.clone()]) };
    let approved = desk.execute(&admin, &approve).await.unwrap();
    assert!(approved.approved);
    let config = ConfigurePlugin { plugin: "issue-poll".into(), config: json!({ "repo": "acme/vpn" }) };
    desk.execute(&admin, &config).await.unwrap();
    desk.plugin_installation(&system, "issue-poll").await.unwrap().runnable().unwrap();

    // State: compare-and-swap on the record's version.
    let cas = |expected: Option<i64>, value: Option<&str>| SetPluginState {
        plugin: "issue-poll".into(),
        key: "cursor".into(),
        expected,
        value: value.map(str::to_string),
    };
    assert_eq!(desk.execute(&system, &cas(None, Some("a"))).await.unwrap(), StateWritten::Written(1));
    assert_eq!(desk.execute(&system, &cas(None, Some("b"))).await.unwrap(), StateWritten::Conflict(Some(1)));
    assert_eq!(desk.execute(&system, &cas(Some(1), Some("b"))).await.unwrap(), StateWritten::Written(2));
    assert_eq!(desk.plugin_state(&system, "issue-poll", "cursor").await.unwrap().unwrap().value, "b");
    // Only the plugin host writes state.
    assert!(matches!(desk.execute(&admin, &cas(Some(2), Some("c"))).await, Err(DeskError::Forbidden(_))));

    // Racing writers from the same version: exactly one wins.
    let desk = Arc::new(desk);
    let mut racers = Vec::new();
    for r in 0..6 {
        let (desk, system) = (desk.clone(), system.clone());
        racers.push(tokio::spawn(async move {
            let cmd = SetPluginState {
                plugin: "issue-poll".into(),
                key: "cursor".into(),
                expected: Some(2),
                value: Some(format!("racer {r}")),
            };
            desk.execute(&system, &cmd).await.unwrap()
        }));
    }
    let mut won = 0;
    for racer in racers {
        match racer.await.unwrap() {
            StateWritten::Written(3) => won += 1,
            StateWritten::Conflict(Some(3)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(won, 1);

    // An upgrade keeps config, secrets, state and approval when it asks for nothing new.
    let upgraded = desk
        .execute(&admin, &UpgradePlugin { package: package("0.2.0", &["api.github.com"], b"v2") })
        .await
        .unwrap();
    assert_eq!((upgraded.plugin_version.as_str(), upgraded.approved), ("0.2.0", true));
    assert_eq!(upgraded.config, json!({ "repo": "acme/vpn" }));
    assert_eq!(desk.plugin_installation(&system, "issue-poll").await.unwrap().secrets, vec![secret]);
    assert!(desk.plugin_state(&system, "issue-poll", "cursor").await.unwrap().is_some());
    let older = UpgradePlugin { package: package("0.1.5", &[], b"v3") };
    assert!(
        matches!(desk.execute(&admin, &older).await, Err(DeskError::Invalid(i)) if i.field == "manifest.version")
    );

    let disabled = desk
        .execute(&admin, &SetPluginEnabled { plugin: "issue-poll".into(), enabled: false })
        .await
        .unwrap();
    assert!(!disabled.enabled);

    // Removing takes the state with it.
    desk.execute(&admin, &RemovePlugin { plugin: "issue-poll".into() }).await.unwrap();
    assert!(matches!(desk.plugin_installation(&system, "issue-poll").await, Err(DeskError::NotFound(_))));
    assert!(desk.plugin_state(&system, "issue-poll", "cursor").await.unwrap().is_none());
    assert!(desk.plugins(&admin).await.unwrap().is_empty());
}
