//! Instructions per call, counted by valgrind's callgrind.
//!
//! CPU time depends on the machine and on what else it runs; an instruction count does
//! not, so it repeats to the instruction from run to run and tells a change of a few
//! per cent from noise. The bench runs itself under `valgrind --tool=callgrind` once per
//! contender with `N` calls and once with none, after the same set-up and warm-up, and
//! divides the difference of the two totals by `N`: what is left is the calls alone.
//!
//! An instruction count is not a time (a cache miss or a contended cache line costs far
//! more than an add, and valgrind runs threads one at a time, so the 4-task figure shows
//! no contention at all); it is reported next to CPU time, not instead of it.

use std::process::Command;

/// The argument that makes the bench a measured child (scenario, contender index, calls).
pub const CHILD_FLAG: &str = "--instructions-child";

/// Instructions per call of the contender at `index` in `scenario`, over `calls` calls.
pub fn per_call(scenario: &str, index: usize, calls: u64) -> f64 {
    let full = total(scenario, index, calls);
    let empty = total(scenario, index, 0);
    (full as f64 - empty as f64) / calls as f64
}

/// The instructions callgrind counted in one child run.
fn total(scenario: &str, index: usize, calls: u64) -> u64 {
    let exe = std::env::current_exe().expect("the bench binary's path");
    let output = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            "--dump-instr=no",
        ])
        .arg(exe)
        .args([CHILD_FLAG, scenario, &index.to_string(), &calls.to_string()])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `valgrind` ({e}): install valgrind to count instructions")
        });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the measured child failed under valgrind:\n{stderr}"
    );
    stderr
        .lines()
        .find_map(|line| {
            let (_, count) = line.split_once("Collected :")?;
            count.trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("no `Collected :` total in callgrind's output:\n{stderr}"))
}
