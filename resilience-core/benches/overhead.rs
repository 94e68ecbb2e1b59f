//! Per-call overhead of the engine on the happy path, against a bare call and against
//! peer libraries configured the same way (see `support/`).
//!
//! Two scenarios per contender:
//! - `uncontended`: one task on a current-thread runtime, calls back to back;
//! - `4 tasks, 2 workers`: the same number of calls split over 4 tasks on a runtime with
//!   2 worker threads, all sharing one breaker, limiter and set of counters.
//!
//! Two measures:
//! - CPU time per call (`support/cputime.rs` says why CPU time): the calling thread's in
//!   the first scenario, the sum over all threads in the second, so perfect scaling
//!   reports the same figure in both and contention shows as an increase. Contenders are
//!   measured in interleaved rounds and the median is kept (`support/rounds.rs`).
//! - With `--instructions`: instructions per call under valgrind's callgrind
//!   (`support/instructions.rs`), repeatable whatever else the machine does.
//!
//! Before the timings, allocations per call are counted for every contender with a
//! counting global allocator (`support/alloc.rs`), after a warm-up so that one-time
//! set-up (the engine's per-key state, lazily built statics) is not counted.
//!
//! With `--parts`, a criterion group times the engine's building blocks alone, to show
//! where its per-call time goes.
//!
//! Run with `cargo bench -p resilience-core --bench overhead` (add
//! `--profile bench-lto` for the link-time-optimised build, and `-- --instructions` for
//! instruction counts).

mod support;

use std::hint::black_box;
use std::rc::Rc;
use std::time::Duration;

use tokio::runtime::{Builder, Runtime};

use support::alloc::{CountingAlloc, count};
use support::cputime;
use support::instructions::{self, CHILD_FLAG};
use support::ours::{Ours, OursMacro};
use support::peers::{BackoffFailsafe, BackonGovernorRecloser, tower};
use support::rounds::{self, Entry};
use support::{Bare, Contender};

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// Tasks in the contended scenario.
const TASKS: u64 = 4;
/// Calls made before counting allocations or instructions, and calls counted.
const WARM_UP_CALLS: u64 = 1_000;
const COUNTED_CALLS: u64 = 20_000;
/// Interleaved rounds, and calls per contender per round.
const ROUNDS: usize = 21;
const ROUND_CALLS: u64 = 100_000;

fn current_thread() -> Runtime {
    Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("build a current-thread runtime")
}

fn two_workers() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("build a 2-worker runtime")
}

/// `calls` calls on one task, back to back.
async fn run_serial<C: Contender>(contender: &mut C, calls: u64) {
    for i in 0..calls {
        let value = contender.call(black_box(i)).await;
        assert!(
            black_box(value).is_ok(),
            "{} failed on the happy path",
            C::NAME
        );
    }
}

/// `calls` calls (rounded up to a multiple of [`TASKS`]) split over [`TASKS`] tasks;
/// returns the calls made. With 0 calls the tasks are still spawned and joined.
async fn run_split<C: Contender>(contender: &C, calls: u64) -> u64 {
    let per_task = calls.div_ceil(TASKS);
    let clones: Vec<C> = (0..TASKS).map(|_| contender.clone()).collect();
    let tasks: Vec<_> = clones
        .into_iter()
        .map(|mut c| tokio::spawn(async move { run_serial(&mut c, per_task).await }))
        .collect();
    for task in tasks {
        task.await.expect("a bench task panicked");
    }
    per_task * TASKS
}

/// Something done with every contender, in [`each_contender`]'s order.
trait Visit {
    fn visit<C: Contender>(&mut self, make: fn() -> C, peer: bool);
}

/// Every contender: the bare call first (the baseline), then ours, then the peers.
fn each_contender(v: &mut impl Visit) {
    v.visit(|| Bare, false);
    v.visit(Ours::new, false);
    v.visit(OursMacro::new, false);
    #[cfg(feature = "tower")]
    v.visit(support::ours::ours_layer, false);
    v.visit(tower, true);
    v.visit(BackonGovernorRecloser::new, true);
    v.visit(BackoffFailsafe::new, true);
}

