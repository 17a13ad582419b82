//! The queue sinks against real brokers: NATS with JetStream, RabbitMQ and
//! an SQS emulator (moto), each started by `scripts/services/`. Every test
//! publishes through the sink that `connect_sink` builds, reads back with a
//! real consumer, and deletes the stream, exchange or queue it made.
//!
//! Where a service does not answer, its tests print one loud line and pass,
//! unless `COFFER_REQUIRE_SERVICES=1`, where they fail. The servers can be
//! moved with `COFFER_TEST_NATS` (`nats://127.0.0.1:4222`), `COFFER_TEST_AMQP`
//! (`amqp://guest:guest@127.0.0.1:5672/%2f`) and `COFFER_TEST_SQS`
//! (`http://127.0.0.1:5000`).

#![cfg(feature = "catalog-postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use coffer::PutOptions;
use coffer::events::sinks::{AmqpConfig, NatsConfig, SqsConfig, connect_sink};
use coffer::events::{Backoff, DispatcherOptions, Event, EventFilter, HookSpec, Sink};
use coffer::testkit::services::{service_available, sqs_call};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

/// Events published per test.
const EVENTS: usize = 200;
/// Deliveries in flight at once.
const CONCURRENCY: usize = 16;

fn server(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_owned())
}

/// `host:port` of a server URL, for the reachability check.
fn address(url: &str, default_port: u16) -> String {
    let parsed = reqwest::Url::parse(url).unwrap();
    format!(
        "{}:{}",
        parsed.host_str().unwrap(),
        parsed.port().unwrap_or(default_port)
    )
}

fn unique() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// `EVENTS` distinct events, each with its CloudEvents document.
fn events() -> Vec<(Event, String)> {
    (0..EVENTS)
        .map(|i| {
            let key = format!("k/{i}");
            let event = Event::new(
                "object.archived",
                Some(&key),
                json!({ "key": key, "version_id": format!("v{i}"), "size": i, "metadata": { "n": i.to_string() } }),
            );
            let payload = event.to_json();
            (event, payload)
        })
        .collect()
}

/// Deliver every event through `sink`, several at a time.
async fn deliver_all(sink: &dyn Sink, events: &[(Event, String)]) {
    futures::stream::iter(events)
        .map(|(event, payload)| sink.deliver(event, payload))
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
}

/// Check that `received` (event id to payload) holds exactly `events`.
fn assert_all_arrived(events: &[(Event, String)], received: &BTreeMap<String, String>) {
    assert_eq!(received.len(), events.len(), "distinct events received");
    for (event, payload) in events {
        assert_eq!(
            received.get(&event.id),
            Some(payload),
            "event {} arrived intact",
            event.id
        );
    }
}

// ---------------------------------------------------------------- NATS

fn nats_url() -> Option<String> {
    let url = server("COFFER_TEST_NATS", "nats://127.0.0.1:4222");
    service_available("NATS", &address(&url, 4222)).unwrap().then_some(url)
}

fn nats_spec(url: &str, id: &str) -> (HookSpec, String) {
    let stream = format!("COFFER_TEST_{id}");
    let spec = HookSpec::Nats(NatsConfig {
        url: url.to_owned(),
        subject: format!("coffertest.{id}.{{type}}"),
        stream: Some(stream.clone()),
        user: None,
        password: None,
        token: None,
    });
    (spec, stream)
}

/// Every message in `stream`, read by a pull consumer, as event id to payload
/// (the id taken from the `Nats-Msg-Id` header, which must match the payload's).
async fn nats_read_all(jetstream: &async_nats::jetstream::Context, stream: &str) -> BTreeMap<String, String> {
    let mut stream = jetstream.get_stream(stream).await.unwrap();
    let count = stream.info().await.unwrap().state.messages;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap().take(usize::try_from(count).unwrap());
    let mut received = BTreeMap::new();
    while let Some(message) = tokio::time::timeout(Duration::from_secs(10), messages.next())
        .await
        .unwrap()
    {
        let message = message.unwrap();
        let payload = String::from_utf8(message.payload.to_vec()).unwrap();
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .unwrap()
            .to_string();
        let event = Event::from_json(&payload).unwrap();
        assert_eq!(event.id, id);
        assert!(
            message.subject.ends_with(&format!(".{}", event.event_type)),
            "{}",
            message.subject
        );
        message.ack().await.unwrap();
        assert!(received.insert(id, payload).is_none(), "a message arrived twice");
    }
    received
}

