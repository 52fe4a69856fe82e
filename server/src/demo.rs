//! `tandem serve --demo`: a realistic workspace to try Tandem with, built only through `Desk`
//! commands (so it exercises the same rules as the API). Inspired by the use cases: an IT desk
//! for a pond-supply chain's stores, a marketing team serving hearing clinics, and project tasks
//! for both.
//!
//! Seeding is idempotent: a workspace named [`DEMO_WORKSPACE`] means it happened already.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use serde_json::{Value, json};
use tandem_core::commands::{
    AddAttachment, ChangeFollowers, ConfigurePortal, ConvertItem, CreateFolder, CreateItem, CreateItemType,
    CreateOrganization, CreatePortfolio, CreateProject, CreateTeam, CreateUser, CreateWorkspace,
    EditWorkflow, IssueToken, ItemPatch, LinkItems, NewFile, PostMessage, SetAssignees, SetProjectMember,
    TransitionItem, TransitionTo, UpdateItem, WorkflowEdit,
};
use tandem_core::conversation::sha256_hex;
use tandem_core::{
    Actor, Assignee, Body, Channel, Desk, FieldDef, FieldKind, FieldRules, Item, ItemKind, ItemRef, ItemType,
    LinkKind, PortalVisibility, Priority, ProjectRole, Role, Status, StatusCategory, TokenScope, User,
    Visibility, Workflow, WorkflowDefaults, Workspace, WorkspaceId,
};

pub const DEMO_WORKSPACE: &str = "Tandem demo";

/// A token made for a demo user, to try the API as someone other than the administrator.
#[derive(Debug, Clone)]
pub struct DemoLogin {
    pub name: String,
    pub role: Role,
    pub secret: String,
}

#[derive(Debug, Clone)]
pub struct Seeded {
    pub workspace: Workspace,
    pub items: usize,
    pub logins: Vec<DemoLogin>,
}

fn field(key: &str, label: &str, kind: FieldKind) -> FieldDef {
    FieldDef {
        key: key.into(),
        label: label.into(),
        kind,
        required: false,
        help: None,
        internal: false,
        rules: FieldRules::default(),
    }
}

fn choice(key: &str, label: &str, kind: FieldKind, options: &[&str]) -> FieldDef {
    FieldDef {
        rules: FieldRules { options: options.iter().map(|o| o.to_string()).collect(), ..Default::default() },
        ..field(key, label, kind)
    }
}

fn custom(values: &[(&str, Value)]) -> BTreeMap<String, Value> {
    values.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn project_workflow() -> Workflow {
    let s = |key: &str, name: &str, category| Status {
        key: key.into(),
        name: name.into(),
        category,
        public_label: None,
    };
    Workflow {
        statuses: vec![
            s("backlog", "Backlog", StatusCategory::New),
            s("ready", "Ready", StatusCategory::Open),
            s("doing", "In progress", StatusCategory::InProgress),
            s("blocked", "Blocked", StatusCategory::Waiting),
            s("done", "Done", StatusCategory::Resolved),
            s("cancelled", "Cancelled", StatusCategory::Closed),
        ],
        transitions: None,
        defaults: WorkflowDefaults {
            create: "backlog".into(),
            customer_reply: "ready".into(),
            close: "done".into(),
        },
    }
}

/// The demo's cast: `(name, email, handle, role)`. Customers come from two organisations'
/// email domains.
const PEOPLE: &[(&str, &str, &str, Role)] = &[
    ("Alex Admin", "alex@tandem-demo.example", "alex", Role::Admin),
    ("Morgan Lee", "morgan@tandem-demo.example", "morgan", Role::Manager),
    ("Ana Silva", "ana@tandem-demo.example", "ana", Role::Agent),
    ("Ben Okafor", "ben@tandem-demo.example", "ben", Role::Agent),
    ("Chris Janssen", "chris@tandem-demo.example", "chris", Role::Collaborator),
    ("Tom Becker", "tom@pondsupply.example", "tom", Role::Customer),
    ("Sara Nguyen", "sara@pondsupply.example", "sara", Role::Customer),
    ("Eva de Vries", "eva@hearwell.example", "eva", Role::Customer),
    ("Jan Bakker", "jan@hearwell.example", "jan", Role::Customer),
];

struct Demo<'a> {
    desk: &'a Desk,
    admin: Actor,
    users: BTreeMap<&'static str, User>,
}

