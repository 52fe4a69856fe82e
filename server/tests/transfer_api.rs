#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! Import and export through the REST API, on a real SQLite store: CSV import with a column
//! mapping, a dry run and a per-row problem report; MS Project XML import (a document as MS
//! Project writes it), export and a round trip; saved views and timesheets as CSV and XLSX, read
//! back cell by cell.

mod common;

use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::http::{Method, StatusCode, header};
use common::router::Reply;
use serde_json::{Value, json};
use tandem_core::import::mspdi;
use tandem_core::{Desk, Limits};
use tandem_server::{AdminToken, AppState, SystemClock, UuidV7Ids, router};
use tandem_storage_sqlite::{SqliteOptions, SqliteStore};

const ADMIN: &str = "tdm_transfer_test_admin_token";

struct Api {
    app: Router,
    _dir: tempfile::TempDir,
    agent: String,
    agent_id: String,
    ticket_type: String,
    task_type: String,
}

impl Api {
    async fn send(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
        common::router::send(&self.app, method, path, token, body).await
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::POST, path, token, Some(body)).await
    }

    async fn project(&self, name: &str) -> String {
        let p = self.post("/projects", ADMIN, json!({"name": name})).await.expect(StatusCode::CREATED);
        p["id"].as_str().unwrap().to_string()
    }

    async fn items_of(&self, project: &str) -> Vec<Value> {
        let page =
            self.get(&format!("/items?project={project}&limit=500"), ADMIN).await.expect(StatusCode::OK);
        let mut items = page["items"].as_array().unwrap().clone();
        items.sort_by_key(|i| i["number"].as_i64());
        items
    }
}

async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("transfer.db"), SqliteOptions::default()).unwrap();
    let desk = Desk::new(Arc::new(store), Arc::new(SystemClock), Arc::new(UuidV7Ids), Limits::default());
    let app = router(AppState::new(desk, AdminToken::from_secret(ADMIN)));
    let mut api = Api {
        app,
        _dir: dir,
        agent: String::new(),
        agent_id: String::new(),
        ticket_type: String::new(),
        task_type: String::new(),
    };
    api.post("/workspaces", ADMIN, json!({"name": "Hearing clinics"})).await.expect(StatusCode::CREATED);
    for t in api.get("/item-types", ADMIN).await.expect(StatusCode::OK).as_array().unwrap() {
        match t["kind"].as_str() {
            Some("task") => api.task_type = t["id"].as_str().unwrap().to_string(),
            _ => api.ticket_type = t["id"].as_str().unwrap().to_string(),
        }
    }
    for (key, kind, extra) in
        [("due", "date", json!({})), ("size", "choice", json!({"options": ["small", "large"]}))]
    {
        api.post(
            &format!("/item-types/{}/fields", api.ticket_type),
            ADMIN,
            json!({"op": "add", "field": {"key": key, "label": key, "kind": kind, "rules": extra}}),
        )
        .await
        .expect(StatusCode::OK);
    }
    let user = api
        .post("/users", ADMIN, json!({"name": "Ann Agent", "email": "ann@clinic.example", "role": "agent"}))
        .await
        .expect(StatusCode::CREATED);
    api.agent_id = user["id"].as_str().unwrap().to_string();
    api.agent = api
        .post(&format!("/users/{}/tokens", api.agent_id), ADMIN, json!({"name": "t", "scope": "write"}))
        .await
        .expect(StatusCode::CREATED)["secret"]
        .as_str()
        .unwrap()
        .to_string();
    api.post("/teams", ADMIN, json!({"name": "Marketing", "members": [api.agent_id]}))
        .await
        .expect(StatusCode::CREATED);
    api
}

const TICKETS: &str = "\
Ref,Summary,Details,Owner,Prio,Due date,Size,Parent,Colour
L1,Flyer for Delft,\"Two sides, A5\",ann@clinic.example,high,2026-03-10,large,,red
L2,Proofread the flyer,,Marketing,normal,2026-03-09,small,L1,blue
L3,Poster for Utrecht,,nobody@clinic.example,urgent,2026-13-01,medium,,green
L4,Translate the poster,,,low,,,L3,
L5,Banner,,ann@clinic.example,sky-high,,,,
";