#[tokio::test(flavor = "multi_thread")]
async fn nats_delivers_every_event_to_the_stream() {
    let Some(url) = nats_url() else { return };
    let id = unique();
    let (spec, stream) = nats_spec(&url, &id);
    let sink = connect_sink("nats-test", &spec).await.unwrap();
    assert!(
        sink.to_string().starts_with("nats hook nats-test (nats://127.0.0.1"),
        "{sink}"
    );
    let events = events();
    deliver_all(sink.as_ref(), &events).await;

    let jetstream = async_nats::jetstream::new(async_nats::connect(url.as_str()).await.unwrap());
    let received = nats_read_all(&jetstream, &stream).await;
    jetstream.delete_stream(&stream).await.unwrap();
    assert_all_arrived(&events, &received);
}

#[tokio::test(flavor = "multi_thread")]
async fn nats_drops_a_redelivered_event() {
    let Some(url) = nats_url() else { return };
    let id = unique();
    let (spec, stream) = nats_spec(&url, &id);
    let sink = connect_sink("nats-dedup", &spec).await.unwrap();
    let event = Event::new("object.archived", Some("k/1"), json!({ "key": "k/1" }));
    let payload = event.to_json();
    sink.deliver(&event, &payload).await.unwrap();
    // A retry after a lost acknowledgement: the same event again, also acknowledged.
    sink.deliver(&event, &payload).await.unwrap();
    // Connecting again finds the stream there and leaves it be.
    let again = connect_sink("nats-dedup", &spec).await.unwrap();
    again.deliver(&event, &payload).await.unwrap();

    let jetstream = async_nats::jetstream::new(async_nats::connect(url.as_str()).await.unwrap());
    let received = nats_read_all(&jetstream, &stream).await;
    jetstream.delete_stream(&stream).await.unwrap();
    assert_eq!(received.len(), 1, "one message in the stream");
    assert_eq!(received.get(&event.id), Some(&payload));
}

#[tokio::test(flavor = "multi_thread")]
async fn nats_without_a_stream_for_the_subject_is_an_error() {
    let Some(url) = nats_url() else { return };
    let spec = HookSpec::Nats(NatsConfig {
        url,
        subject: format!("coffertest.nostream.{}.{{type}}", unique()),
        stream: None,
        user: None,
        password: None,
        token: None,
    });
    let sink = connect_sink("nats-nowhere", &spec).await.unwrap();
    let event = Event::new("object.archived", None, json!({}));
    let error = sink.deliver(&event, &event.to_json()).await.unwrap_err();
    assert_eq!(error.kind(), coffer::ErrorKind::Delivery);
    assert!(
        error.message().starts_with("nats hook nats-nowhere"),
        "{}",
        error.message()
    );
}

// ---------------------------------------------------------------- AMQP

fn amqp_url() -> Option<String> {
    let url = server("COFFER_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2f");
    service_available("RabbitMQ", &address(&url, 5672))
        .unwrap()
        .then_some(url)
}

/// A plain AMQP channel for reading back and cleaning up.
async fn amqp_channel(url: &str) -> (amqprs::connection::Connection, amqprs::channel::Channel) {
    let parsed = reqwest::Url::parse(url).unwrap();
    let arguments = amqprs::connection::OpenConnectionArguments::new(
        parsed.host_str().unwrap(),
        parsed.port().unwrap_or(5672),
        parsed.username(),
        parsed.password().unwrap_or("guest"),
    );
    let connection = amqprs::connection::Connection::open(&arguments).await.unwrap();
    let channel = connection.open_channel(None).await.unwrap();
    (connection, channel)
}

/// Every message in `queue`, as event id to payload; checks each message's
/// properties on the way. The queue's depth is read first (a passive
/// declare), then that many messages are consumed: amqprs's `basic_get`
/// races its own dispatcher ("get responder must be registered"), so a
/// consumer takes them instead.
async fn amqp_read_all(channel: &amqprs::channel::Channel, queue: &str) -> BTreeMap<String, String> {
    let depth = amqprs::channel::QueueDeclareArguments::new(queue)
        .passive(true)
        .finish();
    let (_, depth, _) = channel.queue_declare(depth).await.unwrap().unwrap();
    let consume = amqprs::channel::BasicConsumeArguments::new(queue, "coffer-test-reader")
        .manual_ack(false)
        .finish();
    let (tag, mut messages) = channel.basic_consume_rx(consume).await.unwrap();
    let mut received = BTreeMap::new();
    for _ in 0..depth {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.recv())
            .await
            .expect("a counted message never came")
            .expect("the consumer closed");
        let (properties, content) = (message.basic_properties.unwrap(), message.content.unwrap());
        let payload = String::from_utf8(content).unwrap();
        let event = Event::from_json(&payload).unwrap();
        assert_eq!(properties.message_id(), Some(&event.id));
        assert_eq!(properties.message_type(), Some(&event.event_type));
        assert_eq!(properties.content_type().map(String::as_str), Some("application/json"));
        assert_eq!(properties.delivery_mode(), Some(2));
        assert!(received.insert(event.id, payload).is_none(), "a message arrived twice");
    }
    channel
        .basic_cancel(amqprs::channel::BasicCancelArguments::new(&tag))
        .await
        .unwrap();
    received
}

