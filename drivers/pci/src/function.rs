//! One PCI function: identification, header kind, BARs, capabilities, and an lspci-like display.
//!
//! Identification fields are read from the header's dwords (PCI Local Bus 3.0, section 6.1);
//! BARs and capabilities with this crate's own probing ([`crate::bar`], [`crate::capability`]).
//!
//! A function is absent when its vendor ID reads 0xFFFF (nothing answered: master abort or
//! unsupported request) or 0x0000 (never a valid vendor; Linux treats it as absent too).
//!
//! BAR slots per header type: 6 for an endpoint (type 0), 2 for a PCI-to-PCI bridge (type 1),
//! 1 for a CardBus bridge (type 2, the socket/ExCa base). CardBus bridges are listed but the bus
//! behind them is not scanned (CardBus has no configuration-space devices of its own here).

use alloc::vec::Vec;
use core::fmt;

use pci_types::PciAddress;

use crate::bar::{self, DecodedBar};
use crate::bridge::{self, BridgeWindows, MemoryWindow};
use crate::capability::{self, Capability, CapabilityKind};
use crate::class::class_name;
use crate::config::{
    BRIDGE_BUS_NUMBERS, CAPABILITY_POINTER, CARDBUS_CAPABILITY_POINTER, COMMAND_STATUS, Config,
    ConfigurationAccess, HEADER_TYPE, ID, INTERRUPT, REVISION_CLASS, STATUS_CAPABILITY_LIST,
};
use crate::error::Problem;
use crate::storage_mode::StorageHider;

/// Class code of a host bridge (class 06h, subclass 00h).
pub(crate) const HOST_BRIDGE: (u8, u8) = (0x06, 0x00);
/// NVM Express: mass storage (01h), non-volatile memory (08h), NVM Express interface (02h).
const NVME: (u8, u8, u8) = (0x01, 0x08, 0x02);
/// Vendor IDs that mean nothing answered: all-ones (master abort) and 0000h (never assigned).
const VENDOR_ABSENT: [u16; 2] = [0xffff, 0x0000];
/// Header type byte (bits 16..24 of its dword), bit 7: the device has more than one function.
const HEADER_MULTIFUNCTION: u32 = 1 << 23;
/// Header type byte, bits 6..0: the header layout.
const HEADER_LAYOUT_SHIFT: u32 = 16;
const HEADER_LAYOUT_MASK: u32 = 0x7f;
/// Header layouts (PCI Local Bus 3.0, section 6.1; PCI-to-PCI Bridge 1.2, section 3.2).
const LAYOUT_ENDPOINT: u8 = 0x00;
const LAYOUT_PCI_BRIDGE: u8 = 0x01;
const LAYOUT_CARDBUS: u8 = 0x02;

/// The identification dword at 0x00.
#[derive(Clone, Copy)]
struct Id(u32);

impl Id {
    fn vendor(self) -> u16 {
        self.0 as u16
    }

    fn device(self) -> u16 {
        (self.0 >> 16) as u16
    }

    /// Whether a function answered (vendor ID neither FFFFh nor 0000h).
    fn present(self) -> bool {
        !VENDOR_ABSENT.contains(&self.vendor())
    }
}

/// The dword at 0x08: revision ID, programming interface, subclass, class.
#[derive(Clone, Copy)]
struct RevisionClass(u32);

impl RevisionClass {
    fn revision(self) -> u8 {
        self.0 as u8
    }

    fn prog_if(self) -> u8 {
        (self.0 >> 8) as u8
    }

    fn subclass(self) -> u8 {
        (self.0 >> 16) as u8
    }

    fn class(self) -> u8 {
        (self.0 >> 24) as u8
    }
}

/// A type 1 header's bus numbers (0x18): primary, secondary, subordinate.
#[derive(Clone, Copy)]
struct BusNumbers(u32);

impl BusNumbers {
    fn primary(self) -> u8 {
        self.0 as u8
    }

    fn secondary(self) -> u8 {
        (self.0 >> 8) as u8
    }

    fn subordinate(self) -> u8 {
        (self.0 >> 16) as u8
    }
}

/// The dword at 0x0C, for its header type byte.
#[derive(Clone, Copy)]
struct HeaderTypeRegister(u32);

impl HeaderTypeRegister {
    /// Bits 6..0 of the header type: the header layout.
    fn layout(self) -> u8 {
        ((self.0 >> HEADER_LAYOUT_SHIFT) & HEADER_LAYOUT_MASK) as u8
    }

    fn multifunction(self) -> bool {
        self.0 & HEADER_MULTIFUNCTION != 0
    }
}

