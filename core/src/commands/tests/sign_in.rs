//! Passwords, sessions and sign-in links.

use chrono::Duration;
use uuid::Uuid;

use super::fixture::{Who::*, *};
use crate::commands::*;
use crate::credentials::{Credential, Session, SignInLink, SignInMethod};
use crate::ids::{SessionId, SignInLinkId, UserId};
use crate::mail::MailJob;
use crate::people::User;

const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";

fn sha(c: char) -> String {
    c.to_string().repeat(64)
}

/// Session `n` has id 0xA000 + n, which summaries name `new{0xA000 + n}`.
fn session(w: &World, n: u128, user: &User, revoked: bool) -> Session {
    Session {
        id: SessionId(Uuid::from_u128(0xA000 + n)),
        workspace_id: w.ws.id,
        user: user.id,
        secret_sha256: sha('e'),
        method: SignInMethod::Password,
        created_at: t0(),
        expires_at: t0() + Duration::days(1),
        revoked_at: revoked.then(t0),
        version: 1,
    }
}

fn credential(user: &User) -> Credential {
    Credential {
        id: user.id.0.into(),
        workspace_id: user.workspace_id,
        user: user.id,
        password_phc: PHC.into(),
        changed_at: t0(),
        version: 3,
    }
}

fn set(user: UserId, keep: Option<u128>) -> SetPassword {
    SetPassword {
        user,
        password_phc: PHC.into(),
        keep_session: keep.map(|n| SessionId(Uuid::from_u128(0xA000 + n))),
    }
}

#[test]
fn set_password() {
    let w = World::new();
    // The agent has a password and three sessions: live, live, ended.
    let load = |w: &World, c: &SetPassword| {
        let user = w.get::<User>(c.user).unwrap();
        let has = user.id == w.agent.id;
        let sessions = if has {
            vec![session(w, 1, &user, false), session(w, 2, &user, false), session(w, 3, &user, true)]
        } else {
            vec![]
        };
        (user.clone(), has.then(|| credential(&user)), sessions)
    };
    table(
        &w,
        load,
        vec![
            // Your own, from session 1: the other live session ends, the ended one stays.
            (
                Agent,
                set(w.agent.id, Some(1)),
                ok(&["credential:agent@3", "session:new40962@1"], &["record.updated", "record.updated"]),
            ),
            // With a token: every live session ends.
            (
                AgentWrite,
                set(w.agent.id, None),
                ok(
                    &["credential:agent@3", "session:new40961@1", "session:new40962@1"],
                    &["record.updated", "record.updated", "record.updated"],
                ),
            ),
            (AgentRead, set(w.agent.id, None), forbidden("read-only")),
            // Someone else's: managing people.
            (Manager, set(w.collaborator.id, None), ok(&["+credential:collaborator"], &["record.updated"])),
            (Manager, set(w.admin.id, None), forbidden("only administrators")),
            (Agent, set(w.collaborator.id, None), forbidden("agents cannot")),
            (CustomerA, set(w.customer_b.id, None), forbidden("customers cannot")),
            (CustomerA, set(w.customer_a.id, None), ok(&["+credential:customer_a"], &["record.updated"])),
            (
                Admin,
                SetPassword { password_phc: "hunter2".into(), ..set(w.agent.id, None) },
                invalid("password_phc", "argon2id"),
            ),
        ],
    );
}

#[test]
fn password_changes_never_log_the_hash() {
    let w = World::new();
    let user = w.agent.clone();
    let decided =
        run(&set(user.id, None), &w.actor(Admin), (user.clone(), Some(credential(&user)), vec![])).unwrap();
    let events =
        serde_json::to_string(&decided.changes.events.iter().map(|e| &e.data).collect::<Vec<_>>()).unwrap();
    assert!(!events.contains("argon2"), "{events}");
    assert!(events.contains("password"), "{events}");
}

#[test]
fn start_and_end_sessions() {
    let w = World::new();
    let start = |user: UserId| StartSession { user, secret_sha256: sha('a'), lifetime: Duration::hours(8) };
    table(
        &w,
        |w, c: &StartSession| w.get::<User>(c.user).unwrap(),
        vec![
            (
                Agent,
                start(w.agent.id),
                ok(&["+session:new1"], &["record.created"]).then(|w, s: &Session| {
                    assert_eq!((s.user, s.method, s.revoked_at), (w.agent.id, SignInMethod::Password, None));
                    assert_eq!(s.expires_at, now() + Duration::hours(8));
                    assert_eq!(s.secret_sha256, "a".repeat(64));
                }),
            ),
            (System, start(w.customer_a.id), ok(&["+session:new1"], &["record.created"])),
            (Admin, start(w.agent.id), forbidden("only by signing in")),
            (System, start(w.disabled.id), forbidden("disabled")),
            (
                System,
                StartSession { secret_sha256: "xyz".into(), ..start(w.agent.id) },
                invalid("secret_sha256", "SHA-256"),
            ),
        ],
    );
    let end = |n: u128| EndSession { id: SessionId(Uuid::from_u128(0xA000 + n)) };
    table(
        &w,
        |w, c: &EndSession| {
            let n = c.id.0.as_u128() - 0xA000;
            let owner = if n == 4 { w.admin.clone() } else { w.agent.clone() };
            (session(w, n, &owner, n == 3), owner)
        },
        vec![
            (
                Agent,
                end(1),
                ok(&["session:new40961@1"], &["record.updated"])
                    .then(|_, s: &Session| assert_eq!(s.revoked_at, Some(now()))),
            ),
            (Manager, end(1), ok(&["session:new40961@1"], &["record.updated"])),
            (Agent, end(3), unchanged()),
            (Collaborator, end(1), forbidden("collaborators cannot")),
            (Manager, end(4), forbidden("only administrators")),
        ],
    );
}

