//! Conformance cases for the knowledge base and live chat (stamped out by `conformance_suite!`
//! with the rest): their records on every backend, and the rules `Desk` applies on top of them.

use chrono::Duration;
use tandem_core::chat::{Chat, ChatAuthor, ChatMessage, ChatStatus, VISITOR_MESSAGES_PER_WINDOW};
use tandem_core::commands::*;
use tandem_core::conversation::sha256_hex;
use tandem_core::kb::{ArticleBody, KbArticle, KbCategory, KbVisibility};
use tandem_core::store::{self, RecordQuery};
use tandem_core::*;

use crate::TestStore;
use crate::fixture::{desk, id, insert, update, workspace};

/// Categories, articles (children of their category), chats (children of their signed-in
/// requester) and chat messages (children of their chat) are stored whole, versioned, listed by
/// parent and kept per tenant.
pub async fn kb_and_chat_records_are_stored(store: TestStore) {
    let ws = workspace(store.as_ref(), "Pond supplies").await;
    let other = workspace(store.as_ref(), "Other").await;
    let carl = insert(store.as_ref(), &ws, ws.user("Carl", Role::Customer)).await;
    let category = insert(
        store.as_ref(),
        &ws,
        KbCategory {
            id: id(),
            workspace_id: ws.id,
            name: "Pumps".into(),
            description: "Pond pumps and filters".into(),
            position: 1,
            created_at: ws.now,
            updated_at: ws.now,
            version: 1,
        },
    )
    .await;
    let article = |title: &str, category: Option<KbCategoryId>| KbArticle {
        id: id(),
        workspace_id: ws.id,
        category,
        title: title.into(),
        html: "<p>Turn it off first.</p>".into(),
        text: "Turn it off first.".into(),
        visibility: KbVisibility::Public,
        published: true,
        author: None,
        created_at: ws.now,
        updated_at: ws.now,
        version: 1,
    };
    let filed = insert(store.as_ref(), &ws, article("Cleaning the pump", Some(category.id))).await;
    let loose = insert(store.as_ref(), &ws, article("Opening hours", None)).await;
    let in_category: Vec<KbArticle> =
        store::list(store.as_ref(), ws.id, &RecordQuery::children_of(category.id.0)).await.unwrap();
    assert_eq!(in_category, std::slice::from_ref(&filed));
    let all: Vec<KbArticle> = store::list(store.as_ref(), ws.id, &RecordQuery::all()).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.contains(&loose));
    assert!(
        store::list::<KbArticle>(store.as_ref(), other.id, &RecordQuery::all()).await.unwrap().is_empty()
    );
    assert_eq!(store::get::<KbArticle>(store.as_ref(), other.id, filed.id.0).await.unwrap(), None);

    let org_only = KbArticle {
        visibility: KbVisibility::Organization { organization: id() },
        published: false,
        version: 2,
        ..filed.clone()
    };
    update(store.as_ref(), &ws, org_only.clone()).await.unwrap();
    assert_eq!(store::get::<KbArticle>(store.as_ref(), ws.id, filed.id.0).await.unwrap(), Some(org_only));
    // A stale write is a conflict and changes nothing.
    let stale = KbArticle { title: "Stale".into(), version: 2, ..filed.clone() };
    assert!(matches!(update(store.as_ref(), &ws, stale).await, Err(StoreError::Conflict(_))));

    let chat = |requester: Option<UserId>| Chat {
        id: id(),
        workspace_id: ws.id,
        requester,
        visitor_name: "Visitor".into(),
        visitor_email: Some("visitor@north-ponds.example".into()),
        token_sha256: sha256_hex(b"secret"),
        status: ChatStatus::Waiting,
        agent: None,
        item: None,
        page: Some("https://north-ponds.example/".into()),
        message_count: 2,
        started_at: ws.now,
        updated_at: ws.now,
        ended_at: None,
        version: 1,
    };
    let anonymous = insert(store.as_ref(), &ws, chat(None)).await;
    let signed_in = insert(store.as_ref(), &ws, chat(Some(carl.id))).await;
    let carls: Vec<Chat> =
        store::list(store.as_ref(), ws.id, &RecordQuery::children_of(carl.id.0)).await.unwrap();
    assert_eq!(carls, std::slice::from_ref(&signed_in));
    let stored = store::get::<Chat>(store.as_ref(), ws.id, anonymous.id.0).await.unwrap().unwrap();
    assert_eq!(stored.token_sha256, sha256_hex(b"secret"), "the token's digest is kept in storage");
    for (seq, author) in [(1, ChatAuthor::Visitor), (2, ChatAuthor::Agent { user: carl.id })] {
        insert(
            store.as_ref(),
            &ws,
            ChatMessage {
                id: id(),
                workspace_id: ws.id,
                chat: anonymous.id,
                author,
                author_name: "x".into(),
                text: format!("message {seq}"),
                seq,
                at: ws.now,
                version: 1,
            },
        )
        .await;
    }
    let messages: Vec<ChatMessage> =
        store::list(store.as_ref(), ws.id, &RecordQuery::children_of(anonymous.id.0)).await.unwrap();
    assert_eq!(messages.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);
    assert!(
        store::list::<ChatMessage>(store.as_ref(), ws.id, &RecordQuery::children_of(signed_in.id.0))
            .await
            .unwrap()
            .is_empty()
    );
    let mut changes = ws.changes();
    changes.delete(RecordKind::KbCategory, category.id.0, 1);
    store.commit(changes).await.unwrap();
    assert_eq!(store::get::<KbCategory>(store.as_ref(), ws.id, category.id.0).await.unwrap(), None);
}