/// Which configuration header layout a function has, with the bridge's bus numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderKind {
    /// Header type 0: an endpoint (or a host bridge, ISA bridge, ...).
    Endpoint,
    /// Header type 1: a PCI-to-PCI bridge (including PCI Express root and switch ports).
    PciBridge {
        /// The bus the bridge sits on, as programmed.
        primary: u8,
        /// The bus directly behind the bridge.
        secondary: u8,
        /// The highest bus behind the bridge.
        subordinate: u8,
    },
    /// Header type 2: a CardBus bridge.
    CardBus,
}

/// One present PCI function, as found by enumeration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    /// Segment, bus, device, function.
    pub address: PciAddress,
    /// Vendor ID.
    pub vendor_id: u16,
    /// Device ID.
    pub device_id: u16,
    /// Revision ID.
    pub revision: u8,
    /// Base class code.
    pub class: u8,
    /// Subclass code.
    pub subclass: u8,
    /// Programming interface.
    pub prog_if: u8,
    /// The header layout.
    pub kind: HeaderKind,
    /// Bit 7 of the header type: the device has more than one function.
    pub multifunction: bool,
    /// The implemented, well-formed BARs, in slot order.
    pub bars: Vec<DecodedBar>,
    /// The capability list, in list order.
    pub capabilities: Vec<Capability>,
    /// Interrupt pin: 0 none, 1..=4 INTA..INTD.
    pub interrupt_pin: u8,
    /// The PCI-to-PCI bridge whose secondary bus this function is on; `None` on a root bus.
    pub upstream: Option<PciAddress>,
    /// A PCI-to-PCI bridge's memory windows as enumeration found them; `None` for other
    /// header types.
    pub windows: Option<BridgeWindows>,
}

impl Function {
    /// The BAR that starts in slot `index`, if it is implemented and well-formed.
    pub fn bar(&self, index: u8) -> Option<&DecodedBar> {
        self.bars.iter().find(|bar| bar.index == index)
    }

    /// The first capability with ID `id`.
    pub fn capability(&self, id: u8) -> Option<&Capability> {
        self.capabilities
            .iter()
            .find(|capability| capability.id == id)
    }

    /// The MSI-X capability, if present.
    pub fn msix(&self) -> Option<&Capability> {
        self.capabilities
            .iter()
            .find(|capability| matches!(capability.kind, CapabilityKind::MsiX { .. }))
    }

    /// The lspci name of the function's class.
    pub fn class_name(&self) -> &'static str {
        class_name(self.class, self.subclass, self.prog_if)
    }

    /// Whether this is an NVM Express controller (class 01h, subclass 08h, interface 02h).
    pub fn is_nvme(&self) -> bool {
        (self.class, self.subclass, self.prog_if) == NVME
    }

    /// Whether this function hides drives from an NVMe driver (Intel VMD, RAID mode).
    pub fn storage_hider(&self) -> Option<StorageHider> {
        StorageHider::of(self)
    }

    /// Whether this is a host bridge (class 06h, subclass 00h).
    pub fn is_host_bridge(&self) -> bool {
        (self.class, self.subclass) == HOST_BRIDGE
    }
}

/// Whether `function` is an NVM Express controller (class 01h, subclass 08h, interface 02h).
pub fn is_nvme(function: &Function) -> bool {
    function.is_nvme()
}

impl StorageHider {
    /// Whether `function` hides drives, and how.
    pub fn of(function: &Function) -> Option<StorageHider> {
        StorageHider::identify(
            function.vendor_id,
            function.device_id,
            function.class,
            function.subclass,
        )
    }
}

impl fmt::Display for Function {
    /// An lspci-like summary:
    ///
    /// ```text
    /// 0000:00:04.0 Non-Volatile memory controller [0108]: 1b36:0010 (rev 02)
    ///     BAR0: Memory at fe000000 (64-bit, non-prefetchable) [size=16K]
    ///     Capabilities: MSI-X(table size 65) PCI-Express(endpoint) PM
    /// ```
    ///
    /// Bridges get a `Bus:` line, controllers that hide drives (Intel VMD, RAID mode) a
    /// `Hides drives:` line; lines are separated by `\n`, with no trailing newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} [{:02x}{:02x}]: {:04x}:{:04x}",
            self.address,
            self.class_name(),
            self.class,
            self.subclass,
            self.vendor_id,
            self.device_id
        )?;
        if self.revision != 0 {
            write!(f, " (rev {:02x})", self.revision)?;
        }
        if let HeaderKind::PciBridge {
            primary,
            secondary,
            subordinate,
        } = self.kind
        {
            write!(
                f,
                "\n    Bus: primary={primary:02x}, secondary={secondary:02x}, \
                 subordinate={subordinate:02x}"
            )?;
        }
        if let Some(windows) = self.windows {
            write!(
                f,
                "\n    Memory behind bridge: {}",
                WindowText(windows.memory)
            )?;
            write!(
                f,
                "\n    Prefetchable memory behind bridge: {}",
                WindowText(windows.prefetchable)
            )?;
        }
        for bar in &self.bars {
            write!(f, "\n    {bar}")?;
        }
        if !self.capabilities.is_empty() {
            f.write_str("\n    Capabilities:")?;
            for capability in &self.capabilities {
                write!(f, " {capability}")?;
            }
        }
        if let Some(hider) = self.storage_hider() {
            write!(f, "\n    Hides drives: {hider}")?;
        }
        Ok(())
    }
}

