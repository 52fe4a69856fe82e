//! The rule engine: 1,000 rules evaluated against one event (pure, no store), and the same
//! rules end to end through `Desk` on SQLite (loading the rules and the world is part of every
//! item command). Prints p50/p99; asserts nothing.
//!
//! `cargo bench -p tandem-tests --bench automations`

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tandem_core::automation::{self, Engine, Rule};
use tandem_core::commands::{CreateItem, CreateItemType, CreateRule, CreateWorkspace};
use tandem_core::ids::FixedClock;
use tandem_core::*;

const RULES: usize = 1_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<58} p50 {:>9.3} ms   p99 {:>9.3} ms   ({} runs)",
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.len()
    );
}

/// Rule `i` of a realistic mix: most react to item creation with conditions that mostly fail
/// (category, domain, regex on the description, nested any/all), some to other events; every
/// hundredth matches and acts.
fn rule_json(i: usize, team: TeamId) -> serde_json::Value {
    let trigger = match i % 5 {
        0..=2 => json!({"type": "item_created"}),
        3 => json!({"type": "message_posted", "by": "requester"}),
        _ => json!({"type": "status_changed", "to_category": "resolved"}),
    };
    let hit = i.is_multiple_of(100);
    let category = if hit { "Hardware" } else { "Software" };
    json!({
        "name": format!("Rule {i}"),
        "trigger": trigger,
        "conditions": {"all": [
            {"field": "custom.category", "op": "eq", "value": category},
            {"any": [
                {"field": "requester.domain", "op": "in", "value": ["clinic.example", format!("site{i}.example")]},
                {"field": "description", "op": "matches", "value": format!("(?i)error [0-9]{{{}}}", 1 + i % 4)},
            ]},
            {"not": {"field": "priority", "op": "eq", "value": "urgent"}},
        ]},
        "actions": [
            {"type": "set_priority", "priority": "high"},
            {"type": "assign", "to": {"strategy": "round_robin", "team": team}},
        ],
    })
}

async fn setup(store: Arc<dyn Store>) -> (Desk, Actor, ItemTypeId, UserId) {
    let desk = Desk::new(
        store,
        Arc::new(FixedClock(chrono::Utc::now())),
        Arc::new(SequentialIds::default()),
        Limits::default(),
    );
    let boot = Actor::server_admin(WorkspaceId(uuid::Uuid::nil()));
    let ws = desk.execute(&boot, &CreateWorkspace { name: "Bench".into() }).await.expect("workspace");
    let admin = Actor::server_admin(ws.id);
    let t: CreateItemType = serde_json::from_value(json!({
        "name": "IT support", "kind": "ticket",
        "fields": [{"key": "category", "label": "Category", "kind": "choice",
                    "rules": {"options": ["Hardware", "Software"]}}],
    }))
    .expect("item type");
    let t = desk.execute(&admin, &t).await.expect("item type");
    let agent: commands::CreateUser =
        serde_json::from_value(json!({"name": "Ana", "email": "ana@desk.example", "role": "agent"}))
            .expect("user");
    let agent = desk.execute(&admin, &agent).await.expect("agent").id;
    let carla: commands::CreateUser =
        serde_json::from_value(json!({"name": "Carla", "email": "carla@clinic.example", "role": "customer"}))
            .expect("user");
    let carla = desk.execute(&admin, &carla).await.expect("customer").id;
    let team: commands::CreateTeam =
        serde_json::from_value(json!({"name": "Hardware", "members": [agent]})).expect("team");
    let team = desk.execute(&admin, &team).await.expect("team").id;
    for i in 0..RULES {
        let rule: CreateRule = serde_json::from_value(rule_json(i, team)).expect("rule");
        desk.execute(&admin, &rule).await.expect("create rule");
    }
    (desk, admin, t.id, carla)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> = Arc::new(
            tandem_storage_sqlite::SqliteStore::open(dir.path().join("bench.db"), Default::default())
                .expect("sqlite"),
        );
        let (desk, admin, item_type, carla) = setup(store.clone()).await;

        // One item-created change set, as `CreateItem::decide` makes it.
        let mut create = CreateItem::new(item_type, "Printer jammed");
        create.description = "Error 4711 on the display, paper tray grinding".into();
        create.requester = Some(carla);
        create.custom = BTreeMap::from([("category".to_string(), json!("Hardware"))]);
        let created = desk.execute(&admin, &create).await.expect("item");
        let mut changes = ChangeSet::new(admin.workspace_id, admin.reference(), desk.now());
        changes
            .update(Record::Item(Item { version: created.version + 1, ..created.clone() }), created.version);
        changes.event(
            Some(created.id),
            EventData::ItemCreated {
                item_type,
                kind: ItemKind::Ticket,
                title: created.title.clone(),
                status: created.status.clone(),
                requester: Some(carla),
                channel: Channel::Api,
            },
        );
        let world = automation::load_world(store.as_ref(), admin.workspace_id, &changes, &[])
            .await
            .expect("load")
            .expect("rules");
        assert_eq!(world.rules.len(), RULES);
        let rules: &[Rule] = &world.rules;
        let matching = rules.iter().filter(|r| r.name.ends_with("00") || r.name == "Rule 0").count();

        // The pure engine: evaluate 1,000 rules against the event and apply the matches.
        let ids = SequentialIds::default();
        let limits = Limits::default();
        let env = Env { now: desk.now(), ids: &ids, limits: &limits };
        let mut samples = Vec::new();
        let mut fired = 0;
        for _ in 0..2_000 {
            let mut c = changes.clone();
            let start = Instant::now();
            let runs = Engine::new(&world, &env, limits.automations, &c).run(&mut c);
            samples.push(start.elapsed());
            fired = runs.len();
        }
        println!("{RULES} rules, {matching} of them matching the event; {fired} firings per evaluation");
        report("engine: 1,000 rules against one item.created event", samples);

        // Loading what the rules need from SQLite (every item command pays this).
        let mut samples = Vec::new();
        for _ in 0..200 {
            let start = Instant::now();
            let w = automation::load_world(store.as_ref(), admin.workspace_id, &changes, &[])
                .await
                .expect("load");
            samples.push(start.elapsed());
            assert!(w.is_some());
        }
        report("sqlite: load 1,000 rules and their world", samples);

        // End to end: create an item through Desk with 1,000 rules in the workspace.
        let mut samples = Vec::new();
        for n in 0..200 {
            let mut cmd = create.clone();
            cmd.title = format!("Printer jammed ({n})");
            let start = Instant::now();
            desk.execute(&admin, &cmd).await.expect("create");
            samples.push(start.elapsed());
        }
        report("sqlite: Desk create item with 1,000 rules (durable commit)", samples);
    });
}
