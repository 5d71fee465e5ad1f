//! Helpers shared by the conformance test files: running an installed
//! plugin the way a user's config would, and finding a perfdata item.

use monchero_core::CheckResult;
use monchero_core::command::CommandLine;
use monchero_core::perfdata::PerfData;
use monchero_core::plugin_path::DEFAULT_PLUGIN_PATH;
use monchero_core::runner::Runner;

/// Runs an installed plugin by its bare name, as a user's config would.
pub async fn plugin(command_line: &str) -> CheckResult {
    let mut command = CommandLine::parse(command_line).expect("a valid command line");
    command.resolve_plugin(DEFAULT_PLUGIN_PATH);
    assert!(
        command.program().starts_with('/'),
        "{} is not installed: apt-get install monitoring-plugins-basic monitoring-plugins-standard",
        command.program()
    );
    let result = Runner::default().run(&command).await;
    assert_eq!(result.exit_code, Some(i32::from(result.state.exit_code())), "{result:?}");
    result
}

/// The perfdata item called `label`; fails the test when there is none.
pub fn item<'a>(result: &'a CheckResult, label: &str) -> &'a PerfData {
    result
        .perfdata
        .iter()
        .find(|item| item.label == label)
        .unwrap_or_else(|| panic!("no perfdata {label:?} in {:?}", result.perfdata))
}
