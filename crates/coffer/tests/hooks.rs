//! Integration hooks end to end: events written with their changes, fanned
//! out through filters, delivered to real receivers (an HTTP server on
//! 127.0.0.1, files, commands, callbacks), retried, dead-lettered, replayed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer::events::sinks::{ExecConfig, FileLogConfig, FileLogFormat, WebhookConfig, sign};
use coffer::events::{Backoff, DispatcherOptions, Event, EventFilter, HookSpec, MetadataPredicate};
use coffer::testkit::WebhookReceiver;
use coffer::{PrunePolicy, PutOptions, Store};

fn fast_options() -> DispatcherOptions {
    DispatcherOptions {
        backoff: Backoff {
            base: Duration::from_millis(5),
            max: Duration::from_millis(20),
        },
        ..DispatcherOptions::default()
    }
}

/// Drain the outbox again and again (retries come due) until `done` holds.
async fn deliver_until(store: &Store, done: impl Fn() -> bool) {
    let mut dispatcher = store.dispatcher(fast_options());
    for _ in 0..400 {
        dispatcher.drain().await.unwrap();
        if done() {
            dispatcher.release().await.unwrap();
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("deliveries did not finish");
}

fn webhook(store: &Store, name: &str, url: &str, secret: Option<&str>) -> coffer::events::HookDefinition {
    let mut config = WebhookConfig::new(url);
    config.secret = secret.map(str::to_owned);
    store.new_hook(name, HookSpec::Webhook(config), EventFilter::default())
}

fn put_with(doc_type: &str) -> PutOptions {
    let mut options = PutOptions::default();
    options.metadata.insert("doc_type".into(), doc_type.into());
    options
}

fn events_of(receiver: &WebhookReceiver) -> Vec<Event> {
    receiver
        .accepted()
        .iter()
        .map(|request| Event::from_json(&request.body).unwrap())
        .collect()
}

async fn every_change_reaches_a_signed_webhook(store: &Store) {
    let receiver = WebhookReceiver::start().await.unwrap();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    store
        .add_hook(&webhook(store, "erp", &receiver.url(), Some(secret)), false)
        .await
        .unwrap();

    let first = store
        .put_bytes("invoices/a.pdf", "one", put_with("invoice"))
        .await
        .unwrap();
    let second = store
        .put_bytes("invoices/a.pdf", "two", put_with("invoice"))
        .await
        .unwrap();
    let mut tags = coffer::Tags::new();
    tags.insert("approved".into(), "yes".into());
    store
        .tag("invoices/a.pdf", &second.version_id, tags, &[])
        .await
        .unwrap();
    store.rollback("invoices/a.pdf", &first.version_id, None).await.unwrap();
    store
        .prune(
            "invoices/a.pdf",
            PrunePolicy {
                keep: 1,
                keep_tagged: false,
            },
            false,
        )
        .await
        .unwrap();
    store.delete("invoices/a.pdf").await.unwrap();
    let fired = store
        .fire_event("batch.completed", None, serde_json::json!({ "batch_id": "b1" }))
        .await
        .unwrap();
    // A refused change writes no event.
    assert!(store.put_bytes("bad//key", "x", PutOptions::default()).await.is_err());

    deliver_until(store, || receiver.accepted_count() >= 11).await;
    let requests = receiver.accepted();
    for request in &requests {
        let id = &request.headers["webhook-id"];
        let timestamp: i64 = request.headers["webhook-timestamp"].parse().unwrap();
        let expected = sign(secret, id, timestamp, request.body.as_bytes()).unwrap();
        assert_eq!(request.headers["webhook-signature"], expected, "signature of {id}");
        assert_eq!(request.method, "POST");
        assert_eq!(request.headers["content-type"], "application/json");
    }
    let events = events_of(&receiver);
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let expected = [
        "object.archived",
        "version.created",
        "object.updated",
        "version.created",
        "version.tagged",
        "object.updated",
        "version.created",
        "version.rolled_back",
        "version.pruned",
        "version.pruned",
        "object.deleted",
        "batch.completed",
    ];
    assert_eq!(
        types.iter().copied().collect::<BTreeSet<_>>(),
        expected.iter().copied().collect::<BTreeSet<_>>()
    );
    assert_eq!(events.len(), expected.len(), "{types:?}");
    let archived = events.iter().find(|e| e.event_type == "object.archived").unwrap();
    assert_eq!(archived.specversion, "1.0");
    assert_eq!(archived.subject.as_deref(), Some("invoices/a.pdf"));
    assert_eq!(archived.data["version_id"], first.version_id.as_str());
    assert_eq!(archived.data["size"], 3);
    assert_eq!(archived.data["etag"], first.etag.clone().unwrap().as_str());
    assert_eq!(archived.data["metadata"]["doc_type"], "invoice");
    assert_eq!(archived.data["actor"], "tester");
    let custom = events.iter().find(|e| e.event_type == "batch.completed").unwrap();
    assert_eq!(custom.id, fired.id);
    assert_eq!(custom.data, serde_json::json!({ "batch_id": "b1" }));
    // Every event id is distinct, and each arrived once.
    assert_eq!(
        events.iter().map(|e| &e.id).collect::<BTreeSet<_>>().len(),
        events.len()
    );
    assert_eq!(receiver.duplicates(), 0);

    let stats = store.hook_stats().await.unwrap();
    assert_eq!(stats.events_fired, 12);
    assert_eq!(stats.hooks[0].delivered, 12);
    assert_eq!(stats.hooks[0].queue_depth, 0);
    assert_eq!(stats.total.success_rate, Some(1.0));
    assert!(stats.total.avg_ms > 0.0 && stats.total.p95_ms > 0.0);
}

async fn a_receiver_that_recovers_gets_the_event_once(store: &Store) {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.fail_next(5);
    store
        .add_hook(&webhook(store, "flaky", &receiver.url(), None), false)
        .await
        .unwrap();
    store
        .fire_event("qc.approved", Some("lots/7"), serde_json::json!({ "lot": 7 }))
        .await
        .unwrap();
    deliver_until(store, || receiver.accepted_count() == 1).await;
    assert_eq!(receiver.requests(), 6, "five failures, then the delivery");
    assert_eq!(receiver.duplicates(), 0);
    let stats = store.hook_stats().await.unwrap();
    let flaky = &stats.hooks[0];
    assert_eq!(
        (flaky.executed, flaky.failed, flaky.delivered, flaky.dead_letters),
        (6, 5, 1, 0)
    );
    assert!((flaky.success_rate.unwrap() - 1.0 / 6.0).abs() < 1e-9);
}

async fn a_receiver_that_never_recovers_leaves_a_dead_letter(store: &Store) {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.fail_always(true);
    let mut hook = webhook(store, "down", &receiver.url(), None);
    hook.max_attempts = 3;
    store.add_hook(&hook, false).await.unwrap();
    let event = store
        .fire_event("qc.rejected", None, serde_json::json!({}))
        .await
        .unwrap();
    deliver_until(store, || receiver.requests() == 3).await;
    // Give a wrong retry a chance to show.
    let mut dispatcher = store.dispatcher(fast_options());
    dispatcher.drain().await.unwrap();
    dispatcher.release().await.unwrap();
    assert_eq!(receiver.requests(), 3);
    let stats = store.hook_stats().await.unwrap();
    assert_eq!(
        (stats.total.dead_letters, stats.total.queue_depth, stats.total.failed),
        (1, 0, 3)
    );
    let dead = store.dead_letters(Some("down"), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].event_id, event.id);
    assert_eq!(dead[0].attempts, 3);
    assert!(
        dead[0].error.as_deref().unwrap().contains("HTTP 500"),
        "{:?}",
        dead[0].error
    );

    receiver.fail_always(false);
    assert_eq!(store.replay_hooks(Some("down")).await.unwrap(), 1);
    deliver_until(store, || receiver.accepted_count() == 1).await;
    assert_eq!(events_of(&receiver)[0].id, event.id);
    assert_eq!(store.hook_stats().await.unwrap().total.dead_letters, 0);
    assert!(store.replay_hooks(Some("nope")).await.is_err());
}

mod sqlite {
    use super::*;

    #[tokio::test]
    async fn every_change_reaches_a_signed_webhook() {
        super::every_change_reaches_a_signed_webhook(&common::fs_store().await.store).await;
    }

    #[tokio::test]
    async fn a_receiver_that_recovers_gets_the_event_once() {
        super::a_receiver_that_recovers_gets_the_event_once(&common::fs_store().await.store).await;
    }

    #[tokio::test]
    async fn a_receiver_that_never_recovers_leaves_a_dead_letter() {
        super::a_receiver_that_never_recovers_leaves_a_dead_letter(&common::fs_store().await.store).await;
    }
}

mod postgres {
    use super::*;

    #[tokio::test]
    async fn every_change_reaches_a_signed_webhook() {
        let Some(fixture) = common::pg_store().await else {
            return;
        };
        super::every_change_reaches_a_signed_webhook(&fixture.store).await;
    }

    #[tokio::test]
    async fn a_receiver_that_recovers_gets_the_event_once() {
        let Some(fixture) = common::pg_store().await else {
            return;
        };
        super::a_receiver_that_recovers_gets_the_event_once(&fixture.store).await;
    }

    #[tokio::test]
    async fn a_receiver_that_never_recovers_leaves_a_dead_letter() {
        let Some(fixture) = common::pg_store().await else {
            return;
        };
        super::a_receiver_that_never_recovers_leaves_a_dead_letter(&fixture.store).await;
    }

    /// Dispatchers side by side share the work without sending an event twice.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dispatchers_side_by_side_deliver_each_event_once() {
        let Some(fixture) = common::pg_store().await else {
            return;
        };
        let store = &fixture.store;
        let receiver = WebhookReceiver::start().await.unwrap();
        store
            .add_hook(&webhook(store, "shared", &receiver.url(), None), false)
            .await
            .unwrap();
        for i in 0..1000 {
            store
                .fire_event("batch.completed", None, serde_json::json!({ "n": i }))
                .await
                .unwrap();
        }
        // A slow receiver and small batches: neither dispatcher can finish alone before the other starts.
        receiver.delay(Duration::from_millis(5));
        let options = DispatcherOptions {
            batch: 20,
            concurrency: 4,
            ..fast_options()
        };
        let all_delivered = || async {
            while receiver.accepted_count() < 1000 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let (first, second) = (store.dispatcher(options.clone()), store.dispatcher(options));
        let (a, b) = tokio::join!(first.run(all_delivered()), second.run(all_delivered()));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(receiver.accepted_count(), 1000);
        assert_eq!(receiver.requests(), 1000, "no event was sent twice");
        assert_eq!(a.delivered + b.delivered, 1000);
        assert!(
            a.delivered > 0 && b.delivered > 0,
            "both dispatchers worked: {a:?} {b:?}"
        );
    }
}

#[tokio::test]
async fn on_sqlite_one_dispatcher_holds_the_lease_until_it_stops() {
    let fixture = common::fs_store().await;
    let store = &fixture.store;
    let receiver = WebhookReceiver::start().await.unwrap();
    store
        .add_hook(&webhook(store, "one", &receiver.url(), None), false)
        .await
        .unwrap();
    let mut first = store.dispatcher(fast_options());
    let mut second = store.dispatcher(fast_options());
    store
        .fire_event("batch.completed", None, serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(first.pass().await.unwrap().delivered, 1);
    store
        .fire_event("batch.completed", None, serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(
        second.pass().await.unwrap().attempts,
        0,
        "the second waits for the lease"
    );
    assert_eq!(first.pass().await.unwrap().delivered, 1);
    assert_eq!(receiver.accepted_count(), 2);
}

#[tokio::test]
async fn filters_pick_events_by_type_key_and_metadata() {
    let fixture = common::fs_store().await;
    let store = &fixture.store;
    let receiver = WebhookReceiver::start().await.unwrap();
    let mut invoices = webhook(store, "approved-invoices", &receiver.url(), None);
    invoices.filter = EventFilter {
        events: vec!["object.archived".into(), "object.updated".into()],
        prefix: Some("invoices/".into()),
        glob: Some("invoices/*.pdf".into()),
        metadata: vec![
            MetadataPredicate::parse("doc_type=invoice").unwrap(),
            MetadataPredicate::parse("qc_status=approved").unwrap(),
        ],
    };
    store.add_hook(&invoices, false).await.unwrap();
    let approved = |doc_type: &str| {
        let mut options = put_with(doc_type);
        options.metadata.insert("qc_status".into(), "approved".into());
        options
    };
    let wanted = store
        .put_bytes("invoices/1.pdf", "1", approved("invoice"))
        .await
        .unwrap();
    store
        .put_bytes("invoices/2.pdf", "2", put_with("invoice"))
        .await
        .unwrap();
    store
        .put_bytes("invoices/3.pdf", "3", approved("receipt"))
        .await
        .unwrap();
    store
        .put_bytes("invoices/2024/4.pdf", "4", approved("invoice"))
        .await
        .unwrap();
    store
        .put_bytes("receipts/5.pdf", "5", approved("invoice"))
        .await
        .unwrap();
    store
        .fire_event("batch.completed", None, serde_json::json!({}))
        .await
        .unwrap();
    store.dispatcher(fast_options()).drain().await.unwrap();
    let events = events_of(&receiver);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event_type, "object.archived");
    assert_eq!(events[0].data["version_id"], wanted.version_id.as_str());
}

#[tokio::test]
async fn file_logs_exec_hooks_and_templates_deliver_too() {
    let fixture = common::fs_store().await;
    let store = &fixture.store;
    let json_log = fixture.dir.path().join("logs/events.jsonl");
    let text_log = fixture.dir.path().join("logs/events.txt");
    for (name, path, format) in [
        ("json-log", &json_log, FileLogFormat::Json),
        ("text-log", &text_log, FileLogFormat::Text),
    ] {
        let spec = HookSpec::Filelog(FileLogConfig {
            path: path.clone(),
            format,
        });
        store
            .add_hook(&store.new_hook(name, spec, EventFilter::default()), false)
            .await
            .unwrap();
    }
    // The command fails for the first event it sees (so that one is
    // retried), and writes each event it takes to a file named by its id.
    let exec_dir = fixture.dir.path().join("exec");
    std::fs::create_dir(&exec_dir).unwrap();
    let command = format!(
        "[ -e {dir}/failed ] || {{ touch {dir}/failed; echo refusing >&2; exit 3; }}; cat > {dir}/$COFFER_EVENT_ID.json",
        dir = exec_dir.display()
    );
    let exec = HookSpec::Exec(ExecConfig {
        command,
        timeout_ms: 10_000,
    });
    store
        .add_hook(&store.new_hook("exec", exec, EventFilter::default()), false)
        .await
        .unwrap();
    let receiver = WebhookReceiver::start().await.unwrap();
    let mut chat = WebhookConfig::new(receiver.url());
    chat.template = Some(r#"{"text": {{ ("new file " ~ subject ~ " (" ~ data.size ~ " bytes)") | tojson }}}"#.into());
    store
        .add_hook(
            &store.new_hook("chat", HookSpec::Webhook(chat), EventFilter::default()),
            false,
        )
        .await
        .unwrap();

    let version = store
        .put_bytes("docs/readme.txt", "hello", PutOptions::default())
        .await
        .unwrap();
    deliver_until(store, || std::fs::read_dir(&exec_dir).unwrap().count() == 3).await;

    let json_lines: Vec<Event> = std::fs::read_to_string(&json_log)
        .unwrap()
        .lines()
        .map(|line| Event::from_json(line).unwrap())
        .collect();
    assert_eq!(json_lines.len(), 2);
    let text = std::fs::read_to_string(&text_log).unwrap();
    let first_line: Vec<&str> = text.lines().next().unwrap().split(' ').collect();
    assert_eq!(
        first_line[1..4],
        ["object.archived", "docs/readme.txt", version.version_id.as_str()]
    );
    assert_eq!(first_line[4], json_lines[0].id);
    // exec: a failed attempt or two (both events may race to the first), retried; stdin held the event.
    let seen: Vec<Event> = std::fs::read_dir(&exec_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| Event::from_json(&std::fs::read_to_string(path).unwrap()).unwrap())
        .collect();
    let stats = store.hook_stats().await.unwrap();
    let exec_stats = stats.hooks.iter().find(|h| h.hook == "exec").unwrap();
    assert_eq!(exec_stats.delivered, 2);
    assert!(exec_stats.failed >= 1);
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen.iter().map(|e| &e.id).collect::<BTreeSet<_>>(),
        json_lines.iter().map(|e| &e.id).collect()
    );
    let chat_bodies: Vec<serde_json::Value> = receiver
        .accepted()
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert!(chat_bodies.contains(&serde_json::json!({ "text": "new file docs/readme.txt (5 bytes)" })));
}

#[tokio::test]
async fn a_synchronous_callback_has_run_when_the_put_returns() {
    let fixture = common::fs_store().await;
    let store = &fixture.store;
    let seen = Arc::new(Mutex::new(Vec::<Event>::new()));
    let sink = seen.clone();
    let filter = EventFilter {
        events: vec!["object.archived".into()],
        ..EventFilter::default()
    };
    store
        .on_event("audit-mirror", filter, true, move |event| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(event);
                Ok(())
            }
        })
        .await
        .unwrap();
    let version = store.put_bytes("a/b.txt", "x", PutOptions::default()).await.unwrap();
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "delivered before put returned");
        assert_eq!(seen[0].data["version_id"], version.version_id.as_str());
    }
    let stats = store.hook_stats().await.unwrap();
    assert_eq!(stats.hooks[0].kind, "callback");
    assert_eq!(stats.hooks[0].delivered, 1);
}

