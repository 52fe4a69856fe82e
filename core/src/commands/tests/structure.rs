//! Workspaces, portfolios, projects and folders.

use super::fixture::{Who::*, *};
use crate::commands::*;
use crate::hierarchy::{Folder, Portfolio, Project, Workspace};
use crate::item::ItemKind;
use crate::workflow::Workflow;

#[test]
fn create_workspace() {
    let w = World::new();
    let cmd = |name: &str| CreateWorkspace { name: name.into() };
    table(
        &w,
        |_, _| (),
        vec![
            (
                ServerAdmin,
                cmd("  Clinic Federation "),
                ok(
                    &["+workspace:new1", "+item_type:new2", "+item_type:new3"],
                    &["record.created", "record.created", "record.created"],
                )
                .then(|_, ws: &Workspace| {
                    assert_eq!(ws.name, "Clinic Federation");
                    assert_eq!((ws.id.0.as_u128(), ws.version), (1, 1));
                }),
            ),
            (ServerAdmin, cmd(" "), invalid("name", "empty")),
            (ServerAdmin, cmd(&"x".repeat(121)), invalid("name", "at most 120")),
            (Admin, cmd("Mine"), forbidden("server administrator")),
            (System, cmd("Mine"), forbidden("server administrator")),
        ],
    );
}