fn ask(email: &str) -> RequestSignInLink {
    RequestSignInLink {
        email: email.into(),
        secret_sha256: sha('b'),
        link: "https://desk.example/api/v1/auth/magic/SECRET".into(),
        lifetime: Duration::minutes(15),
    }
}

#[test]
fn request_sign_in_links() {
    let w = World::new();
    let load = |w: &World, c: &RequestSignInLink| {
        w.users().into_iter().find(|u| u.email.as_deref() == Some(c.email.trim().to_lowercase().as_str()))
    };
    let customer = w.customer_a.email.clone().unwrap();
    let agent = w.agent.email.clone().unwrap();
    let disabled = w.disabled.email.clone().unwrap();
    table(
        &w,
        load,
        vec![
            (
                System,
                ask(&customer.to_uppercase()),
                ok(&["+sign_in_link:new1"], &["record.created"]).then(|w, link: &Option<SignInLink>| {
                    let link = link.as_ref().unwrap();
                    assert_eq!((link.user, link.used_at), (w.customer_a.id, None));
                    assert_eq!(link.expires_at, now() + Duration::minutes(15));
                    assert_eq!(link.secret_sha256, "b".repeat(64), "only the digest is stored");
                }),
            ),
            // Nobody, staff and disabled accounts: nothing happens, and nothing says so.
            (System, ask("nobody@nowhere.example"), unchanged()),
            (System, ask(&agent), unchanged()),
            (System, ask(&disabled), unchanged()),
            (System, ask("not an address"), unchanged()),
            (Admin, ask(&customer), forbidden("sign-in page")),
        ],
    );
    // The mail job: the magic_link template, to the customer, with the link and their name.
    let decided = run(&ask(&customer), &w.actor(System), Some(w.customer_a.clone())).unwrap();
    let [job] = decided.changes.jobs.as_slice() else { panic!("one job: {:?}", decided.changes.jobs) };
    assert_eq!(job.kind, "mail.send");
    let mail: MailJob = serde_json::from_value(job.payload.clone()).unwrap();
    assert_eq!(
        (mail.template.as_str(), mail.to.as_str(), mail.item, mail.automatic),
        ("magic_link", customer.as_str(), None, false)
    );
    assert_eq!(mail.vars["link"], "https://desk.example/api/v1/auth/magic/SECRET");
    assert_eq!(mail.vars["name"], w.customer_a.name);
    let record =
        serde_json::to_string(&decided.changes.writes.iter().map(|w| format!("{w:?}")).collect::<Vec<_>>())
            .unwrap();
    assert!(!record.contains("SECRET"), "the link itself is not stored with the record");
}

fn link(w: &World, used: bool, expires_in: Duration, user: &User) -> SignInLink {
    SignInLink {
        id: SignInLinkId(Uuid::from_u128(0xB001)),
        workspace_id: w.ws.id,
        user: user.id,
        secret_sha256: sha('c'),
        created_at: t0(),
        expires_at: now() + expires_in,
        used_at: used.then(t0),
        version: 1,
    }
}

#[test]
fn use_sign_in_links() {
    let w = World::new();
    let use_it = |n: u128| UseSignInLink {
        id: SignInLinkId(Uuid::from_u128(n)),
        session_secret_sha256: sha('d'),
        session_lifetime: Duration::days(7),
    };
    // The link id's low digit picks the case: 1 fresh, 2 used, 3 expired, 4 disabled account.
    let load = |w: &World, c: &UseSignInLink| {
        let case = c.id.0.as_u128() - 0xB000;
        let user = if case == 4 { w.disabled.clone() } else { w.customer_a.clone() };
        let expires = if case == 3 { Duration::zero() } else { Duration::minutes(10) };
        let mut l = link(w, case == 2, expires, &user);
        l.id = c.id;
        (l, user)
    };
    let used = "sign_in_link:new45057@1"; // ids below the fixture's are named newN
    table(
        &w,
        load,
        vec![
            (
                System,
                use_it(0xB001),
                ok(&[used, "+session:new1"], &["record.updated", "record.created"]).then(|w, s: &Session| {
                    assert_eq!((s.user, s.method), (w.customer_a.id, SignInMethod::MagicLink));
                    assert_eq!(s.expires_at, now() + Duration::days(7));
                }),
            ),
            (System, use_it(0xB002), forbidden("already been used")),
            (System, use_it(0xB003), forbidden("expired")),
            (System, use_it(0xB004), forbidden("disabled")),
            (Admin, use_it(0xB001), forbidden("opening them")),
        ],
    );
}
