//! Passwords, sessions and emailed sign-in links. The server verifies and hashes passwords and
//! makes the secrets; these commands only ever see an argon2id PHC string or a secret's SHA-256.

use std::collections::BTreeMap;

use chrono::Duration;
use serde_json::json;

use crate::access::{Action, Actor, ActorKind, Target, can};
use crate::change::{NewJob, Record, RecordKind};
use crate::credentials::{Credential, Session, SignInLink, SignInMethod, is_argon2id_phc};
use crate::desk::{Command, Decided, Env, load};
use crate::diff::diff;
use crate::error::{DeskError, Invalid};
use crate::event::{EventData, FieldChange};
use crate::ids::{SessionId, SignInLinkId, UserId};
use crate::mail::{MAIL_SEND_JOB, MailJob};
use crate::people::{Role, TokenScope, User, normalise_email};
use crate::store::{RecordQuery, Store, get, list};

fn check_sha256(field: &str, hex: &str) -> Result<String, Invalid> {
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Invalid::new(field, "must be a hex SHA-256"));
    }
    Ok(hex.to_ascii_lowercase())
}

fn is_system(actor: &Actor) -> bool {
    matches!(actor.kind, ActorKind::System)
}

/// Sets a user's password. People change their own (the server checks their current password
/// first); changing someone else's is managing users. Every other live session of the user
/// ends: whoever knew the old password is signed out.
#[derive(Debug, Clone)]
pub struct SetPassword {
    pub user: UserId,
    /// argon2id, as a PHC string.
    pub password_phc: String,
    /// The session the change was made from, which stays signed in.
    pub keep_session: Option<SessionId>,
}

impl Command for SetPassword {
    type State = (User, Option<Credential>, Vec<Session>);
    type Output = User;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let ws = actor.workspace_id;
        let user = load::<User>(store, ws, self.user).await?;
        let credential = get::<Credential>(store, ws, self.user.0).await?;
        let sessions = list::<Session>(store, ws, &RecordQuery::children_of(self.user.0)).await?;
        Ok((user, credential, sessions))
    }

    fn decide(
        &self,
        actor: &Actor,
        (user, old, sessions): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<User>, DeskError> {
        if actor.user_id() == Some(user.id) {
            if actor.scope < TokenScope::Write {
                return Err(DeskError::Forbidden("a read-only token cannot change a password".into()));
            }
        } else {
            can(actor, Action::ManageUsers, Target::Person { current: Some(&user), new_role: user.role })
                .into_result()?;
        }
        if !is_argon2id_phc(&self.password_phc) {
            return Err(Invalid::new("password_phc", "must be an argon2id PHC string").into());
        }
        let mut changes = env.changes(actor);
        let next = Credential {
            id: user.id.0.into(),
            workspace_id: user.workspace_id,
            user: user.id,
            password_phc: self.password_phc.clone(),
            changed_at: env.now,
            version: old.as_ref().map_or(1, |c| c.version + 1),
        };
        // The hash never reaches the event log: the event only says the password changed.
        let change = FieldChange {
            field: "password".into(),
            from: json!(if old.is_some() { "set" } else { "unset" }),
            to: json!("set"),
        };
        changes.event(
            None,
            EventData::RecordUpdated { record: RecordKind::User, id: user.id.0, changes: vec![change] },
        );
        match &old {
            Some(old) => changes.update(Record::Credential(next), old.version),
            None => changes.insert(Record::Credential(next)),
        };
        for session in sessions.iter().filter(|s| s.is_live(env.now) && Some(s.id) != self.keep_session) {
            end_session(&mut changes, session, env);
        }
        Ok(Decided { changes, output: user })
    }
}

fn end_session(changes: &mut crate::change::ChangeSet, old: &Session, env: &Env<'_>) -> Session {
    let next = Session { revoked_at: Some(env.now), version: old.version + 1, ..old.clone() };
    changes.event(
        None,
        EventData::RecordUpdated { record: RecordKind::Session, id: old.id.0, changes: diff(old, &next) },
    );
    changes.update(Record::Session(next.clone()), old.version);
    next
}

