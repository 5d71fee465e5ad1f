//! How fast plugin output turns into perfdata items: `output::parse` plus a
//! walk over every item, on real monitoring-plugins 2.3 outputs. Throughput
//! is in perfdata items, so the report reads as items per second.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use monchero_core::output;

/// (name, output as the plugin prints it)
const OUTPUTS: &[(&str, &str)] = &[
    (
        "check_load",
        "OK - load average: 0.35, 0.29, 0.22|load1=0.350;15.000;30.000;0; load5=0.290;10.000;25.000;0; load15=0.220;5.000;20.000;0; \n",
    ),
    (
        "check_disk",
        "DISK OK - free space: / 41234 MB (78% inode=97%);| /=11234MB;42000;47000;0;52489\n",
    ),
    (
        "check_swap",
        "SWAP OK - 100% free (2047 MB out of 2047 MB) |swap=2147479552B;0;0;0;2147479552\n",
    ),
    ("check_procs", "PROCS OK: 112 processes | procs=112;;;0;\n"),
    ("check_users", "USERS OK - 1 users currently logged in |users=1;5;10;0\n"),
    (
        "check_tcp",
        "TCP OK - 0.000 second response time on 127.0.0.1 port 22|time=0.000123s;;;0.000000;10.000000\n",
    ),
    (
        "check_http",
        "HTTP OK: HTTP/1.0 200 OK - 1234 bytes in 0.002 second response time |time=0.001529s;;;0.000000;10.000000 size=1234B;;;0\n",
    ),
    (
        "check_ping",
        "PING OK - Packet loss = 0%, RTA = 0.05 ms|rta=0.051000ms;100.000000;500.000000;0.000000 pl=0%;20;60;0\n",
    ),
    (
        "guidelines_multiline",
        "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n\
         / 15272 MB (77%);\n/boot 68 MB (69%);\n/home 69357 MB (27%);\n\
         /var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n\
         /home=69357MB;253404;253409;0;253414 \n/var/log=818MB;970;975;0;980\n",
    ),
];

/// Parses `text` and touches every item, the work a result consumer does.
fn parse_all(text: &str) -> usize {
    let parsed = output::parse(text);
    parsed.perfdata().filter(|item| item.as_ref().is_ok_and(|datum| datum.value.is_some())).count()
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for &(name, text) in OUTPUTS {
        let items = output::parse(text).perfdata().count();
        assert_eq!(parse_all(text), items, "{name}: every item of the corpus parses");
        group.throughput(Throughput::Elements(items as u64));
        group.bench_function(name, |b| b.iter(|| parse_all(black_box(text))));
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
