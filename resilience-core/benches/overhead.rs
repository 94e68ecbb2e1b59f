//! Per-call overhead of the engine on the happy path, against a bare call and against
//! peer libraries configured the same way (see `support/`).
//!
//! Two scenarios per contender:
//! - `uncontended`: one task on a current-thread runtime, calls back to back;
//! - `4_tasks_2_workers`: the same number of calls split over 4 tasks on a runtime with
//!   2 worker threads, all sharing one breaker, limiter and set of counters.
//!
//! The figures are CPU time per call (`support/cputime.rs` says why): the calling
//! thread's in the first scenario, the sum over all threads in the second, so perfect
//! scaling reports the same figure in both and contention shows as an increase.
//!
//! A third group, `engine_parts`, times the engine's building blocks alone, to show
//! where its per-call time goes.
//!
//! Before the timings, allocations per call are counted for every contender with a
//! counting global allocator (`support/alloc.rs`), after a warm-up so that one-time
//! set-up (the engine's per-key state, lazily built statics) is not counted.
//!
//! Run with `cargo bench -p resilience-core --bench overhead`.

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};
use tokio::runtime::{Builder, Runtime};

use support::alloc::{CountingAlloc, count};
use support::cputime;
use support::ours::{Ours, OursMacro};
use support::peers::{BackoffFailsafe, BackonGovernorRecloser, tower};
use support::{Bare, Contender};

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// Tasks in the contended scenario.
const TASKS: u64 = 4;
/// Calls made before counting allocations, and calls counted.
const WARM_UP_CALLS: u64 = 1_000;
const COUNTED_CALLS: u64 = 20_000;

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

/// At least `calls` calls split over [`TASKS`] tasks; returns the calls made.
async fn run_split<C: Contender>(contender: &C, calls: u64) -> u64 {
    let per_task = calls.div_ceil(TASKS).max(1);
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

/// Allocations per call, single task and 4 tasks on 2 workers.
fn allocations<C: Contender>(make: impl Fn() -> C) -> (f64, f64) {
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
    (serial, split)
}

/// Checks that the contender's retry is live: a call whose first attempt fails with a
/// transient error succeeds after one backoff delay (real time, at most a second or two:
/// pausing tokio's clock would put every later `Instant::now` in this process on tokio's
/// slow test-util path and distort the timings).
fn check_retries<C: Contender>(make: impl Fn() -> C) {
    let mut contender = make();
    support::fail_next();
    let result = current_thread().block_on(contender.call(1));
    assert!(
        result.is_ok(),
        "{} did not retry a transient error: {result:?}",
        C::NAME
    );
}

/// Prints one contender's allocations per call, after checking its retry unless it is
/// the baseline.
fn allocation_row<C: Contender>(make: impl Fn() -> C + Copy, retries: bool) {
    if retries {
        check_retries(make);
    }
    let (serial, split) = allocations(make);
    println!("  {:<40} {serial:>10.4} {split:>19.4}", C::NAME);
}

fn report_allocations() {
    let (_, boxed) = count(|| drop(black_box(Box::new(1u64))));
    assert_eq!(boxed, 1, "the counting allocator counts");
    println!(
        "heap allocations per call ({WARM_UP_CALLS} warm-up calls, then {COUNTED_CALLS} counted):"
    );
    println!(
        "  {:<40} {:>10} {:>19}",
        "contender", "1 task", "4 tasks, 2 workers"
    );
    allocation_row(|| Bare, false);
    allocation_row(Ours::new, true);
    allocation_row(OursMacro::new, true);
    allocation_row(tower, true);
    allocation_row(BackonGovernorRecloser::new, true);
    allocation_row(BackoffFailsafe::new, true);
    println!("  (the 4-task figures include spawning and joining the 4 tasks)");
}

fn uncontended<C: Contender>(group: &mut BenchmarkGroup<'_, WallTime>, id: &str, contender: C) {
    let rt = current_thread();
    group.bench_function(id, |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let mut contender = contender.clone();
            async move {
                let start = cputime::thread();
                run_serial(&mut contender, iters).await;
                cputime::thread() - start
            }
        })
    });
}

fn contended<C: Contender>(group: &mut BenchmarkGroup<'_, WallTime>, id: &str, contender: C) {
    let rt = two_workers();
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let start = cputime::process();
            let calls = rt.block_on(run_split(&contender, iters));
            (cputime::process() - start).mul_f64(iters as f64 / calls as f64)
        })
    });
}

fn bench(c: &mut Criterion) {
    for (group_name, contended_run) in [("uncontended", false), ("4_tasks_2_workers", true)] {
        let mut group = c.benchmark_group(group_name);
        macro_rules! case {
            ($id:literal, $make:expr) => {
                if contended_run {
                    contended(&mut group, $id, $make);
                } else {
                    uncontended(&mut group, $id, $make);
                }
            };
        }
        case!("bare", Bare);
        case!("resilience_core", Ours::new());
        case!("resilience_core_macro", OursMacro::new());
        case!("tower", tower());
        case!("backon_governor_recloser", BackonGovernorRecloser::new());
        case!("backoff_failsafe", BackoffFailsafe::new());
        group.finish();
    }
}

fn main() {
    report_allocations();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    bench(&mut criterion);
    support::parts::bench(&mut criterion, &current_thread());
    criterion.final_summary();
}
