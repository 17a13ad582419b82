//! `coffer hooks` and `coffer events` through the built binary, against a
//! webhook receiver on 127.0.0.1; and a dispatcher killed (SIGKILL) at random
//! points while it delivers 10,000 events.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use coffer::events::Event;
use coffer::testkit::WebhookReceiver;
use common::{coffer, coffer_in, fails, json, ok};
use futures::StreamExt;

fn put(d: &Path, key: &str, metadata: &[&str]) -> serde_json::Value {
    let mut args = vec!["put", key, "--json"];
    for entry in metadata {
        args.extend(["--metadata", entry]);
    }
    json(coffer_in(d, &args, Some(key.as_bytes()), &[]))
}

fn events(receiver: &WebhookReceiver) -> Vec<Event> {
    receiver
        .accepted()
        .iter()
        .map(|r| Event::from_json(&r.body).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_are_managed_fired_delivered_and_counted_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let receiver = WebhookReceiver::start().await.unwrap();
    let url = receiver.url();
    let added = ok(coffer(
        d,
        &[
            "hooks",
            "add",
            "webhook",
            "erp",
            &url,
            "--secret",
            "s3cret-value",
            "--header",
            "X-Team: finance",
            "--events",
            "object.archived",
            "--prefix",
            "invoices/",
            "--where",
            "doc_type=invoice",
        ],
    ));
    assert_eq!(added.stdout, "added webhook hook erp\n");
    ok(coffer(
        d,
        &["hooks", "add", "webhook", "batches", &url, "--events", "batch.*"],
    ));
    ok(coffer(
        d,
        &["hooks", "add", "filelog", "log", "events.txt", "--format", "text"],
    ));

    let listed = ok(coffer(d, &["hooks", "list"])).stdout;
    assert!(listed.contains("erp") && listed.contains("object.archived under invoices/ where doc_type=invoice"));
    assert!(
        !listed.contains("s3cret-value") && !listed.contains("finance"),
        "{listed}"
    );
    let listed = json(coffer(d, &["hooks", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert_eq!(listed[1]["spec"]["secret"], "***");

    let invoice = put(d, "invoices/1.pdf", &["doc_type=invoice"]);
    put(d, "invoices/2.pdf", &["doc_type=receipt"]);
    put(d, "other/3.pdf", &["doc_type=invoice"]);
    let fired = json(coffer(
        d,
        &[
            "events",
            "fire",
            "batch.completed",
            "--data",
            r#"{"batch_id":"b1"}"#,
            "--json",
        ],
    ));
    assert_eq!(fired["type"], "batch.completed");

    let run = ok(coffer(d, &["hooks", "run", "--once"]));
    assert!(
        run.stdout.starts_with("delivered 9,") || run.stdout.starts_with("delivered 9 "),
        "{}",
        run.stdout
    );
    let got = events(&receiver);
    assert_eq!(got.len(), 2, "{got:?}");
    let archived = got.iter().find(|e| e.event_type == "object.archived").unwrap();
    assert_eq!(archived.data["version_id"], invoice["version_id"]);
    let erp_request = receiver
        .accepted()
        .into_iter()
        .find(|r| r.body.contains("object.archived"))
        .unwrap();
    assert_eq!(erp_request.headers["x-team"], "finance");
    assert!(erp_request.headers["webhook-signature"].starts_with("v1,"));
    assert_eq!(
        got.iter().find(|e| e.event_type == "batch.completed").unwrap().data["batch_id"],
        "b1"
    );
    // 3 puts x 2 events + 1 batch event, every one in the text log.
    assert_eq!(
        std::fs::read_to_string(d.join("events.txt")).unwrap().lines().count(),
        7
    );

    let stats = json(coffer(d, &["hooks", "stats", "--json"]));
    assert_eq!(stats["events_fired"], 7);
    assert_eq!(stats["total"]["delivered"], 9);
    assert_eq!(stats["total"]["queue_depth"], 0);
    let table = ok(coffer(d, &["hooks", "stats"])).stdout;
    assert!(
        table.contains("events fired") && table.contains("P95 MS") && table.contains("(all)"),
        "{table}"
    );

    let tested = ok(coffer(d, &["hooks", "test", "erp"])).stdout;
    assert!(tested.starts_with("hook erp: test event delivered in "), "{tested}");
    assert_eq!(receiver.accepted_count(), 3);

    // A receiver that is down: the test says so, with the delivery exit code.
    ok(coffer(
        d,
        &[
            "hooks",
            "add",
            "webhook",
            "down",
            "http://127.0.0.1:9/",
            "--attempts",
            "2",
            "--events",
            "qc.*",
        ],
    ));
    fails(coffer(d, &["hooks", "test", "down"]), 12, "webhook down");
    ok(coffer(d, &["events", "fire", "qc.rejected", "--key", "invoices/1.pdf"]));
    for _ in 0..2 {
        ok(coffer(
            d,
            &["hooks", "run", "--once", "--backoff", "1ms", "--max-backoff", "1ms"],
        ));
        std::thread::sleep(Duration::from_millis(5));
    }
    let dead = json(coffer(d, &["hooks", "dead", "--json"]));
    assert_eq!(dead.as_array().unwrap().len(), 1);
    assert_eq!(dead[0]["event_type"], "qc.rejected");
    assert_eq!(dead[0]["attempts"], 2);
    assert_eq!(
        ok(coffer(d, &["hooks", "replay", "down"])).stdout,
        "1 dead delivery will be retried\n"
    );
    ok(coffer(d, &["hooks", "remove", "down"]));
    assert!(
        json(coffer(d, &["hooks", "dead", "--json"]))
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Bad input: one line, the right code, nothing changed.
    fails(
        coffer(d, &["hooks", "add", "webhook", "x", "ftp://example.com/"]),
        5,
        "http:// or https://",
    );
    fails(
        coffer(d, &["hooks", "add", "webhook", "erp", &url]),
        6,
        "hook erp already exists",
    );
    fails(
        coffer(d, &["hooks", "add", "filelog", "f", "x.log", "--where", "nope"]),
        5,
        "NAME=VALUE",
    );
    fails(
        coffer(d, &["events", "fire", "object.archived"]),
        5,
        "fired by the store itself",
    );
    fails(
        coffer(d, &["events", "fire", "x.y", "--data", "{nope"]),
        5,
        "--data is not JSON",
    );
    fails(coffer(d, &["hooks", "remove", "nope"]), 3, "no hook named nope");
    assert_eq!(
        json(coffer(d, &["hooks", "list", "--json"])).as_array().unwrap().len(),
        3
    );
}

/// A dispatcher process killed with SIGKILL at random points, again and
/// again, while it delivers 10,000 events: after a final run every event
/// has reached the receiver (some twice, which the receiver drops by id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_killed_at_random_points_loses_no_event() {
    const EVENTS: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let receiver = WebhookReceiver::start().await.unwrap();
    ok(coffer(d, &["hooks", "add", "webhook", "sink", &receiver.url()]));
    let store = coffer::Store::open(&coffer::Config::embedded(d.join("coffer-data")))
        .await
        .unwrap();
    let fired: Vec<coffer::Result<Event>> = futures::stream::iter(0..EVENTS)
        .map(|n| {
            let store = store.clone();
            async move {
                store
                    .fire_event("batch.completed", None, serde_json::json!({ "n": n }))
                    .await
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert!(fired.iter().all(Result::is_ok));

    // A slow receiver, so that the kills land while deliveries are in flight.
    receiver.delay(Duration::from_millis(10));
    let args = [
        "hooks",
        "run",
        "--lease",
        "1s",
        "--claim-timeout",
        "5s",
        "--batch",
        "100",
        "--concurrency",
        "8",
    ];
    let mut kills = 0;
    let mut seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let started = Instant::now();
    while kills < 8 && receiver.accepted_count() < EVENTS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
            .current_dir(d)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // A random moment: while it waits for the lease, fans out, or delivers.
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay = Duration::from_millis(300 + (seed >> 33) % 1500);
        tokio::time::sleep(delay).await;
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
        child.wait().unwrap();
        kills += 1;
    }
    assert!(started.elapsed() < Duration::from_secs(120));
    let delivered_while_killed = receiver.accepted_count();
    assert!(
        delivered_while_killed < EVENTS,
        "the kills came before the end ({kills} kills, {} requests, {:?})",
        receiver.requests(),
        started.elapsed()
    );
    receiver.delay(Duration::ZERO);
    // The last run waits for the dead dispatcher's lease, then finishes.
    ok(coffer(d, &["hooks", "run", "--once", "--lease", "1s"]));
    assert_eq!(
        receiver.accepted_count(),
        EVENTS,
        "every event arrived ({delivered_while_killed} before the last run)"
    );
    let mut ids: Vec<String> = events(&receiver).into_iter().map(|e| e.id).collect();
    ids.sort();
    let mut expected: Vec<String> = fired.into_iter().map(|e| e.unwrap().id).collect();
    expected.sort();
    assert_eq!(ids, expected);
    let stats = json(coffer(d, &["hooks", "stats", "--json"]));
    assert_eq!(stats["total"]["delivered"], EVENTS);
    assert_eq!(stats["total"]["queue_depth"], 0);
    assert_eq!(stats["total"]["dead_letters"], 0);
    eprintln!(
        "{kills} kills; {delivered_while_killed} delivered before the last run; {} duplicates dropped by the receiver",
        receiver.duplicates()
    );
}
