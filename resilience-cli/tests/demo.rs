//! The demo, end to end: the built `resilient` binary runs `demo` against the test
//! server (`DATABASE_URL`, else 127.0.0.1:5432, else a throwaway cluster) in a database
//! and output folder of its own, and must earn all six lines and write both files.

use std::process::Command;

const LINES: [&str; 6] = [
    "✅ Automatic retry on connection timeouts",
    "✅ Circuit breaker protection during outages",
    "✅ Rate limiting prevents database overload",
    "✅ Connection recovery handles network failures",
    "✅ Graceful degradation maintains pipeline reliability",
    "✅ Zero configuration - resilience works automatically",
];

#[test]
fn demo_earns_every_line_and_writes_its_results() {
    let pid = std::process::id();
    // An output folder removed when the test ends, pass or fail; the demo creates it.
    let scratch = tempfile::Builder::new()
        .prefix("resilient-demo-test-")
        .tempdir()
        .unwrap();
    let out = scratch.path().join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_resilient"))
        .args(["demo", "--output"])
        .arg(&out)
        .args(["--database-name", &format!("resilient_demo_test_{pid}")])
        .env_remove("RESILIENCE_PROFILE")
        .env_remove("RESILIENCE_POLICY_DIR")
        .env_remove("RUST_LOG")
        .output()
        .expect("the resilient binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed ({}):\n{stdout}\n{stderr}",
        output.status
    );

    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with('✅') || l.starts_with('❌'))
        .collect();
    assert_eq!(summary, LINES, "\n{stdout}");
    assert!(
        stdout.contains(
            "Configuration applied: Retry: 3 attempts, Circuit Breaker: 5 failure threshold, \
             Rate Limit: 300/min"
        ),
        "{stdout}"
    );

    let results = std::fs::read_to_string(out.join("resilience_test_results.csv")).unwrap();
    assert_eq!(
        results,
        "test_name,customers_loaded,orders_loaded,products_loaded,order_items_loaded,status\n\
         Resilient PostgreSQL Test,1000,5000,500,15000,All operations completed successfully\n"
    );

    let stress = std::fs::read_to_string(out.join("resilience_stress_test_results.csv")).unwrap();
    let lines: Vec<&str> = stress.lines().collect();
    assert_eq!(lines[0], "customer_id,customer_name,email,created_at,notes");
    assert_eq!(
        lines[1],
        r#"1,John Doe,john@example.com,2024-01-15,"VIP, prefers ""email"" contact""#
    );
    assert_eq!(
        lines[2],
        "2,Jane Smith,jane@example.com,2024-01-16,Net 30 terms"
    );
    assert_eq!(lines.len(), 1001, "header and one row per customer");
    let mut ids: Vec<u32> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=1000).collect::<Vec<_>>(), "every customer once");
    let leftovers = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count();
    assert_eq!(leftovers, 0, "no temporary files left behind");
}

#[test]
fn a_bad_database_name_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_resilient"))
        .args([
            "demo",
            "--database-name",
            "Robert'); DROP TABLE students;--",
        ])
        .output()
        .expect("the resilient binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("expected 1 to 63 of [a-z0-9_]"), "{stderr}");
}
