//! Runner overhead: a trivial plugin run through `Runner`, side by side with
//! a baseline that only spawns it with `std::process::Command`, captures its
//! output and waits. The ratio of the two is the figure to watch (target:
//! at most 1.10); see docs/benchmarks.md.

use std::path::Path;
use std::process::{Command, Stdio};

use criterion::{Criterion, criterion_group, criterion_main};
use monchero_core::command::CommandLine;
use monchero_core::runner::Runner;

/// check_dummy when the monitoring-plugins are installed, else /bin/true.
fn plugin() -> (String, Vec<String>) {
    let dummy = "/usr/lib/nagios/plugins/check_dummy";
    if Path::new(dummy).exists() {
        (dummy.to_owned(), vec!["0".to_owned(), "OK - fine | load=0.5;1;2;0;".to_owned()])
    } else {
        ("/bin/true".to_owned(), Vec::new())
    }
}

fn spawn(c: &mut Criterion) {
    let (program, args) = plugin();
    let mut group = c.benchmark_group("spawn");

    group.bench_function("std_command_output", |b| {
        b.iter(|| {
            let output = Command::new(&program)
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .expect("the plugin runs");
            assert!(output.status.success());
            output
        });
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let runner = Runner::default();
    let command = CommandLine::Exec { program: program.clone(), args: args.clone() };
    group.bench_function("runner", |b| {
        b.iter(|| {
            let result = runtime.block_on(runner.run(&command));
            assert_eq!(result.exit_code, Some(0));
            result
        });
    });
    group.finish();
}

criterion_group!(benches, spawn);
criterion_main!(benches);
