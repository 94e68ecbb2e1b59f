//! Tracing spans: each call runs in one `resilient_call` span and each attempt in an
//! `attempt` span inside it, carrying the policy, key, operation, attempt number and the
//! class of its outcome, so a trace shows every retry.

mod common;

use std::sync::{Arc, Mutex};

use common::{TestError, engine};
use resilience_core::{Call, ErrorClass};
use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// One span: its name, its parent's name, and its fields as `name=value`.
#[derive(Debug, Clone, Default)]
struct SpanSeen {
    name: &'static str,
    parent: Option<&'static str>,
    fields: Vec<String>,
}

#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<(Id, SpanSeen)>>>);

struct Fields<'a>(&'a mut Vec<String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push(format!("{}={value:?}", field.name()));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push(format!("{}={value}", field.name()));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut seen = SpanSeen {
            name: attrs.metadata().name(),
            parent: ctx.span(id).and_then(|s| s.parent()).map(|p| p.name()),
            fields: Vec::new(),
        };
        attrs.record(&mut Fields(&mut seen.fields));
        self.0.lock().unwrap().push((id.clone(), seen));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        if let Some((_, seen)) = spans.iter_mut().find(|(i, _)| i == id) {
            values.record(&mut Fields(&mut seen.fields));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn every_attempt_runs_in_its_own_span_inside_the_call_span() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let engine = engine(|_| {});
    let mut failures = 1;
    engine
        .run(Call::new("t", "fetch_page").key("db:5432"), || {
            let fail = failures > 0;
            failures -= 1;
            async move {
                if fail {
                    Err(TestError::Fail(ErrorClass::Connection))
                } else {
                    Ok(())
                }
            }
        })
        .await
        .unwrap();

    let spans: Vec<SpanSeen> = spans
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(_, s)| s.clone())
        .collect();
    let names: Vec<_> = spans.iter().map(|s| (s.name, s.parent)).collect();
    assert_eq!(
        names,
        [
            ("resilient_call", None),
            ("attempt", Some("resilient_call")),
            ("attempt", Some("resilient_call"))
        ]
    );
    assert_eq!(
        spans[0].fields,
        ["policy=t", "key=db:5432", "operation=fetch_page"]
    );
    assert_eq!(
        spans[1].fields,
        [
            "policy=t",
            "key=db:5432",
            "operation=fetch_page",
            "attempt=1",
            "class=connection"
        ]
    );
    assert_eq!(spans[2].fields.last().unwrap(), "class=ok");
    assert!(spans[2].fields.contains(&"attempt=2".to_owned()));
}
