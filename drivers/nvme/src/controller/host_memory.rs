//! The Host Memory Buffer's life on a running controller (see `hmb` for
//! its layout): lent after the I/O queues for drives that ask for one,
//! handed back after a reset, taken back before shutdown.
//!
//! Memory is never freed while the controller might still use it: a
//! refusal frees it, a failure whose outcome is unknown leaks it.

#![forbid(unsafe_code)]

use super::Controller;
use crate::error::Error;
use crate::hal::{Clock, DmaAllocator, RegisterAccess};
use crate::hmb::{self, HostMemoryBuffer};
use dma::ordering;

impl<R: RegisterAccess, D: DmaAllocator, C: Clock> Controller<R, D, C> {
    /// Lends the controller a Host Memory Buffer if it asks for one and
    /// memory allows (see `hmb`). Not enough memory or a refusal is logged
    /// and bring-up goes on without one.
    pub(super) fn setup_host_memory_buffer(&mut self) -> Result<(), Error> {
        let request = match hmb::Request::new(
            &self.identity,
            self.page_size,
            self.config.host_memory_buffer_max_bytes,
        ) {
            None => return Ok(()),
            Some(Ok(request)) => request,
            Some(Err(_)) => {
                log::info!(
                    "nvme: host memory buffer of at least {} KiB wanted, at most {} KiB allowed: none",
                    u64::from(self.identity.hmmin) * 4,
                    self.config.host_memory_buffer_max_bytes / 1024
                );
                return Ok(());
            }
        };
        let buffer = match HostMemoryBuffer::allocate(&self.dma, &request) {
            Ok(buffer) => buffer,
            Err(skipped) => {
                let got = match skipped {
                    hmb::Skipped::NotEnoughMemory(bytes) => bytes,
                    hmb::Skipped::CapBelowMinimum => 0,
                };
                log::warn!(
                    "nvme: not enough DMA memory for a host memory buffer ({} KiB of at least {} KiB): none",
                    got / 1024,
                    request.minimum / 1024
                );
                return Ok(());
            }
        };
        match self.admin_command(buffer.enable_command()) {
            Ok(_) => {
                log::info!(
                    "nvme: host memory buffer: {} KiB in {} chunk(s) (preferred {} KiB, minimum {} KiB)",
                    buffer.bytes() / 1024,
                    buffer.chunk_count(),
                    request.preferred / 1024,
                    request.minimum / 1024
                );
                self.info.host_memory_buffer_bytes = buffer.bytes();
                self.host_memory = Some(buffer);
                Ok(())
            }
            Err(Error::Device(status)) => {
                log::warn!(
                    "nvme: Set Features Host Memory Buffer refused ({}): none",
                    status.name()
                );
                // The refusal's completion: the controller never took it.
                buffer.free(&self.dma, &ordering::after_device_signal());
                Ok(())
            }
            // Whether the controller took the buffer is unknown: it stays
            // allocated (leaked) rather than freed under the device.
            Err(e) => Err(e),
        }
    }

    /// After a controller reset (which disables the buffer): hands the same
    /// buffer to the controller again. A refusal frees it.
    pub(super) fn reenable_host_memory_buffer(&mut self) -> Result<(), Error> {
        let Some(buffer) = self.host_memory.as_ref() else {
            return Ok(());
        };
        match self.admin_command(buffer.enable_command()) {
            Ok(_) => Ok(()),
            Err(Error::Device(status)) => {
                log::warn!(
                    "nvme: host memory buffer refused after reset ({}): none",
                    status.name()
                );
                // The refusal's completion: the controller dropped it.
                if let Some(buffer) = self.host_memory.take() {
                    buffer.free(&self.dma, &ordering::after_device_signal());
                }
                self.info.host_memory_buffer_bytes = 0;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Before shutdown: tells the controller to stop using the buffer and,
    /// once it confirmed, returns the memory. Without confirmation the
    /// memory stays allocated.
    pub(super) fn release_host_memory_buffer(&mut self) {
        if self.host_memory.is_none() {
            return;
        }
        match self.admin_command(HostMemoryBuffer::disable_command()) {
            Ok(_) => {
                // The completion confirms the controller stopped using it.
                if let Some(buffer) = self.host_memory.take() {
                    buffer.free(&self.dma, &ordering::after_device_signal());
                }
                self.info.host_memory_buffer_bytes = 0;
            }
            Err(e) => log::warn!("nvme: host memory buffer not released ({e}); memory kept"),
        }
    }
}
