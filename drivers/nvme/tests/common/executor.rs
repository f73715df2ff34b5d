//! A tiny executor for the tests of the `async` path: a task is polled
//! again only once its waker was called, and when no task is ready the
//! idle step runs (a future that is never woken fails the test instead of
//! hanging it).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

/// A task of [`run`].
pub type Task = Pin<Box<dyn Future<Output = ()>>>;

/// A waker that sets a flag.
pub struct Flag(pub AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Idle steps in a row without any task woken after which a test fails.
const STALL_LIMIT: usize = 10_000;
/// Task polls after which a test fails (tasks that keep waking each other
/// without ever finishing).
const POLL_LIMIT: usize = 1_000_000;

/// Runs `tasks` to completion, calling `idle` when none is ready; returns
/// how many polls the tasks took.
pub fn run(tasks: Vec<Task>, mut idle: impl FnMut() -> usize) -> usize {
    let mut tasks: Vec<(Option<Task>, Arc<Flag>)> = tasks
        .into_iter()
        .map(|t| (Some(t), Arc::new(Flag(AtomicBool::new(true)))))
        .collect();
    let (mut polls, mut stalled) = (0, 0);
    while tasks.iter().any(|(t, _)| t.is_some()) {
        let mut ran = false;
        for (task, flag) in &mut tasks {
            if task.is_some() && flag.0.swap(false, Ordering::SeqCst) {
                ran = true;
                polls += 1;
                assert!(polls < POLL_LIMIT, "the tasks never finish");
                let waker = Waker::from(flag.clone());
                if let Some(t) = task.as_mut()
                    && t.as_mut().poll(&mut Context::from_waker(&waker)).is_ready()
                {
                    *task = None;
                }
            }
        }
        if ran {
            stalled = 0;
        } else {
            idle();
            stalled += 1;
            assert!(stalled < STALL_LIMIT, "a future was never woken");
        }
    }
    polls
}

/// Runs one future to completion (see [`run`]).
pub fn block_on<T: 'static>(
    future: impl Future<Output = T> + 'static,
    idle: impl FnMut() -> usize,
) -> T {
    let out = Rc::new(RefCell::new(None));
    let o = out.clone();
    run(
        vec![Box::pin(
            async move { *o.borrow_mut() = Some(future.await) },
        )],
        idle,
    );
    out.borrow_mut().take().expect("the future finished")
}

/// Polls `future` once with a waker nobody watches.
pub fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    let waker = Waker::from(Arc::new(Flag(AtomicBool::new(false))));
    Pin::new(future).poll(&mut Context::from_waker(&waker))
}
