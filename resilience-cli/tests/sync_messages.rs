//! What `resilient sync` says when it refuses: the pipeline line of the setting at fault
//! (also for problems the server finds), no Rust type or variant names, values echoed cut
//! to 200 characters, and exit 2 for every configuration problem.

mod common;

use common::{Scratch, TestDb, run_in, sync_in, text};

/// Words of Rust that must never reach a message.
const RUST_WORDS: [&str; 10] = [
    "Some(",
    "None",
    "Lag::",
    "Units(",
    "Time(",
    "NullCursor",
    "struct ",
    "enum ",
    "usize",
    "discover()",
];

fn assert_plain(stderr: &str) {
    for word in RUST_WORDS {
        assert!(!stderr.contains(word), "`{word}` in: {stderr}");
    }
}

/// A one-source incremental pipeline: `name` on line 2, `table` 5, `cursor_field` 7, then
/// `extra` from line 8, and the connection last.
fn pipeline(dir: &Scratch, connection: &str, table: &str, cursor: &str, extra: &str) {
    std::fs::write(
        dir.path().join("p.toml"),
        format!(
            "[[sources]]\nname = \"items\"\ntype = \"postgres\"\nconnection = \"main\"\n\
             table = \"{table}\"\nsync_mode = \"incremental\"\ncursor_field = \"{cursor}\"\n\
             {extra}\n[connections.main]\n{connection}\n"
        ),
    )
    .unwrap();
}

fn sync(dir: &Scratch, extra: &[&str]) -> (Option<i32>, String) {
    let out = sync_in(dir.path(), extra);
    (out.status.code(), text(&out).1)
}

fn db(tag: &str) -> TestDb {
    TestDb::create(
        tag,
        "CREATE TABLE items (id bigint PRIMARY KEY, updated_at timestamp, note text,
             score double precision);
         INSERT INTO items SELECT g, TIMESTAMP '2024-01-01' + g * INTERVAL '1 minute', 'n', g
         FROM generate_series(1, 20) g;
         CREATE TABLE nokey (id bigint, updated_at timestamp NOT NULL);
         CREATE TABLE seq (id bigint PRIMARY KEY, version bigint NOT NULL);
         INSERT INTO seq VALUES (1, 1);",
    )
}

#[test]
fn problems_found_on_the_server_name_the_pipeline_line() {
    let db = db("msg_server");
    let dir = Scratch::new("msg_server");
    let conn = db.connection_toml();

    pipeline(&dir, &conn, "itemz", "updated_at", "");
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "error: p.toml:5:9: source `items` (table itemz): table \"itemz\" is not in the \
             catalog of schema \"public\"; names must be spelled exactly as the catalog lists \
             them, case included"
        ),
        "{stderr}"
    );

    pipeline(&dir, &conn, "items", "updatedat", "");
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "error: p.toml:7:16: source `items` (table items): column \"updatedat\" is not in \
             table public.items; its columns are: id, updated_at, note, score"
        ),
        "{stderr}"
    );

    pipeline(&dir, &conn, "items", "score", "");
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "error: p.toml:7:16: source `items` (table items): cursor column \"score\" has type \
             double precision; allowed cursor types: smallint, integer, bigint, numeric, date, \
             timestamp, timestamptz, text, varchar, char"
        ),
        "{stderr}"
    );

    pipeline(&dir, &conn, "nokey", "updated_at", "");
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "error: p.toml:5:9: source `items` (table nokey): table public.nokey has no primary \
             key; an incremental read needs one"
        ),
        "{stderr}"
    );
    assert_plain(&stderr);
    assert!(dir.files("out").is_empty(), "{:?}", dir.files("out"));
}

