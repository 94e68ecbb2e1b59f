//! `resilient sync` of `type = "http"` sources against the real test API server, which
//! serves a real PostgreSQL table with queued faults (429 with `Retry-After` in both
//! forms, 503, a hung response killed mid-run): full and incremental syncs whose output,
//! loaded back into PostgreSQL, equals the table (every record once); a second incremental
//! run that picks up only the new rows; bad settings located in the pipeline file; a
//! column type the format cannot write refused before anything is written; the API's
//! secret nowhere in output, errors, state or journal; an API and a PostgreSQL source in
//! one pipeline and one state file.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::roundtrip::{connect, load_back, mismatches, outputs};
use common::secrets::{assert_not_printed, assert_not_written, with_secret};
use common::{Scratch, TestDb, text};
use sqlx::postgres::PgPoolOptions;
use test_support::http::{ApiServer, Fault, RetryAfter, Table};

const SECRET: &str = "tok-7f3a9c-never-print-me";
/// The variable the API's settings read the token from.
const TOKEN_ENV: &str = "SYNC_HTTP_TOKEN";

/// Rows `from..=to` of `items`: three rows per cursor value (ties a page boundary falls
/// inside), text with commas, quotes and line breaks, NULLs, floats and booleans.
fn rows(from: u32, to: u32) -> String {
    format!(
        "INSERT INTO items SELECT g, \
           CASE WHEN g % 7 = 0 THEN NULL WHEN g % 5 = 0 THEN 'say \"hi\", then' || chr(10) || 'go' \
                ELSE 'item ' || g END, \
           CASE WHEN g % 11 = 0 THEN NULL ELSE g * 1.25 END, g % 2 = 0, \
           timestamptz '2024-01-01 00:00:00+00' + (g / 3) * interval '1.000123 second' \
         FROM generate_series({from}, {to}) g;"
    )
}

fn database(tag: &str) -> TestDb {
    let db = TestDb::create(
        tag,
        "CREATE TABLE items (id int8 PRIMARY KEY, name text, score float8, active bool, \
         updated_at timestamptz NOT NULL);
         CREATE TABLE tagged (id int8 PRIMARY KEY, tags text[]);
         INSERT INTO tagged VALUES (1, '{a,b}'), (2, '{c}');",
    );
    common::rt().block_on(async {
        db.exec(&format!("ALTER DATABASE {} SET timezone = 'UTC'", db.name))
            .await;
        db.exec(&rows(1, 120)).await;
    });
    db
}

/// The server, on a runtime of its own that keeps serving while the binary runs.
fn serve(db: &TestDb, rt: &tokio::runtime::Runtime) -> ApiServer {
    rt.block_on(async {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(&db.url())
            .await
            .unwrap();
        ApiServer::start(
            pool,
            vec![
                Table::new("items", "id").cursor("updated_at"),
                Table::new("tagged", "id"),
            ],
            Some(SECRET.into()),
        )
        .await
        .unwrap()
    })
}

fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// The API's settings (`api.toml`) and a one-source pipeline (`p.toml`) in `dir`.
fn files(dir: &Path, server: &ApiServer, mode: &str, extra: &str) {
    std::fs::write(
        dir.join("api.toml"),
        format!(
            "base_url = \"{}/\"\nauth = {{ type = \"bearer\", from = {{ env = \"SYNC_HTTP_TOKEN\" }} }}\n\n\
             [[streams]]\nname = \"items\"\npath = \"link/items\"\npage_size = 10\n\
             primary_key = \"id\"\npagination = {{ type = \"link\" }}\nschema = [\n\
             {{ name = \"id\", type = \"integer\" }},\n{{ name = \"name\", type = \"string\" }},\n\
             {{ name = \"score\", type = \"number\" }},\n{{ name = \"active\", type = \"boolean\" }},\n\
             {{ name = \"updated_at\", type = \"timestamp\" }},\n]\n\n\
             [[streams]]\nname = \"tagged\"\npath = \"offset/tagged\"\nrecords = \"/data\"\n\
             primary_key = \"id\"\npagination = {{ type = \"offset_limit\" }}\n",
            server.base_url()
        ),
    )
    .unwrap();
    // `extra` may name another stream.
    let stream = if extra.contains("stream =") {
        ""
    } else {
        "stream = \"items\"\n"
    };
    std::fs::write(
        dir.join("p.toml"),
        format!(
            "[pipeline]\ncommit_rows = 30\n\n[[sources]]\nname = \"items\"\ntype = \"http\"\n\
             settings = \"api.toml\"\n{stream}sync_mode = \"{mode}\"\n{extra}"
        ),
    )
    .unwrap();
}

