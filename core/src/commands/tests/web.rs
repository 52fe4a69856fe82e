use std::sync::Arc;

use serde_json::json;

use super::fixture::*;
use crate::commands::web::FormState;
use crate::commands::{Guest, NewFile, SubmitForm};
use crate::item::{Channel, Item};
use crate::membership::{PortalSettings, WebForm};
use crate::people::Role;

use Who::*;

/// Forms for the purchase type (attachments allowed) and the task type (a survey without
/// attachments); guests may submit when `open`.
fn settings(w: &World, open: bool) -> PortalSettings {
    let mut s = PortalSettings::empty(w.ws.id);
    s.open_forms = open;
    s.forms.insert(w.purchase.id, WebForm { attachments: true, ..WebForm::default() });
    s.forms
        .insert(w.task.id, WebForm { title: Some("Team survey".into()), survey: true, ..WebForm::default() });
    s
}

fn state(w: &World, c: &SubmitForm, open: bool) -> FormState {
    let known = c.guest.as_ref().and_then(|g| {
        w.users().into_iter().find(|u| u.email.as_deref() == Some(g.email.trim().to_lowercase().as_str()))
    });
    FormState {
        settings: settings(w, open),
        item_type: [&w.ticket, &w.task, &w.purchase].into_iter().find(|t| t.id == c.item_type).cloned(),
        all_types: vec![w.ticket.id, w.task.id, w.purchase.id],
        known,
        organizations: Vec::new(),
    }
}

fn submit(w: &World, t: &crate::item::ItemType, title: &str) -> SubmitForm {
    SubmitForm {
        item_type: t.id,
        title: title.into(),
        description: String::new(),
        custom: [("budget".to_string(), json!("1200"))].into_iter().collect(),
        files: Vec::new(),
        guest: None,
    }
    .with_type(w, t)
}

impl SubmitForm {
    fn with_type(mut self, w: &World, t: &crate::item::ItemType) -> Self {
        if t.id != w.purchase.id {
            self.custom.clear();
        }
        self
    }

    fn by_guest(self, name: &str, email: &str) -> Self {
        SubmitForm { guest: Some(Guest { name: name.into(), email: email.into() }), ..self }
    }
}

fn photo() -> NewFile {
    NewFile { filename: "till.jpg".into(), content_type: "image/jpeg".into(), bytes: Arc::from(&b"jpeg"[..]) }
}

#[test]
fn submitting_a_form() {
    let w = World::new();
    let agent_email = w.agent.email.clone().unwrap();
    let with_file = SubmitForm { files: vec![photo()], ..submit(&w, &w.purchase, "Laptops") };
    let no_budget = SubmitForm { custom: Default::default(), ..submit(&w, &w.purchase, "Laptops") };
    table_as(
        &w,
        |w, _, c| state(w, c, true),
        vec![
            (
                CustomerA,
                with_file,
                ok(
                    &["+item:new1", "blob", "+attachment:new2"],
                    &["item.created@new1", "item.attachment_added@new1"],
                )
                .then(|w, i: &Item| {
                    assert_eq!((i.requester, i.channel), (Some(w.customer_a.id), Channel::Portal));
                    assert_eq!(i.custom["budget"], json!(1200.0));
                }),
            ),
            (
                System,
                submit(&w, &w.purchase, "Laptops").by_guest("Nina Roth", "Nina@Clinic.example"),
                ok(&["+item:new2", "+user:new1"], &["item.created@new2", "record.created"]).then(
                    |_, i: &Item| {
                        assert_eq!(i.requester, Some(crate::ids::UserId(uuid::Uuid::from_u128(1))));
                        assert_eq!(
                            i.created_by,
                            crate::item::ActorRef::User(crate::ids::UserId(uuid::Uuid::from_u128(1)))
                        );
                    },
                ),
            ),
            (
                System,
                submit(&w, &w.purchase, "Laptops").by_guest("Agent?", &agent_email),
                invalid("email", "staff sign in"),
            ),
            (
                System,
                submit(&w, &w.purchase, "Laptops").by_guest("", "x@clinic.example"),
                invalid("name", "must not be empty"),
            ),
            (
                System,
                submit(&w, &w.purchase, "Laptops").by_guest("X", "not an address"),
                invalid("email", ""),
            ),
            (System, submit(&w, &w.purchase, "Laptops"), invalid("email", "who is asking")),
            (
                Agent,
                submit(&w, &w.purchase, "Laptops").by_guest("X", "x@clinic.example"),
                forbidden("as themselves"),
            ),
            (CustomerA, submit(&w, &w.ticket, "No form"), not_found("form for item type")),
            (CustomerA, no_budget, invalid("custom.budget", "'Budget' is required")),
            (
                CustomerA,
                SubmitForm { files: vec![photo()], ..submit(&w, &w.task, "") },
                invalid("files", "takes no attachments"),
            ),
            (
                CustomerA,
                submit(&w, &w.task, "ignored"),
                ok(&["+item:new1"], &["item.created@new1"]).then(|w, i: &Item| {
                    assert_eq!(i.title, format!("Team survey — {}", w.customer_a.name));
                }),
            ),
        ],
    );
    // Forms that need a sign-in refuse guests.
    table_as(
        &w,
        |w, _, c| state(w, c, false),
        vec![(
            System,
            submit(&w, &w.purchase, "Laptops").by_guest("Nina Roth", "nina@clinic.example"),
            forbidden("sign in"),
        )],
    );
    assert_eq!(w.customer_a.role, Role::Customer);
}