impl Demo<'_> {
    fn as_user(&self, handle: &str) -> anyhow::Result<Actor> {
        let user = self.users.get(handle).with_context(|| format!("no demo user @{handle}"))?;
        Ok(Actor::user(user.clone(), TokenScope::Admin))
    }

    fn id(&self, handle: &str) -> anyhow::Result<tandem_core::UserId> {
        Ok(self.users.get(handle).with_context(|| format!("no demo user @{handle}"))?.id)
    }

    async fn say(&self, who: &str, item: &Item, visibility: Visibility, text: &str) -> anyhow::Result<Item> {
        let customer = self.users.get(who).is_some_and(|u| !u.role.is_staff());
        let channel = if customer { Channel::Portal } else { Channel::Api };
        let cmd = PostMessage { channel, ..PostMessage::new(item.id, visibility, Body::Text(text.into())) };
        Ok(self.desk.execute(&self.as_user(who)?, &cmd).await?.item)
    }

    async fn move_to(&self, who: &str, item: &Item, status: &str) -> anyhow::Result<Item> {
        let cmd = TransitionItem {
            item: ItemRef::Id(item.id),
            to: TransitionTo::Status(status.into()),
            version: None,
        };
        Ok(self.desk.execute(&self.as_user(who)?, &cmd).await?)
    }

    async fn assign(&self, who: &str, item: &Item, assignees: Vec<Assignee>) -> anyhow::Result<Item> {
        let cmd = SetAssignees { item: ItemRef::Id(item.id), assignees, version: None };
        Ok(self.desk.execute(&self.as_user(who)?, &cmd).await?)
    }

    async fn file_into(&self, item: &Item, patch: ItemPatch) -> anyhow::Result<Item> {
        Ok(self.desk.execute(&self.admin, &UpdateItem { item: ItemRef::Id(item.id), patch }).await?)
    }

    /// A request a customer submits through the portal.
    async fn request(
        &self,
        who: &str,
        t: &ItemType,
        title: &str,
        description: &str,
        values: &[(&str, Value)],
    ) -> anyhow::Result<Item> {
        let cmd = CreateItem {
            description: description.into(),
            custom: custom(values),
            channel: Channel::Portal,
            ..CreateItem::new(t.id, title)
        };
        Ok(self.desk.execute(&self.as_user(who)?, &cmd).await?)
    }
}

