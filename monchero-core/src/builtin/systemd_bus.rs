//! What `builtin:systemd` asks systemd, over D-Bus: a unit's state, the
//! failed units. No `systemctl` is forked.
//!
//! zbus is the D-Bus client: pure Rust (no libdbus), maintained by the
//! freedesktop D-Bus people, and since 6.0 it needs no runtime of its own
//! with the `tokio` feature. It is async only; a check runs on a blocking
//! thread, so each run drives it on a current-thread tokio runtime of its
//! own, made for the run: no worker threads, nothing shared with the
//! agent's runtime, dropped (with the connection) when the run ends. One
//! deadline covers connecting and every call, so a bus that accepts and
//! never answers cannot hold the check.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zbus::{Connection, OwnedObjectPath, OwnedVariant};

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT: &str = "org.freedesktop.systemd1.Unit";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// A unit as systemd reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UnitState {
    pub(super) name: String,
    /// `loaded`, `not-found`, `masked`, ...; `not-found` also for a unit
    /// systemd has not loaded at all.
    pub(super) load: String,
    /// `active`, `failed`, `inactive`, `activating`, ...
    pub(super) active: String,
    /// `running`, `dead`, `exited`, ...
    pub(super) sub: String,
    /// When the unit entered its current state, if systemd knows.
    pub(super) since: Option<SystemTime>,
}

/// Why systemd could not be asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum BusError {
    /// No bus, or no systemd on it: the machine does not run systemd.
    NotRunning(String),
    /// No answer within the deadline.
    TimedOut(Duration),
    /// systemd answered with an error, or with something unexpected.
    Failed(String),
}

/// What the check asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Query<'a> {
    pub(super) units: &'a [String],
    pub(super) failed: bool,
}

/// What systemd answered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Answer {
    pub(super) units: Vec<UnitState>,
    /// The names of the failed units, when asked.
    pub(super) failed: Option<Vec<String>>,
}

/// Asks systemd on the system bus (`DBUS_SYSTEM_BUS_ADDRESS`, or the
/// standard socket), all within `deadline`.
pub(super) fn ask(query: &Query<'_>, deadline: Duration) -> Result<Answer, BusError> {
    let runtime =
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|error| BusError::Failed(format!("cannot start the D-Bus client: {error}")))?;
    runtime.block_on(async {
        match tokio::time::timeout(deadline, ask_async(query)).await {
            Ok(answer) => answer,
            Err(_) => Err(BusError::TimedOut(deadline)),
        }
    })
}

async fn ask_async(query: &Query<'_>) -> Result<Answer, BusError> {
    let connection = Connection::system()
        .await
        .map_err(|error| BusError::NotRunning(format!("cannot reach the system bus: {error}")))?;
    let mut answer = Answer::default();
    for name in query.units {
        answer.units.push(unit_state(&connection, name).await?);
    }
    if query.failed {
        answer.failed = Some(failed_units(&connection).await?);
    }
    Ok(answer)
}

async fn unit_state(connection: &Connection, name: &str) -> Result<UnitState, BusError> {
    let reply = connection
        .call_method(Some(SYSTEMD), MANAGER_PATH, Some(MANAGER), "GetUnit", &(name,))
        .await;
    let path: OwnedObjectPath = match reply {
        Ok(message) => message.body().deserialize().map_err(unexpected)?,
        // GetUnit knows only loaded units; one that is not loaded does not
        // exist as far as a running system is concerned.
        Err(zbus::Error::MethodError(error, _, _))
            if error.as_str() == "org.freedesktop.systemd1.NoSuchUnit" =>
        {
            return Ok(UnitState {
                name: name.to_owned(),
                load: "not-found".to_owned(),
                active: "inactive".to_owned(),
                sub: "dead".to_owned(),
                since: None,
            });
        }
        Err(error) => return Err(call_error(error)),
    };
    let reply = connection
        .call_method(Some(SYSTEMD), path.as_str(), Some(PROPERTIES), "GetAll", &(UNIT,))
        .await
        .map_err(call_error)?;
    let properties: HashMap<String, OwnedVariant> =
        reply.body().deserialize().map_err(unexpected)?;
    let text = |key: &str| {
        properties.get(key).and_then(|value| String::try_from(&**value).ok()).unwrap_or_default()
    };
    let since = properties
        .get("StateChangeTimestamp")
        .and_then(|value| u64::try_from(&**value).ok())
        .filter(|micros| *micros > 0)
        .map(|micros| UNIX_EPOCH + Duration::from_micros(micros));
    Ok(UnitState {
        name: name.to_owned(),
        load: text("LoadState"),
        active: text("ActiveState"),
        sub: text("SubState"),
        since,
    })
}

/// One entry of `ListUnitsFiltered`: name, description, load state,
/// active state, sub state, followed unit, unit path, job id, job type,
/// job path.
type ListedUnit =
    (String, String, String, String, String, String, OwnedObjectPath, u32, String, OwnedObjectPath);

async fn failed_units(connection: &Connection) -> Result<Vec<String>, BusError> {
    let reply = connection
        .call_method(
            Some(SYSTEMD),
            MANAGER_PATH,
            Some(MANAGER),
            "ListUnitsFiltered",
            &(vec!["failed"],),
        )
        .await
        .map_err(call_error)?;
    let units: Vec<ListedUnit> = reply.body().deserialize().map_err(unexpected)?;
    let mut names: Vec<String> = units.into_iter().map(|unit| unit.0).collect();
    names.sort();
    Ok(names)
}

fn call_error(error: zbus::Error) -> BusError {
    match &error {
        zbus::Error::FDO(fdo)
            if matches!(
                **fdo,
                zbus::fdo::Error::ServiceUnknown(_)
                    | zbus::fdo::Error::NameHasNoOwner(_)
                    // A bus without systemd may still hold its activation
                    // file, which names a program that cannot start it.
                    | zbus::fdo::Error::SpawnChildExited(_)
                    | zbus::fdo::Error::SpawnExecFailed(_)
                    | zbus::fdo::Error::SpawnFailed(_)
                    | zbus::fdo::Error::SpawnServiceNotFound(_)
            ) =>
        {
            BusError::NotRunning(format!("nothing answers as {SYSTEMD} on the system bus"))
        }
        zbus::Error::MethodError(name, Some(text), _) => {
            BusError::Failed(format!("systemd refused: {text} ({})", name.as_str()))
        }
        _ => BusError::Failed(format!("D-Bus call failed: {error}")),
    }
}

fn unexpected(error: zbus::Error) -> BusError {
    BusError::Failed(format!("systemd's answer is not what systemd sends: {error}"))
}
