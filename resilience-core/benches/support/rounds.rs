//! CPU time per call, measured in interleaved rounds.
//!
//! Criterion times one contender after another, so a contender measured while a
//! neighbour's build was linking looks slower than one measured a minute later. Here every
//! round runs each contender once, in an order rotated from round to round, and the
//! figure kept is the median over the rounds: a disturbance hits all contenders of a
//! round alike, and one bad round does not move a median.

use std::time::Duration;

/// One contender's measuring function: runs the given number of calls and returns the
/// CPU time they took (the calling thread's, or the process's with several workers).
pub type Entry = Box<dyn FnMut(u64) -> Duration>;

/// Median nanoseconds per call of each entry, over `rounds` rounds of `calls` calls.
pub fn measure(entries: &mut [Entry], rounds: usize, calls: u64) -> Vec<f64> {
    // One untimed round first: lazy statics, per-key state, the runtime's timer.
    for entry in entries.iter_mut() {
        entry(calls / 10 + 1);
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); entries.len()];
    let n = entries.len();
    for round in 0..rounds {
        for k in 0..n {
            let i = (k + round) % n;
            let spent = entries[i](calls);
            samples[i].push(spent.as_nanos() as f64 / calls as f64);
        }
    }
    samples.into_iter().map(median).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Prints a table of per-call figures with the overhead over the bare call (the first
/// entry) and the ratio to the best peer stack.
pub fn report(title: &str, unit: &str, names: &[(&'static str, bool)], figures: &[f64]) {
    let bare = figures[0];
    let best_peer = names
        .iter()
        .zip(figures)
        .filter(|((_, peer), _)| *peer)
        .map(|(_, f)| *f)
        .fold(f64::INFINITY, f64::min);
    println!("{title}");
    println!(
        "  {:<40} {:>12} {:>12} {:>12}",
        "contender",
        format!("{unit}/call"),
        "over bare",
        "vs best peer"
    );
    for ((name, _), figure) in names.iter().zip(figures) {
        println!(
            "  {name:<40} {figure:>12.1} {:>12.1} {:>11.2}x",
            figure - bare,
            figure / best_peer
        );
    }
}