#[tokio::test(flavor = "multi_thread")]
async fn amqp_delivers_every_event_to_the_bound_queue() {
    let Some(url) = amqp_url() else { return };
    let id = unique();
    let (exchange, queue) = (format!("coffer-test-{id}"), format!("coffer-test-{id}"));
    let spec = HookSpec::Amqp(AmqpConfig {
        url: url.clone(),
        exchange: exchange.clone(),
        routing_key: "coffer.{type}".to_owned(),
        queue: Some(queue.clone()),
    });
    let sink = connect_sink("amqp-test", &spec).await.unwrap();
    assert!(!sink.to_string().contains("guest:guest"), "{sink}");
    let events = events();
    deliver_all(sink.as_ref(), &events).await;

    let (connection, channel) = amqp_channel(&url).await;
    let received = amqp_read_all(&channel, &queue).await;
    channel
        .queue_delete(amqprs::channel::QueueDeleteArguments::new(&queue))
        .await
        .unwrap();
    channel
        .exchange_delete(amqprs::channel::ExchangeDeleteArguments::new(&exchange))
        .await
        .unwrap();
    channel.close().await.unwrap();
    connection.close().await.unwrap();
    assert_all_arrived(&events, &received);
}

#[tokio::test(flavor = "multi_thread")]
async fn amqp_refused_messages_are_errors_and_the_sink_recovers() {
    let Some(url) = amqp_url() else { return };
    let id = unique();
    let queue = format!("coffer-test-{id}");
    let event = Event::new("object.archived", Some("k/1"), json!({ "key": "k/1" }));
    let payload = event.to_json();

    // The default exchange routes by queue name.
    let direct = HookSpec::Amqp(AmqpConfig {
        url: url.clone(),
        exchange: String::new(),
        routing_key: queue.clone(),
        queue: Some(queue.clone()),
    });
    let sink = connect_sink("amqp-direct", &direct).await.unwrap();
    sink.deliver(&event, &payload).await.unwrap();

    // No queue takes this routing key: the broker returns the message.
    let unroutable = HookSpec::Amqp(AmqpConfig {
        url: url.clone(),
        exchange: String::new(),
        routing_key: format!("coffer-test-missing-{id}"),
        queue: None,
    });
    let sink = connect_sink("amqp-unroutable", &unroutable).await.unwrap();
    let error = sink.deliver(&event, &payload).await.unwrap_err();
    assert!(error.message().contains("unroutable"), "{}", error.message());
    // The channel stays usable after a return.
    assert!(
        sink.deliver(&event, &payload)
            .await
            .unwrap_err()
            .message()
            .contains("unroutable")
    );

    // A missing exchange closes the channel: an error, and the next delivery
    // opens a new connection (and fails the same way, but does not hang).
    let missing = HookSpec::Amqp(AmqpConfig {
        url: url.clone(),
        exchange: format!("coffer-test-missing-{id}"),
        routing_key: "coffer.{type}".to_owned(),
        queue: None,
    });
    let sink = connect_sink("amqp-missing", &missing).await.unwrap();
    for _ in 0..2 {
        let error = sink.deliver(&event, &payload).await.unwrap_err();
        assert!(error.message().contains("404"), "{}", error.message());
        assert!(error.is_retryable());
    }

    let (connection, channel) = amqp_channel(&url).await;
    let received = amqp_read_all(&channel, &queue).await;
    channel
        .queue_delete(amqprs::channel::QueueDeleteArguments::new(&queue))
        .await
        .unwrap();
    channel.close().await.unwrap();
    connection.close().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received.get(&event.id), Some(&payload));
}

// ---------------------------------------------------------------- SQS

fn sqs_config(queue_url: &str) -> Option<SqsConfig> {
    let endpoint = server("COFFER_TEST_SQS", "http://127.0.0.1:5000");
    service_available("the SQS emulator (moto)", &address(&endpoint, 80))
        .unwrap()
        .then(|| SqsConfig {
            queue_url: queue_url.to_owned(),
            region: "us-east-1".to_owned(),
            endpoint: Some(endpoint),
            access_key_id: "testing".to_owned(),
            secret_access_key: "secret-testing-key".to_owned(),
            session_token: Some("secret-testing-token".to_owned()),
        })
}

