//! The test API server itself: every pagination style hands out the whole table, each
//! fault is what it says, and arrivals are recorded.

use std::time::{Duration, SystemTime};

use sqlx::postgres::PgPoolOptions;
use test_support::http::{ApiServer, Fault, RetryAfter, Table};
use test_support::postgres::pick_server;

const ROWS: i64 = 95;

/// A server over a fresh table `http_srv_<name>` of `ROWS` rows.
async fn serve(
    name: &str,
    secret: Option<&str>,
) -> (ApiServer, test_support::postgres::TestServer) {
    let pg = pick_server().await.expect("a PostgreSQL server");
    let db = format!("http_srv_{name}");
    pg.create_database(&db).await.unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(pg.url_with_password(&db).expose())
        .await
        .unwrap();
    sqlx::raw_sql(
        "SET TIME ZONE 'UTC';
         CREATE TABLE items (id int8 PRIMARY KEY, name text, updated_at timestamptz NOT NULL);
         INSERT INTO items SELECT g, 'item ' || g, timestamptz '2024-01-01' + g * interval '1 minute'
           FROM generate_series(1, 95) g;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let tables = vec![Table::new("items", "id").cursor("updated_at")];
    let server = ApiServer::start(pool, tables, secret.map(str::to_owned))
        .await
        .unwrap();
    (server, pg)
}

fn ids(rows: &serde_json::Value) -> Vec<i64> {
    rows.as_array()
        .expect("an array of rows")
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pagination_style_hands_out_each_row_once_in_order() {
    let (server, _pg) = serve("styles", None).await;
    let client = reqwest::Client::new();
    let base = server.base_url();
    let expected: Vec<i64> = (1..=ROWS).collect();

    let mut seen = Vec::new();
    for page in 1.. {
        let body: serde_json::Value = client
            .get(format!("{base}/page/items?page={page}&per_page=10"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.extend(ids(&body["data"]));
        if !body["has_more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(seen, expected, "page numbers");

    let mut seen: Vec<i64> = Vec::new();
    let mut offset = 0;
    loop {
        let body: serde_json::Value = client
            .get(format!("{base}/offset/items?offset={offset}&limit=20"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let got = ids(&body["data"]);
        offset += got.len();
        seen.extend(got.iter().copied());
        if got.len() < 20 {
            break;
        }
    }
    assert_eq!(seen, expected, "offset and limit");

    let mut seen = Vec::new();
    let mut url = format!("{base}/cursor/items?limit=30");
    loop {
        let body: serde_json::Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        seen.extend(ids(&body["data"]));
        match body["meta"]["next_cursor"].as_str() {
            Some(next) => url = format!("{base}/cursor/items?limit=30&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen, expected, "cursor token");

    let mut seen = Vec::new();
    let mut url = format!("{base}/link/items?limit=40&updated_since=2024-01-01T00:10:00Z");
    loop {
        let response = client.get(&url).send().await.unwrap();
        let link = response
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: serde_json::Value = response.json().await.unwrap();
        seen.extend(ids(&body));
        match link {
            Some(link) => {
                assert!(link.ends_with("; rel=\"next\""), "{link}");
                url = link[1..link.find('>').unwrap()].to_owned();
            }
            None => break,
        }
    }
    assert_eq!(
        seen,
        (10..=ROWS).collect::<Vec<_>>(),
        "Link with updated_since"
    );
    assert_eq!(server.requests().len(), 10 + 5 + 4 + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_play_in_order_and_arrivals_are_recorded() {
    let (server, _pg) = serve("faults", None).await;
    let client = reqwest::Client::new();
    let url = format!("{}/offset/items?limit=5", server.base_url());
    server.push_fault(Fault::Throttle(RetryAfter::Seconds(7)), 1);
    server.push_fault(
        Fault::Throttle(RetryAfter::Date(Duration::from_millis(2500))),
        1,
    );
    server.push_fault(Fault::Throttle(RetryAfter::Absent), 1);
    server.push_fault(Fault::Unavailable, 1);
    server.pass(1);
    server.push_fault(Fault::Truncate, 1);
    server.push_fault(Fault::Slow(Duration::from_millis(300)), 1);

    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 429);
    assert_eq!(first.headers()["retry-after"], "7");
    let second = client.get(&url).send().await.unwrap();
    assert_eq!(second.status(), 429);
    let date =
        httpdate::parse_http_date(second.headers()["retry-after"].to_str().unwrap()).unwrap();
    let third = client.get(&url).send().await.unwrap();
    assert_eq!(third.status(), 429);
    assert!(third.headers().get("retry-after").is_none());
    assert_eq!(client.get(&url).send().await.unwrap().status(), 503);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    let cut = client.get(&url).send().await.unwrap();
    assert_eq!(cut.status(), 200);
    assert!(cut.bytes().await.is_err(), "the body is cut short");
    let slow = client.get(&url).send().await.unwrap();
    assert_eq!(slow.status(), 200);
    assert_eq!(server.faults_pending(), 0);

    let log = server.requests();
    let statuses: Vec<u16> = log.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 429, 429, 503, 200, 200, 200]);
    assert_eq!(
        log[0].not_before,
        Some(log[0].wall + Duration::from_secs(7))
    );
    assert_eq!(log[1].not_before, Some(date));
    assert!(date >= log[1].wall + Duration::from_millis(2500));
    assert!(date < log[1].wall + Duration::from_millis(3500));
    assert_eq!(log[2].not_before, None);
    assert!(log[5].truncated && !log[4].truncated);
    assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(log.iter().all(|r| r.wall <= SystemTime::now()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_checked_in_every_form_and_expire_on_request() {
    let (server, _pg) = serve("auth", Some("s3cret")).await;
    let client = reqwest::Client::new();
    let url = format!("{}/offset/items?limit=1", server.base_url());
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(status(client.get(&url).send().await.unwrap()), 401);
    assert_eq!(
        status(client.get(&url).bearer_auth("s3cret").send().await.unwrap()),
        200
    );
    assert_eq!(
        status(client.get(&url).bearer_auth("wrong").send().await.unwrap()),
        401
    );
    assert_eq!(
        status(
            client
                .get(&url)
                .basic_auth("me", Some("s3cret"))
                .send()
                .await
                .unwrap()
        ),
        200
    );
    assert_eq!(
        status(
            client
                .get(&url)
                .header("x-api-key", "s3cret")
                .send()
                .await
                .unwrap()
        ),
        200
    );
    assert_eq!(
        status(
            client
                .get(format!("{url}&api_key=s3cret"))
                .send()
                .await
                .unwrap()
        ),
        200
    );
    server.push_fault(Fault::ExpireSecret("n3w".into()), 1);
    assert_eq!(
        status(client.get(&url).bearer_auth("s3cret").send().await.unwrap()),
        401
    );
    assert_eq!(
        status(client.get(&url).bearer_auth("s3cret").send().await.unwrap()),
        401
    );
    assert_eq!(
        status(client.get(&url).bearer_auth("n3w").send().await.unwrap()),
        200
    );
    let logged = server.requests();
    assert!(
        logged.iter().all(|r| !r.target.contains("s3cret")),
        "the api_key value is not recorded"
    );
}
