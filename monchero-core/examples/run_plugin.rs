//! Embedding monchero-core: run a plugin under the agent's execution policy
//! and evaluate its perfdata against thresholds of your own.
//!
//! ```text
//! cargo run -p monchero-core --example run_plugin -- /usr/lib/nagios/plugins/check_load -w 5,4,3 -c 10,8,6
//! ```

use std::time::Duration;

use monchero_core::command::CommandLine;
use monchero_core::runner::{Runner, RunnerConfig};
use monchero_core::threshold::{Range, Thresholds};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let command = CommandLine::from_argv(argv)?;
    let runner =
        Runner::new(RunnerConfig { timeout: Duration::from_secs(10), ..RunnerConfig::default() });
    let result = runner.run(&command).await;

    println!("{}: {} ({:?})", result.state, result.summary, result.duration);
    // Our own view of the numbers: anything above 1000 of anything is odd.
    let ours = Thresholds { warning: Some(Range::parse("1000")?), critical: None };
    for item in &result.perfdata {
        if let Some(value) = item.value {
            println!("  {item}  -> ours: {}", ours.evaluate(value));
        }
    }
    std::process::exit(i32::from(result.state.exit_code()));
}