/// Seeds the demo workspace unless it exists. Returns what was made, or `None` when it was
/// there already.
pub async fn seed(desk: &Desk) -> anyhow::Result<Option<Seeded>> {
    let boot = Actor::server_admin(WorkspaceId(uuid::Uuid::nil()));
    if desk.workspaces(&boot).await?.iter().any(|w| w.name == DEMO_WORKSPACE) {
        return Ok(None);
    }
    let workspace = desk.execute(&boot, &CreateWorkspace { name: DEMO_WORKSPACE.into() }).await?;
    let admin = Actor::server_admin(workspace.id);

    let mut users = BTreeMap::new();
    for &(name, email, handle, role) in PEOPLE {
        let cmd =
            CreateUser { name: name.into(), email: Some(email.into()), handle: Some(handle.into()), role };
        users.insert(handle, desk.execute(&admin, &cmd).await?);
    }
    let demo = Demo { desk, admin: admin.clone(), users };

    let hardware = desk
        .execute(
            &admin,
            &CreateTeam { name: "Hardware".into(), members: vec![demo.id("ana")?, demo.id("ben")?] },
        )
        .await?;
    let marketing = desk
        .execute(
            &admin,
            &CreateTeam { name: "Marketing".into(), members: vec![demo.id("morgan")?, demo.id("chris")?] },
        )
        .await?;

    // Structure: a portfolio with two projects, one of them with nested folders.
    let operations =
        desk.execute(&admin, &CreatePortfolio { name: "Operations".into(), parent: None }).await?;
    let infra = desk
        .execute(
            &admin,
            &CreateProject {
                name: "IT infrastructure".into(),
                description: "Store and head-office hardware, network and software rollouts.".into(),
                portfolio: Some(operations.id),
            },
        )
        .await?;
    let campaigns = desk
        .execute(
            &admin,
            &CreateProject {
                name: "Clinic marketing 2026".into(),
                description: "Requests from the clinics: print, social, web and review campaigns.".into(),
                portfolio: Some(operations.id),
            },
        )
        .await?;
    // Organizations formed from the customers' email domains (the supplier's sites, the clinic
    // chain): existing contacts join as the domain is added. The portal shows each customer
    // their organization's requests; Chris collaborates on the marketing project only.
    for (name, domain) in
        [("Pond Supply sites", "pondsupply.example"), ("Hearwell clinics", "hearwell.example")]
    {
        let cmd = CreateOrganization { name: name.into(), domains: vec![domain.into()] };
        desk.execute(&admin, &cmd).await?;
    }
    desk.execute(
        &admin,
        &ConfigurePortal { visibility: Some(PortalVisibility::Organization), ..ConfigurePortal::default() },
    )
    .await?;
    desk.execute(
        &admin,
        &SetProjectMember { project: campaigns.id, user: demo.id("chris")?, role: ProjectRole::Member },
    )
    .await?;
    desk.execute(
        &admin,
        &SetProjectMember { project: infra.id, user: demo.id("morgan")?, role: ProjectRole::Manager },
    )
    .await?;
    let folder = |name: &str, parent| CreateFolder { project: infra.id, name: name.into(), parent };
    let hardware_folder = desk.execute(&admin, &folder("Hardware", None)).await?;
    desk.execute(&admin, &folder("Printers", Some(hardware_folder.id))).await?;
    let network_folder = desk.execute(&admin, &folder("Network", None)).await?;

    // Item types with their own fields and workflows.
    let stores = ["Head office", "Toronto store", "Vancouver store", "Seattle store", "Portland store"];
    let it = desk
        .execute(
            &admin,
            &CreateItemType {
                name: "IT support".into(),
                kind: ItemKind::Ticket,
                description: "Hardware, software and network problems at the stores and the head office."
                    .into(),
                workflow: None,
                fields: vec![
                    FieldDef { required: true, ..choice("location", "Location", FieldKind::Choice, &stores) },
                    field("device", "Device", FieldKind::Text),
                    FieldDef {
                        rules: FieldRules { min: Some(1.0), ..Default::default() },
                        ..field("affected_users", "Affected users", FieldKind::Number)
                    },
                    FieldDef { internal: true, ..field("asset_tag", "Asset tag", FieldKind::Text) },
                ],
            },
        )
        .await?;
    let edit = WorkflowEdit::AddStatus {
        name: "Waiting for parts".into(),
        category: StatusCategory::Waiting,
        position: Some(3),
    };
    let it = desk.execute(&admin, &EditWorkflow { item_type: it.id, edit }).await?;
    let clinics = ["Amsterdam Centrum", "Utrecht Oost", "Rotterdam Zuid", "Den Haag", "Groningen"];
    let marketing_request = desk
        .execute(
            &admin,
            &CreateItemType {
                name: "Marketing request".into(),
                kind: ItemKind::Ticket,
                description: "Print, social, web and review campaigns for a clinic.".into(),
                workflow: None,
                fields: vec![
                    FieldDef {
                        required: true,
                        ..choice("clinic", "Clinic location", FieldKind::Choice, &clinics)
                    },
                    field("due_date", "Due date", FieldKind::Date),
                    choice(
                        "channels",
                        "Channels",
                        FieldKind::MultiChoice,
                        &["Email", "Social media", "Print", "Website"],
                    ),
                    FieldDef {
                        rules: FieldRules { min: Some(0.0), ..Default::default() },
                        ..field("budget", "Budget (EUR)", FieldKind::Number)
                    },
                    FieldDef { required: true, ..field("brief", "Brief", FieldKind::LongText) },
                ],
            },
        )
        .await?;
    let task_type = desk
        .execute(
            &admin,
            &CreateItemType {
                name: "Project task".into(),
                kind: ItemKind::Task,
                description: "Planned work inside a project.".into(),
                workflow: Some(project_workflow()),
                fields: vec![
                    FieldDef {
                        rules: FieldRules { min: Some(0.0), max: Some(100.0), ..Default::default() },
                        ..field("points", "Agile points", FieldKind::Number)
                    },
                    field("planned_finish", "Planned finish", FieldKind::Date),
                ],
            },
        )
        .await?;

    let mut items = 0;

    // 1. An urgent store problem: assigned to a team, public and internal conversation, a
    //    mention, two status changes.
    let printer = demo
        .request(
            "tom",
            &it,
            "Receipt printer prints blank pages",
            "Since this morning the receipt printer at till 2 feeds paper but prints nothing.",
            &[
                ("location", json!("Toronto store")),
                ("device", json!("Epson TM-T88VI")),
                ("affected_users", json!(3)),
            ],
        )
        .await?;
    items += 1;
    demo.file_into(&printer, ItemPatch { priority: Some(Priority::Urgent), ..Default::default() }).await?;
    demo.assign("ana", &printer, vec![Assignee::Team(hardware.id), Assignee::User(demo.id("ana")?)]).await?;
    demo.say("ana", &printer, Visibility::Public, "Hi Tom, thanks for reporting. Could you check that the paper roll is inserted with the shiny side facing the print head?").await?;
    demo.say(
        "ana",
        &printer,
        Visibility::Internal,
        "@ben do we still have a spare TM-T88 in the Seattle stock? This may be the thermal head.",
    )
    .await?;
    demo.move_to("ana", &printer, "execution").await?;
    demo.say(
        "tom",
        &printer,
        Visibility::Public,
        "The roll was the right way round. Still blank, also after a restart.",
    )
    .await?;
    demo.say(
        "ben",
        &printer,
        Visibility::Internal,
        "One spare left in Seattle, shipping it to Toronto today.",
    )
    .await?;
    demo.move_to("ana", &printer, "waiting_for_parts").await?;

    // 2. The requester's reply moves a waiting ticket back into the queue.
    let vpn = demo
        .request(
            "sara",
            &it,
            "VPN disconnects every 10 minutes",
            "The store laptop loses the VPN connection every ten minutes, so the stock app logs out.",
            &[
                ("location", json!("Seattle store")),
                ("device", json!("Store laptop")),
                ("affected_users", json!(1)),
            ],
        )
        .await?;
    items += 1;
    demo.assign("ben", &vpn, vec![Assignee::User(demo.id("ben")?)]).await?;
    demo.say(
        "ben",
        &vpn,
        Visibility::Public,
        "Hi Sara, could you send a screenshot of the VPN client's log window after the next disconnect?",
    )
    .await?;
    demo.move_to("ben", &vpn, "waiting").await?;
    demo.say("sara", &vpn, Visibility::Public, "Here you go: it says 'DPD timeout' every time.").await?;

    // 3. A ticket that turned out to be project work: converted into a task, filed in a folder.
    let laptop = demo
        .request(
            "tom",
            &it,
            "New laptop for the Toronto store manager",
            "Our manager's laptop is seven years old and cannot run the new scheduling app.",
            &[("location", json!("Toronto store")), ("affected_users", json!(1))],
        )
        .await?;
    items += 1;
    demo.say(
        "ana",
        &laptop,
        Visibility::Public,
        "We'll plan this as part of the store hardware refresh; you can follow progress here.",
    )
    .await?;
    let laptop = demo.move_to("ana", &laptop, "execution").await?;
    let convert = ConvertItem {
        item: ItemRef::Id(laptop.id),
        to_type: task_type.id,
        custom: custom(&[("points", json!(3))]),
        version: Some(laptop.version),
    };
    let laptop = desk.execute(&demo.as_user("morgan")?, &convert).await?;
    demo.file_into(
        &laptop,
        ItemPatch {
            project: Some(Some(infra.id)),
            folder: Some(Some(hardware_folder.id)),
            ..Default::default()
        },
    )
    .await?;

    // 4. A marketing request through the portal form, worked on internally with a draft file.
    let flyer = demo
        .request(
            "eva",
            &marketing_request,
            "Open day flyer for Utrecht Oost",
            "We hold an open day on 20 May and would like a flyer for the waiting room and the local paper.",
            &[
                ("clinic", json!("Utrecht Oost")),
                ("due_date", json!("2026-05-08")),
                ("channels", json!(["Print", "Social media"])),
                ("budget", json!(1200)),
                (
                    "brief",
                    json!("A5 flyer, friendly tone, free hearing test during the open day, map on the back."),
                ),
            ],
        )
        .await?;
    items += 1;
    demo.file_into(&flyer, ItemPatch { project: Some(Some(campaigns.id)), ..Default::default() }).await?;
    demo.assign("morgan", &flyer, vec![Assignee::Team(marketing.id)]).await?;
    demo.say(
        "morgan",
        &flyer,
        Visibility::Internal,
        "@chris could you draft two versions, one with the new photo set?",
    )
    .await?;
    let draft = NewFile {
        filename: "open-day-flyer-draft.txt".into(),
        content_type: "text/plain".into(),
        bytes: Arc::from(&b"Open day at Utrecht Oost - 20 May - free hearing test. (draft 1)\n"[..]),
    };
    desk.execute(&demo.as_user("chris")?, &AddAttachment { item: ItemRef::Id(flyer.id), file: draft })
        .await?;
    demo.say(
        "chris",
        &flyer,
        Visibility::Internal,
        "First draft attached; the photo version follows tomorrow.",
    )
    .await?;
    demo.move_to("morgan", &flyer, "execution").await?;

    // 5. Another clinic, same organisation.
    let reviews = demo
        .request(
            "jan",
            &marketing_request,
            "Google reviews campaign for Rotterdam Zuid",
            "We would like more patients to leave a review after their fitting appointment.",
            &[
                ("clinic", json!("Rotterdam Zuid")),
                ("channels", json!(["Email", "Website"])),
                ("budget", json!(400)),
                ("brief", json!("Follow-up email one week after a fitting with a short review link.")),
            ],
        )
        .await?;
    items += 1;
    demo.file_into(&reviews, ItemPatch { project: Some(Some(campaigns.id)), ..Default::default() }).await?;
    demo.assign("morgan", &reviews, vec![Assignee::User(demo.id("morgan")?)]).await?;
    demo.say(
        "morgan",
        &reviews,
        Visibility::Public,
        "Thanks Jan! We'll reuse the template from Amsterdam Centrum; expect a preview next week.",
    )
    .await?;

    // 6. Delivered.
    let banner = demo
        .request(
            "jan",
            &marketing_request,
            "Website banner for hearing test week",
            "A banner for the hearing test week in October.",
            &[
                ("clinic", json!("Den Haag")),
                ("due_date", json!("2026-09-25")),
                ("channels", json!(["Website"])),
                (
                    "brief",
                    json!(
                        "Wide banner for the clinic page, blue palette, call to action 'Book a free test'."
                    ),
                ),
            ],
        )
        .await?;
    items += 1;
    demo.say("morgan", &banner, Visibility::Public, "The banner is live on the Den Haag clinic page.")
        .await?;
    demo.move_to("morgan", &banner, "delivery").await?;

    // 7–9. Project tasks, one nested under another, one blocking another.
    let staff_task = |title: &str, folder, points: i64, assignee: &str| -> anyhow::Result<CreateItem> {
        Ok(CreateItem {
            project: Some(infra.id),
            folder,
            assignees: vec![Assignee::User(demo.id(assignee)?)],
            custom: custom(&[("points", json!(points))]),
            ..CreateItem::new(task_type.id, title)
        })
    };
    let morgan = demo.as_user("morgan")?;
    let switch = desk
        .execute(
            &morgan,
            &CreateItem {
                priority: Some(Priority::High),
                description:
                    "The head-office core switch is end of life; replace it during a weekend window.".into(),
                ..staff_task("Replace the head-office core switch", Some(network_folder.id), 8, "ben")?
            },
        )
        .await?;
    items += 1;
    demo.move_to("ben", &switch, "doing").await?;
    let rollout =
        desk.execute(&morgan, &staff_task("Windows 11 rollout to the stores", None, 13, "ana")?).await?;
    items += 1;
    let toronto = desk
        .execute(
            &morgan,
            &CreateItem {
                parent: Some(rollout.id),
                ..staff_task("Toronto store: upgrade the till PCs", Some(hardware_folder.id), 5, "ana")?
            },
        )
        .await?;
    items += 1;
    desk.execute(
        &morgan,
        &ChangeFollowers { item: ItemRef::Id(toronto.id), add: vec![demo.id("tom")?], remove: vec![] },
    )
    .await?;
    desk.execute(
        &morgan,
        &LinkItems {
            from: ItemRef::Id(switch.id),
            to: ItemRef::Id(rollout.id),
            kind: LinkKind::Blocks,
            dependency: None,
        },
    )
    .await?;

    // 10. Quick fix, closed.
    let mailbox = demo
        .request(
            "sara",
            &it,
            "Password reset for the shared store mailbox",
            "Nobody remembers the password of seattle-store@pondsupply.example.",
            &[("location", json!("Seattle store"))],
        )
        .await?;
    items += 1;
    demo.say(
        "ana",
        &mailbox,
        Visibility::Public,
        "Done: the new password is in the store's password manager.",
    )
    .await?;
    let close = TransitionItem { item: ItemRef::Id(mailbox.id), to: TransitionTo::Close, version: None };
    desk.execute(&demo.as_user("ana")?, &close).await?;

    // Tokens to try the API as different people.
    let mut logins = Vec::new();
    for (handle, scope) in
        [("morgan", TokenScope::Admin), ("ana", TokenScope::Write), ("tom", TokenScope::Write)]
    {
        let user = demo.users.get(handle).with_context(|| format!("no demo user @{handle}"))?;
        let secret = crate::api::new_secret().map_err(|e| anyhow::anyhow!("{}", e.message))?;
        let cmd = IssueToken {
            user: user.id,
            name: "demo".into(),
            scope,
            secret_sha256: sha256_hex(secret.as_bytes()),
        };
        desk.execute(&admin, &cmd).await?;
        logins.push(DemoLogin { name: user.name.clone(), role: user.role, secret });
    }

    Ok(Some(Seeded { workspace, items, logins }))
}
