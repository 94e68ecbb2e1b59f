//! The demo's data: four related tables filled with deterministic rows.
//!
//! Rows are generated on the server (`INSERT ... SELECT generate_series`), so seeding
//! takes a fraction of a second and every run sees the same data: customer 1 is John Doe,
//! customer 2 Jane Smith, the rest follow fixed formulas. Each table has a primary key and
//! an `updated_at` cursor column; cursor values repeat (several rows per hour), so the
//! incremental reads have ties to break at page boundaries.

use std::time::Instant;

use sqlx::{Executor, Row};

use super::server::DemoDb;
use crate::error::CliError;

/// The four tables, in the order they are reported.
pub(crate) const TABLES: [&str; 4] = ["customers", "orders", "products", "order_items"];

const SCHEMA: &str = r#"
CREATE TABLE customers (
    id integer PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL UNIQUE,
    created_at date NOT NULL,
    notes text,
    updated_at timestamp NOT NULL
);
CREATE TABLE products (
    id integer PRIMARY KEY,
    name text NOT NULL,
    category text NOT NULL,
    price numeric(10, 2) NOT NULL,
    updated_at timestamp NOT NULL
);
CREATE TABLE orders (
    id integer PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers (id),
    order_date date NOT NULL,
    status text NOT NULL,
    total numeric(12, 2) NOT NULL,
    updated_at timestamp NOT NULL
);
CREATE TABLE order_items (
    id integer PRIMARY KEY,
    order_id integer NOT NULL REFERENCES orders (id),
    product_id integer NOT NULL REFERENCES products (id),
    quantity integer NOT NULL,
    unit_price numeric(10, 2) NOT NULL,
    updated_at timestamp NOT NULL
);
"#;

const DATA: &str = r#"
INSERT INTO customers VALUES
    (1, 'John Doe', 'john@example.com', DATE '2024-01-15',
     'VIP, prefers "email" contact', TIMESTAMP '2024-02-01 00:00'),
    (2, 'Jane Smith', 'jane@example.com', DATE '2024-01-16',
     'Net 30 terms', TIMESTAMP '2024-02-01 00:00');
INSERT INTO customers
SELECT g,
       (ARRAY['Alice','Bob','Carol','David','Erin','Frank','Grace','Heidi','Ivan','Judy'])[1 + g % 10]
       || ' ' ||
       (ARRAY['Anderson','Brown','Clark','Davis','Evans','Garcia','Harris','Jones','Lopez','Miller'])[1 + (g / 10) % 10],
       'customer' || g || '@example.com',
       DATE '2024-01-14' + g,
       CASE WHEN g % 50 = 0 THEN 'Key account, renewal "Q3"'
            WHEN g % 7 = 0 THEN NULL
            ELSE 'Regular customer' END,
       TIMESTAMP '2024-02-01 00:00' + (g / 4) * INTERVAL '1 hour'
FROM generate_series(3, 1000) AS g;
INSERT INTO products
SELECT g,
       'Product ' || lpad(g::text, 3, '0'),
       (ARRAY['Books','Garden','Kitchen','Music','Toys'])[1 + g % 5],
       (5 + (g * 37) % 200) + (g % 100) / 100.0,
       TIMESTAMP '2024-01-01 00:00' + (g / 5) * INTERVAL '1 hour'
FROM generate_series(1, 500) AS g;
INSERT INTO orders
SELECT g,
       1 + (g * 7919) % 1000,
       DATE '2024-03-01' + g % 300,
       (ARRAY['pending','paid','shipped','delivered'])[1 + g % 4],
       0,
       TIMESTAMP '2024-03-01 00:00' + (g / 10) * INTERVAL '1 hour'
FROM generate_series(1, 5000) AS g;
INSERT INTO order_items
SELECT g, (g + 2) / 3, p.id, 1 + g % 5, p.price,
       TIMESTAMP '2024-03-01 00:00' + ((g + 2) / 30) * INTERVAL '1 hour'
FROM generate_series(1, 15000) AS g
JOIN products AS p ON p.id = 1 + (g * 31) % 500;
UPDATE orders AS o SET total = s.total
FROM (SELECT order_id, sum(quantity * unit_price) AS total FROM order_items GROUP BY order_id) AS s
WHERE s.order_id = o.id;
ANALYZE;
"#;

/// Rows per table, in [`TABLES`] order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts(pub [u64; 4]);

impl Counts {
    /// What the seed writes.
    pub(crate) const EXPECTED: Counts = Counts([1000, 5000, 500, 15000]);

    /// The count for `table`.
    pub(crate) fn get(&self, table: &str) -> u64 {
        TABLES
            .iter()
            .position(|t| *t == table)
            .map_or(0, |i| self.0[i])
    }
}

/// Creates and fills the tables, then counts what is there.
pub(crate) async fn seed(db: &DemoDb) -> Result<Counts, CliError> {
    let started = Instant::now();
    let fail = |e: &dyn std::fmt::Display| {
        CliError::Failed(format!("seeding the demo database failed: {e}"))
    };
    let mut conn = db.admin().await.map_err(|e| fail(&e))?;
    conn.execute(sqlx::raw_sql(SCHEMA))
        .await
        .map_err(|e| fail(&e))?;
    conn.execute(sqlx::raw_sql(DATA))
        .await
        .map_err(|e| fail(&e))?;
    let counts = count(&mut conn).await.map_err(|e| fail(&e))?;
    if counts != Counts::EXPECTED {
        return Err(fail(&format!(
            "expected {:?} rows, found {:?}",
            Counts::EXPECTED.0,
            counts.0
        )));
    }
    println!(
        "Seeded {} customers, {} orders, {} products and {} order items in {:.2}s",
        counts.0[0],
        counts.0[1],
        counts.0[2],
        counts.0[3],
        started.elapsed().as_secs_f64()
    );
    Ok(counts)
}

/// Rows per table now.
pub(crate) async fn count(conn: &mut sqlx::PgConnection) -> Result<Counts, sqlx::Error> {
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders), \
                (SELECT count(*) FROM products), (SELECT count(*) FROM order_items)",
    )
    .fetch_one(conn)
    .await?;
    let mut counts = Counts::default();
    for (i, slot) in counts.0.iter_mut().enumerate() {
        *slot = u64::try_from(row.try_get::<i64, _>(i)?).unwrap_or(0);
    }
    Ok(counts)
}