/// `resilient sync` in `dir` (see [`common::sync_cmd`]) with `token` as the API's.
fn sync_cmd(dir: &Scratch, token: &str, extra: &[&str]) -> Command {
    let mut cmd = common::sync_cmd(dir.path(), extra);
    with_secret(&mut cmd, TOKEN_ENV, Some(token));
    cmd
}

/// `resilient sync` in `dir` with the right token.
fn sync(dir: &Scratch, extra: &[&str]) -> Output {
    sync_cmd(dir, SECRET, extra)
        .output()
        .expect("the binary runs")
}

/// The output of `dir` in `format`, loaded back, compared with `items`.
fn assert_equals_table(db: &TestDb, dir: &Scratch, format: &str) {
    let files = outputs(dir, format);
    assert!(!files.is_empty(), "no {format} output");
    let bad = common::rt().block_on(async {
        let mut conn = connect(db).await;
        load_back(&mut conn, "items", "back", format, &files).await;
        mismatches(&mut conn, "items", "back", |_| None).await
    });
    assert!(
        bad.is_empty(),
        "{format} output differs from the table: {bad:#?}"
    );
}

/// No request came back before a 429's `Retry-After` allowed it.
fn assert_retry_after_honoured(server: &ApiServer) {
    let requests = server.requests();
    for pair in requests.windows(2) {
        if let Some(not_before) = pair[0].not_before {
            assert!(
                pair[1].wall >= not_before,
                "request {:?} came before the Retry-After of {:?}",
                pair[1].target,
                pair[0].target
            );
        }
    }
}

/// The secret is in none of the run's output, its state or its journal.
fn assert_no_secret(dir: &Scratch, outputs: &[&Output]) {
    for out in outputs {
        assert_not_printed(out, &[SECRET]);
    }
    assert!(dir.path().join("st").is_dir(), "the runs wrote a state");
    assert_not_written(dir.path(), "st", &[SECRET]);
}

