//! Class and subclass names, as lspci prints them (from the pci.ids database).
//!
//! Only the common classes and subclasses are listed; an unknown subclass of a known class
//! gets the class's generic name (as lspci does), an unknown class "Unclassified device".

/// The lspci name of a class code, such as `Non-Volatile memory controller` for 01h/08h.
///
/// `prog_if` is part of the signature so that names that depend on the programming interface
/// can be added without changing callers; none of the names listed today do.
pub fn class_name(class: u8, subclass: u8, prog_if: u8) -> &'static str {
    let _ = prog_if;
    match (class, subclass) {
        (0x00, 0x01) => "VGA compatible unclassified device",
        (0x00, _) => "Non-VGA unclassified device",

        (0x01, 0x00) => "SCSI storage controller",
        (0x01, 0x01) => "IDE interface",
        (0x01, 0x02) => "Floppy disk controller",
        (0x01, 0x03) => "IPI bus controller",
        (0x01, 0x04) => "RAID bus controller",
        (0x01, 0x05) => "ATA controller",
        (0x01, 0x06) => "SATA controller",
        (0x01, 0x07) => "Serial Attached SCSI controller",
        (0x01, 0x08) => "Non-Volatile memory controller",
        (0x01, _) => "Mass storage controller",

        (0x02, 0x00) => "Ethernet controller",
        (0x02, 0x01) => "Token ring network controller",
        (0x02, 0x02) => "FDDI network controller",
        (0x02, 0x03) => "ATM network controller",
        (0x02, 0x04) => "ISDN controller",
        (0x02, 0x07) => "Infiniband controller",
        (0x02, _) => "Network controller",

        (0x03, 0x00) => "VGA compatible controller",
        (0x03, 0x01) => "XGA compatible controller",
        (0x03, 0x02) => "3D controller",
        (0x03, _) => "Display controller",

        (0x04, 0x00) => "Multimedia video controller",
        (0x04, 0x01) => "Multimedia audio controller",
        (0x04, 0x02) => "Computer telephony device",
        (0x04, 0x03) => "Audio device",
        (0x04, _) => "Multimedia controller",

        (0x05, 0x00) => "RAM memory",
        (0x05, 0x01) => "FLASH memory",
        (0x05, _) => "Memory controller",

        (0x06, 0x00) => "Host bridge",
        (0x06, 0x01) => "ISA bridge",
        (0x06, 0x02) => "EISA bridge",
        (0x06, 0x03) => "MicroChannel bridge",
        (0x06, 0x04) => "PCI bridge",
        (0x06, 0x05) => "PCMCIA bridge",
        (0x06, 0x06) => "NuBus bridge",
        (0x06, 0x07) => "CardBus bridge",
        (0x06, 0x08) => "RACEway bridge",
        (0x06, 0x09) => "Semi-transparent PCI-to-PCI bridge",
        (0x06, 0x0a) => "InfiniBand to PCI host bridge",
        (0x06, _) => "Bridge",

        (0x07, 0x00) => "Serial controller",
        (0x07, 0x01) => "Parallel controller",
        (0x07, 0x02) => "Multiport serial controller",
        (0x07, 0x03) => "Modem",
        (0x07, 0x04) => "GPIB controller",
        (0x07, 0x05) => "Smart Card controller",
        (0x07, _) => "Communication controller",

        (0x08, 0x00) => "PIC",
        (0x08, 0x01) => "DMA controller",
        (0x08, 0x02) => "Timer",
        (0x08, 0x03) => "RTC",
        (0x08, 0x04) => "PCI Hot-plug controller",
        (0x08, 0x05) => "SD Host controller",
        (0x08, 0x06) => "IOMMU",
        (0x08, _) => "System peripheral",

        (0x09, 0x00) => "Keyboard controller",
        (0x09, 0x01) => "Digitizer Pen",
        (0x09, 0x02) => "Mouse controller",
        (0x09, 0x03) => "Scanner controller",
        (0x09, 0x04) => "Gameport controller",
        (0x09, _) => "Input device controller",

        (0x0a, _) => "Docking station",
        (0x0b, _) => "Processor",

        (0x0c, 0x00) => "FireWire (IEEE 1394)",
        (0x0c, 0x01) => "ACCESS Bus",
        (0x0c, 0x02) => "SSA",
        (0x0c, 0x03) => "USB controller",
        (0x0c, 0x04) => "Fibre Channel",
        (0x0c, 0x05) => "SMBus",
        (0x0c, 0x06) => "InfiniBand",
        (0x0c, 0x07) => "IPMI Interface",
        (0x0c, 0x08) => "SERCOS interface",
        (0x0c, 0x09) => "CANBUS",
        (0x0c, _) => "Serial bus controller",

        (0x0d, _) => "Wireless controller",
        (0x0e, _) => "Intelligent controller",
        (0x0f, _) => "Satellite communications controller",
        (0x10, _) => "Encryption controller",
        (0x11, _) => "Signal processing controller",
        (0x12, _) => "Processing accelerators",
        (0x13, _) => "Non-Essential Instrumentation",
        (0x40, _) => "Coprocessor",
        _ => "Unclassified device",
    }
}

#[cfg(test)]
mod tests {
    use super::class_name;

    #[test]
    fn names_match_lspci() {
        assert_eq!(
            class_name(0x01, 0x08, 0x02),
            "Non-Volatile memory controller"
        );
        assert_eq!(class_name(0x06, 0x00, 0x00), "Host bridge");
        assert_eq!(class_name(0x0c, 0x03, 0x30), "USB controller");
        assert_eq!(class_name(0x01, 0x42, 0x00), "Mass storage controller");
        assert_eq!(class_name(0x77, 0x00, 0x00), "Unclassified device");
    }
}