#[test]
fn a_refused_login_names_the_connection_entry() {
    let db = db("msg_login");
    let dir = Scratch::new("msg_login");
    let (host, port) = db
        .host_key()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .unwrap();
    let connection = format!(
        "host = \"{host}\"\nport = {port}\ndatabase = \"{}\"\nuser = \"no_such_role_here\"\n\
         sslmode = \"disable\"",
        db.name
    );
    pipeline(&dir, &connection, "items", "updated_at", "");
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    // "role ... does not exist" under trust authentication, a password failure otherwise.
    assert!(
        stderr.contains(
            "error: p.toml:9:1: source `items` (table items): cannot connect: error returned \
             from database: "
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("no_such_role_here") && stderr.contains("(SQLSTATE 28"),
        "{stderr}"
    );
    assert!(!stderr.contains(" at line "), "{stderr}");
}

#[test]
fn a_lag_that_does_not_fit_names_its_line_in_plain_words() {
    let db = db("msg_lag");
    let dir = Scratch::new("msg_lag");
    let conn = db.connection_toml();

    pipeline(&dir, &conn, "items", "updated_at", "lag = 100\n");
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "error: p.toml:8:7: source `items` (table items): invalid lag: a lag of 100 units \
             does not fit a cursor of type timestamp: date, timestamp and timestamptz cursors \
             take a duration, integer cursors a whole number of units (not negative), other \
             cursors no lag"
        ),
        "{stderr}"
    );
    assert_plain(&stderr);

    pipeline(&dir, &conn, "seq", "version", "lag = \"5m\"\n");
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("error: p.toml:8:7: source `items` (table seq): invalid lag: a lag of 300s does not fit a cursor of type int8"),
        "{stderr}"
    );
    assert_plain(&stderr);
}

#[test]
fn null_cursor_refusal_names_the_setting_in_plain_words() {
    let db = db("msg_null");
    common::rt().block_on(db.exec("UPDATE items SET updated_at = NULL WHERE id <= 2"));
    let dir = Scratch::new("msg_null");
    pipeline(&dir, &db.connection_toml(), "items", "updated_at", "");
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error: source `items` (table items): 2 rows of public.items have a NULL cursor \
             (\"updated_at\"); an incremental read cannot place such rows in cursor order, and \
             refuses them rather than leave them out unannounced; to leave them out and count \
             them, set null_cursor = \"skip\" on this source (p.toml:1:1), or give those rows a \
             cursor value"
        ),
        "{stderr}"
    );
    assert_plain(&stderr);
}

#[test]
fn a_bad_checkpoint_value_gets_no_null_cursor_hint() {
    let db = db("msg_checkpoint");
    let dir = Scratch::new("msg_checkpoint");
    pipeline(&dir, &db.connection_toml(), "items", "updated_at", "");
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let path = dir.path().join("st/state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    state["sources"]["items"]["checkpoint"]["cursor"]["value"] = "not a time".into();
    std::fs::write(&path, state.to_string()).unwrap();

    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(
        code,
        Some(2),
        "a damaged state is the operator's to fix: {stderr}"
    );
    assert!(
        stderr.contains(
            "error: source `items` (table items): the checkpoint in the state file \
             st/state.json holds updated_at = `not a time`, which the server refuses as a \
             timestamp without time zone: error returned from database: invalid input syntax \
             for type timestamp: \"not a time\" (SQLSTATE 22007); the state file was edited, or \
             the column's type changed since it was written; restore the state file, or to \
             start over"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("null_cursor"), "{stderr}");
    assert!(!stderr.contains("NULL"), "{stderr}");
}

#[test]
fn long_values_are_echoed_cut_to_200_characters() {
    let db = db("msg_long");
    let dir = Scratch::new("msg_long");
    let conn = db.connection_toml();
    let long = "x".repeat(1_000_000);
    let cut = format!("{}…", "x".repeat(200));

    // A table name (echoed by the run, the log and the catalog check).
    pipeline(&dir, &conn, &long, "updated_at", "");
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.len() < 8_000,
        "{} bytes: {stderr:.9000}",
        stderr.len()
    );
    assert!(
        stderr.contains(&format!("{cut}\" (1000000 characters)")),
        "{stderr}"
    );

    // A value the file parser quotes, and one the pipeline check quotes.
    for extra in [
        format!("null_cursor = \"{long}\"\n"),
        format!("lag = \"{long}\"\n"),
    ] {
        pipeline(&dir, &conn, "items", "updated_at", &extra);
        let (code, stderr) = sync(&dir, &[]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.len() < 8_000,
            "{} bytes: {stderr:.9000}",
            stderr.len()
        );
        assert!(
            stderr.contains(&format!("{cut}` (1000000 characters)")),
            "{stderr}"
        );
    }

    // A checkpoint value in the state file, which the server quotes back.
    pipeline(&dir, &conn, "items", "updated_at", "");
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let path = dir.path().join("st/state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    state["sources"]["items"]["checkpoint"]["cursor"]["value"] = long.clone().into();
    std::fs::write(&path, state.to_string()).unwrap();
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.len() < 8_000,
        "{} bytes: {stderr:.9000}",
        stderr.len()
    );
    assert!(
        stderr.contains(&format!("holds updated_at = `{cut}` (1000000 characters)")),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("\"{cut}\" (1000000 characters) (SQLSTATE 22007)")));
}