fn new_session(
    env: &Env<'_>,
    user: &User,
    secret_sha256: &str,
    method: SignInMethod,
    lifetime: Duration,
) -> Result<Session, Invalid> {
    Ok(Session {
        id: env.new_id(),
        workspace_id: user.workspace_id,
        user: user.id,
        secret_sha256: check_sha256("secret_sha256", secret_sha256)?,
        method,
        created_at: env.now,
        expires_at: env.now + lifetime,
        revoked_at: None,
        version: 1,
    })
}

fn session_created(changes: &mut crate::change::ChangeSet, session: &Session) {
    let name = match session.method {
        SignInMethod::Password => "password sign-in",
        SignInMethod::MagicLink => "sign-in link",
    };
    changes.event(
        None,
        EventData::RecordCreated { record: RecordKind::Session, id: session.id.0, name: name.into() },
    );
    changes.insert(Record::Session(session.clone()));
}

/// Starts a session for a user whose password the server has just verified. Runs as the user
/// (so the event log says who signed in) or as Tandem itself.
#[derive(Debug, Clone)]
pub struct StartSession {
    pub user: UserId,
    pub secret_sha256: String,
    pub lifetime: Duration,
}

impl Command for StartSession {
    type State = User;
    type Output = Session;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<User, DeskError> {
        load::<User>(store, actor.workspace_id, self.user).await
    }

    fn decide(&self, actor: &Actor, user: User, env: &Env<'_>) -> Result<Decided<Session>, DeskError> {
        if !is_system(actor) && actor.user_id() != Some(user.id) {
            return Err(DeskError::Forbidden("sessions are started only by signing in".into()));
        }
        if !user.active {
            return Err(DeskError::Forbidden("the account is disabled".into()));
        }
        let session = new_session(env, &user, &self.secret_sha256, SignInMethod::Password, self.lifetime)?;
        let mut changes = env.changes(actor);
        session_created(&mut changes, &session);
        Ok(Decided { changes, output: session })
    }
}

/// Ends a session (signing out). Its owner may end it, and so may whoever manages its owner.
#[derive(Debug, Clone)]
pub struct EndSession {
    pub id: SessionId,
}

impl Command for EndSession {
    type State = (Session, User);
    type Output = Session;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let session = load::<Session>(store, actor.workspace_id, self.id).await?;
        let user = load::<User>(store, actor.workspace_id, session.user).await?;
        Ok((session, user))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, owner): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Session>, DeskError> {
        if actor.user_id() != Some(owner.id) {
            can(actor, Action::ManageUsers, Target::Person { current: Some(&owner), new_role: owner.role })
                .into_result()?;
        }
        if old.revoked_at.is_some() {
            return Ok(Decided { changes: env.changes(actor), output: old });
        }
        let mut changes = env.changes(actor);
        let next = end_session(&mut changes, &old, env);
        Ok(Decided { changes, output: next })
    }
}

/// Someone asked for a sign-in link for `email`. When a customer with that address exists and is
/// active, a single-use link is stored (hashed) and a `magic_link` mail is queued in the same
/// commit; otherwise nothing happens. The output says which, for the server's logs only: the
/// answer to the requester is the same either way. There is no self sign-up: people join a
/// workspace by being added, or by writing to it.
#[derive(Debug, Clone)]
pub struct RequestSignInLink {
    pub email: String,
    pub secret_sha256: String,
    /// The link to mail, carrying the secret. It reaches only the mail job, never the link's record.
    pub link: String,
    pub lifetime: Duration,
}

