//! The executor on the machine: tasks, join handles, wakers, the idle step
//! over several pollers, and `async` I/O through NVMe queue pairs of two
//! controllers driven from one loop.

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::run_tests)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

mod common;

use alloc::rc::Rc;
use alloc::vec::Vec;
use bootloader_api::{BootInfo, entry_point};
use core::cell::{Cell, RefCell};
use core::future::{pending, poll_fn};
use core::task::{Poll, Waker};
use kernel::executor::{Executor, ExecutorError, join, join_all, yield_now};
use kernel::storage::KernelDma;
use nvme::AsyncController;

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);
kernel::qemu_machine!("nvme=16M", "nvme=16M", "timeout=120");

fn main(boot_info: &'static mut BootInfo) -> ! {
    common::boot_scan_pci_and_test(boot_info, test_main)
}

/// A request in the stand-in device: polls left, done flag, waiter.
type Waiting = (u32, Rc<Cell<bool>>, Option<Waker>);

/// A stand-in device: `complete()` finishes the oldest request after it
/// has been polled `latency` times, waking its waiter.
struct FakeDevice {
    latency: u32,
    waiting: RefCell<Vec<Waiting>>,
    completed: Cell<usize>,
}

impl FakeDevice {
    fn new(latency: u32) -> Rc<FakeDevice> {
        Rc::new(FakeDevice {
            latency,
            waiting: RefCell::new(Vec::new()),
            completed: Cell::new(0),
        })
    }

    /// A request: ready once the device completed it.
    async fn request(&self) {
        let done = Rc::new(Cell::new(false));
        let mut queued = false;
        poll_fn(|cx| {
            if done.get() {
                return Poll::Ready(());
            }
            if !queued {
                queued = true;
                self.waiting.borrow_mut().push((
                    self.latency,
                    done.clone(),
                    Some(cx.waker().clone()),
                ));
            }
            Poll::Pending
        })
        .await
    }

    fn complete(&self) -> usize {
        let mut waiting = self.waiting.borrow_mut();
        let mut n = 0;
        waiting.retain_mut(|(left, done, waker)| {
            if *left > 0 {
                *left -= 1;
                return true;
            }
            done.set(true);
            if let Some(w) = waker.take() {
                w.wake();
            }
            n += 1;
            false
        });
        self.completed.set(self.completed.get() + n);
        n
    }
}

fn poller(device: &Rc<FakeDevice>) -> Rc<dyn kernel::executor::Poller> {
    let device = device.clone();
    Rc::new(move || device.complete())
}

#[test_case]
fn spawned_tasks_run_and_their_handles_give_the_outputs() {
    let executor = Executor::new();
    let handles: Vec<_> = (0..10u32)
        .map(|i| {
            executor.spawn(async move {
                yield_now().await;
                i * i
            })
        })
        .collect();
    let outputs = executor.block_on(join_all(handles)).unwrap();
    assert_eq!(outputs, (0..10).map(|i| i * i).collect::<Vec<u32>>());
    assert_eq!(executor.tasks(), 0);
}

#[test_case]
fn a_task_that_is_not_woken_is_not_polled_again() {
    let executor = Executor::new();
    let polls = Rc::new(Cell::new(0u32));
    let parked: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
    let (p, w) = (polls.clone(), parked.clone());
    let task = executor.spawn(poll_fn(move |cx| {
        p.set(p.get() + 1);
        if p.get() == 2 {
            return Poll::Ready(());
        }
        *w.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }));
    // The poller wakes the task only at its 100th call.
    let calls = Rc::new(Cell::new(0u32));
    let (c, w) = (calls.clone(), parked.clone());
    executor.add_poller(Rc::new(move || {
        c.set(c.get() + 1);
        if c.get() == 100
            && let Some(waker) = w.borrow_mut().take()
        {
            waker.wake();
        }
        0
    }));
    executor.block_on(task).unwrap();
    assert_eq!(
        polls.get(),
        2,
        "polled at spawn and after the wake, never between"
    );
    assert!(calls.get() >= 100);
    assert!(executor.idle_steps() >= 99);
}

#[test_case]
fn the_idle_step_drives_every_poller() {
    let executor = Executor::new();
    let (fast, slow) = (FakeDevice::new(1), FakeDevice::new(20));
    executor.add_poller(poller(&fast));
    executor.add_poller(poller(&slow));
    let mut handles = Vec::new();
    for i in 0..64 {
        let device = if i % 2 == 0 {
            fast.clone()
        } else {
            slow.clone()
        };
        handles.push(executor.spawn(async move {
            for _ in 0..3 {
                device.request().await;
            }
            i
        }));
    }
    let outputs = executor.block_on(join_all(handles)).unwrap();
    assert_eq!(outputs, (0..64).collect::<Vec<_>>());
    assert_eq!((fast.completed.get(), slow.completed.get()), (96, 96));
    // Each task is polled at spawn and once per completion: no spinning on
    // tasks that were not woken.
    assert!(
        executor.polls() <= 64 * 4 + 1 + 64,
        "{} polls",
        executor.polls()
    );
}

#[test_case]
fn join_runs_two_futures_in_one_task() {
    let executor = Executor::new();
    let device = FakeDevice::new(3);
    executor.add_poller(poller(&device));
    let d = device.clone();
    let both = executor.block_on(async move {
        join(
            async {
                d.request().await;
                1
            },
            async {
                d.request().await;
                d.request().await;
                2
            },
        )
        .await
    });
    assert_eq!(both, Ok((1, 2)));
    assert_eq!(device.completed.get(), 3);
}

