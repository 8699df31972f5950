//! Weir's libraries report through `tracing` events; programs show them with
//! [`init`], which [`crate::Config::from_args`] calls (a program that installs its own
//! subscriber first keeps it). Lines look like `weir: message` (the AM's `weir-am: message`),
//! on standard error; `WEIR_LOG` sets the level (`error`, `warn`, `info` (default), `debug`,
//! `trace`, or `off`).

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The environment variable with the level of what is shown.
pub const LOG_ENV: &str = "WEIR_LOG";

/// Shows Weir's events on standard error, unless a subscriber is already installed. An event
/// that cannot be written (standard error closed, as when a launcher died) is dropped:
/// `tracing-subscriber` would otherwise report the failure with `eprintln!`, which panics
/// the thread that logged.
///
/// ```
/// weir_core::logging::init();
/// tracing::warn!("shown as `weir: shown as …`");
/// ```
pub fn init() {
    let level = match std::env::var(LOG_ENV).as_deref().map(str::trim) {
        Ok("off") => return,
        Ok("error") => Level::ERROR,
        Ok("warn") => Level::WARN,
        Ok("debug") => Level::DEBUG,
        Ok("trace") => Level::TRACE,
        _ => Level::INFO,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .event_format(WeirFormat)
        .try_init();
}

/// `weir: message` (`weir: error: message` for errors); the AM's events as `weir-am: …`.
struct WeirFormat;

impl<S, N> FormatEvent<S, N> for WeirFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        let prefix = if metadata.target().starts_with("weir_ml::app_master") {
            "weir-am"
        } else {
            "weir"
        };
        write!(writer, "{prefix}: ")?;
        if *metadata.level() == Level::ERROR {
            write!(writer, "error: ")?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, Write};
    use std::process::{Command, Stdio};

    /// Set in the process `events_to_a_closed_standard_error_are_dropped` starts.
    const CHILD: &str = "WEIR_LOGGING_TEST_CHILD";

    /// Run by `events_to_a_closed_standard_error_are_dropped` (nothing when run directly):
    /// once its parent closed the read end of its standard error and wrote a line to its
    /// standard input, logs and says on standard output that it is still there.
    #[test]
    fn closed_stderr_child() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        super::init();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).unwrap();
        for i in 0..100 {
            tracing::warn!("event {i} to a closed standard error");
        }
        let worker = std::thread::spawn(|| tracing::error!("from another thread"));
        assert!(worker.join().is_ok(), "the logging thread panicked");
        println!("still here");
    }

    #[test]
    fn events_to_a_closed_standard_error_are_dropped() {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "logging::tests::closed_stderr_child"])
            .args(["--nocapture", "--test-threads", "1"])
            .env(CHILD, "1")
            .env_remove(super::LOG_ENV)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stderr.take());
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("still here"),
            "logging to a closed standard error ended the process ({}): {stdout}",
            out.status
        );
    }
}
