//! What a window computes: an incremental aggregate, or a function of all its records.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::stream::Data;
use crate::time::stamped::Stamped;
use crate::time::windows::{Pane, TimeWindow, WindowResult};

/// A window's computation as the window operator drives it: an accumulator per window,
/// records added to it, session windows merged, and a firing turned into outputs.
pub(crate) trait WindowFunction<K, T>: 'static {
    type Acc: Clone + Serialize + DeserializeOwned + 'static;
    type Out: Data;
    fn create(&self) -> Self::Acc;
    fn add(&mut self, acc: &mut Self::Acc, record: &Stamped<T>);
    fn merge(&mut self, into: &mut Self::Acc, other: Self::Acc);
    fn fire(
        &mut self,
        firing: &WindowContext<'_, K>,
        acc: &mut Self::Acc,
        out: &mut Vec<Self::Out>,
    );
}

/// The window a process-window function is called for.
#[derive(Debug)]
pub struct WindowContext<'a, K> {
    /// The key.
    pub key: &'a K,
    /// The window.
    pub window: TimeWindow,
    /// Which firing of the window this is.
    pub pane: Pane,
}

/// An incremental aggregate: `add` folds each record into the window's accumulator as it
/// arrives, so a window keeps one value, not its records.
pub(crate) struct Aggregating<I, F, M> {
    pub(crate) init: I,
    pub(crate) add: F,
    pub(crate) merge: M,
}

impl<K, T, A, I, F, M> WindowFunction<K, T> for Aggregating<I, F, M>
where
    K: Data,
    A: Data + Serialize + DeserializeOwned,
    I: Fn() -> A + 'static,
    F: FnMut(&mut A, &T) + 'static,
    M: FnMut(&mut A, A) + 'static,
{
    type Acc = A;
    type Out = WindowResult<K, A>;

    fn create(&self) -> A {
        (self.init)()
    }

    fn add(&mut self, acc: &mut A, record: &Stamped<T>) {
        (self.add)(acc, &record.data)
    }

    fn merge(&mut self, into: &mut A, other: A) {
        (self.merge)(into, other)
    }

    fn fire(&mut self, firing: &WindowContext<'_, K>, acc: &mut A, out: &mut Vec<Self::Out>) {
        out.push(WindowResult {
            key: firing.key.clone(),
            window: firing.window,
            value: acc.clone(),
            pane: firing.pane,
        });
    }
}

/// A process-window function: the window keeps its records, and the function sees all of
/// them, in timestamp order, when the window fires.
pub(crate) struct Processing<P> {
    pub(crate) process: P,
}

impl<K, T, U, I, P> WindowFunction<K, T> for Processing<P>
where
    T: Data,
    U: Data,
    I: IntoIterator<Item = U>,
    P: FnMut(&WindowContext<'_, K>, &[Stamped<T>]) -> I + 'static,
{
    type Acc = Vec<Stamped<T>>;
    type Out = U;

    fn create(&self) -> Self::Acc {
        Vec::new()
    }

    fn add(&mut self, acc: &mut Self::Acc, record: &Stamped<T>) {
        acc.push(record.clone())
    }

    fn merge(&mut self, into: &mut Self::Acc, mut other: Self::Acc) {
        into.append(&mut other)
    }

    fn fire(&mut self, firing: &WindowContext<'_, K>, acc: &mut Self::Acc, out: &mut Vec<U>) {
        acc.sort_by_key(|r| r.ts);
        out.extend((self.process)(firing, acc));
    }
}