fn titles(articles: &[KbArticle]) -> Vec<&str> {
    articles.iter().map(|a| a.title.as_str()).collect()
}

/// The aquarium supplier's knowledge base: each reader sees what the article's visibility allows,
/// search never finds what the reader may not open; a visitor's chat is reachable only with its
/// token, is rate limited, and ends as a ticket whose conversation is the transcript; a
/// signed-in customer's chats are theirs alone.
pub async fn kb_visibility_and_chats_through_desk(store: TestStore) {
    let (desk, clock) = desk(store);
    let root = Actor::server_admin(WorkspaceId(uuid::Uuid::nil()));
    let ws = desk.execute(&root, &CreateWorkspace { name: "Pond supplies".into() }).await.unwrap();
    let admin = Actor::server_admin(ws.id);
    let person = |name: &str, email: &str, role| CreateUser {
        name: name.into(),
        email: Some(email.into()),
        handle: None,
        role,
    };
    let north = desk
        .execute(
            &admin,
            &CreateOrganization { name: "North Ponds".into(), domains: vec!["north-ponds.example".into()] },
        )
        .await
        .unwrap();
    let ana = desk.execute(&admin, &person("Ana", "ana@pond-supplies.example", Role::Agent)).await.unwrap();
    let ana = Actor::user(ana, TokenScope::Admin);
    let carl =
        desk.execute(&admin, &person("Carl", "carl@north-ponds.example", Role::Customer)).await.unwrap();
    assert_eq!(carl.organization, Some(north.id));
    let carl = Actor::user(carl, TokenScope::Admin);
    let dina =
        desk.execute(&admin, &person("Dina", "dina@south-lakes.example", Role::Customer)).await.unwrap();
    let dina = Actor::user(dina, TokenScope::Admin);

    let pumps = desk
        .execute(&ana, &CreateKbCategory { name: "Pumps".into(), description: String::new(), position: 0 })
        .await
        .unwrap();
    let write = |title: &str, visibility, published| CreateArticle {
        title: title.into(),
        body: ArticleBody::Html(format!("<p>{title}: about the pond pump.</p><script>alert(1)</script>")),
        category: Some(pumps.id),
        visibility,
        published,
    };
    for (title, visibility, published) in [
        ("Cleaning the pond pump", KbVisibility::Public, true),
        ("Warranty claims", KbVisibility::SignedIn, true),
        ("North Ponds price list", KbVisibility::Organization { organization: north.id }, true),
        ("Supplier escalation contacts", KbVisibility::Internal, true),
        ("Winter storage", KbVisibility::Public, false),
    ] {
        let a = desk.execute(&ana, &write(title, visibility, published)).await.unwrap();
        assert!(!a.html.contains("script"), "bodies are sanitised: {}", a.html);
    }
    let e = desk.execute(&carl, &write("By a customer", KbVisibility::Public, true)).await.unwrap_err();
    assert!(matches!(e, DeskError::Forbidden(_)), "{e:?}");
    let e = desk
        .execute(&ana, &write("Bad org", KbVisibility::Organization { organization: id() }, true))
        .await
        .unwrap_err();
    assert!(matches!(&e, DeskError::Invalid(i) if i.field == "visibility.organization"), "{e:?}");

    let read = |who: Option<Actor>| {
        let desk = desk.clone();
        async move { desk.kb_articles(ws.id, who.as_ref(), None).await.unwrap() }
    };
    assert_eq!(titles(&read(None).await), ["Cleaning the pond pump"]);
    assert_eq!(titles(&read(Some(dina.clone())).await), ["Cleaning the pond pump", "Warranty claims"]);
    assert_eq!(
        titles(&read(Some(carl.clone())).await),
        ["Cleaning the pond pump", "North Ponds price list", "Warranty claims"]
    );
    assert_eq!(read(Some(ana.clone())).await.len(), 5, "staff see drafts and internal articles");

    let hits = desk.kb_search(ws.id, None, "pump", 10).await.unwrap();
    assert_eq!(hits.iter().map(|h| h.article.title.as_str()).collect::<Vec<_>>(), ["Cleaning the pond pump"]);
    assert_eq!(desk.kb_search(ws.id, Some(&ana), "pump", 10).await.unwrap().len(), 5);
    let internal =
        read(Some(ana.clone())).await.into_iter().find(|a| a.title.starts_with("Supplier")).unwrap();
    let e = desk.kb_article(ws.id, Some(&carl), internal.id).await.unwrap_err();
    assert!(matches!(e, DeskError::NotFound(_)), "{e:?}");
    let e = desk.kb_article(ws.id, None, internal.id).await.unwrap_err();
    assert!(matches!(e, DeskError::NotFound(_)), "{e:?}");
    // Publishing is a change like any other; a reader sees the result at once.
    let draft = read(Some(ana.clone())).await.into_iter().find(|a| a.title == "Winter storage").unwrap();
    desk.execute(&ana, &UpdateArticle::publish(draft.id, true)).await.unwrap();
    assert_eq!(read(None).await.len(), 2);
    assert_eq!(desk.kb_categories(ws.id, None).await.unwrap().len(), 1);
    let e = desk.execute(&ana, &DeleteKbCategory { category: pumps.id }).await.unwrap_err();
    assert!(matches!(e, DeskError::Conflict(_)), "a category with articles stays: {e:?}");

    // An anonymous visitor's chat.
    let visitor = Actor::system(ws.id);
    let token = sha256_hex(b"the visitor's token");
    let (chat, first) = desk
        .execute(
            &visitor,
            &StartChat {
                name: "Vera Visitor".into(),
                email: Some("Vera@North-Ponds.example".into()),
                text: Some("My pump <b>stopped</b>".into()),
                page: Some("https://north-ponds.example/shop".into()),
                token_sha256: token.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(chat.status, ChatStatus::Waiting);
    assert!(chat.token_sha256.is_empty(), "the digest never leaves Desk");
    assert_eq!(first.len(), 1);
    let e = desk
        .execute(&visitor, &StartChat { email: None, token_sha256: sha256_hex(b"x"), ..start(&chat) })
        .await
        .unwrap_err();
    assert!(matches!(&e, DeskError::Invalid(i) if i.field == "email"), "{e:?}");
    let waiting = desk.chats(&ana, Some(ChatStatus::Waiting)).await.unwrap();
    assert_eq!(waiting.iter().map(|c| c.id).collect::<Vec<_>>(), [chat.id]);
    assert!(matches!(desk.chats(&carl, None).await.unwrap_err(), DeskError::Forbidden(_)));

    let visitor_says = |text: &str, token: &str| PostChatMessage {
        chat: chat.id,
        from: ChatParty::Visitor { token_sha256: token.to_string() },
        text: text.into(),
    };
    let e = desk.execute(&visitor, &visitor_says("let me in", &sha256_hex(b"guess"))).await.unwrap_err();
    assert!(matches!(e, DeskError::NotFound(_)), "a wrong token finds no chat: {e:?}");
    assert!(desk.visitor_chat(ws.id, chat.id, &sha256_hex(b"guess"), 0).await.is_err());
    let taken = desk.execute(&ana, &TakeChat { chat: chat.id }).await.unwrap();
    assert_eq!((taken.status, taken.agent), (ChatStatus::Active, ana.user_id()));
    let e = desk
        .execute(&carl, &PostChatMessage { chat: chat.id, from: ChatParty::Agent, text: "hi".into() })
        .await
        .unwrap_err();
    assert!(matches!(e, DeskError::Forbidden(_)), "customers do not answer chats: {e:?}");
    desk.execute(
        &ana,
        &PostChatMessage { chat: chat.id, from: ChatParty::Agent, text: "Is it plugged in?".into() },
    )
    .await
    .unwrap();
    // The visitor's burst: the first message counts; the limit holds within the window.
    for n in 1..VISITOR_MESSAGES_PER_WINDOW {
        desk.execute(&visitor, &visitor_says(&format!("still broken {n}"), &token)).await.unwrap();
    }
    let e = desk.execute(&visitor, &visitor_says("one too many", &token)).await.unwrap_err();
    assert!(matches!(e, DeskError::RateLimited(_)), "{e:?}");
    clock.advance(Duration::seconds(61));
    desk.execute(&visitor, &visitor_says("Yes, it is plugged in", &token)).await.unwrap();
    let (_, seen) = desk.visitor_chat(ws.id, chat.id, &token, 0).await.unwrap();
    let agent_line = seen.iter().find(|m| matches!(m.author, ChatAuthor::Agent { .. })).unwrap();
    assert_eq!(agent_line.text, "Is it plugged in?");
    let (_, later) = desk.visitor_chat(ws.id, chat.id, &token, agent_line.seq).await.unwrap();
    assert!(later.iter().all(|m| m.seq > agent_line.seq));

    // Ending makes a ticket for a new contact (joined to the organization owning the domain).
    let ended =
        desk.execute(&ana, &EndChat { chat: chat.id, by: ChatParty::Agent, item_type: None }).await.unwrap();
    assert_eq!(ended.status, ChatStatus::Ended);
    let item = ended.item.expect("an ended chat with messages is a ticket");
    let ticket = desk.item(&admin, ItemRef::Id(item)).await.unwrap();
    assert_eq!(ticket.channel, Channel::Widget);
    assert_eq!(ticket.title, "Chat with Vera Visitor");
    let contact =
        store::get::<User>(desk.store().as_ref(), ws.id, ticket.requester.unwrap().0).await.unwrap().unwrap();
    assert_eq!(contact.email.as_deref(), Some("vera@north-ponds.example"));
    assert_eq!(contact.organization, Some(north.id));
    let transcript = desk.messages(&admin, ItemRef::Id(item)).await.unwrap();
    assert_eq!(transcript.len(), VISITOR_MESSAGES_PER_WINDOW + 2, "every visitor and agent line");
    assert_eq!(transcript[0].text, "My pump <b>stopped</b>");
    assert!(transcript[0].html.contains("&lt;b&gt;"), "chat text is text: {}", transcript[0].html);
    assert!(transcript.iter().all(|m| m.visibility == Visibility::Public));
    let e = desk.execute(&visitor, &visitor_says("hello?", &token)).await.unwrap_err();
    assert!(matches!(e, DeskError::Conflict(_)), "{e:?}");

    // A signed-in customer's chat stays on their profile, and only theirs.
    let carl_token = sha256_hex(b"carl's token");
    let (mine, _) = desk
        .execute(
            &carl,
            &StartChat {
                name: "ignored".into(),
                email: None,
                text: Some("Price list question".into()),
                page: None,
                token_sha256: carl_token.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!((mine.requester, mine.visitor_name.as_str()), (carl.user_id(), "Carl"));
    assert_eq!(desk.my_chats(&carl).await.unwrap().iter().map(|c| c.id).collect::<Vec<_>>(), [mine.id]);
    assert!(desk.my_chats(&dina).await.unwrap().is_empty());
    assert!(matches!(desk.my_chat(&dina, mine.id).await.unwrap_err(), DeskError::NotFound(_)));
    let ended = desk
        .execute(
            &carl,
            &EndChat { chat: mine.id, by: ChatParty::Visitor { token_sha256: carl_token }, item_type: None },
        )
        .await
        .unwrap();
    let ticket = desk.item(&carl, ItemRef::Id(ended.item.unwrap())).await.unwrap();
    assert_eq!(ticket.requester, carl.user_id(), "the requester sees the ticket their chat became");
}

fn start(chat: &Chat) -> StartChat {
    StartChat {
        name: chat.visitor_name.clone(),
        email: chat.visitor_email.clone(),
        text: None,
        page: None,
        token_sha256: String::new(),
    }
}
