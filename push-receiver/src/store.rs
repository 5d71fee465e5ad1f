//! Accepted records, deduplicated, in a JSON Lines file that survives a
//! restart of the receiver.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Map, Value};

/// Counters since the receiver started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Batches answered with `acked`.
    pub batches: u64,
    /// Records stored.
    pub stored: u64,
    /// Records dropped as already stored.
    pub duplicates: u64,
}

/// The file and, per (agent, instance), the highest sequence number stored.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    file: File,
    high: HashMap<(String, String), u64>,
    stats: Stats,
}

impl Store {
    /// Opens `path`, reading back what it holds.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        let mut high = HashMap::new();
        if let Ok(file) = File::open(path) {
            for line in BufReader::new(file).lines() {
                let line = line.with_context(|| format!("cannot read {}", path.display()))?;
                // A line cut short by a crash of the receiver was never
                // acknowledged: the agent sends it again.
                let Ok(record) = serde_json::from_str::<Value>(&line) else { continue };
                let key = (text(&record, "agent"), text(&record, "instance"));
                let seq = record["seq"].as_u64().unwrap_or(0);
                let entry = high.entry(key).or_insert(0);
                *entry = (*entry).max(seq);
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Store { path: path.to_owned(), file, high, stats: Stats::default() })
    }

    /// Stores the records of one batch that are new, durably, and returns
    /// the sequence number everything up to is stored.
    pub fn accept(
        &mut self,
        agent: &str,
        instance: &str,
        records: Vec<Map<String, Value>>,
    ) -> anyhow::Result<u64> {
        let key = (agent.to_owned(), instance.to_owned());
        let mut high = self.high.get(&key).copied().unwrap_or(0);
        let mut lines = Vec::new();
        let mut stored = 0;
        for mut record in records {
            let seq = record.get("seq").and_then(Value::as_u64).unwrap_or(0);
            if seq <= high {
                self.stats.duplicates += 1;
                continue;
            }
            high = seq;
            record.insert("agent".into(), agent.into());
            record.insert("instance".into(), instance.into());
            serde_json::to_writer(&mut lines, &record)?;
            lines.push(b'\n');
            stored += 1;
        }
        if !lines.is_empty() {
            self.file
                .write_all(&lines)
                .and_then(|()| self.file.sync_data())
                .with_context(|| format!("cannot write {}", self.path.display()))?;
        }
        self.high.insert(key, high);
        self.stats.stored += stored;
        self.stats.batches += 1;
        Ok(high)
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }
}

fn text(record: &Value, key: &str) -> String {
    record[key].as_str().unwrap_or_default().to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn records(seqs: &[u64]) -> Vec<Map<String, Value>> {
        seqs.iter()
            .map(|&seq| {
                let Value::Object(map) = serde_json::json!({"seq": seq, "type": "result"}) else {
                    unreachable!()
                };
                map
            })
            .collect()
    }

    #[test]
    fn duplicates_are_dropped_per_agent_and_instance_even_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.jsonl");
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.accept("a", "i1", records(&[1, 2, 3])).unwrap(), 3);
        assert_eq!(store.accept("a", "i1", records(&[2, 3, 4])).unwrap(), 4);
        // Another agent, and a new instance of the same one, count apart.
        assert_eq!(store.accept("b", "i1", records(&[1])).unwrap(), 1);
        assert_eq!(store.accept("a", "i2", records(&[1])).unwrap(), 1);
        // A gap is accepted.
        assert_eq!(store.accept("a", "i1", records(&[9])).unwrap(), 9);
        assert_eq!(store.stats(), Stats { batches: 5, stored: 7, duplicates: 2 });
        drop(store);

        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.accept("a", "i1", records(&[8, 9, 10])).unwrap(), 10);
        assert_eq!(store.stats().duplicates, 2);
        let lines = std::fs::read_to_string(&path).unwrap();
        let seqs: Vec<u64> = lines
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4, 1, 1, 9, 10]);
    }
}