/// A bridge window as lspci writes it: `fe000000-fe1fffff [size=2M]`, or `[disabled]`.
struct WindowText(Option<MemoryWindow>);

impl fmt::Display for WindowText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(window) = self.0 else {
            return f.write_str("[disabled]");
        };
        write!(f, "{:08x}-{:08x}", window.base, window.limit)?;
        match (window.limit - window.base).checked_add(1) {
            Some(size) => write!(f, " [size={}]", bar::Size(size)),
            None => Ok(()),
        }
    }
}

/// Whether a function answers at `address` (vendor ID neither 0xFFFF nor 0x0000).
pub(crate) fn is_present<A: ConfigurationAccess + ?Sized>(access: &A, address: PciAddress) -> bool {
    Id(Config::new(access, address).read(ID)).present()
}

/// Whether the function at `address` has the multi-function bit set.
pub(crate) fn is_multifunction<A: ConfigurationAccess + ?Sized>(
    access: &A,
    address: PciAddress,
) -> bool {
    HeaderTypeRegister(Config::new(access, address).read(HEADER_TYPE)).multifunction()
}

/// The (class, subclass) of the function at `address`.
pub(crate) fn class_of<A: ConfigurationAccess + ?Sized>(
    access: &A,
    address: PciAddress,
) -> (u8, u8) {
    let class = RevisionClass(Config::new(access, address).read(REVISION_CLASS));
    (class.class(), class.subclass())
}

/// Reads the function at `address`: `None` if it is absent or has an unknown header type
/// (recorded in `problems`). Probes its BARs (see [`crate::bar`]).
pub(crate) fn read_function<A: ConfigurationAccess + ?Sized>(
    access: &A,
    address: PciAddress,
    problems: &mut Vec<Problem>,
) -> Option<Function> {
    let config = Config::new(access, address);
    let id = Id(config.read(ID));
    if !id.present() {
        return None;
    }
    let header_type = HeaderTypeRegister(config.read(HEADER_TYPE));
    let (bar_slots, capability_pointer_offset, kind) = match header_type.layout() {
        LAYOUT_ENDPOINT => (6, CAPABILITY_POINTER, HeaderKind::Endpoint),
        LAYOUT_PCI_BRIDGE => {
            let buses = BusNumbers(config.read(BRIDGE_BUS_NUMBERS));
            let kind = HeaderKind::PciBridge {
                primary: buses.primary(),
                secondary: buses.secondary(),
                subordinate: buses.subordinate(),
            };
            (2, CAPABILITY_POINTER, kind)
        }
        LAYOUT_CARDBUS => (1, CARDBUS_CAPABILITY_POINTER, HeaderKind::CardBus),
        header_type => {
            log::warn!("pci {address}: unknown header type {header_type:#04x}, skipped");
            problems.push(Problem::UnknownHeaderType {
                address,
                header_type,
            });
            return None;
        }
    };
    let identity = RevisionClass(config.read(REVISION_CLASS));
    let (class, subclass) = (identity.class(), identity.subclass());

    let keep_decoding = (class, subclass) == HOST_BRIDGE;
    let bars = bar::read_bars(&config, bar_slots, keep_decoding, problems);

    let capabilities = if config.read(COMMAND_STATUS) & STATUS_CAPABILITY_LIST != 0 {
        let pointer = config.read(capability_pointer_offset) as u8;
        capability::read_capabilities(&config, pointer, problems)
    } else {
        Vec::new()
    };
    let interrupt_pin = (config.read(INTERRUPT) >> 8) as u8;

    Some(Function {
        address,
        vendor_id: id.vendor(),
        device_id: id.device(),
        revision: identity.revision(),
        class,
        subclass,
        prog_if: identity.prog_if(),
        kind,
        multifunction: header_type.multifunction(),
        bars,
        capabilities,
        interrupt_pin,
        upstream: None,
        windows: matches!(kind, HeaderKind::PciBridge { .. })
            .then(|| bridge::read_windows(&config)),
    })
}