#[test_case]
fn a_waker_of_a_finished_task_does_not_wake_the_next_one_in_its_slot() {
    let executor = Executor::new();
    let kept: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
    let k = kept.clone();
    let first = executor.spawn(poll_fn(move |cx| {
        *k.borrow_mut() = Some(cx.waker().clone());
        Poll::Ready(())
    }));
    executor.block_on(first).unwrap();
    let stale = kept
        .borrow_mut()
        .take()
        .expect("the first task kept its waker");
    // The second task takes the freed slot and stays pending until woken.
    let polls = Rc::new(Cell::new(0u32));
    let p = polls.clone();
    let _second = executor.spawn(poll_fn(move |_| {
        p.set(p.get() + 1);
        Poll::<()>::Pending
    }));
    assert_eq!(executor.block_on(yield_now()), Ok(()));
    assert_eq!(polls.get(), 1);
    stale.wake_by_ref();
    let copy = stale.clone();
    copy.wake();
    assert_eq!(executor.block_on(yield_now()), Ok(()));
    assert_eq!(polls.get(), 1, "the stale waker reached the new task");
    drop(stale);
}

#[test_case]
fn nothing_to_wake_a_future_is_an_error_not_a_hang() {
    let executor = Executor::new();
    let _stuck = executor.spawn(pending::<()>());
    assert_eq!(
        executor.block_on(pending::<()>()),
        Err(ExecutorError::Stalled)
    );
    let inner = executor.clone();
    assert_eq!(
        executor.block_on(async move { inner.block_on(async { 1 }) }),
        Ok(Err(ExecutorError::Nested))
    );
}

#[test_case]
fn tasks_spawn_tasks_and_finished_tasks_free_their_memory() {
    let executor = Executor::new();
    let run = |executor: &Executor| {
        let inner = executor.clone();
        let handle = executor.spawn(async move {
            let children: Vec<_> = (0..16u64)
                .map(|i| inner.spawn(async move { i + 1 }))
                .collect();
            join_all(children).await.into_iter().sum::<u64>()
        });
        executor.block_on(handle).unwrap()
    };
    assert_eq!(run(&executor), 136);
    let (used, _) = kernel::memory::heap::usage();
    for _ in 0..50 {
        assert_eq!(run(&executor), 136);
    }
    assert_eq!(kernel::memory::heap::usage().0, used, "tasks leaked memory");
    assert_eq!(executor.tasks(), 0);
}

/// The byte at offset `i` of block `lba` written by the I/O test.
fn stamp(controller: usize, lba: u64, i: usize) -> u8 {
    (lba as usize * 7 + i + controller * 101) as u8
}

#[test_case]
fn async_io_on_two_controllers_from_one_loop() {
    let kernel = common::kernel();
    let (mut attached, failed) =
        kernel::storage::attach_all(&kernel.memory, common::pci(), nvme::Config::default());
    assert!(failed.is_empty() && attached.len() == 2, "two controllers");
    let dma = KernelDma::new(&kernel.memory);
    let executor = Executor::new();
    let mut devices = Vec::new();
    for a in attached.drain(..) {
        let mut controller = a.controller;
        controller.namespace(1).unwrap().set_writable(true);
        let controller = AsyncController::new(controller);
        let queue = controller.take_queue(true).unwrap();
        let ns = controller.namespace_handle(1).unwrap();
        executor.add_poller(Rc::new(controller.clone()));
        devices.push((controller, queue, ns));
    }
    // 64 tasks per controller, twice the queue's depth in flight at most:
    // each writes 8 blocks of its own, reads them back and checks them.
    let mut handles = Vec::new();
    for (c, (_, queue, ns)) in devices.iter().enumerate() {
        let depth = queue.depth();
        assert!(depth >= 16, "queue depth {depth}");
        for t in 0..64u64 {
            let (queue, ns) = (queue.clone(), *ns);
            handles.push(executor.spawn(async move {
                let lba = t * 8;
                let mut buf = dma.buffer(8 * 512).unwrap();
                for (i, b) in buf.as_mut_slice().iter_mut().enumerate() {
                    *b = stamp(c, lba + (i / 512) as u64, i % 512);
                }
                let buf = queue.write(&ns, lba, buf).await.unwrap();
                let mut buf = buf;
                buf.as_mut_slice().fill(0);
                let buf = queue.read(&ns, lba, buf).await.unwrap();
                buf.as_slice()
                    .iter()
                    .enumerate()
                    .all(|(i, &b)| b == stamp(c, lba + (i / 512) as u64, i % 512))
            }));
        }
    }
    let verified = executor.block_on(join_all(handles)).unwrap();
    assert_eq!(verified.len(), 128);
    assert!(verified.iter().all(|&ok| ok), "data differs");
    // The data is on the disks: read back through the synchronous path.
    for (c, (controller, queue, ns)) in devices.iter().enumerate() {
        let queue2 = queue.clone();
        let ns = *ns;
        let flushed = executor.block_on(async move { queue2.flush(&ns).await });
        assert_eq!(flushed, Ok(Ok(())));
        let mut block = [0u8; 512];
        controller
            .with_controller(|ctrl| ctrl.namespace(1).unwrap().read(500, &mut block))
            .unwrap()
            .unwrap();
        assert!(
            block
                .iter()
                .enumerate()
                .all(|(i, &b)| b == stamp(c, 500, i))
        );
        assert_eq!(controller.recoveries(), 0);
        assert_eq!(queue.in_flight(), 0);
    }
    for (controller, _, _) in &devices {
        controller.shutdown().unwrap();
    }
}
