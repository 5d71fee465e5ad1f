//! Load test of push protocol v1: many simulated agents, in one process,
//! sending batches of realistic result records to the reference receiver
//! on 127.0.0.1, each through its own spool (`monchero_core::spool`).
//!
//! Reports records per second through the whole path (spool append and
//! fsync, read, JSON, gzip, HTTP, the receiver's dedupe and fsynced store)
//! and bytes per record on the wire. `docs/push-protocol.md` uses the
//! bytes per record for its fleet arithmetic.
//!
//! `cargo bench -p monchero-push-receiver --bench push_load`
//! (PUSH_LOAD_AGENTS, PUSH_LOAD_ROUNDS and PUSH_LOAD_CHECKS change the
//! shape: by default 200 agents × 100 checks × 5 rounds, each round one
//! batch per agent, as with a 1-minute check interval and a 60 s push
//! interval; with the default 10 s interval batches are a sixth of that).

use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use flate2::Compression;
use flate2::write::GzEncoder;
use monchero_core::spool::{Spool, SpoolConfig};
use monchero_push_receiver::{Receiver, ReceiverConfig};
use serde_json::json;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A result record as the agent writes it, for check `i` of an agent.
fn record(i: usize, round: usize) -> Vec<u8> {
    let at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let value = fastrand::f64() * 100.0;
    let (summary, perfdata) = match i % 4 {
        0 => (
            format!(
                "DISK OK - free space: /srv{i} {:.0} MB ({:.0}% inode=91%);",
                value * 400.0,
                value
            ),
            json!([{"label": format!("/srv{i}"), "value": (value * 400.0).round(), "uom": "MB", "warn": "36000", "crit": "38000", "min": 0.0, "max": 40000.0}]),
        ),
        1 => (
            format!(
                "LOAD OK - total load average: {:.2}, {:.2}, {:.2}",
                value / 40.0,
                value / 50.0,
                value / 60.0
            ),
            json!([
                {"label": "load1", "value": (value / 40.0 * 100.0).round() / 100.0, "uom": null, "warn": "15", "crit": "30", "min": 0.0, "max": null},
                {"label": "load5", "value": (value / 50.0 * 100.0).round() / 100.0, "uom": null, "warn": "10", "crit": "25", "min": 0.0, "max": null},
                {"label": "load15", "value": (value / 60.0 * 100.0).round() / 100.0, "uom": null, "warn": "5", "crit": "20", "min": 0.0, "max": null}
            ]),
        ),
        2 => (
            format!(
                "HTTP OK: HTTP/1.1 200 OK - 5120 bytes in {:.3} second response time",
                value / 1000.0
            ),
            json!([
                {"label": "time", "value": (value / 1000.0 * 1e6).round() / 1e6, "uom": "s", "warn": null, "crit": null, "min": 0.0, "max": null},
                {"label": "size", "value": 5120.0, "uom": "B", "warn": null, "crit": null, "min": 0.0, "max": null}
            ]),
        ),
        _ => (
            format!("PROCS OK: {:.0} processes with command name 'worker{i}'", value / 10.0),
            json!([{"label": "procs", "value": (value / 10.0).round(), "uom": null, "warn": "1:", "crit": "1:", "min": 0.0, "max": null}]),
        ),
    };
    let record = json!({
        "type": "result", "at": at, "check": format!("check_{i}"), "state": "ok",
        "state_type": "hard", "attempt": 1, "max_attempts": 3, "summary": summary,
        "perfdata": perfdata, "duration_ms": (value * 10.0).round() / 10.0,
        "exit_code": 0, "timed_out": false, "round": round,
    });
    serde_json::to_vec(&record).unwrap_or_default()
}

/// The gzip body of one batch, as the agent builds it.
fn body(agent: &str, instance: &str, records: &[monchero_core::spool::Record]) -> Vec<u8> {
    let records: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            let mut value: serde_json::Value =
                serde_json::from_slice(&r.payload).unwrap_or_default();
            value["seq"] = r.seq.into();
            value
        })
        .collect();
    let doc = json!({"version": 1, "agent": agent, "instance": instance, "records": records});
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    let _ = gz.write_all(&serde_json::to_vec(&doc).unwrap_or_default());
    gz.finish().unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    let agents = env("PUSH_LOAD_AGENTS", 200);
    let rounds = env("PUSH_LOAD_ROUNDS", 5);
    let checks = env("PUSH_LOAD_CHECKS", 100);
    let dir = tempfile::tempdir()?;
    let receiver = Receiver::start(ReceiverConfig::plain(
        "127.0.0.1:0".parse()?,
        dir.path().join("store.jsonl"),
    ))?;
    let url = format!("http://{}/v1/push", receiver.addr());
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let mut spools = (0..agents)
        .map(|a| {
            Spool::open(
                &dir.path().join(format!("agent{a}")),
                SpoolConfig::with_max_bytes(64 << 20),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (mut raw, mut wire, mut records) = (0usize, 0usize, 0usize);
    let started = Instant::now();
    for round in 0..rounds {
        for (a, spool) in spools.iter_mut().enumerate() {
            for i in 0..checks {
                spool.append(&record(i, round))?;
            }
            let batch = spool.read(spool.acked(), checks)?;
            raw += batch.iter().map(|r| r.payload.len() + 12).sum::<usize>();
            let body = body(&format!("agent-{a:05}"), "0123456789abcdef0123456789abcdef", &batch);
            wire += body.len();
            let answer: serde_json::Value = client
                .post(&url)
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(body)
                .send()?
                .error_for_status()?
                .json()?;
            spool.ack(answer["acked"].as_u64().unwrap_or(0))?;
            records += batch.len();
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stats = receiver.stats();
    println!(
        "{agents} agents x {checks} checks x {rounds} rounds: {records} records in {elapsed:.2} s = {:.0} records/s ({:.0} batches/s); \
         {:.1} bytes/record as JSON, {:.1} bytes/record gzipped ({:.1}x); receiver stored {}, duplicates {}",
        records as f64 / elapsed,
        (agents * rounds) as f64 / elapsed,
        raw as f64 / records as f64,
        wire as f64 / records as f64,
        raw as f64 / wire as f64,
        stats.stored,
        stats.duplicates,
    );
    Ok(())
}