/// Create a queue named `name` and give the settings pointing at it.
async fn sqs_queue(name: &str, attributes: Value) -> Option<SqsConfig> {
    let admin = sqs_config("http://placeholder/")?;
    let created = sqs_call(
        &admin,
        "CreateQueue",
        &json!({ "QueueName": name, "Attributes": attributes }),
    )
    .await
    .unwrap();
    let queue_url = created["QueueUrl"].as_str().unwrap();
    Some(SqsConfig {
        queue_url: queue_url.to_owned(),
        ..admin
    })
}

/// Every message in the queue, received and deleted, as event id to payload;
/// checks each message's attributes on the way.
async fn sqs_read_all(config: &SqsConfig, expected: usize) -> BTreeMap<String, String> {
    let mut received = BTreeMap::new();
    let mut empty_answers = 0;
    while empty_answers < 3 {
        let answer = sqs_call(
            config,
            "ReceiveMessage",
            &json!({
                "QueueUrl": config.queue_url,
                "MaxNumberOfMessages": 10,
                "MessageAttributeNames": ["All"],
                "WaitTimeSeconds": if received.len() < expected { 1 } else { 0 },
            }),
        )
        .await
        .unwrap();
        let messages = answer
            .get("Messages")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if messages.is_empty() {
            empty_answers += 1;
            continue;
        }
        let mut entries = Vec::new();
        for (n, message) in messages.iter().enumerate() {
            let payload = message["Body"].as_str().unwrap().to_owned();
            let event = Event::from_json(&payload).unwrap();
            let attributes = &message["MessageAttributes"];
            assert_eq!(attributes["type"]["StringValue"], json!(event.event_type));
            assert_eq!(attributes["id"]["StringValue"], json!(event.id));
            entries.push(json!({ "Id": n.to_string(), "ReceiptHandle": message["ReceiptHandle"] }));
            assert!(received.insert(event.id, payload).is_none(), "a message arrived twice");
        }
        let deleted = sqs_call(
            config,
            "DeleteMessageBatch",
            &json!({ "QueueUrl": config.queue_url, "Entries": entries }),
        )
        .await
        .unwrap();
        assert!(
            deleted
                .get("Failed")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty),
            "{deleted}"
        );
    }
    received
}