#[test]
fn incremental_sync_rides_out_faults_resumes_after_a_kill_and_then_takes_only_new_rows() {
    let db = database("http_incr");
    let rt = server_runtime();
    let server = serve(&db, &rt);
    let dir = Scratch::new("http-incr");
    files(
        dir.path(),
        &server,
        "incremental",
        "cursor_field = \"updated_at\"\n",
    );

    // A first run through 429s (both Retry-After forms) and 503s.
    server.pass(1);
    server.push_fault(Fault::Throttle(RetryAfter::Seconds(1)), 1);
    server.push_fault(Fault::Unavailable, 1);
    server.pass(2);
    server.push_fault(
        Fault::Throttle(RetryAfter::Date(Duration::from_millis(500))),
        1,
    );
    let first = sync(&dir, &["--format", "csv"]);
    let (_, stderr) = text(&first);
    assert_eq!(first.status.code(), Some(0), "{stderr}");
    assert_eq!(server.faults_pending(), 0, "every fault was played");
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert!(
        statuses.contains(&429) && statuses.contains(&503),
        "{statuses:?}"
    );
    assert_retry_after_honoured(&server);
    assert_equals_table(&db, &dir, "csv");
    let state = std::fs::read_to_string(dir.path().join("st/state.json")).unwrap();
    assert!(state.contains("\"api_checkpoint\""), "{state}");
    let parts_after_first = outputs(&dir, "csv").len();
    assert!(parts_after_first >= 4, "120 rows in parts of 30");

    // New rows; the run is killed while a page hangs, after it committed a part.
    common::rt().block_on(db.exec(&rows(121, 200)));
    server.clear_requests();
    server.pass(4);
    server.push_fault(Fault::Slow(Duration::from_secs(60)), 1);
    let mut child = sync_cmd(&dir, SECRET, &["--format", "csv"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while outputs(&dir, "csv").len() == parts_after_first || server.faults_pending() > 0 {
        assert!(Instant::now() < deadline, "the run committed no new part");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::park_timeout(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    server.clear_faults();

    // Resumed: the rest, each record once, only rows of the new range.
    let resumed = sync(&dir, &["--format", "csv"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed).1);
    assert_equals_table(&db, &dir, "csv");
    let new_parts: Vec<_> = outputs(&dir, "csv")[parts_after_first..].to_vec();
    let new_ids: Vec<i64> = new_parts
        .iter()
        .flat_map(|p| {
            common::rt().block_on(async {
                let mut conn = connect(&db).await;
                load_back(&mut conn, "items", "fresh", "csv", std::slice::from_ref(p)).await;
                sqlx::query_scalar::<_, i64>("SELECT id FROM fresh ORDER BY id")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap()
            })
        })
        .collect();
    assert_eq!(
        new_ids.len(),
        80,
        "only the 80 new rows after the first run"
    );
    assert!(new_ids.iter().all(|id| *id > 120), "{new_ids:?}");
    assert_no_secret(&dir, &[&first, &resumed]);

    // Nothing new: nothing written, exit 0.
    let idle = sync(&dir, &["--format", "csv"]);
    assert_eq!(idle.status.code(), Some(0), "{}", text(&idle).1);
    assert_equals_table(&db, &dir, "csv");
}

#[test]
fn full_sync_rides_out_faults_in_json_lines_and_parquet() {
    let db = database("http_full");
    let rt = server_runtime();
    let server = serve(&db, &rt);
    for format in ["jsonl", "parquet"] {
        let dir = Scratch::new(&format!("http-full-{format}"));
        files(dir.path(), &server, "full", "");
        server.clear_requests();
        server.push_fault(Fault::Unavailable, 1);
        server.pass(3);
        server.push_fault(Fault::Throttle(RetryAfter::Seconds(1)), 1);
        let out = sync(&dir, &["--format", format]);
        assert_eq!(out.status.code(), Some(0), "{format}: {}", text(&out).1);
        assert_eq!(server.faults_pending(), 0);
        assert_retry_after_honoured(&server);
        assert_eq!(dir.files("out"), [format!("items.{format}")]);
        assert_equals_table(&db, &dir, format);
        // A second full run rewrites the snapshot: still every record once.
        let again = sync(&dir, &["--format", format]);
        assert_eq!(again.status.code(), Some(0), "{}", text(&again).1);
        assert_equals_table(&db, &dir, format);
        assert_no_secret(&dir, &[&out, &again]);
    }
}

/// A pipeline or settings file that is wrong, and what the refusal (exit 2) must say.
struct BadSettings {
    mode: &'static str,
    /// Lines added to the source in `p.toml`.
    extra: &'static str,
    /// A text of `api.toml` and what it becomes.
    settings_edit: Option<(&'static str, &'static str)>,
    /// What stderr must hold.
    wants: &'static [&'static str],
}

const BAD_SETTINGS: [BadSettings; 6] = [
    BadSettings {
        mode: "incremental",
        extra: "cursor_field = \"updated_at\"\nstream = \"nope\"\n",
        settings_edit: None,
        wants: &["p.toml:", "unknown stream `nope`", "items, tagged"],
    },
    BadSettings {
        mode: "full",
        extra: "table = \"items\"\n",
        settings_edit: None,
        wants: &[
            "p.toml:",
            "`table` does not apply to type = \"http\"",
            "settings, stream",
        ],
    },
    BadSettings {
        mode: "incremental",
        extra: "cursor_field = \"updated_at\"\nlookback = \"soon\"\n",
        settings_edit: None,
        wants: &["p.toml:", "invalid lookback `soon`", "\"5m\""],
    },
    BadSettings {
        mode: "full",
        extra: "policy = \"nope\"\n",
        settings_edit: None,
        wants: &["p.toml:", "unknown policy `nope`", "api"],
    },
    BadSettings {
        mode: "incremental",
        extra: "",
        settings_edit: None,
        wants: &["p.toml:", "needs cursor_field"],
    },
    // A settings file that does not parse: its own file:line named.
    BadSettings {
        mode: "full",
        extra: "",
        settings_edit: Some(("page_size = 10", "page_size = 10\npages = 3")),
        wants: &["p.toml:", "api.toml:8:", "pages"],
    },
];

impl BadSettings {
    /// Writes the files into `dir`, runs the sync and says what it got wrong.
    fn misses(&self, dir: &Scratch, server: &ApiServer) -> Vec<String> {
        files(dir.path(), server, self.mode, self.extra);
        if let Some((from, to)) = self.settings_edit {
            let api = std::fs::read_to_string(dir.path().join("api.toml")).unwrap();
            assert!(api.contains(from), "{from:?} not in {api}");
            std::fs::write(dir.path().join("api.toml"), api.replace(from, to)).unwrap();
        }
        let out = sync(dir, &[]);
        let (_, stderr) = text(&out);
        let case = format!("{} {:?} {:?}", self.mode, self.extra, self.settings_edit);
        let mut misses = Vec::new();
        if out.status.code() != Some(2) {
            misses.push(format!(
                "{case}: exit {:?}, want 2: {stderr}",
                out.status.code()
            ));
        }
        for want in self.wants {
            if !stderr.contains(want) {
                misses.push(format!("{case}: want {want:?} in {stderr}"));
            }
        }
        misses
    }
}

#[test]
fn bad_settings_are_located_and_unwritable_types_refused_before_writing() {
    let db = database("http_bad");
    let rt = server_runtime();
    let server = serve(&db, &rt);
    let dir = Scratch::new("http-bad");
    // Every case is run and every miss reported, so one change that moves several
    // messages shows them all.
    let failures: Vec<String> = BAD_SETTINGS
        .iter()
        .flat_map(|case| case.misses(&dir, &server))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // A wrong credential: refused, said clearly, neither token printed.
    files(dir.path(), &server, "full", "");
    let wrong = "wrong-token-8d1e";
    let out = sync_cmd(&dir, wrong, &[])
        .output()
        .expect("the binary runs");
    let (_, stderr) = text(&out);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("source `items`"), "{stderr}");
    assert_not_printed(&out, &[wrong, SECRET]);
    assert!(outputs(&dir, "csv").is_empty());

    // An inferred array column: CSV cannot write it; refused before any file, exit 2.
    let dir = Scratch::new("http-bad-types");
    files(dir.path(), &server, "full", "");
    std::fs::write(
        dir.path().join("p.toml"),
        "[[sources]]\nname = \"tagged\"\ntype = \"http\"\nsettings = \"api.toml\"\n\
         stream = \"tagged\"\nsync_mode = \"full\"\n",
    )
    .unwrap();
    let out = sync(&dir, &["--format", "csv"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("source `tagged`")
            && stderr.contains("\"tags\"")
            && stderr.contains("List"),
        "{stderr}"
    );
    assert!(dir.files("out").is_empty(), "{:?}", dir.files("out"));
    // Parquet holds the list as is.
    let out = sync(&dir, &["--format", "parquet"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert_eq!(dir.files("out"), ["tagged.parquet"]);
}

#[test]
fn an_api_and_a_postgres_source_share_one_pipeline_and_one_state() {
    let db = database("http_mixed");
    let rt = server_runtime();
    let server = serve(&db, &rt);
    let dir = Scratch::new("http-mixed");
    files(
        dir.path(),
        &server,
        "incremental",
        "cursor_field = \"updated_at\"\n",
    );
    // The http source `files` wrote, after the connection and before a PostgreSQL
    // source of the same table.
    let api_source = std::fs::read_to_string(dir.path().join("p.toml"))
        .unwrap()
        .replace("[pipeline]\ncommit_rows = 30\n", "");
    std::fs::write(
        dir.path().join("p.toml"),
        format!(
            "[pipeline]\ncommit_rows = 30\n\n[connections.main]\n{}\n{api_source}\n\
             [[sources]]\nname = \"items_pg\"\ntype = \"postgres\"\nconnection = \"main\"\n\
             table = \"items\"\nsync_mode = \"incremental\"\ncursor_field = \"updated_at\"\n",
            db.connection_toml()
        ),
    )
    .unwrap();
    let out = sync(&dir, &["--format", "jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("st/state.json")).unwrap())
            .unwrap();
    let sources = &state["sources"];
    assert_eq!(sources["items"]["rows"], 120);
    assert_eq!(sources["items_pg"]["rows"], 120);
    assert!(
        sources["items"]["api_checkpoint"]["cursor"].is_string(),
        "{state}"
    );
    assert!(sources["items"]["checkpoint"].is_null(), "{state}");
    assert!(sources["items_pg"]["checkpoint"].is_object(), "{state}");
    assert!(
        sources["items_pg"].get("api_checkpoint").is_none(),
        "{state}"
    );
    let files = outputs(&dir, "jsonl");
    for prefix in ["items.", "items_pg."] {
        let mine: Vec<_> = files
            .iter()
            .filter(|f| f.file_name().unwrap().to_string_lossy().starts_with(prefix))
            .cloned()
            .collect();
        let bad = common::rt().block_on(async {
            let mut conn = connect(&db).await;
            load_back(&mut conn, "items", "back", "jsonl", &mine).await;
            mismatches(&mut conn, "items", "back", |_| None).await
        });
        assert!(bad.is_empty(), "{prefix}: {bad:#?}");
    }
}