/// The new workspace comes with a ticket type and a task type on the default workflow, both in
/// the new workspace (not the bootstrap one the server admin acted from).
#[test]
fn create_workspace_makes_the_default_item_types() {
    let w = World::new();
    let decided = run(&CreateWorkspace { name: "New".into() }, &w.actor(ServerAdmin), ()).unwrap();
    let types: Vec<_> = decided
        .changes
        .writes
        .iter()
        .filter_map(|write| match write {
            crate::Write::Put { record: crate::Record::ItemType(t), .. } => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(
        types.iter().map(|t| (t.name.as_str(), t.kind)).collect::<Vec<_>>(),
        [("Ticket", ItemKind::Ticket), ("Task", ItemKind::Task)]
    );
    for t in types {
        assert_eq!(t.workspace_id, decided.output.id);
        assert_eq!(t.workflow, Workflow::default_workflow());
        assert!(t.fields.is_empty());
    }
    assert_eq!(decided.changes.workspace_id, decided.output.id);
}

#[test]
fn rename_workspace() {
    let w = World::new();
    let cmd = |name: &str| RenameWorkspace { name: name.into() };
    table(
        &w,
        |w, _| w.ws.clone(),
        vec![
            (
                Admin,
                cmd("Federation of Clinics"),
                ok(&["workspace:ws@1"], &["record.updated"]).then(|_, ws: &Workspace| {
                    assert_eq!((ws.name.as_str(), ws.version), ("Federation of Clinics", 2));
                }),
            ),
            (ServerAdmin, cmd("Renamed"), ok(&["workspace:ws@1"], &["record.updated"])),
            (Admin, cmd("\u{7}bell"), invalid("name", "control")),
            (Manager, cmd("Mine"), forbidden("only administrators")),
            (Agent, cmd("Mine"), forbidden("agents")),
            (CustomerA, cmd("Mine"), forbidden("customers")),
            (AdminRead, cmd("Mine"), forbidden("scope")),
        ],
    );
}

#[test]
fn create_portfolio() {
    let w = World::new();
    let cmd = |name: &str, parent| CreatePortfolio { name: name.into(), parent };
    table(
        &w,
        |w, c: &CreatePortfolio| c.parent.and_then(|p| w.get(p)),
        vec![
            (
                Manager,
                cmd(" South ", Some(w.portfolio.id)),
                ok(&["+portfolio:new1"], &["record.created"]).then(|w, p: &Portfolio| {
                    assert_eq!((p.name.as_str(), p.parent, p.version), ("South", Some(w.portfolio.id), 1));
                }),
            ),
            (Admin, cmd("Top", None), ok(&["+portfolio:new1"], &["record.created"])),
            (Manager, cmd("", None), invalid("name", "empty")),
            (Agent, cmd("Mine", None), forbidden("agents")),
            (Collaborator, cmd("Mine", None), forbidden("collaborators")),
            (CustomerA, cmd("Mine", None), forbidden("customers")),
            (Disabled, cmd("Mine", None), forbidden("disabled")),
            (AgentWrite, cmd("Mine", None), forbidden("scope")),
        ],
    );
}

#[test]
fn update_portfolio() {
    let w = World::new();
    let rename = |id, name: &str| UpdatePortfolio {
        id,
        patch: PortfolioPatch { name: Some(name.into()), parent: None },
    };
    let reparent =
        |id, parent| UpdatePortfolio { id, patch: PortfolioPatch { name: None, parent: Some(parent) } };
    table(
        &w,
        |w, c: &UpdatePortfolio| {
            let all = if c.patch.parent.is_some() { w.portfolios() } else { Vec::new() };
            (w.get(c.id).unwrap(), all)
        },
        vec![
            (
                Manager,
                rename(w.portfolio.id, "Clinics EU"),
                ok(&["portfolio:portfolio@1"], &["record.updated"]).then(|_, p: &Portfolio| {
                    assert_eq!((p.name.as_str(), p.version), ("Clinics EU", 2));
                }),
            ),
            (
                Manager,
                reparent(w.empty_portfolio.id, Some(w.sub_portfolio.id)),
                ok(&["portfolio:empty_portfolio@1"], &["record.updated"])
                    .then(|w, p| assert_eq!(p.parent, Some(w.sub_portfolio.id))),
            ),
            (
                Manager,
                reparent(w.sub_portfolio.id, None),
                ok(&["portfolio:sub_portfolio@1"], &["record.updated"])
                    .then(|_, p| assert_eq!(p.parent, None)),
            ),
            (Manager, reparent(w.portfolio.id, Some(w.sub_portfolio.id)), invalid("parent", "inside itself")),
            (Manager, reparent(w.portfolio.id, Some(w.portfolio.id)), invalid("parent", "inside itself")),
            (
                Manager,
                reparent(w.portfolio.id, Some(crate::PortfolioId(uuid::Uuid::nil()))),
                not_found("portfolio"),
            ),
            (Manager, rename(w.portfolio.id, " "), invalid("name", "empty")),
            (Agent, rename(w.portfolio.id, "Mine"), forbidden("agents")),
            (Collaborator, rename(w.portfolio.id, "Mine"), forbidden("collaborators")),
        ],
    );
}

#[test]
fn delete_portfolio() {
    let w = World::new();
    let cmd = |id| DeletePortfolio { id };
    table(
        &w,
        |w, c: &DeletePortfolio| {
            let children = w.portfolios().iter().any(|p| p.parent == Some(c.id));
            let projects =
                [&w.project, &w.other_project, &w.archived_project].iter().any(|p| p.portfolio == Some(c.id));
            (w.get(c.id).unwrap(), children, projects)
        },
        vec![
            (Manager, cmd(w.empty_portfolio.id), ok(&["-portfolio:empty_portfolio@1"], &["record.deleted"])),
            (Manager, cmd(w.portfolio.id), conflict("still holds portfolios")),
            (Manager, cmd(w.sub_portfolio.id), conflict("still holds projects")),
            (Agent, cmd(w.empty_portfolio.id), forbidden("agents")),
            (AdminRead, cmd(w.empty_portfolio.id), forbidden("scope")),
        ],
    );
}

#[test]
fn create_project() {
    let w = World::new();
    let cmd = |name: &str, description: &str, portfolio| CreateProject {
        name: name.into(),
        description: description.into(),
        portfolio,
    };
    table(
        &w,
        |w, c: &CreateProject| c.portfolio.and_then(|p| w.get(p)),
        vec![
            (
                Manager,
                cmd(" Migration ", "  Move the clinics.  ", Some(w.portfolio.id)),
                ok(&["+project:new1"], &["record.created"]).then(|w, p: &Project| {
                    assert_eq!(p.name, "Migration");
                    assert_eq!(p.description, "Move the clinics.");
                    assert_eq!((p.portfolio, p.archived), (Some(w.portfolio.id), false));
                }),
            ),
            (Admin, cmd("Loose", "", None), ok(&["+project:new1"], &["record.created"])),
            (Manager, cmd("", "", None), invalid("name", "empty")),
            (Manager, cmd("Long", &"x".repeat(100_001), None), invalid("description", "at most")),
            (Agent, cmd("Mine", "", None), forbidden("agents")),
            (CustomerA, cmd("Mine", "", None), forbidden("customers")),
        ],
    );
}

#[test]
fn update_project() {
    let w = World::new();
    let cmd = |id, patch| UpdateProject { id, patch };
    table(
        &w,
        |w, c: &UpdateProject| w.get::<Project>(c.id).unwrap(),
        vec![
            (
                Manager,
                cmd(w.project.id, ProjectPatch { archived: Some(true), ..Default::default() }),
                ok(&["project:project@1"], &["record.updated"]).then(|_, p: &Project| assert!(p.archived)),
            ),
            (
                Manager,
                cmd(w.archived_project.id, ProjectPatch { archived: Some(false), ..Default::default() }),
                ok(&["project:archived_project@1"], &["record.updated"]).then(|_, p| assert!(!p.archived)),
            ),
            (
                Admin,
                cmd(w.project.id, ProjectPatch { portfolio: Some(None), ..Default::default() }),
                ok(&["project:project@1"], &["record.updated"]).then(|_, p| assert_eq!(p.portfolio, None)),
            ),
            (
                Manager,
                cmd(w.project.id, ProjectPatch { name: Some("Rollout 2".into()), ..Default::default() }),
                ok(&["project:project@1"], &["record.updated"]).then(|_, p| assert_eq!(p.name, "Rollout 2")),
            ),
            (
                Manager,
                cmd(w.project.id, ProjectPatch { name: Some("".into()), ..Default::default() }),
                invalid("name", "empty"),
            ),
            (
                Manager,
                cmd(
                    w.project.id,
                    ProjectPatch { description: Some("x".repeat(100_001)), ..Default::default() },
                ),
                invalid("description", "at most"),
            ),
            (Collaborator, cmd(w.project.id, ProjectPatch::default()), forbidden("collaborators")),
            (Agent, cmd(w.project.id, ProjectPatch::default()), forbidden("agents")),
        ],
    );
}

/// The `RecordUpdated` event names exactly the fields that changed.
#[test]
fn updates_record_what_changed() {
    let w = World::new();
    let patch = ProjectPatch { archived: Some(true), name: Some("Rollout".into()), ..Default::default() };
    let decided =
        run(&UpdateProject { id: w.project.id, patch }, &w.actor(Manager), w.project.clone()).unwrap();
    let crate::EventData::RecordUpdated { changes, .. } = &decided.changes.events[0].data else {
        panic!("{:?}", decided.changes.events)
    };
    assert_eq!(changes.iter().map(|c| c.field.as_str()).collect::<Vec<_>>(), ["archived"]);
}

#[test]
fn create_folder() {
    let w = World::new();
    let cmd = |project, name: &str, parent| CreateFolder { project, name: name.into(), parent };
    table(
        &w,
        |w, c: &CreateFolder| (w.get(c.project).unwrap(), c.parent.and_then(|f| w.get(f))),
        vec![
            (
                Manager,
                cmd(w.project.id, "Phase 3", None),
                ok(&["+folder:new1"], &["record.created"]).then(|w, f: &Folder| {
                    assert_eq!((f.project, f.parent, f.name.as_str()), (w.project.id, None, "Phase 3"));
                }),
            ),
            (
                Manager,
                cmd(w.project.id, "Week 2", Some(w.folder.id)),
                ok(&["+folder:new1"], &["record.created"])
                    .then(|w, f| assert_eq!(f.parent, Some(w.folder.id))),
            ),
            (
                Manager,
                cmd(w.other_project.id, "Stray", Some(w.folder.id)),
                invalid("parent", "another project"),
            ),
            (Manager, cmd(w.project.id, " ", None), invalid("name", "empty")),
            (Agent, cmd(w.project.id, "Mine", None), forbidden("agents")),
        ],
    );
}

#[test]
fn update_folder() {
    let w = World::new();
    let rename =
        |id, name: &str| UpdateFolder { id, patch: FolderPatch { name: Some(name.into()), parent: None } };
    let reparent = |id, parent| UpdateFolder { id, patch: FolderPatch { name: None, parent: Some(parent) } };
    table(
        &w,
        |w, c: &UpdateFolder| {
            let f: Folder = w.get(c.id).unwrap();
            let siblings = w.folders().into_iter().filter(|x| x.project == f.project).collect();
            (f, siblings)
        },
        vec![
            (
                Manager,
                rename(w.folder.id, "Phase one"),
                ok(&["folder:folder@1"], &["record.updated"])
                    .then(|_, f: &Folder| assert_eq!(f.name, "Phase one")),
            ),
            (
                Manager,
                reparent(w.empty_folder.id, Some(w.subfolder.id)),
                ok(&["folder:empty_folder@1"], &["record.updated"])
                    .then(|w, f| assert_eq!(f.parent, Some(w.subfolder.id))),
            ),
            (
                Manager,
                reparent(w.subfolder.id, None),
                ok(&["folder:subfolder@1"], &["record.updated"]).then(|_, f| assert_eq!(f.parent, None)),
            ),
            (Manager, reparent(w.folder.id, Some(w.subfolder.id)), invalid("parent", "inside itself")),
            (Manager, reparent(w.folder.id, Some(w.folder.id)), invalid("parent", "inside itself")),
            (
                Manager,
                reparent(w.folder.id, Some(w.other_folder.id)),
                invalid("parent", "no such folder in this project"),
            ),
            (Manager, rename(w.folder.id, ""), invalid("name", "empty")),
            (Collaborator, rename(w.folder.id, "Mine"), forbidden("collaborators")),
        ],
    );
}

#[test]
fn delete_folder() {
    let w = World::new();
    let cmd = |id| DeleteFolder { id };
    table(
        &w,
        |w, c: &DeleteFolder| {
            let children = w.folders().iter().any(|f| f.parent == Some(c.id));
            let items = w.items().iter().any(|i| i.folder == Some(c.id));
            (w.get(c.id).unwrap(), children, items)
        },
        vec![
            (Manager, cmd(w.empty_folder.id), ok(&["-folder:empty_folder@1"], &["record.deleted"])),
            (Admin, cmd(w.other_folder.id), ok(&["-folder:other_folder@1"], &["record.deleted"])),
            (Manager, cmd(w.folder.id), conflict("still holds folders")),
            (Manager, cmd(w.subfolder.id), conflict("still holds items")),
            (Agent, cmd(w.empty_folder.id), forbidden("agents")),
        ],
    );
}