fn mapping() -> Value {
    json!({"Ref": "key", "Details": "description", "Owner": "assignees", "Prio": "priority",
           "Due date": "custom.due", "Size": "custom.size"})
}

#[tokio::test]
async fn csv_import_dry_runs_reports_problems_per_row_and_writes_the_valid_rows() {
    let api = api().await;
    let project = api.project("Spring campaign").await;
    let path = format!("/projects/{project}/import/csv");

    // A dry run decides every row and writes nothing.
    let body = json!({"csv": TICKETS, "mapping": mapping(), "item_type": api.ticket_type, "dry_run": true});
    let report = api.post(&path, &api.agent, body).await.expect(StatusCode::OK);
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["committed"], false);
    assert_eq!(report["rows"], 5);
    assert_eq!(report["valid"], 2, "{report:#}");
    assert_eq!(report["ignored_columns"], json!(["Colour"]));
    let problems: Vec<(i64, String, String)> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["row"].as_i64().unwrap(),
                p["column"].as_str().unwrap_or("").to_string(),
                p["field"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // Row 4 (L3): unknown person and a bad date; the size is checked by the same field
    // validation as the API once the rest is right. Row 5 (L4) waits on L3. Row 6: priority.
    assert!(problems.contains(&(4, "Owner".into(), "assignees".into())), "{problems:?}");
    assert!(problems.iter().any(|(row, column, _)| *row == 5 && column == "Parent"), "{problems:?}");
    assert!(problems.contains(&(6, "Prio".into(), "priority".into())), "{problems:?}");
    assert!(problems.iter().all(|(row, _, _)| [4, 5, 6].contains(row)), "{problems:?}");
    assert!(api.items_of(&project).await.is_empty(), "a dry run writes nothing");

    // All or nothing: problems, so nothing.
    let body =
        json!({"csv": TICKETS, "mapping": mapping(), "item_type": api.ticket_type, "all_or_nothing": true});
    let report = api.post(&path, &api.agent, body).await.expect(StatusCode::OK);
    assert_eq!(report["committed"], false);
    assert!(api.items_of(&project).await.is_empty());

    // The real import writes the valid rows, with the parent among them.
    let body = json!({"csv": TICKETS, "mapping": mapping(), "item_type": api.ticket_type});
    let report = api.post(&path, &api.agent, body).await.expect(StatusCode::OK);
    assert_eq!(report["committed"], true);
    assert_eq!(report["valid"], 2);
    let items = api.items_of(&project).await;
    assert_eq!(items.len(), 2);
    let flyer = items.iter().find(|i| i["title"] == "Flyer for Delft").unwrap();
    let proof = items.iter().find(|i| i["title"] == "Proofread the flyer").unwrap();
    assert_eq!(proof["parent"], flyer["id"]);
    assert_eq!(flyer["description"], "Two sides, A5");
    assert_eq!(flyer["priority"], "high");
    assert_eq!(flyer["custom"], json!({"due": "2026-03-10", "size": "large"}));
    assert_eq!(flyer["assignees"], json!([{"type": "user", "id": api.agent_id}]));
    assert_eq!(proof["assignees"][0]["type"], "team");
    let numbers: Vec<i64> =
        report["items"].as_array().unwrap().iter().map(|i| i["number"].as_i64().unwrap()).collect();
    assert!(numbers.iter().all(|n| *n > 0), "{report}");

    // Whole-file mistakes are one error naming the column.
    let body = json!({"csv": TICKETS, "mapping": {"Colour": "colour"}, "item_type": api.ticket_type});
    let e = api.post(&path, &api.agent, body).await.expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "mapping.Colour");
    // Customers import nothing.
    let customer = api
        .post("/users", ADMIN, json!({"name": "Carl", "email": "carl@delft.example", "role": "customer"}))
        .await
        .expect(StatusCode::CREATED);
    let token = api
        .post(
            &format!("/users/{}/tokens", customer["id"].as_str().unwrap()),
            ADMIN,
            json!({"name": "t", "scope": "write"}),
        )
        .await
        .expect(StatusCode::CREATED)["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let body = json!({"csv": TICKETS, "mapping": mapping(), "item_type": api.ticket_type, "dry_run": true});
    assert_eq!(api.post(&path, &token, body).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn csv_import_plans_tasks_with_dependencies() {
    let api = api().await;
    let project = api.project("New clinic in Leiden").await;
    let csv = "\
id,title,parent,duration,start,mode,predecessors,percent_complete
1,Fit-out,,,,,,
2,Order equipment,1,3d,,,,50%
3,Install booths,1,2d,,,2FS+1d,
4,Opening,,0,,,3,
5,Press release,,4h,2026-03-02 09:00,manual,3SS,
";
    let body = json!({"csv": csv, "item_type": api.task_type});
    let report =
        api.post(&format!("/projects/{project}/import/csv"), &api.agent, body).await.expect(StatusCode::OK);
    assert_eq!(report["problems"], json!([]), "{report:#}");
    assert_eq!(report["valid"], 5);
    assert_eq!(report["links"], 3);
    let items = api.items_of(&project).await;
    let by_title = |t: &str| items.iter().find(|i| i["title"] == t).unwrap().clone();
    assert_eq!(by_title("Order equipment")["plan"]["duration"], 1440);
    assert_eq!(by_title("Order equipment")["plan"]["percent_complete"], 50);
    assert_eq!(by_title("Press release")["plan"]["mode"], "manual");
    assert_eq!(by_title("Press release")["plan"]["start"], "2026-03-02T09:00:00");
    let links = api
        .get(&format!("/items/{}/links", by_title("Install booths")["number"]), ADMIN)
        .await
        .expect(StatusCode::OK);
    let from_order = links
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["from"] == by_title("Order equipment")["id"])
        .unwrap_or_else(|| panic!("{links:#}"));
    assert_eq!(
        from_order["dependency"],
        json!({"type": "finish_to_start", "lag": {"unit": "working", "value": 480}})
    );
    // The imported plan schedules.
    let schedule = api.get(&format!("/projects/{project}/schedule"), ADMIN).await.expect(StatusCode::OK);
    assert!(schedule["tasks"].as_array().unwrap().len() == 5, "{schedule:#}");

    // A dependency loop refuses the rows in it.
    let csv = "id,title,predecessors\na,A,b\nb,B,a\nc,C,\n";
    let report = api
        .post(
            &format!("/projects/{project}/import/csv"),
            &api.agent,
            json!({"csv": csv, "item_type": api.task_type, "dry_run": true}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(report["valid"], 1);
    let rows: Vec<i64> =
        report["problems"].as_array().unwrap().iter().map(|p| p["row"].as_i64().unwrap()).collect();
    assert_eq!(rows, vec![2, 3]);
    // Planning fields on a ticket type are a problem of the row.
    let report = api
        .post(
            &format!("/projects/{project}/import/csv"),
            &api.agent,
            json!({"csv": "title,duration\nA,2d\n", "item_type": api.ticket_type, "dry_run": true}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(report["problems"][0]["field"], "plan", "{report}");
}

/// An MSPDI document as MS Project 2016 saves it (trimmed of the elements Tandem ignores, such
/// as resources and extended attributes, but with the project summary task and both forms of
/// calendar exceptions).
const FIXTURE: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Project xmlns="http://schemas.microsoft.com/project">
  <SaveVersion>14</SaveVersion>
  <Name>Leiden clinic.xml</Name>
  <Title>Leiden clinic</Title>
  <ScheduleFromStart>1</ScheduleFromStart>
  <StartDate>2026-03-02T08:00:00</StartDate>
  <CalendarUID>1</CalendarUID>
  <MinutesPerDay>480</MinutesPerDay>
  <MinutesPerWeek>2400</MinutesPerWeek>
  <Calendars>
    <Calendar>
      <UID>1</UID>
      <Name>Standard</Name>
      <IsBaseCalendar>1</IsBaseCalendar>
      <BaseCalendarUID>-1</BaseCalendarUID>
      <WeekDays>
        <WeekDay><DayType>1</DayType><DayWorking>0</DayWorking></WeekDay>
        <WeekDay><DayType>2</DayType><DayWorking>1</DayWorking><WorkingTimes><WorkingTime><FromTime>08:00:00</FromTime><ToTime>12:00:00</ToTime></WorkingTime><WorkingTime><FromTime>13:00:00</FromTime><ToTime>17:00:00</ToTime></WorkingTime></WorkingTimes></WeekDay>
        <WeekDay><DayType>3</DayType><DayWorking>1</DayWorking><WorkingTimes><WorkingTime><FromTime>08:00:00</FromTime><ToTime>12:00:00</ToTime></WorkingTime><WorkingTime><FromTime>13:00:00</FromTime><ToTime>17:00:00</ToTime></WorkingTime></WorkingTimes></WeekDay>
        <WeekDay><DayType>4</DayType><DayWorking>1</DayWorking><WorkingTimes><WorkingTime><FromTime>08:00:00</FromTime><ToTime>12:00:00</ToTime></WorkingTime><WorkingTime><FromTime>13:00:00</FromTime><ToTime>17:00:00</ToTime></WorkingTime></WorkingTimes></WeekDay>
        <WeekDay><DayType>5</DayType><DayWorking>1</DayWorking><WorkingTimes><WorkingTime><FromTime>08:00:00</FromTime><ToTime>12:00:00</ToTime></WorkingTime><WorkingTime><FromTime>13:00:00</FromTime><ToTime>17:00:00</ToTime></WorkingTime></WorkingTimes></WeekDay>
        <WeekDay><DayType>6</DayType><DayWorking>1</DayWorking><WorkingTimes><WorkingTime><FromTime>08:00:00</FromTime><ToTime>13:00:00</ToTime></WorkingTime></WorkingTimes></WeekDay>
        <WeekDay><DayType>7</DayType><DayWorking>0</DayWorking></WeekDay>
        <WeekDay>
          <DayType>0</DayType>
          <DayWorking>0</DayWorking>
          <TimePeriod><FromDate>2026-04-27T00:00:00</FromDate><ToDate>2026-04-27T23:59:00</ToDate></TimePeriod>
        </WeekDay>
      </WeekDays>
      <Exceptions>
        <Exception>
          <EnteredByOccurrences>0</EnteredByOccurrences>
          <TimePeriod><FromDate>2026-05-05T00:00:00</FromDate><ToDate>2026-05-05T23:59:00</ToDate></TimePeriod>
          <Occurrences>1</Occurrences>
          <Name>Liberation Day</Name>
          <Type>1</Type>
          <DayWorking>0</DayWorking>
        </Exception>
      </Exceptions>
    </Calendar>
  </Calendars>
  <Tasks>
    <Task>
      <UID>0</UID><ID>0</ID><Name>Leiden clinic</Name><Type>1</Type><IsNull>0</IsNull>
      <OutlineNumber>0</OutlineNumber><OutlineLevel>0</OutlineLevel><Summary>1</Summary>
      <Start>2026-03-02T08:00:00</Start><Finish>2026-03-13T17:00:00</Finish>
    </Task>
    <Task>
      <UID>1</UID><ID>1</ID><Name>Fit-out</Name><Manual>0</Manual><WBS>1</WBS><OutlineNumber>1</OutlineNumber>
      <OutlineLevel>1</OutlineLevel><Summary>1</Summary><Start>2026-03-02T08:00:00</Start>
      <Finish>2026-03-11T17:00:00</Finish><Duration>PT64H0M0S</Duration><DurationFormat>53</DurationFormat>
      <PercentComplete>20</PercentComplete><ConstraintType>0</ConstraintType>
    </Task>
    <Task>
      <UID>2</UID><ID>2</ID><Name>Order hearing booths</Name><Manual>0</Manual><WBS>1.1</WBS>
      <OutlineNumber>1.1</OutlineNumber><OutlineLevel>2</OutlineLevel><Summary>0</Summary>
      <Start>2026-03-02T08:00:00</Start><Finish>2026-03-04T17:00:00</Finish>
      <Duration>PT24H0M0S</Duration><DurationFormat>7</DurationFormat><Work>PT24H0M0S</Work>
      <PercentComplete>50</PercentComplete><ConstraintType>4</ConstraintType>
      <ConstraintDate>2026-03-02T08:00:00</ConstraintDate>
      <ActualStart>2026-03-02T08:00:00</ActualStart>
      <Notes>Two booths &amp; one audiometer</Notes>
      <Baseline><Number>0</Number><Start>2026-03-02T08:00:00</Start><Finish>2026-03-04T17:00:00</Finish><Duration>PT24H0M0S</Duration></Baseline>
    </Task>
    <Task>
      <UID>3</UID><ID>3</ID><Name>Install booths</Name><Manual>0</Manual><WBS>1.2</WBS>
      <OutlineNumber>1.2</OutlineNumber><OutlineLevel>2</OutlineLevel><Summary>0</Summary>
      <Duration>PT16H0M0S</Duration><DurationFormat>7</DurationFormat>
      <PercentComplete>0</PercentComplete><ConstraintType>0</ConstraintType>
      <PredecessorLink><PredecessorUID>2</PredecessorUID><Type>1</Type><CrossProject>0</CrossProject><LinkLag>4800</LinkLag><LagFormat>7</LagFormat></PredecessorLink>
    </Task>
    <Task>
      <UID>4</UID><ID>4</ID><Name>Press release</Name><Manual>1</Manual><WBS>2</WBS>
      <OutlineNumber>2</OutlineNumber><OutlineLevel>1</OutlineLevel><Summary>0</Summary>
      <Start>2026-03-09T09:00:00</Start><Finish>2026-03-09T13:00:00</Finish>
      <Duration>PT4H0M0S</Duration><DurationFormat>5</DurationFormat><ConstraintType>0</ConstraintType>
      <PredecessorLink><PredecessorUID>3</PredecessorUID><Type>3</Type><LinkLag>0</LinkLag><LagFormat>7</LagFormat></PredecessorLink>
    </Task>
    <Task>
      <UID>5</UID><ID>5</ID><Name>Opening</Name><Manual>0</Manual><WBS>3</WBS>
      <OutlineNumber>3</OutlineNumber><OutlineLevel>1</OutlineLevel><Summary>0</Summary><Milestone>1</Milestone>
      <Duration>PT0H0M0S</Duration><DurationFormat>7</DurationFormat><ConstraintType>7</ConstraintType>
      <ConstraintDate>2026-03-20T17:00:00</ConstraintDate>
      <PredecessorLink><PredecessorUID>1</PredecessorUID><Type>0</Type><LinkLag>-2400</LinkLag><LagFormat>5</LagFormat></PredecessorLink>
      <PredecessorLink><PredecessorUID>4</PredecessorUID><Type>1</Type><LinkLag>500</LinkLag><LagFormat>19</LagFormat></PredecessorLink>
    </Task>
  </Tasks>
</Project>
"#;

#[tokio::test]
async fn mspdi_imports_as_ms_project_writes_it_and_round_trips() {
    let api = api().await;
    let leiden = api.project("Leiden clinic").await;
    let path = format!("/projects/{leiden}/import/mspdi");

    // Bad XML: an error with the position, nothing written.
    let broken = FIXTURE.replace("</Notes>", "</Note>");
    let e = api
        .post(&path, &api.agent, json!({"xml": broken, "item_type": api.task_type}))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.contains("line 63"), "{message}");
    assert!(api.items_of(&leiden).await.is_empty());

    let body = json!({"xml": FIXTURE, "item_type": api.task_type, "calendar": true});
    let report = api.post(&path, ADMIN, body).await.expect(StatusCode::OK);
    assert_eq!(report["problems"], json!([]), "{report:#}");
    assert_eq!(report["valid"], 5, "the project summary task is the project itself");
    assert_eq!(report["links"], 4);
    let items = api.items_of(&leiden).await;
    let by_title = |t: &str| items.iter().find(|i| i["title"] == t).unwrap().clone();
    let booths = by_title("Order hearing booths");
    assert_eq!(booths["parent"], by_title("Fit-out")["id"]);
    assert_eq!(booths["description"], "Two booths & one audiometer");
    assert_eq!(booths["plan"]["duration"], 1440);
    assert_eq!(booths["plan"]["percent_complete"], 50);
    assert_eq!(
        booths["plan"]["constraint"],
        json!({"type": "start_no_earlier_than", "date": "2026-03-02T08:00:00"})
    );
    assert_eq!(
        booths["plan"]["baseline"],
        json!({"start": "2026-03-02T08:00:00", "finish": "2026-03-04T17:00:00"})
    );
    assert_eq!(by_title("Press release")["plan"]["mode"], "manual");
    assert_eq!(by_title("Fit-out")["plan"]["duration"], Value::Null, "a summary rolls up");
    let calendar = api.get("/calendars/workspace", ADMIN).await.expect(StatusCode::OK);
    // DayType 6 is Friday: a short day.
    assert_eq!(calendar["week"]["days"][4], "08:00-13:00", "{calendar:#}");
    assert_eq!(calendar["exceptions"].as_array().unwrap().len(), 2);

    // Export, import into a new project, export again: the same document but for its name.
    let first = api.get(&format!("/projects/{leiden}/export/mspdi"), ADMIN).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.header(header::CONTENT_TYPE), "application/xml; charset=utf-8");
    assert_eq!(first.header(header::CONTENT_DISPOSITION), "attachment; filename=\"Leiden-clinic.xml\"");
    let first = String::from_utf8(first.bytes).unwrap();
    let doc = mspdi::read(&first).unwrap();
    assert_eq!(doc.tasks.len(), 5);
    let fixture = mspdi::read(FIXTURE).unwrap();
    for (a, b) in fixture.tasks.iter().zip(&doc.tasks) {
        assert_eq!(
            (a.uid, &a.name, a.outline_level, a.summary),
            (b.uid, &b.name, b.outline_level, b.summary)
        );
        assert_eq!(a.predecessors, b.predecessors, "{}", a.name);
        assert_eq!(a.plan.constraint, b.plan.constraint, "{}", a.name);
        assert_eq!(a.plan.baseline, b.plan.baseline, "{}", a.name);
    }
    assert_eq!(doc.calendar, fixture.calendar);
    let copy = api.project("Leiden clinic (copy)").await;
    let body = json!({"xml": first, "item_type": api.task_type});
    let report =
        api.post(&format!("/projects/{copy}/import/mspdi"), ADMIN, body).await.expect(StatusCode::OK);
    assert_eq!(report["valid"], 5, "{report:#}");
    let second = api.get(&format!("/projects/{copy}/export/mspdi"), ADMIN).await;
    let second = String::from_utf8(second.bytes).unwrap();
    assert_eq!(second.replace("Leiden clinic (copy)", "Leiden clinic"), first);
}

/// The cells of the first worksheet of an XLSX file, row by row, as text.
fn xlsx_cells(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut read = |name: &str| {
        let mut s = String::new();
        if let Ok(mut f) = zip.by_name(name) {
            f.read_to_string(&mut s).unwrap();
        }
        s
    };
    let shared_xml = read("xl/sharedStrings.xml");
    let sheet_xml = read("xl/worksheets/sheet1.xml");
    let mut shared = Vec::new();
    let mut reader = quick_xml::Reader::from_str(&shared_xml);
    let mut in_t = false;
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Start(e) if e.local_name().as_ref() == b"t" => in_t = true,
            quick_xml::events::Event::End(e) if e.local_name().as_ref() == b"t" => in_t = false,
            quick_xml::events::Event::Text(t) if in_t => shared.push(t.unescape().unwrap().into_owned()),
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut reader = quick_xml::Reader::from_str(&sheet_xml);
    let (mut kind, mut in_v) = (String::new(), false);
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Start(e) if e.local_name().as_ref() == b"row" => rows.push(Vec::new()),
            quick_xml::events::Event::Start(e) if e.local_name().as_ref() == b"c" => {
                kind = e
                    .attributes()
                    .flatten()
                    .find(|a| a.key.as_ref() == b"t")
                    .map(|a| String::from_utf8(a.value.to_vec()).unwrap())
                    .unwrap_or_default();
                // Cells are written in order; an empty cell is simply absent, so pad by reference.
                let reference = e
                    .attributes()
                    .flatten()
                    .find(|a| a.key.as_ref() == b"r")
                    .map(|a| String::from_utf8(a.value.to_vec()).unwrap())
                    .unwrap();
                let column = reference
                    .chars()
                    .take_while(char::is_ascii_alphabetic)
                    .fold(0, |n, c| n * 26 + (c as usize - 'A' as usize + 1))
                    - 1;
                let row = rows.last_mut().unwrap();
                while row.len() < column {
                    row.push(String::new());
                }
            }
            quick_xml::events::Event::Start(e) if e.local_name().as_ref() == b"v" => in_v = true,
            quick_xml::events::Event::End(e) if e.local_name().as_ref() == b"v" => in_v = false,
            quick_xml::events::Event::Text(t) if in_v => {
                let v = t.unescape().unwrap().into_owned();
                let cell = if kind == "s" { shared[v.parse::<usize>().unwrap()].clone() } else { v };
                rows.last_mut().unwrap().push(cell);
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    rows
}

#[tokio::test]
async fn views_and_timesheets_export_as_csv_and_xlsx() {
    let api = api().await;
    let project = api.project("Spring campaign").await;
    let csv = "title,priority,Due\nFlyer for Delft,high,2026-03-10\n\"Poster, large\",low,2026-03-12\n";
    let body = json!({"csv": csv, "item_type": api.ticket_type, "mapping": {"Due": "custom.due"}});
    api.post(&format!("/projects/{project}/import/csv"), ADMIN, body).await.expect(StatusCode::OK);
    let view = api
        .post("/views", &api.agent, json!({"name": "Campaign: by priority", "layout": "board",
              "filter": format!("project = {project}"), "columns": ["number", "title", "priority", "custom.due"],
              "group_by": "priority", "sort": [{"field": "title"}]}))
        .await
        .expect(StatusCode::CREATED);
    let id = view["id"].as_str().unwrap();

    let reply = api.get(&format!("/views/{id}/export?format=csv"), &api.agent).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(header::CONTENT_TYPE), "text/csv; charset=utf-8");
    assert_eq!(
        reply.header(header::CONTENT_DISPOSITION),
        "attachment; filename=\"Campaign-by-priority.csv\""
    );
    let mut reader = csv::Reader::from_reader(reply.bytes.as_slice());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        vec!["priority", "number", "title", "priority", "custom.due"]
    );
    let rows: Vec<Vec<String>> =
        reader.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect();
    let titles: Vec<&str> = rows.iter().map(|r| r[2].as_str()).collect();
    assert!(titles.contains(&"Poster, large") && titles.contains(&"Flyer for Delft"), "{rows:?}");
    assert!(rows.iter().any(|r| r[4].starts_with("2026-03-10")), "{rows:?}");

    let reply = api.get(&format!("/views/{id}/export?format=xlsx"), &api.agent).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header(header::CONTENT_TYPE),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let cells = xlsx_cells(&reply.bytes);
    assert_eq!(cells[0], vec!["priority", "number", "title", "priority", "custom.due"]);
    assert_eq!(cells.len(), 3);
    assert!(cells[1..].iter().any(|r| r[2] == "Poster, large" && r[3] == "low"), "{cells:?}");
    // Numbers stay numbers.
    assert!(cells[1..].iter().all(|r| r[1].parse::<i64>().is_ok()), "{cells:?}");

    let e = api
        .get(&format!("/views/{id}/export?format=pdf"), &api.agent)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "format");

    // Timesheets.
    let items = api.items_of(&project).await;
    let number = items[0]["number"].as_i64().unwrap();
    api.post(
        &format!("/items/{number}/time"),
        &api.agent,
        json!({"started_at": "2026-03-02T09:00:00Z", "minutes": 90, "note": "Layout"}),
    )
    .await
    .expect(StatusCode::CREATED);
    let reply = api.get("/time/export?format=xlsx", &api.agent).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply.bytes));
    assert_eq!(reply.header(header::CONTENT_DISPOSITION), "attachment; filename=\"Timesheet.xlsx\"");
    let cells = xlsx_cells(&reply.bytes);
    assert_eq!(
        cells[0][..8],
        ["started_at", "person", "email", "item", "title", "minutes", "hours", "status"]
    );
    assert_eq!(
        cells[1][..9],
        [
            "2026-03-02 09:00",
            "Ann Agent",
            "ann@clinic.example",
            &format!("#{number}"),
            items[0]["title"].as_str().unwrap(),
            "90",
            "1.5",
            "draft",
            "Layout"
        ]
    );
    let reply = api.get("/time/export?format=csv&status=approved", &api.agent).await;
    assert_eq!(
        String::from_utf8(reply.bytes).unwrap().lines().count(),
        1,
        "only the header: nothing approved"
    );
}
