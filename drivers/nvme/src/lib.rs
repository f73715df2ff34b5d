//! Polled NVMe driver with a block API, host-testable against a simulated controller.
//!
//! The driver reaches hardware only through the traits in [`hal`]
//! (register access, DMA memory, time), implemented by the kernel on real
//! machines and by a simulated controller in the host tests. Modules are
//! named after the parts of the NVMe base specification (1.4 numbering in
//! the doc comments). This file only declares and re-exports.
//!
//! No `unsafe` here: memory shared with the device is the `dma` crate's
//! (see [`hal`]), register access the kernel's.
//!
//! The modules form a stack, each importing only those below it, and a
//! request's way from the application to the doorbell and back is told
//! function by function in [`request_path`].
//!
//! # Examples
//!
//! Every example runs as a test against the simulated controller of the
//! `nvme-sim` crate: [`nvme_sim::Bench`] holds a controller ([`Sim`], the
//! [`RegisterAccess`] side), its DMA memory ([`TestDma`], a
//! [`DmaAllocator`] over host memory) and its clock ([`FakeClock`], a
//! [`Clock`] that advances only when read, so deadlines pass at once). On a
//! machine the kernel passes its MMIO window, DMA allocator and clock in
//! their place.
//!
//! [`nvme_sim::Bench`]: ../nvme_sim/struct.Bench.html
//! [`Sim`]: ../nvme_sim/struct.Sim.html
//! [`TestDma`]: ../nvme_sim/struct.TestDma.html
//! [`FakeClock`]: ../nvme_sim/struct.FakeClock.html
//!
//! ## Bring a controller up
//!
//! [`Controller::new`] resets the controller, creates the admin and I/O
//! queues and identifies it and its namespaces.
//!
//! ```
//! use nvme::{Config, Controller};
//! use nvme_sim::{Bench, SimConfig};
//!
//! // One namespace of 8192 blocks of 512 bytes.
//! let bench = Bench::new(SimConfig::default());
//! let controller = Controller::new(
//!     bench.sim.clone(),
//!     bench.dma.clone(),
//!     bench.clock.clone(),
//!     Config::default(),
//! )?;
//! let info = controller.info();
//! assert_eq!(info.model.as_str(), "Simulated NVMe Controller");
//! assert_eq!(info.io_queues, 4);
//! let namespace = controller.namespaces()[0];
//! assert_eq!(
//!     (namespace.nsid, namespace.block_size, namespace.block_count),
//!     (1, 512, 8192)
//! );
//! # Ok::<(), nvme::Error>(())
//! ```
//!
//! ## Read and write blocks
//!
//! [`BlockDevice`] does one command at a time on a namespace, from and to
//! the caller's buffers. A namespace is read-only until the application
//! says it owns it.
//!
//! ```
//! use nvme::{Config, Controller, Error};
//! use nvme_sim::{Bench, SimConfig};
//!
//! let bench = Bench::new(SimConfig::default());
//! let mut controller = Controller::new(
//!     bench.sim.clone(),
//!     bench.dma.clone(),
//!     bench.clock.clone(),
//!     Config::default(),
//! )?;
//! let mut disk = controller.namespace(1)?;
//! let data: Vec<u8> = (0..4096).map(|i| (i % 251) as u8).collect();
//! assert_eq!(disk.write(16, &data), Err(Error::NotOwned));
//!
//! disk.set_writable(true);
//! disk.write(16, &data)?; // blocks 16..24
//! disk.flush()?;
//! let mut back = vec![0u8; 4096];
//! disk.read(16, &mut back)?;
//! assert_eq!(back, data);
//! // The simulated medium holds it too.
//! assert_eq!(bench.sim.disk(1, 16, 8), data);
//! # Ok::<(), nvme::Error>(())
//! ```
//!
//! ## Queue requests and poll for completions
//!
//! An [`IoQueue`] is a queue pair of one's own: requests name a
//! [`Namespace`] handle (obtained once from the controller) and carry a
//! tag, the data travels in the application's own [`DmaBuffer`]s (moved
//! into the request, never copied), and [`IoQueue::poll`] reports each
//! request once as a [`Completion`], which hands the buffer back. A
//! refused request gives the buffer back at once ([`Rejected`]).
//!
//! ```
//! use nvme::{Config, Controller, IoOp};
//! use nvme_sim::{Bench, SimConfig};
//!
//! let bench = Bench::new(SimConfig::default());
//! let mut controller = Controller::new(
//!     bench.sim.clone(),
//!     bench.dma.clone(),
//!     bench.clock.clone(),
//!     Config::default(),
//! )?;
//! controller.namespace(1)?.set_writable(true);
//! let ns = controller.namespace_handle(1)?;
//! assert_eq!((ns.nsid(), ns.block_size(), ns.block_count()), (1, 512, 8192));
//! assert!(ns.writable() && ns.zoned().is_none());
//! let mut queue = controller.take_io_queue()?;
//!
//! // DMA memory of the application's own (the kernel's allocator on a
//! // machine): filled once, then lent to the device.
//! let mut data = bench.dma.buffer(1024);
//! data.as_mut_slice().fill(0x5A);
//! queue.submit_write(&ns, 100, data, 1)?; // two blocks at LBA 100
//! queue.submit_read(&ns, 100, bench.dma.buffer(1024), 2)?;
//! let mut completed = Vec::new();
//! while queue.in_flight() > 0 {
//!     queue.poll(|completion| {
//!         assert_eq!(completion.result, Ok(()));
//!         let buffer = completion.buffer.expect("reads and writes hand it back");
//!         if completion.op == IoOp::Read {
//!             assert_eq!(buffer.as_slice(), &[0x5A; 1024][..]);
//!         }
//!         completed.push(completion.tag);
//!     });
//! }
//! assert_eq!(completed, [1, 2]);
//!
//! // Bad input comes back with the buffer; nothing reached the device.
//! let refused = queue.submit_read(&ns, 8191, bench.dma.buffer(1024), 3).unwrap_err();
//! assert_eq!(refused.error, nvme::Error::OutOfRange);
//! assert_eq!(refused.buffer.len(), 1024);
//!
//! // Handing the queue back frees it for another user.
//! assert!(controller.return_io_queue(queue).is_ok());
//! # Ok::<(), nvme::Error>(())
//! ```
//!
//! ## Await requests
//!
//! An [`AsyncQueue`] makes the same queue pair a clonable handle whose
//! requests are futures, for many tasks of one executor; its
//! [`AsyncQueue::poll_completions`] is the executor's idle step. (The
//! kernel's executor does the polling; here the future is polled by hand.)
//! An [`AsyncController`] owns the controller and its queues, and resets
//! the controller by itself when a request runs past its deadline.
//!
//! ```
//! use nvme::{AsyncQueue, Config, Controller};
//! use nvme_sim::{Bench, SimConfig};
//! use std::pin::pin;
//! use std::task::{Context, Poll, Waker};
//!
//! let bench = Bench::new(SimConfig::default());
//! let mut controller = Controller::new(
//!     bench.sim.clone(),
//!     bench.dma.clone(),
//!     bench.clock.clone(),
//!     Config::default(),
//! )?;
//! let ns = controller.namespace_handle(1)?;
//! let queue = AsyncQueue::new(controller.take_io_queue()?);
//!
//! let mut read = pin!(queue.read(&ns, 0, bench.dma.buffer(512)));
//! let mut cx = Context::from_waker(Waker::noop());
//! assert!(read.as_mut().poll(&mut cx).is_pending()); // submitted
//! assert_eq!(queue.poll_completions(), 1); // the idle step wakes it
//! let Poll::Ready(Ok(buffer)) = read.as_mut().poll(&mut cx) else {
//!     panic!("the read completed");
//! };
//! assert_eq!(buffer.len(), 512);
//! # Ok::<(), nvme::Error>(())
//! ```
//!
//! ## Handle errors
//!
//! Bad requests are refused before anything reaches the device; device
//! failures are values with the specification's names, classified by
//! [`Error::kind`]. A command the device never completes times out, the
//! driver resets the controller, and I/O goes on.
//!
//! ```
//! use nvme::{Config, Controller, Error, ErrorKind, Stage};
//! use nvme_sim::{Bench, Fault, FaultRule, SimConfig};
//!
//! let bench = Bench::new(SimConfig::default());
//! let config = Config {
//!     command_timeout_ms: 100,
//!     ..Config::default()
//! };
//! let mut controller = Controller::new(
//!     bench.sim.clone(),
//!     bench.dma.clone(),
//!     bench.clock.clone(),
//!     config,
//! )?;
//! let mut block = [0u8; 512];
//!
//! // Blocks 8190..8194 of an 8192-block namespace: refused, never sent.
//! let sent = bench.sim.commands().len();
//! let mut disk = controller.namespace(1)?;
//! let error = disk.read(8190, &mut [0u8; 2048]).unwrap_err();
//! assert_eq!(error, Error::OutOfRange);
//! assert_eq!(error.kind(), ErrorKind::InvalidInput);
//! assert_eq!(disk.read(0, &mut block[..100]), Err(Error::InvalidLength));
//! assert_eq!(bench.sim.commands().len(), sent);
//!
//! // The device loses the next Read (opcode 02h): it times out, the
//! // controller is reset, and the next read works.
//! bench.sim.add_fault(FaultRule {
//!     admin: false,
//!     opcode: 0x02,
//!     skip: 0,
//!     fault: Fault::Lose,
//! });
//! let error = disk.read(0, &mut block).unwrap_err();
//! assert_eq!(error, Error::Timeout { stage: Stage::IoCommand });
//! assert_eq!(error.kind(), ErrorKind::Timeout);
//! disk.read(0, &mut block)?;
//! assert_eq!(bench.sim.enables(), 2, "brought up, then reset once");
//!
//! // On a queue of one's own, a request past its deadline is reported
//! // once; the owner then asks the controller to recover.
//! let ns = controller.namespace_handle(1)?;
//! let mut queue = controller.take_io_queue()?;
//! bench.sim.add_fault(FaultRule {
//!     admin: false,
//!     opcode: 0x02,
//!     skip: 0,
//!     fault: Fault::Lose,
//! });
//! let buffer = bench.dma.buffer(512);
//! let address = buffer.phys().as_u64();
//! queue.submit_read(&ns, 0, buffer, 7)?;
//! let mut reports = Vec::new();
//! while reports.is_empty() {
//!     queue.poll(|c| reports.push((c.tag, c.result, c.buffer.is_some())));
//! }
//! // Reported without the buffer: the device may still write to it.
//! let timeout = Err(Error::Timeout { stage: Stage::IoCommand });
//! assert_eq!(reports, [(7, timeout, false)]);
//! assert!(queue.needs_recovery());
//! controller.recover()?;
//! // The reset gave the buffer back; the queue freed it.
//! assert!(bench.dma.is_allocated(address));
//! queue.poll(|_| unreachable!("already reported"));
//! assert!(!queue.needs_recovery() && !bench.dma.is_allocated(address));
//! # Ok::<(), nvme::Error>(())
//! ```
//!
//! ## Shut down
//!
//! [`Controller::shutdown`] tells the controller power is going away and
//! waits (bounded by what the drive reports) until it has saved its state;
//! nothing is accepted afterwards.
//!
//! ```
//! use nvme::{Config, Controller, Error};
//! use nvme_sim::{Bench, SimConfig};
//!
//! let bench = Bench::new(SimConfig::default());
//! let mut controller = Controller::new(
//!     bench.sim.clone(),
//!     bench.dma.clone(),
//!     bench.clock.clone(),
//!     Config::default(),
//! )?;
//! let ns = controller.namespace_handle(1)?;
//! let mut queue = controller.take_io_queue()?;
//! controller.shutdown()?;
//! assert!(controller.is_shut_down());
//! let refused = queue.submit_read(&ns, 0, bench.dma.buffer(512), 1);
//! assert_eq!(refused.map_err(|r| r.error), Err(Error::ShutDown));
//! let mut block = [0u8; 512];
//! let read = controller
//!     .namespace(1)
//!     .and_then(|mut disk| disk.read(0, &mut block));
//! assert_eq!(read, Err(Error::ShutDown));
//! # Ok::<(), nvme::Error>(())
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod async_controller;
pub mod async_queue;
pub mod block;
pub mod command;
pub mod controller;
pub mod error;
pub mod hal;
pub(crate) mod hmb;
pub mod identify;
pub mod io_queue;
pub mod log_page;
pub mod namespace;
pub(crate) mod prp;
pub(crate) mod queue;
pub mod quirks;
pub mod registers;
pub(crate) mod request;
pub mod request_path;
pub mod status;
pub(crate) mod sync_queue;
pub mod zoned;

pub use async_controller::AsyncController;
pub use async_queue::{AsyncQueue, Command, Transfer};
pub use block::{BlockDevice, Completion, Identity, IoOp, IoQueue, Rejected};
pub use command::{Status, StatusCodeType};
pub use controller::{Config, Controller, ControllerInfo, NamespaceInfo};
pub use error::{Error, ErrorKind, Stage};
pub use hal::{
    Clock, DmaAllocator, DmaBuffer, DmaError, DmaHome, DmaRegion, PhysAddr, RegisterAccess,
};
pub use identify::{IdentifyController, IdentifyNamespace, LbaFormat, Oncs};
pub use log_page::{CriticalWarning, ErrorLogEntry, SmartLog};
pub use namespace::Namespace;
pub use quirks::Quirks;
pub use zoned::ZoneInfo;
