#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! `tandem import …` and `tandem export …`: the real binary on a real database file — the
//! report, exit codes, the files it writes (read back), and no progress bar when stderr is not a
//! terminal.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use tandem_core::commands::{CreateProject, CreateView, CreateWorkspace};
use tandem_core::import::mspdi;
use tandem_core::store::{self, RecordQuery};
use tandem_core::{Actor, Desk, ItemKind, ItemType, Limits, WorkspaceId};
use tandem_server::{SystemClock, UuidV7Ids};
use tandem_storage_sqlite::{SqliteOptions, SqliteStore};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn tandem(db: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .arg("--db")
        .arg(db)
        .env_remove("TANDEM_DB")
        .env_remove("TANDEM_WORKSPACE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

#[track_caller]
fn succeeds(run: &Run) -> &str {
    assert_eq!(run.code, 0, "stdout: {} stderr: {}", run.stdout, run.stderr);
    // Not a terminal: no progress bar, nothing on stderr.
    assert_eq!(run.stderr, "", "stderr must stay empty when it is not a terminal");
    &run.stdout
}

struct World {
    desk: Desk,
    admin: Actor,
    task_type: String,
}

async fn world(db: &Path) -> World {
    let store = SqliteStore::open(db, SqliteOptions::default()).unwrap();
    let desk = Desk::new(Arc::new(store), Arc::new(SystemClock), Arc::new(UuidV7Ids), Limits::default());
    let ws = desk
        .execute(
            &Actor::server_admin(WorkspaceId(uuid::Uuid::nil())),
            &CreateWorkspace { name: "Clinics".into() },
        )
        .await
        .unwrap();
    let admin = Actor::server_admin(ws.id);
    let types: Vec<ItemType> = store::list(desk.store().as_ref(), ws.id, &RecordQuery::all()).await.unwrap();
    let task_type = types.iter().find(|t| t.kind == ItemKind::Task).unwrap().id.to_string();
    World { desk, admin, task_type }
}

impl World {
    async fn project(&self, name: &str) -> String {
        let cmd = CreateProject { name: name.into(), description: String::new(), portfolio: None };
        self.desk.execute(&self.admin, &cmd).await.unwrap().id.to_string()
    }
}

#[tokio::test]
async fn import_and_export_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let w = world(&db).await;
    let leiden = w.project("Leiden clinic").await;
    let csv = dir.path().join("plan.csv");
    std::fs::write(
        &csv,
        "Ref,Task,Length,After\n1,Order booths,3d,\n2,Install booths,2d,1\n3,Opening,0,2FS+1d\n",
    )
    .unwrap();
    let file = csv.to_str().unwrap();
    let args = |extra: &[&'static str]| {
        let mut a = vec!["import", "csv", "--project", leiden.as_str(), file, "--type", w.task_type.as_str()];
        a.extend(["--mapping", "Ref=key", "--mapping", "Length=duration", "--mapping", "After=predecessors"]);
        a.extend_from_slice(extra);
        a
    };

    let dry = tandem(&db, &args(&["--dry-run"]));
    assert_eq!(succeeds(&dry).trim(), "dry run: 3 rows, 3 valid, 0 created, 2 dependencies");
    let done = tandem(&db, &args(&[]));
    assert_eq!(succeeds(&done).trim(), "imported: 3 rows, 3 valid, 3 created, 2 dependencies");

    // A bad row: reported with its row and column, exit 3; the good rows are written.
    std::fs::write(&csv, "Ref,Task,Length,After\n1,Order booths,3 parsecs,\n2,Install booths,2d,\n").unwrap();
    let bad = tandem(&db, &args(&["--all-or-nothing"]));
    assert_eq!(bad.code, 3, "{}", bad.stderr);
    assert!(bad.stderr.contains("nothing imported: 2 rows, 1 valid"), "{}", bad.stderr);
    assert!(
        bad.stderr.contains("row 2, column Length (duration): '3 parsecs' is not a duration"),
        "{}",
        bad.stderr
    );
    let missing = tandem(&db, &["import", "csv", "--project", &leiden, "/nonexistent.csv", "--type", "Task"]);
    assert_eq!(missing.code, 3);
    assert!(missing.stderr.contains("cannot read /nonexistent.csv"), "{}", missing.stderr);

    // MS Project XML out, into another project, and out again: the same tasks.
    let xml = dir.path().join("leiden.xml");
    let out = tandem(&db, &["export", "mspdi", "--project", &leiden, "-o", xml.to_str().unwrap()]);
    assert!(succeeds(&out).contains("3 tasks"));
    let doc = mspdi::read(&std::fs::read_to_string(&xml).unwrap()).unwrap();
    let names: Vec<&str> = doc.tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["Order booths", "Install booths", "Opening"]);
    assert_eq!(doc.tasks[2].predecessors.len(), 1);
    let copy = w.project("Leiden copy").await;
    let imported =
        tandem(&db, &["import", "mspdi", "--project", &copy, xml.to_str().unwrap(), "--type", &w.task_type]);
    assert!(succeeds(&imported).starts_with("imported: 3 rows, 3 valid, 3 created, 2 dependencies"));
    let again = dir.path().join("copy.xml");
    succeeds(&tandem(&db, &["export", "mspdi", "--project", &copy, "-o", again.to_str().unwrap()]));
    assert_eq!(
        std::fs::read_to_string(&again).unwrap().replace("Leiden copy", "Leiden clinic"),
        std::fs::read_to_string(&xml).unwrap()
    );

    // A view as XLSX, timesheets as CSV.
    let view = w
        .desk
        .execute(
            &w.admin,
            &CreateView {
                name: "Leiden tasks".into(),
                sharing: Default::default(),
                filter: format!("project = {leiden}"),
                sort: Vec::new(),
                group_by: None,
                columns: vec!["number".into(), "title".into(), "plan.duration".into()],
                layout: Default::default(),
            },
        )
        .await
        .unwrap();
    let xlsx = dir.path().join("view.xlsx");
    let out = tandem(
        &db,
        &["export", "view", &view.id.to_string(), "--format", "xlsx", "-o", xlsx.to_str().unwrap()],
    );
    assert!(succeeds(&out).contains("3 rows"), "{}", out.stdout);
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&xlsx).unwrap()).unwrap();
    let mut strings = String::new();
    zip.by_name("xl/sharedStrings.xml").unwrap().read_to_string(&mut strings).unwrap();
    assert!(strings.contains("Install booths") && strings.contains("plan.duration"), "{strings}");
    let timesheet = dir.path().join("time.csv");
    let out =
        tandem(&db, &["export", "timesheet", "--status", "approved", "-o", timesheet.to_str().unwrap()]);
    assert!(succeeds(&out).contains("0 entries"));
    assert!(
        std::fs::read_to_string(&timesheet)
            .unwrap()
            .starts_with("started_at,person,email,item,title,minutes")
    );
    let bad = tandem(&db, &["export", "timesheet", "--format", "pdf", "-o", "x"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("not a format"), "{}", bad.stderr);
}