/// The contenders' names, and whether each is a peer stack.
fn names() -> Vec<(&'static str, bool)> {
    struct Names(Vec<(&'static str, bool)>);
    impl Visit for Names {
        fn visit<C: Contender>(&mut self, _: fn() -> C, peer: bool) {
            self.0.push((C::NAME, peer));
        }
    }
    let mut names = Names(Vec::new());
    each_contender(&mut names);
    names.0
}

/// Checks that the contender's retry is live: a call whose first attempt fails with a
/// transient error succeeds after one backoff delay (real time, at most a second or two:
/// pausing tokio's clock would put every later `Instant::now` in this process on tokio's
/// slow test-util path and distort the timings).
fn check_retries<C: Contender>(make: fn() -> C) {
    let mut contender = make();
    support::fail_next();
    let result = current_thread().block_on(contender.call(1));
    assert!(
        result.is_ok(),
        "{} did not retry a transient error: {result:?}",
        C::NAME
    );
}

/// Prints allocations per call of every contender, single task and 4 tasks on 2 workers,
/// after checking the retries of all but the baseline.
fn report_allocations() {
    struct Allocations;
    impl Visit for Allocations {
        fn visit<C: Contender>(&mut self, make: fn() -> C, _: bool) {
            if C::NAME != Bare::NAME {
                check_retries(make);
            }
            let serial = {
                let rt = current_thread();
                let mut contender = make();
                rt.block_on(run_serial(&mut contender, WARM_UP_CALLS));
                let ((), n) = count(|| rt.block_on(run_serial(&mut contender, COUNTED_CALLS)));
                n as f64 / COUNTED_CALLS as f64
            };
            let split = {
                let rt = two_workers();
                let contender = make();
                rt.block_on(run_split(&contender, WARM_UP_CALLS));
                let (calls, n) = count(|| rt.block_on(run_split(&contender, COUNTED_CALLS)));
                n as f64 / calls as f64
            };
            println!("  {:<40} {serial:>10.4} {split:>19.4}", C::NAME);
        }
    }
    let (_, boxed) = count(|| drop(black_box(Box::new(1u64))));
    assert_eq!(boxed, 1, "the counting allocator counts");
    println!(
        "heap allocations per call ({WARM_UP_CALLS} warm-up calls, then {COUNTED_CALLS} counted):"
    );
    println!(
        "  {:<40} {:>10} {:>19}",
        "contender", "1 task", "4 tasks, 2 workers"
    );
    each_contender(&mut Allocations);
    println!("  (the 4-task figures include spawning and joining the 4 tasks)");
}

/// The measuring functions of every contender in one scenario.
struct Entries {
    contended: bool,
    serial_rt: Rc<Runtime>,
    split_rt: Rc<Runtime>,
    entries: Vec<Entry>,
}

impl Visit for Entries {
    fn visit<C: Contender>(&mut self, make: fn() -> C, _: bool) {
        let run: Entry = if self.contended {
            let (rt, contender) = (Rc::clone(&self.split_rt), make());
            Box::new(move |calls| {
                let start = cputime::process();
                let made = rt.block_on(run_split(&contender, calls));
                (cputime::process() - start).mul_f64(calls as f64 / made as f64)
            })
        } else {
            let (rt, mut contender) = (Rc::clone(&self.serial_rt), make());
            Box::new(move |calls| {
                rt.block_on(async {
                    let start = cputime::thread();
                    run_serial(&mut contender, calls).await;
                    cputime::thread() - start
                })
            })
        };
        self.entries.push(run);
    }
}

fn report_cpu_time(rounds: usize, calls: u64) {
    let names = names();
    for (title, contended) in [("uncontended", false), ("4 tasks, 2 workers", true)] {
        let mut entries = Entries {
            contended,
            serial_rt: Rc::new(current_thread()),
            split_rt: Rc::new(two_workers()),
            entries: Vec::new(),
        };
        each_contender(&mut entries);
        let figures = rounds::measure(&mut entries.entries, rounds, calls);
        let title =
            format!("CPU time, {title} (median of {rounds} interleaved rounds of {calls} calls):");
        rounds::report(&title, "ns", &names, &figures);
    }
}

fn report_instructions(calls: u64) {
    let names = names();
    for (title, scenario) in [("uncontended", "serial"), ("4 tasks, 2 workers", "split")] {
        let figures: Vec<f64> = (0..names.len())
            .map(|index| instructions::per_call(scenario, index, calls))
            .collect();
        let title =
            format!("instructions under callgrind, {title} ({calls} calls less an empty run):");
        rounds::report(&title, "instr", &names, &figures);
    }
}

/// The measured child of [`report_instructions`]: set-up, warm-up, then `calls` calls of
/// one contender, run under callgrind by the parent.
fn instructions_child(scenario: &str, index: usize, calls: u64) {
    struct Child<'a> {
        scenario: &'a str,
        index: usize,
        calls: u64,
        seen: usize,
    }
    impl Visit for Child<'_> {
        fn visit<C: Contender>(&mut self, make: fn() -> C, _: bool) {
            self.seen += 1;
            if self.seen - 1 != self.index {
                return;
            }
            let mut contender = make();
            if self.scenario == "split" {
                let rt = two_workers();
                rt.block_on(run_split(&contender, WARM_UP_CALLS));
                rt.block_on(run_split(&contender, self.calls));
            } else {
                let rt = current_thread();
                rt.block_on(run_serial(&mut contender, WARM_UP_CALLS));
                rt.block_on(run_serial(&mut contender, self.calls));
            }
        }
    }
    let mut child = Child {
        scenario,
        index,
        calls,
        seen: 0,
    };
    each_contender(&mut child);
    assert!(index < child.seen, "no contender number {index}");
}

/// The value after `flag` in `args`, parsed, or `default`.
fn option<T: std::str::FromStr>(args: &[String], flag: &str, default: T) -> T {
    match args.iter().position(|a| a == flag) {
        None => default,
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("`{flag}` takes a number")),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == CHILD_FLAG) {
        let scenario = &args[i + 1];
        let index = args[i + 2].parse().expect("a contender index");
        let calls = args[i + 3].parse().expect("a number of calls");
        instructions_child(scenario, index, calls);
        return;
    }
    if args.iter().any(|a| a == "--parts") {
        let mut criterion = criterion::Criterion::default()
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(2));
        support::parts::bench(&mut criterion, &current_thread());
        criterion.final_summary();
        return;
    }
    if args.iter().any(|a| a == "--instructions") {
        report_instructions(option(&args, "--calls", COUNTED_CALLS));
        return;
    }
    report_allocations();
    report_cpu_time(
        option(&args, "--rounds", ROUNDS),
        option(&args, "--calls", ROUND_CALLS),
    );
}
