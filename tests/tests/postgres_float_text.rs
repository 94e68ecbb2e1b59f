//! The float printer against PostgreSQL itself: for a large sample of bit patterns (random,
//! and the edges: powers of two, subnormals, integers around 2^53, decades), the text
//! `write_f64` / `write_f32` produce must be exactly what `float8out` / `float4out` print.

use connector_postgres::arrow::render::{write_f32, write_f64};
use sqlx::{Connection, Executor};
use test_support::postgres::pick_server;

/// xorshift64*: a fixed, seeded stream of bit patterns.
struct Bits(u64);

impl Bits {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn edge_doubles() -> Vec<f64> {
    let mut v = Vec::new();
    for e in -1074..1024 {
        v.push(2f64.powi(e));
        v.push(2f64.powi(e) * 1.5);
    }
    for i in 0..2000u64 {
        v.push(((1u64 << 53) + i * 7) as f64);
        v.push(((1u64 << 60) + (i << 10)) as f64);
        v.push(f64::from_bits(i + 1)); // subnormals
        v.push(f64::from_bits(0x7fef_ffff_ffff_ffff - i)); // near the largest
    }
    for d in -320..309 {
        v.push(format!("1e{d}").parse().unwrap());
        v.push(format!("9.999999999999999e{d}").parse().unwrap());
    }
    v.retain(|x| x.is_finite() && *x != 0.0);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn float_text_is_exactly_postgres_float8out_and_float4out() {
    let server = pick_server().await.unwrap();
    let mut conn = server.connect("postgres").await.unwrap();
    conn.execute("SET extra_float_digits = 1").await.unwrap();
    let mut bits = Bits(0x9e37_79b9_7f4a_7c15);
    let mut doubles = edge_doubles();
    doubles.extend(
        (0..200_000)
            .map(|_| f64::from_bits(bits.next()))
            .filter(|x| x.is_finite()),
    );
    doubles.extend([
        0.0,
        -0.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -1.5,
        0.1,
    ]);
    let mut floats: Vec<f32> = doubles.iter().map(|d| *d as f32).collect();
    floats.extend((0..200_000).map(|_| f32::from_bits(bits.next() as u32)));
    floats.retain(|x| !x.is_nan() || x.to_bits() == f32::NAN.to_bits());

    let theirs: Vec<String> = sqlx::query_scalar(
        "SELECT x::text FROM unnest($1::float8[]) WITH ORDINALITY AS t(x, i) ORDER BY i",
    )
    .bind(&doubles)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut wrong = Vec::new();
    for (x, want) in doubles.iter().zip(&theirs) {
        let mut ours = Vec::new();
        write_f64(&mut ours, *x);
        if ours != want.as_bytes() {
            wrong.push(format!(
                "{:#x}: ours {}, postgres {want}",
                x.to_bits(),
                String::from_utf8_lossy(&ours)
            ));
        }
    }
    let theirs: Vec<String> = sqlx::query_scalar(
        "SELECT x::text FROM unnest($1::float4[]) WITH ORDINALITY AS t(x, i) ORDER BY i",
    )
    .bind(&floats)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for (x, want) in floats.iter().zip(&theirs) {
        let mut ours = Vec::new();
        write_f32(&mut ours, *x);
        if ours != want.as_bytes() {
            wrong.push(format!(
                "f32 {:#x}: ours {}, postgres {want}",
                x.to_bits(),
                String::from_utf8_lossy(&ours)
            ));
        }
    }
    conn.close().await.unwrap();
    assert!(
        wrong.is_empty(),
        "{} of {} values print differently, e.g.:\n{}",
        wrong.len(),
        doubles.len() + floats.len(),
        wrong
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
