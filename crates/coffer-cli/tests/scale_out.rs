//! Scale-out with real processes: three `coffer serve` over one PostgreSQL
//! catalog and one Garage bucket, a load of puts from several clients
//! spread across them, one server killed with SIGKILL mid-run. Every
//! acknowledged write is there afterwards and reads back verified, the
//! store verifies clean, and every acknowledged write's event reaches the
//! webhook at least once (the killed server's claims are delivered by the
//! others once their claim times out).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use coffer::testkit::WebhookReceiver;
use common::garage::postgres_and_garage;
use common::serve::serve;
use common::{coffer, json, ok};
use sha2::{Digest, Sha256};

const CLIENTS: usize = 6;
const PUTS_EACH: usize = 30;

/// One acknowledged write: its key, version id and SHA-256.
type Acked = (String, String, String);

#[tokio::test(flavor = "multi_thread")]
async fn three_servers_share_one_store_and_a_killed_one_loses_no_acknowledged_write() {
    let Some((_database, dir)) = postgres_and_garage().await else {
        return;
    };
    let d = dir.path();
    let receiver = WebhookReceiver::start().await.unwrap();
    ok(coffer(
        d,
        &[
            "hooks",
            "add",
            "webhook",
            "all",
            &receiver.url(),
            "--events",
            "object.*",
        ],
    ));
    let token = json(coffer(
        d,
        &["token", "create", "--scope", "write", "--name", "load", "--json"],
    ))["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let env = [("COFFER_SERVER_CLAIM_TIMEOUT", "3s")];
    let mut servers: Vec<_> = (0..3).map(|_| serve(d, &[], &env)).collect();
    let urls: Arc<Vec<String>> = Arc::new(servers.iter().map(|s| s.url.clone()).collect());

    let done = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (urls, token, done) = (urls.clone(), token.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut acked: Vec<Acked> = Vec::new();
            for i in 0..PUTS_EACH {
                let key = format!("load/c{client}/{i}.bin");
                let body: Vec<u8> = (0..(4096 + 997 * i)).map(|n| (n * 31 + client * 7 + i) as u8).collect();
                let sha = hex::encode(Sha256::digest(&body));
                // Spread over the servers; one that does not answer passes
                // the write to the next, as a load balancer would.
                for attempt in 0..urls.len() {
                    let url = &urls[(client + i + attempt) % urls.len()];
                    let sent = http
                        .put(format!("{url}/api/v1/objects/{key}"))
                        .bearer_auth(&token)
                        .body(body.clone())
                        .send()
                        .await;
                    if let Ok(response) = sent
                        && response.status() == reqwest::StatusCode::CREATED
                    {
                        let version: serde_json::Value = response.json().await.unwrap();
                        acked.push((
                            key.clone(),
                            version["version_id"].as_str().unwrap().to_owned(),
                            sha.clone(),
                        ));
                        break;
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
            acked
        }));
    }
    // Kill one server once a third of the writes are through.
    while done.load(Ordering::SeqCst) < CLIENTS * PUTS_EACH / 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    servers[1].kill();
    let mut acked: Vec<Acked> = Vec::new();
    for client in clients {
        acked.extend(client.await.unwrap());
    }
    assert_eq!(
        acked.len(),
        CLIENTS * PUTS_EACH,
        "the surviving servers took every write"
    );

    // Every acknowledged write reads back, verified, through a survivor.
    let http = reqwest::Client::new();
    for (key, version, sha) in &acked {
        let response = http
            .get(format!("{}/api/v1/objects/{key}?version={version}", urls[2]))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{key} {version}");
        let bytes = response.bytes().await.unwrap();
        assert_eq!(&hex::encode(Sha256::digest(&bytes)), sha, "{key} reads back");
    }

    // Each acknowledged write's event is delivered at least once.
    let wanted: HashSet<&str> = acked.iter().map(|(_, v, _)| v.as_str()).collect();
    let started = Instant::now();
    loop {
        let delivered: HashMap<String, usize> = receiver
            .accepted()
            .iter()
            .filter_map(|r| serde_json::from_str::<serde_json::Value>(&r.body).ok())
            .filter_map(|e| e["data"]["version_id"].as_str().map(str::to_owned))
            .fold(HashMap::new(), |mut seen, v| {
                *seen.entry(v).or_default() += 1;
                seen
            });
        let missing = wanted.iter().filter(|v| !delivered.contains_key(**v)).count();
        if missing == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{missing} acknowledged writes' events were not delivered"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for server in servers.iter_mut().filter(|s| s.url != urls[1]) {
        server.terminate();
        assert!(server.wait(Duration::from_secs(60)).success(), "{}", server.logs());
    }
    // The store is whole: flush what is hot, then verify.
    ok(coffer(d, &["hot", "flush"]));
    let verify = coffer(d, &["verify"]);
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
}
