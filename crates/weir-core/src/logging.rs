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

/// Shows Weir's events on standard error, unless a subscriber is already installed.
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
