//! CPU per run of each built-in check that has a monitoring-plugins twin,
//! side by side with the twin run through `Runner` with the same options:
//! `load/builtin` against `load/plugin`, and so on (`http` against a
//! loopback server in this process). The ratio plugin ÷
//! built-in is the figure to watch (target: at least 10); see
//! docs/benchmarks.md.
//!
//! The measurement is CPU time, not wall-clock time: a plugin spends most of
//! its wall-clock time in its own process, which is exactly the cost a
//! built-in avoids. For a built-in it is this thread's time on a CPU
//! (`/proc/thread-self/schedstat`); for a plugin, that plus the CPU time of
//! the reaped children (`cutime` + `cstime` of `/proc/self/stat`). Neither
//! clock is fine-grained (the first moves at scheduler ticks while a
//! thread runs, the second counts 10 ms ticks), so every sample is long:
//! ten flat samples of about a second each. Criterion reports these CPU
//! times where it says "time".
//!
//! Without the plugins installed (`apt-get install monitoring-plugins-basic
//! monitoring-plugins-standard`) the plugin side of each pair is skipped.
//! The `ntp` pair asks a chronyd the bench starts on a loopback port (it
//! never touches the clock: `-x`); without chronyd it is left out.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use monchero_core::builtin::BuiltinCheck;
use monchero_core::command::CommandLine;
use monchero_core::plugin_path::DEFAULT_PLUGIN_PATH;
use monchero_core::runner::Runner;

/// `/proc/self/stat` counts children's CPU time in USER_HZ ticks, which the
/// kernel's ABI fixes at 100 per second whatever its internal HZ.
const TICK: Duration = Duration::from_millis(10);

/// This thread's CPU time so far.
fn own_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let nanos = text.split_ascii_whitespace().next().and_then(|field| field.parse().ok());
    Duration::from_nanos(nanos.unwrap_or(0))
}

/// The CPU time of this process's reaped children so far.
fn children_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name in parentheses: field 3 is the state, and
    // cutime and cstime are fields 16 and 17.
    let after_name = text.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u32 = after_name
        .split_ascii_whitespace()
        .skip(13)
        .take(2)
        .filter_map(|field| field.parse::<u32>().ok())
        .sum();
    TICK * ticks
}

/// A built-in check and its twin: a group name, the built-in's command
/// line (without `builtin:`) and the plugin's.
struct Twin {
    name: &'static str,
    builtin: String,
    plugin: String,
}

/// A chronyd serving this machine's clock on a loopback port, killed when
/// dropped.
struct Chronyd(std::process::Child);

impl Chronyd {
    /// Starts one in `dir`; its port, or `None` without chronyd.
    fn start(dir: &Path) -> Option<(Chronyd, u16)> {
        let port = std::net::UdpSocket::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let config = dir.join("chrony.conf");
        let text = format!(
            "port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\ncmdport 0\nlocal stratum 8\n\
             pidfile {}\n",
            dir.join("chronyd.pid").display()
        );
        std::fs::write(&config, text).ok()?;
        let child = std::process::Command::new("/usr/sbin/chronyd")
            .args(["-d", "-x", "-f"])
            .arg(&config)
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let chronyd = Chronyd(child);
        let probe = BuiltinCheck::from_args(
            "ntp",
            &["-H".into(), "127.0.0.1".into(), "-p".into(), port.to_string()],
        )
        .ok()?;
        for _ in 0..100 {
            if probe.run().state == monchero_core::State::Ok {
                return Some((chronyd, port));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Chronyd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn twins(file: &Path, http_port: u16, ntp_port: Option<u16>) -> Vec<Twin> {
    let file = file.display();
    let twin = |name, builtin: &str, plugin: &str| Twin {
        name,
        builtin: builtin.to_owned(),
        plugin: plugin.to_owned(),
    };
    let mut twins = vec![
        twin(
            "load",
            "load -w 1000,900,800 -c 2000,1900,1800",
            "check_load -w 1000,900,800 -c 2000,1900,1800",
        ),
        twin("swap", "swap -w 10% -c 5%", "check_swap -n ok -w 10% -c 5%"),
        twin("disk", "disk -w 10% -c 5% -p /", "check_disk -w 10% -c 5% -p /"),
        twin("inodes", "inodes -W 10% -K 5% -p /", "check_disk -W 10% -K 5% -p /"),
        twin("procs", "procs -w 5000 -c 10000", "check_procs -w 5000 -c 10000"),
        twin(
            "file",
            &format!("file -f {file} -w 3600 -c 7200"),
            &format!("check_file_age -f {file} -w 3600 -c 7200"),
        ),
        twin(
            "http",
            &format!("http -I 127.0.0.1 -p {http_port} -u /health -s ok"),
            &format!("check_http -I 127.0.0.1 -p {http_port} -u /health -s ok"),
        ),
    ];
    if let Some(port) = ntp_port {
        let options = format!("-H 127.0.0.1 -p {port} -w 1 -c 2");
        twins.push(twin("ntp", &format!("ntp {options}"), &format!("check_ntp_time {options}")));
    }
    twins
}

/// A loopback HTTP server in a thread of its own (its CPU time is not
/// the measured thread's, nor a child's, so neither side pays for it)
/// answering every request with the same small page.
fn http_server() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("its address").port();
    std::thread::spawn(move || {
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(reply);
        }
    });
    port
}

fn builtin_vs_plugin(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("heartbeat");
    std::fs::write(&file, "alive\n").expect("a file to watch");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let runner = Runner::default();
    let chronyd = Chronyd::start(dir.path());

    for twin in twins(&file, http_server(), chronyd.as_ref().map(|(_, port)| *port)) {
        let mut group = c.benchmark_group(twin.name);
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .measurement_time(Duration::from_secs(10));

        let words: Vec<String> = twin.builtin.split(' ').map(str::to_owned).collect();
        let check = BuiltinCheck::from_args(&words[0], &words[1..]).expect("a valid built-in");
        group.bench_function("builtin", |b| {
            b.iter_custom(|iters| {
                let start = own_cpu();
                for _ in 0..iters {
                    black_box(check.run());
                }
                own_cpu() - start
            });
        });

        let mut command = CommandLine::parse(&twin.plugin).expect("a valid command line");
        command.resolve_plugin(DEFAULT_PLUGIN_PATH);
        if command.program().starts_with('/') {
            group.bench_function("plugin", |b| {
                b.iter_custom(|iters| {
                    let start = own_cpu() + children_cpu();
                    for _ in 0..iters {
                        let result = runtime.block_on(runner.run(&command));
                        assert!(result.exit_code.is_some_and(|code| code <= 2), "{result:?}");
                    }
                    own_cpu() + children_cpu() - start
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, builtin_vs_plugin);
criterion_main!(benches);
