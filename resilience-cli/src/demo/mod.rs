//! `resilient demo`: the framework's claims, each earned by a real fault.
//!
//! The demo seeds a database of its own, then runs six scenarios against it through the
//! fault-injecting proxy (`resilience-chaos`): reset and black-holed connections, a
//! backend terminated in the middle of a read, injected latency, more calls than the rate
//! limit allows, and a full outage; a seventh reads a table through the test REST API
//! while it answers `429` with `Retry-After`. Every line of the summary is printed only when the
//! checks behind it passed on measured numbers; a failed check prints ❌ with its reason
//! and the command exits with status 1. The result files are written atomically.
//!
//! Timings come from the shipped `demo` profile (the presets with every delay scaled
//! down), so the whole run takes seconds, not minutes.

mod capture;
mod output;
mod report;
mod scenarios;
mod seed;
mod server;

use std::sync::Arc;
use std::time::Instant;

use resilience_core::Engine;
use resilience_core::policy::{LoadOptions, PolicySet};
use tracing::instrument::WithSubscriber;

use crate::args::DemoArgs;
use crate::error::CliError;
use capture::Capture;
use report::{Claim, Report};
use scenarios::Ctx;

/// The profile whose scaled-down timings the scenarios run under.
const DEMO_PROFILE: &str = "demo";

/// Runs the demo. Exit status: 0 when every check passed, 1 when one failed or the
/// database could not be reached, 2 for invalid arguments.
pub async fn run(args: DemoArgs) -> Result<(), CliError> {
    let capture = Capture::default();
    let dispatch = capture.dispatch();
    run_captured(args, capture).with_subscriber(dispatch).await
}

async fn run_captured(args: DemoArgs, capture: Capture) -> Result<(), CliError> {
    let started = Instant::now();
    server::check_name(&args.database_name)?;
    let policies = PolicySet::load(&LoadOptions {
        dir: None,
        profile: Some(DEMO_PROFILE.to_owned()),
    })?;
    println!("🚀 Resilient connectors demo\n");
    let db = server::DemoDb::prepare(&args).await?;
    let work = async {
        let seeded = seed::seed(&db).await?;
        let engine = Engine::new(policies);
        engine.subscribe(Arc::new(capture.clone()));
        run_scenarios(&db, engine, &capture, &args, seeded).await
    };
    // Ctrl-C still cleans up: the database is dropped and a throwaway cluster stopped.
    let outcome = tokio::select! {
        outcome = work => outcome,
        _ = tokio::signal::ctrl_c() => Err(CliError::Interrupted(
            "the demo was stopped before it finished".to_owned(),
        )),
    };
    db.finish(args.keep_database).await;
    outcome?;
    println!("\nFinished in {:.1}s.", started.elapsed().as_secs_f64());
    Ok(())
}

async fn run_scenarios(
    db: &server::DemoDb,
    engine: Engine,
    capture: &Capture,
    args: &DemoArgs,
    seeded: seed::Counts,
) -> Result<(), CliError> {
    let ctx = Ctx::new(db, engine, capture, seeded);
    let mut report = Report::default();
    scenarios::print_configuration(&ctx);
    report.extend(scenarios::retry::run(&ctx).await);
    report.extend(scenarios::incremental::run(&ctx).await);
    report.extend(scenarios::schema::run(&ctx).await);
    report.extend(scenarios::volume::run(&ctx).await);
    let analytics = scenarios::analytics::run(&ctx).await;
    report.extend(analytics.checks);
    let stress = scenarios::stress::run(&ctx).await;
    report.extend(stress.checks);
    report.extend(scenarios::api::run(&ctx).await);

    let status = report.status();
    output::write_results(&args.output, &analytics.loaded, &status)?;
    output::write_stress(&args.output, &stress.customers)?;
    println!("\nResults written to {}/", args.output.display());
    println!("  resilience_test_results.csv ({status})");
    println!(
        "  resilience_stress_test_results.csv ({} customers)",
        stress.customers.len()
    );
    println!();
    let failed = report.print_summary();
    if failed.is_empty() {
        Ok(())
    } else {
        let names: Vec<&str> = failed.iter().map(Claim::text).collect();
        Err(CliError::Failed(format!(
            "{} of {} checks failed: {}",
            failed.len(),
            Claim::ALL.len(),
            names.join("; ")
        )))
    }
}
