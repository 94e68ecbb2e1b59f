//! The happy path allocates nothing: a call that succeeds at once, with every policy on and
//! an observer subscribed to the engine's events, makes no heap allocation (counted by a
//! counting global allocator).
//!
//! This binary holds one test, so no other test's allocations are counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use resilience_core::{
    Call, Engine, ErrorClass, Failure, Resilience, Resilient, ResilientError, resilient_operation,
};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the wrapper only
// counts allocations while counting is switched on.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[derive(Debug)]
enum Error {
    Stopped(Box<Failure<Error>>),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Stopped(failure) => failure.fmt(f),
        }
    }
}

impl ResilientError for Error {
    fn class(&self) -> ErrorClass {
        match self {
            Error::Stopped(failure) => failure.class(),
        }
    }
    fn from_failure(failure: Failure<Self>) -> Self {
        Error::Stopped(Box::new(failure))
    }
}

/// An observer that ignores every event.
struct Ignore;

impl resilience_core::events::Observer for Ignore {
    fn on_event(&self, _: &resilience_core::events::Event<'_>) {}
}

struct Source {
    resilience: Resilience,
}

impl Resilient for Source {
    fn resilience(&self) -> &Resilience {
        &self.resilience
    }
}

impl Source {
    #[resilient_operation]
    async fn fetch(&self, x: u64) -> Result<u64, Error> {
        Ok(x + 1)
    }
}

/// Allocations made by `calls` runs of `f`.
fn allocations(runtime: &tokio::runtime::Runtime, calls: u64, f: &impl AsyncFn(u64)) -> usize {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    runtime.block_on(async {
        for i in 0..calls {
            f(i).await;
        }
    });
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCATIONS.load(Ordering::SeqCst)
}

#[test]
fn a_successful_call_makes_no_heap_allocation() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    // The `db` preset, every policy on, and an observer listening for events; keys and
    // operations are set up by a first call.
    let engine = Engine::builtin();
    engine.subscribe(std::sync::Arc::new(Ignore));
    let source = Source {
        resilience: Resilience::new(engine.clone(), "db")
            .unwrap()
            .with_key("127.0.0.1:5432"),
    };
    let through_engine = async |x: u64| {
        let value = engine
            .run(Call::new("db", "work").key("db.local"), || async {
                Ok::<_, Error>(x)
            })
            .await;
        assert_eq!(value.unwrap(), x);
    };
    let through_macro = async |x: u64| assert_eq!(source.fetch(x).await.unwrap(), x + 1);
    // Warm up: the first call of a key creates its state.
    allocations(&runtime, 10, &through_engine);
    allocations(&runtime, 10, &through_macro);

    // Within the `db` preset's burst of 50, so no call waits for a token.
    assert_eq!(allocations(&runtime, 30, &through_engine), 0, "Engine::run");
    assert_eq!(
        allocations(&runtime, 30, &through_macro),
        0,
        "#[resilient_operation]"
    );

    // The counter works: a boxed value is one allocation.
    assert_eq!(
        allocations(&runtime, 1, &async |x| drop(std::hint::black_box(
            Box::new(x)
        ))),
        1
    );
}
