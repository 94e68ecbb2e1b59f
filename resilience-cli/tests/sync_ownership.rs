//! `resilient sync` owns its output folder: a run whose state does not account for the
//! folder's output is refused with exit 2 before it writes or deletes anything, and two
//! runs with different states cannot share a folder.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{OUTPUT_MANIFEST as MANIFEST, Scratch, TestDb, resilient, run_in, sync_in, text};

/// `items` (incremental, 4 parts of 300 rows and one of 100) and `snap` (full).
fn setup(tag: &str) -> (TestDb, Scratch) {
    let db = TestDb::create(
        tag,
        "CREATE TABLE items (id bigint PRIMARY KEY, v text NOT NULL, updated_at timestamp NOT NULL);
         INSERT INTO items SELECT g, 'v' || g, TIMESTAMP '2024-01-01' + g * INTERVAL '1 second'
         FROM generate_series(1, 1000) g;
         CREATE TABLE snap (id bigint PRIMARY KEY, v text NOT NULL);
         INSERT INTO snap VALUES (1, 'a'), (2, 'b');",
    );
    let dir = Scratch::new(tag);
    std::fs::write(
        dir.path().join("p.toml"),
        format!(
            "[pipeline]\npage_size = 300\ncommit_rows = 300\n\n[connections.main]\n{}\n\
             [[sources]]\nname = \"items\"\ntype = \"postgres\"\nconnection = \"main\"\n\
             table = \"items\"\nsync_mode = \"incremental\"\ncursor_field = \"updated_at\"\n\n\
             [[sources]]\nname = \"snap\"\ntype = \"postgres\"\nconnection = \"main\"\n\
             table = \"snap\"\nsync_mode = \"full\"\n",
            db.connection_toml()
        ),
    )
    .unwrap();
    (db, dir)
}

/// Runs the sync with `--state <state>` (and `--output out`).
fn sync_with(dir: &Scratch, state: &str) -> (Option<i32>, String) {
    let out = run_in(
        dir.path(),
        &[
            "sync", "--config", "p.toml", "--output", "out", "--state", state,
        ],
    );
    (out.status.code(), text(&out).1)
}

/// Every file of `out/` with its bytes, the manifest included.
fn snapshot(dir: &Scratch) -> BTreeMap<String, Vec<u8>> {
    let mut names = dir.files("out");
    if dir.path().join("out").join(MANIFEST).exists() {
        names.push(MANIFEST.to_owned());
    }
    names
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(dir.path().join("out").join(&name)).unwrap();
            (name, bytes)
        })
        .collect()
}

/// A first run with `st/state.json`, then the table changes so that any rewrite of the
/// output would show: returns the committed output.
fn first_run(db: &TestDb, dir: &Scratch) -> BTreeMap<String, Vec<u8>> {
    let out = sync_in(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let files = snapshot(dir);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            MANIFEST,
            "items.000001.csv",
            "items.000002.csv",
            "items.000003.csv",
            "items.000004.csv",
            "snap.csv"
        ]
    );
    common::rt().block_on(db.exec(
        "DELETE FROM items WHERE id > 10; UPDATE items SET v = 'changed'; \
         UPDATE snap SET v = 'changed'",
    ));
    files
}

#[test]
fn a_mistyped_state_does_not_delete_another_states_output() {
    let (db, dir) = setup("own_typo");
    let committed = first_run(&db, &dir);

    let (code, stderr) = sync_with(&dir, "st/stat.json");
    assert_eq!(code, Some(2), "{stderr}");
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let owner = root.join("st/state.json");
    let mistyped = root.join("st/stat.json");
    let want = format!(
        "error: output folder out belongs to the state file {} (pipeline {}), not to {}; a run \
         never writes into another state's output. Run with --state {}, or choose another \
         --output; if you moved the state file to {}, delete out/{MANIFEST} and run again",
        owner.display(),
        root.join("p.toml").display(),
        mistyped.display(),
        owner.display(),
        mistyped.display(),
    );
    assert!(stderr.contains(&want), "{stderr}");
    assert_eq!(snapshot(&dir), committed, "nothing deleted or rewritten");
    assert!(
        !dir.path().join("st/stat.json").exists(),
        "no state written"
    );
}

