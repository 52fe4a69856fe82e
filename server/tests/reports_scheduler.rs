#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! The report scheduler on a real SQLite store: a report is queued when due and not before, two
//! servers racing queue each occurrence once, `next_run` moves to the following occurrence, and
//! a disabled report waits.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use tandem_core::commands::{
    CreateReport, CreateUser, CreateView, CreateWorkspace, ReportPatch, UpdateReport,
};
use tandem_core::reports::{REPORT_SEND_JOB, Recipient, ReportFormat, ReportSchedule, ScheduledReport};
use tandem_core::store::{JobFilter, get};
use tandem_core::{Actor, Desk, Role, TokenScope, WorkspaceId};
use tandem_server::jobs::reports::queue_due;
use tandem_storage_sqlite::{SqliteOptions, SqliteStore};
use tandem_tests::fixture::{ManualClock, TestIds};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_reports_are_queued_once_and_move_on() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn tandem_core::Store> =
        Arc::new(SqliteStore::open(dir.path().join("reports.db"), SqliteOptions::default()).unwrap());
    // Sunday 1 March 2026, 10:00 UTC.
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap()));
    let desk = Desk::new(store.clone(), clock.clone(), Arc::new(TestIds), Default::default());
    // A second server on the same database.
    let other = Desk::new(store.clone(), clock.clone(), Arc::new(TestIds), Default::default());
    let boot = Actor::server_admin(WorkspaceId(uuid::Uuid::nil()));
    let ws = desk.execute(&boot, &CreateWorkspace { name: "Clinics".into() }).await.unwrap().id;
    let admin = Actor::server_admin(ws);
    let mia = CreateUser {
        name: "Mia".into(),
        email: Some("mia@clinic.example".into()),
        handle: None,
        role: Role::Manager,
    };
    let mia = desk.execute(&admin, &mia).await.unwrap();
    let mia = Actor::user(mia, TokenScope::Write);
    let view = CreateView {
        name: "Open".into(),
        sharing: Default::default(),
        filter: String::new(),
        sort: Vec::new(),
        group_by: None,
        columns: Vec::new(),
        layout: Default::default(),
    };
    let view = desk.execute(&mia, &view).await.unwrap();
    let report = CreateReport {
        name: "Weekly".into(),
        view: view.id,
        schedule: ReportSchedule::Week {
            days: vec![chrono::Weekday::Mon, chrono::Weekday::Thu],
            at: "07:30".into(),
        },
        format: ReportFormat::Csv,
        recipients: vec![Recipient::Address("ops@clinic.example".into())],
        enabled: true,
    };
    let report = desk.execute(&mia, &report).await.unwrap();
    let monday = Utc.with_ymd_and_hms(2026, 3, 2, 7, 30, 0).unwrap();
    assert_eq!(report.next_run, monday);
    let jobs = || async {
        let filter =
            JobFilter { workspace: Some(ws), state: None, kind: Some(REPORT_SEND_JOB.into()), limit: 100 };
        store.jobs(&filter).await.unwrap()
    };

    // Not due yet.
    assert_eq!(queue_due(&desk).await.unwrap(), 0);
    assert!(jobs().await.is_empty());
    // Due: two servers race; the occurrence is queued once.
    clock.advance(Duration::hours(22));
    let (a, b) = tokio::join!(queue_due(&desk), queue_due(&other));
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    let queued = jobs().await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].payload["occurrence"], serde_json::json!(monday));
    let stored = get::<ScheduledReport>(store.as_ref(), ws, report.id.0).await.unwrap().unwrap();
    assert_eq!(stored.next_run, Utc.with_ymd_and_hms(2026, 3, 5, 7, 30, 0).unwrap(), "Thursday");
    assert_eq!(queue_due(&desk).await.unwrap(), 0, "nothing more is due");

    // Disabled: it waits, and enabling it again schedules from now.
    let off =
        UpdateReport { report: report.id, patch: ReportPatch { enabled: Some(false), ..Default::default() } };
    desk.execute(&mia, &off).await.unwrap();
    clock.advance(Duration::days(7));
    assert_eq!(queue_due(&desk).await.unwrap(), 0);
    let on =
        UpdateReport { report: report.id, patch: ReportPatch { enabled: Some(true), ..Default::default() } };
    let on = desk.execute(&mia, &on).await.unwrap();
    use tandem_core::Clock;
    assert!(on.next_run > clock.now(), "{}", on.next_run);
    assert_eq!(jobs().await.len(), 1);
}