#[tokio::test]
async fn hooks_are_validated_named_once_and_keep_secrets() {
    let fixture = common::fs_store().await;
    let store = &fixture.store;
    let hook = webhook(
        store,
        "erp",
        "https://erp.example.com/hooks/abc?token=t0ps3cret",
        Some("s3cret"),
    );
    store.add_hook(&hook, false).await.unwrap();
    let again = store.add_hook(&hook, false).await.unwrap_err();
    assert_eq!(again.kind(), coffer::ErrorKind::Conflict);
    let mut bad = webhook(store, "bad name!", "http://127.0.0.1:1/", None);
    assert!(store.add_hook(&bad, false).await.is_err());
    bad.name = "bad".into();
    bad.max_attempts = 0;
    assert!(store.add_hook(&bad, false).await.is_err());
    let shown = format!("{:?}", store.hooks().await.unwrap()[0].redacted());
    assert!(!shown.contains("s3cret") && !shown.contains("t0ps3cret"), "{shown}");
    assert!(
        store
            .fire_event("object.archived", None, serde_json::json!({}))
            .await
            .is_err()
    );
    assert!(
        store
            .fire_event("bad type!", None, serde_json::json!({}))
            .await
            .is_err()
    );
    store.remove_hook("erp").await.unwrap();
    assert_eq!(
        store.remove_hook("erp").await.unwrap_err().kind(),
        coffer::ErrorKind::NotFound
    );
    let audit = store
        .audit(&coffer::AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["hook_remove", "hook_add"]);
    assert!(!audit[1].detail.to_string().contains("s3cret"));
}