impl Command for RequestSignInLink {
    type State = Option<User>;
    type Output = Option<SignInLink>;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Option<User>, DeskError> {
        match normalise_email("email", &self.email) {
            Ok(email) => Ok(store.user_by_email(actor.workspace_id, &email).await?),
            Err(_) => Ok(None),
        }
    }

    fn decide(
        &self,
        actor: &Actor,
        user: Option<User>,
        env: &Env<'_>,
    ) -> Result<Decided<Option<SignInLink>>, DeskError> {
        if !is_system(actor) {
            return Err(DeskError::Forbidden("sign-in links are requested through the sign-in page".into()));
        }
        let secret_sha256 = check_sha256("secret_sha256", &self.secret_sha256)?;
        let mut changes = env.changes(actor);
        let Some(user) = user.filter(|u| u.active && u.role == Role::Customer) else {
            return Ok(Decided { changes, output: None });
        };
        let Some(to) = user.email.clone() else { return Ok(Decided { changes, output: None }) };
        let link = SignInLink {
            id: env.new_id(),
            workspace_id: user.workspace_id,
            user: user.id,
            secret_sha256,
            created_at: env.now,
            expires_at: env.now + self.lifetime,
            used_at: None,
            version: 1,
        };
        let mail = MailJob {
            template: "magic_link".into(),
            to,
            to_name: Some(user.name.clone()),
            item: None,
            vars: BTreeMap::from([
                ("link".to_string(), self.link.clone()),
                ("name".to_string(), user.name.clone()),
            ]),
            automatic: false,
            attachments: Vec::new(),
            html_appendix: None,
        };
        let payload = serde_json::to_value(&mail)
            .map_err(|e| DeskError::Conflict(format!("the sign-in mail cannot be queued: {e}")))?;
        changes.event(
            None,
            EventData::RecordCreated {
                record: RecordKind::SignInLink,
                id: link.id.0,
                name: user.name.clone(),
            },
        );
        changes.insert(Record::SignInLink(link.clone()));
        changes.job(NewJob {
            id: env.new_id(),
            kind: MAIL_SEND_JOB.into(),
            payload,
            idempotency_key: format!("sign-in-link:{}", link.id),
            run_at: env.now,
            max_attempts: 5,
        });
        Ok(Decided { changes, output: Some(link) })
    }
}

/// Uses a sign-in link: marks it used and starts a session, in one commit, so a link opened
/// twice at once signs in once (the second loses the version race and then finds it used).
#[derive(Debug, Clone)]
pub struct UseSignInLink {
    pub id: SignInLinkId,
    pub session_secret_sha256: String,
    pub session_lifetime: Duration,
}

impl Command for UseSignInLink {
    type State = (SignInLink, User);
    type Output = Session;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let link = load::<SignInLink>(store, actor.workspace_id, self.id).await?;
        let user = load::<User>(store, actor.workspace_id, link.user).await?;
        Ok((link, user))
    }

    fn decide(
        &self,
        actor: &Actor,
        (link, user): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Session>, DeskError> {
        if !is_system(actor) {
            return Err(DeskError::Forbidden("sign-in links are used by opening them".into()));
        }
        if link.used_at.is_some() {
            return Err(DeskError::Forbidden("this sign-in link has already been used".into()));
        }
        if env.now >= link.expires_at {
            return Err(DeskError::Forbidden("this sign-in link has expired".into()));
        }
        if !user.active {
            return Err(DeskError::Forbidden("the account is disabled".into()));
        }
        let session = new_session(
            env,
            &user,
            &self.session_secret_sha256,
            SignInMethod::MagicLink,
            self.session_lifetime,
        )?;
        let used = SignInLink { used_at: Some(env.now), version: link.version + 1, ..link.clone() };
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordUpdated {
                record: RecordKind::SignInLink,
                id: link.id.0,
                changes: diff(&link, &used),
            },
        );
        changes.update(Record::SignInLink(used), link.version);
        session_created(&mut changes, &session);
        Ok(Decided { changes, output: session })
    }
}