/// A scratch folder with a pipeline whose server is never reached.
fn offline(tag: &str) -> Scratch {
    let dir = Scratch::new(tag);
    pipeline(
        &dir,
        "url = \"postgres://postgres@127.0.0.1:1/x\"",
        "items",
        "updated_at",
        "",
    );
    dir
}

#[test]
fn output_naming_a_file_exits_2() {
    let dir = offline("msg_outfile");
    std::fs::write(dir.path().join("out"), "not a folder").unwrap();
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "error: --output out: this is a file, not a folder; name a folder for the output \
             files (it is created when missing)"
        ),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out")).unwrap(),
        "not a folder"
    );
}

#[test]
fn metrics_addr_in_use_exits_2() {
    let dir = offline("msg_metrics");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, stderr) = sync(&dir, &["--metrics-addr", &addr]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: --metrics-addr {addr}: cannot listen there: "
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("choose a free port, or port 0 for any free one"),
        "{stderr}"
    );
}

#[test]
fn binary_state_file_exits_2() {
    let dir = offline("msg_binstate");
    std::fs::create_dir_all(dir.path().join("st")).unwrap();
    std::fs::write(dir.path().join("st/state.json"), b"{\"v\n\xff\xfe\x00").unwrap();
    let (code, stderr) = sync(&dir, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "error: st/state.json:2:1: invalid state file: byte 4 is not UTF-8 text; restore it \
             or start over with a new --state"
        ),
        "{stderr}"
    );

    // A folder where the state file should be is the same kind of mistake.
    let out = run_in(
        dir.path(),
        &[
            "sync", "--config", "p.toml", "--output", "out", "--state", "st",
        ],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot read the state file st: "),
        "{stderr}"
    );
}

#[test]
fn parser_messages_use_the_words_of_the_file() {
    let dir = Scratch::new("msg_words");
    let source = "[[sources]]\nname = \"items\"\ntype = \"postgres\"\nconnection = \"main\"\n\
                  table = \"items\"\nsync_mode = \"full\"\n";
    for (file, want) in [
        (
            format!("[connections]\nmain = 5\n{source}"),
            "p.toml:2:8: invalid type: integer `5`, expected a table",
        ),
        (
            format!("[pipeline]\nbatch_size = 0\n{source}"),
            "p.toml:2:14: invalid value: integer `0`, expected a whole number of at least 1",
        ),
        (
            format!("[connections.main]\nhost = \"h\"\nport = 99999\n{source}"),
            "p.toml:3:8: invalid value: integer `99999`, expected a whole number from 0 to 65535",
        ),
        (
            "sources = [3]\n".to_owned(),
            "p.toml:1:12: invalid type: integer `3`, expected a table",
        ),
    ] {
        std::fs::write(dir.path().join("p.toml"), &file).unwrap();
        let (code, stderr) = sync(&dir, &[]);
        assert_eq!(code, Some(2), "{file}: {stderr}");
        assert!(stderr.contains(want), "{file}: {stderr}");
        assert_plain(&stderr);
    }

    std::fs::write(
        dir.path().join("p.toml"),
        format!("[connections.main]\nurl = \"postgres://u@127.0.0.1:1/x\"\n{source}"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("st")).unwrap();
    for (state, want) in [
        (
            "[]",
            "st/state.json:1:2: invalid state file: invalid length 0, expected an object; \
             restore it or start over with a new --state",
        ),
        (
            r#"{"version": 1, "sources": {"items": 3}}"#,
            "st/state.json:1:37: invalid state file: invalid type: integer `3`, expected an \
             object; restore it",
        ),
        (
            r#"{"version": "1", "sources": {}}"#,
            "st/state.json:1:15: invalid state file: invalid type: string \"1\", expected a \
             whole number from 0 to 4294967295; restore it",
        ),
    ] {
        std::fs::write(dir.path().join("st/state.json"), state).unwrap();
        let (code, stderr) = sync(&dir, &[]);
        assert_eq!(code, Some(2), "{state}: {stderr}");
        assert!(stderr.contains(want), "{state}: {stderr}");
        assert_plain(&stderr);
    }
}
