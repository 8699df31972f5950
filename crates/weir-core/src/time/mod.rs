//! Event time: timestamps and watermarks ([`WatermarkStrategy`],
//! [`crate::DataStream::assign_timestamps`], [`EventStream`]), windows on keyed event
//! streams ([`Windows`], [`WindowedStream`]), keyed process functions with timers
//! ([`KeyedProcessFunction`]) and event-time joins. See `docs/event-time.md`.

mod assign;
mod due_keys;
mod event_operator;
mod event_output;
mod event_stream;
mod joins;
mod process_function;
mod stamped;
mod watermark;
mod watermark_tracker;
mod window_function;
mod window_operator;
mod windows;

pub use event_stream::{EventStream, KeyedEventStream};
pub use joins::Side;
pub use process_function::{KeyedProcessFunction, ProcessContext, Timer};
pub use stamped::{EventTime, IntoTimestamp, Stamped, END_OF_TIME, NO_WATERMARK};
pub use watermark::{
    BoundedOutOfOrderness, WatermarkGenerator, WatermarkStrategy, WatermarkStrategyBuilder,
};
pub use window_function::WindowContext;
pub use window_operator::{WindowOutput, WindowedStream};
pub use windows::{Pane, TimeDomain, TimeWindow, Timing, WindowResult, Windows};

/// Keyed state shared between an operator's logic and its checkpoint registration.
pub(crate) type SharedKeyed<K, V> = std::rc::Rc<std::cell::RefCell<crate::state::KeyedState<K, V>>>;

/// The wall clock in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> EventTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as EventTime)
}