#[test]
fn a_folder_without_manifest_is_refused_when_the_state_does_not_account_for_it() {
    // A folder written before manifests existed, or whose manifest was deleted.
    let (db, dir) = setup("own_legacy");
    let mut committed = first_run(&db, &dir);
    std::fs::remove_file(dir.path().join("out").join(MANIFEST)).unwrap();
    committed.remove(MANIFEST);

    let (code, stderr) = sync_with(&dir, "elsewhere/state.json");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "error: output folder out holds 5 output files that the state file \
             elsewhere/state.json does not account for: items.000001.csv (the state has no \
             source `items`), items.000002.csv (the state has no source `items`), \
             items.000003.csv (the state has no source `items`), items.000004.csv (the state \
             has no source `items`), snap.csv (the state has no source `snap`). They may belong \
             to another pipeline or state (is --state right?); a run never deletes them."
        ),
        "{stderr}"
    );
    assert_eq!(snapshot(&dir), committed, "nothing deleted or rewritten");

    // The state that wrote the folder takes it over and records the manifest.
    common::rt()
        .block_on(db.exec("INSERT INTO items VALUES (5000, 'new', TIMESTAMP '2030-01-01')"));
    let (code, stderr) = sync_with(&dir, "st/state.json");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(dir.path().join("out").join(MANIFEST).exists());
    for (name, bytes) in &committed {
        if name != "snap.csv" {
            let now = std::fs::read(dir.path().join("out").join(name)).unwrap();
            assert_eq!(&now, bytes, "{name} kept");
        }
    }
    assert!(dir.files("out").contains(&"items.000005.csv".to_owned()));
}

#[test]
fn a_deleted_state_with_output_left_is_refused() {
    let (db, dir) = setup("own_deleted");
    let committed = first_run(&db, &dir);
    std::fs::remove_file(dir.path().join("st/state.json")).unwrap();

    let (code, stderr) = sync_with(&dir, "st/state.json");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: the state file st/state.json does not exist, but output folder out was \
             written with it and holds 5 output files: items.000001.csv, items.000002.csv, \
             items.000003.csv, items.000004.csv, snap.csv. Restore the state file (from a \
             backup, or move it back); if it was moved, run with --state naming where it is \
             now and delete out/{MANIFEST}; to start over, move those files out of out or \
             choose another --output"
        )),
        "{stderr}"
    );
    assert_eq!(snapshot(&dir), committed, "nothing deleted or rewritten");
}

#[test]
fn a_moved_state_takes_its_folder_back_once_the_manifest_is_deleted() {
    let (db, dir) = setup("own_moved");
    let committed = first_run(&db, &dir);
    std::fs::create_dir_all(dir.path().join("moved")).unwrap();
    std::fs::rename(
        dir.path().join("st/state.json"),
        dir.path().join("moved/state.json"),
    )
    .unwrap();

    let (code, stderr) = sync_with(&dir, "moved/state.json");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "if you moved the state file to {}, delete out/{MANIFEST} and run again",
            std::fs::canonicalize(dir.path().join("moved"))
                .unwrap()
                .join("state.json")
                .display()
        )),
        "{stderr}"
    );
    assert_eq!(snapshot(&dir), committed);

    std::fs::remove_file(dir.path().join("out").join(MANIFEST)).unwrap();
    common::rt()
        .block_on(db.exec("INSERT INTO items VALUES (5000, 'new', TIMESTAMP '2030-01-01')"));
    let (code, stderr) = sync_with(&dir, "moved/state.json");
    assert_eq!(code, Some(0), "{stderr}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out").join(MANIFEST)).unwrap())
            .unwrap();
    assert!(
        manifest["state"]
            .as_str()
            .unwrap()
            .ends_with("/moved/state.json"),
        "{manifest}"
    );
    let part5 = std::fs::read_to_string(dir.path().join("out/items.000005.csv")).unwrap();
    assert_eq!(
        part5.lines().skip(1).collect::<Vec<_>>().len(),
        1,
        "{part5}"
    );
}