async fn sqs_delete_queue(config: &SqsConfig) {
    sqs_call(config, "DeleteQueue", &json!({ "QueueUrl": config.queue_url }))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sqs_delivers_every_event_to_the_queue() {
    let Some(config) = sqs_queue(&format!("coffer-test-{}", unique()), json!({})).await else {
        return;
    };
    let sink = connect_sink("sqs-test", &HookSpec::Sqs(config.clone())).await.unwrap();
    let shown = format!("{sink} {sink:?}");
    assert!(!shown.contains("secret-testing"), "{shown}");
    let events = events();
    deliver_all(sink.as_ref(), &events).await;

    let received = sqs_read_all(&config, events.len()).await;
    sqs_delete_queue(&config).await;
    assert_all_arrived(&events, &received);
}

#[tokio::test(flavor = "multi_thread")]
async fn sqs_fifo_queues_drop_a_redelivered_event() {
    let name = format!("coffer-test-{}.fifo", unique());
    let Some(config) = sqs_queue(&name, json!({ "FifoQueue": "true" })).await else {
        return;
    };
    let sink = connect_sink("sqs-fifo", &HookSpec::Sqs(config.clone())).await.unwrap();
    let event = Event::new("object.archived", Some("k/1"), json!({ "key": "k/1" }));
    let payload = event.to_json();
    sink.deliver(&event, &payload).await.unwrap();
    sink.deliver(&event, &payload).await.unwrap();
    let other = Event::new("object.updated", Some("k/1"), json!({ "key": "k/1" }));
    sink.deliver(&other, &other.to_json()).await.unwrap();

    let received = sqs_read_all(&config, 2).await;
    sqs_delete_queue(&config).await;
    assert_eq!(received.len(), 2, "the redelivery was dropped");
    assert_eq!(received.get(&event.id), Some(&payload));
}

#[tokio::test(flavor = "multi_thread")]
async fn sqs_errors_name_the_aws_error_code_but_not_the_secret() {
    let Some(admin) = sqs_config("http://placeholder/") else {
        return;
    };
    let missing = SqsConfig {
        queue_url: format!("http://127.0.0.1:5000/123456789012/coffer-test-missing-{}", unique()),
        ..admin
    };
    let sink = connect_sink("sqs-missing", &HookSpec::Sqs(missing)).await.unwrap();
    let event = Event::new("object.archived", None, json!({}));
    let error = sink.deliver(&event, &event.to_json()).await.unwrap_err();
    let message = error.message();
    assert!(message.starts_with("sqs hook sqs-missing"), "{message}");
    assert!(
        message.contains("QueueDoesNotExist") || message.contains("NonExistentQueue"),
        "{message}"
    );
    assert!(!message.contains("secret-testing"), "{message}");
}

// ---------------------------------------------------------------- all three through a store

#[tokio::test(flavor = "multi_thread")]
async fn a_store_delivers_its_changes_to_all_three_brokers() {
    // Check every service first, so a missing one skips (or fails) before anything is made.
    let (Some(nats), Some(amqp), Some(_)) = (nats_url(), amqp_url(), sqs_config("http://placeholder/")) else {
        return;
    };
    let id = unique();
    let (nats_spec, stream) = nats_spec(&nats, &id);
    let (exchange, queue) = (format!("coffer-test-{id}"), format!("coffer-test-{id}"));
    let amqp_spec = HookSpec::Amqp(AmqpConfig {
        url: amqp.clone(),
        exchange: exchange.clone(),
        routing_key: "coffer.{type}".to_owned(),
        queue: Some(queue.clone()),
    });
    let sqs = sqs_queue(&format!("coffer-test-{id}"), json!({})).await.unwrap();

    let fixture = common::fs_store().await;
    let store = &fixture.store;
    for (name, spec) in [
        ("nats", nats_spec),
        ("amqp", amqp_spec),
        ("sqs", HookSpec::Sqs(sqs.clone())),
    ] {
        let hook = store.new_hook(name, spec, EventFilter::default());
        store.add_hook(&hook, false).await.unwrap();
    }
    for i in 0..20 {
        store
            .put_bytes(&format!("docs/{i}.txt"), format!("body {i}"), PutOptions::default())
            .await
            .unwrap();
    }
    store
        .fire_event("batch.completed", None, json!({ "batch": id }))
        .await
        .unwrap();

    let options = DispatcherOptions {
        backoff: Backoff {
            base: Duration::from_millis(5),
            max: Duration::from_millis(50),
        },
        ..DispatcherOptions::default()
    };
    let mut dispatcher = store.dispatcher(options);
    let mut settled = false;
    for _ in 0..200 {
        dispatcher.drain().await.unwrap();
        let report = store.hook_stats().await.unwrap();
        if report.events_waiting == 0 && report.total.queue_depth == 0 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    dispatcher.release().await.unwrap();
    let dead = store.dead_letters(None, 10).await.unwrap();

    let jetstream = async_nats::jetstream::new(async_nats::connect(nats.as_str()).await.unwrap());
    let from_nats = nats_read_all(&jetstream, &stream).await;
    jetstream.delete_stream(&stream).await.unwrap();
    let (connection, channel) = amqp_channel(&amqp).await;
    let from_amqp = amqp_read_all(&channel, &queue).await;
    channel
        .queue_delete(amqprs::channel::QueueDeleteArguments::new(&queue))
        .await
        .unwrap();
    channel
        .exchange_delete(amqprs::channel::ExchangeDeleteArguments::new(&exchange))
        .await
        .unwrap();
    channel.close().await.unwrap();
    connection.close().await.unwrap();
    let from_sqs = sqs_read_all(&sqs, 41).await;
    sqs_delete_queue(&sqs).await;

    assert!(settled, "deliveries did not settle");
    assert!(dead.is_empty(), "dead letters: {dead:?}");
    // 20 puts of new keys (object.archived and version.created each) and one event of the application's own.
    let types = from_nats
        .values()
        .map(|payload| Event::from_json(payload).unwrap().event_type)
        .fold(BTreeMap::<String, usize>::new(), |mut counts, t| {
            *counts.entry(t).or_default() += 1;
            counts
        });
    let expected: BTreeMap<String, usize> = [("batch.completed", 1), ("object.archived", 20), ("version.created", 20)]
        .into_iter()
        .map(|(t, n)| (t.to_owned(), n))
        .collect();
    assert_eq!(types, expected);
    assert_eq!(from_amqp, from_nats, "AMQP got the same documents as NATS");
    assert_eq!(from_sqs, from_nats, "SQS got the same documents as NATS");
    let ids: BTreeSet<&String> = from_nats.keys().collect();
    assert_eq!(ids.len(), 41);
}