#[test]
fn parts_beyond_the_one_orphan_are_refused_not_deleted() {
    let (db, dir) = setup("own_beyond");
    first_run(&db, &dir);
    // Part 5 is what a run killed between its rename and its state update leaves; part 6
    // cannot come from this state.
    let part = std::fs::read(dir.path().join("out/items.000004.csv")).unwrap();
    std::fs::write(dir.path().join("out/items.000005.csv"), &part).unwrap();
    std::fs::write(dir.path().join("out/items.000006.csv"), &part).unwrap();
    let before = snapshot(&dir);

    let (code, stderr) = sync_with(&dir, "st/state.json");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "error: output folder out holds 1 output file that the state file st/state.json \
             does not account for: items.000006.csv (beyond part 000004, the last committed part \
             of source `items`). It may belong to another pipeline or state (is --state right?); \
             a run never deletes it."
        ),
        "{stderr}"
    );
    assert_eq!(snapshot(&dir), before);

    // Without part 6, part 5 is the orphan of an interrupted run: replaced, not kept twice.
    std::fs::remove_file(dir.path().join("out/items.000006.csv")).unwrap();
    let (code, stderr) = sync_with(&dir, "st/state.json");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("removed output of an interrupted run")
            && stderr.contains("items.000005.csv"),
        "{stderr}"
    );
    assert!(!dir.path().join("out/items.000005.csv").exists());
}

#[test]
fn files_that_are_not_output_are_left_alone() {
    let (_db, dir) = setup("own_foreign");
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    let foreign = [
        ("README.md", "about this folder\n"),
        ("notes.txt", "x\n"),
        ("report.csv", "a,b\n1,2\n"),
    ];
    for (name, body) in foreign {
        std::fs::write(dir.path().join("out").join(name), body).unwrap();
    }
    let out = sync_in(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    for (name, body) in foreign {
        let now = std::fs::read_to_string(dir.path().join("out").join(name)).unwrap();
        assert_eq!(now, body, "{name} untouched");
    }
    assert!(dir.files("out").contains(&"items.000004.csv".to_owned()));
}

#[test]
fn two_runs_with_different_states_cannot_share_an_output_folder() {
    let (db, dir) = setup("own_two");
    // Many commits under the db policy's rate limit (burst 50, then 5 pages a second): the
    // first run takes seconds, and the second starts after its first commit.
    common::rt().block_on(db.exec(
        "INSERT INTO items SELECT g, 'v' || g, TIMESTAMP '2025-01-01' + g * INTERVAL '1 second'
         FROM generate_series(1001, 30000) g",
    ));
    let p = std::fs::read_to_string(dir.path().join("p.toml")).unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        p.replace(
            "page_size = 300\ncommit_rows = 300",
            "page_size = 400\ncommit_rows = 400",
        ),
    )
    .unwrap();
    let mut first = resilient()
        .current_dir(dir.path())
        .args(["sync", "--config", "p.toml", "--output", "out"])
        .args(["--state", "a/state.json", "--source", "items"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(first.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(log.read_line(&mut line).unwrap() > 0, "ended early: {seen}");
        seen.push_str(&line);
        if line.contains("committed part") {
            break;
        }
    }

    // Refused whether the first run still holds the folder's lock or has just finished: the
    // folder is the first state's either way, and nothing of it is deleted.
    let (code, stderr) = sync_with(&dir, "b/state.json");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("error: output folder out belongs to the state file"),
        "{stderr}"
    );
    assert!(!dir.path().join("b/state.json").exists());

    let mut rest = String::new();
    std::io::Read::read_to_string(&mut log, &mut rest).unwrap();
    assert_eq!(first.wait().unwrap().code(), Some(0), "{rest}");
    let mut ids = Vec::new();
    for name in dir.files("out") {
        if name.starts_with("items.") {
            let body = std::fs::read_to_string(dir.path().join("out").join(&name)).unwrap();
            ids.extend(
                body.lines()
                    .skip(1)
                    .map(|l| l.split(',').next().unwrap().parse::<i64>().unwrap()),
            );
        }
    }
    ids.sort();
    assert_eq!(ids, (1..=30_000).collect::<Vec<_>>(), "every row once");
}
