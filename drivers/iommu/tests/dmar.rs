//! DMAR tables built byte by byte: the shapes firmware produces, and every
//! kind of broken length.

use iommu::dmar::{DmarFlags, HEADER_LEN};
use iommu::{Dmar, DmarError, RemappingStructure, ScopeType};

/// A DMAR table around `structures`, with a correct length and checksum.
fn table(host_address_width: u8, flags: u8, structures: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = vec![0u8; HEADER_LEN];
    bytes[..4].copy_from_slice(b"DMAR");
    bytes[8] = 1; // revision
    bytes[10..16].copy_from_slice(b"TESTOE");
    bytes[36] = host_address_width - 1;
    bytes[37] = flags;
    for s in structures {
        bytes.extend_from_slice(s);
    }
    let len = bytes.len() as u32;
    bytes[4..8].copy_from_slice(&len.to_le_bytes());
    fix_checksum(&mut bytes);
    bytes
}

fn fix_checksum(bytes: &mut [u8]) {
    bytes[9] = 0;
    let sum = bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    bytes[9] = 0u8.wrapping_sub(sum);
}

fn structure(structure_type: u16, fixed: &[u8], scopes: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = structure_type.to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0, 0]);
    bytes.extend_from_slice(fixed);
    for s in scopes {
        bytes.extend_from_slice(s);
    }
    let len = bytes.len() as u16;
    bytes[2..4].copy_from_slice(&len.to_le_bytes());
    bytes
}

fn drhd(flags: u8, segment: u16, base: u64, scopes: &[Vec<u8>]) -> Vec<u8> {
    let mut fixed = vec![flags, 0];
    fixed.extend_from_slice(&segment.to_le_bytes());
    fixed.extend_from_slice(&base.to_le_bytes());
    structure(0, &fixed, scopes)
}

fn rmrr(segment: u16, base: u64, limit: u64, scopes: &[Vec<u8>]) -> Vec<u8> {
    let mut fixed = vec![0, 0];
    fixed.extend_from_slice(&segment.to_le_bytes());
    fixed.extend_from_slice(&base.to_le_bytes());
    fixed.extend_from_slice(&limit.to_le_bytes());
    structure(1, &fixed, scopes)
}

fn atsr(scopes: &[Vec<u8>]) -> Vec<u8> {
    structure(2, &[0, 0, 0, 0], scopes)
}

fn scope(scope_type: u8, enumeration_id: u8, start_bus: u8, path: &[(u8, u8)]) -> Vec<u8> {
    let mut bytes = vec![
        scope_type,
        (6 + 2 * path.len()) as u8,
        0,
        0,
        enumeration_id,
        start_bus,
    ];
    for &(device, function) in path {
        bytes.extend_from_slice(&[device, function]);
    }
    bytes
}

fn all<'a>(dmar: &Dmar<'a>) -> Vec<Result<RemappingStructure<'a>, DmarError>> {
    dmar.structures().collect()
}

#[test]
fn one_unit_covering_every_pci_device() {
    // What QEMU's q35 with intel-iommu reports: one unit for segment 0 with
    // INCLUDE_PCI_ALL and the I/O APIC in its scope.
    let bytes = table(
        39,
        1,
        &[drhd(1, 0, 0xfed9_0000, &[scope(3, 0, 0xff, &[(0, 0)])])],
    );
    let dmar = Dmar::parse(&bytes).unwrap();
    assert_eq!(dmar.host_address_width(), 39);
    assert_eq!(dmar.flags(), DmarFlags(1));
    assert!(dmar.flags().interrupt_remapping());
    assert!(!dmar.flags().x2apic_opt_out());
    assert_eq!(dmar.len(), bytes.len());
    let units: Vec<_> = dmar.units().collect::<Result<_, _>>().unwrap();
    assert_eq!(units.len(), 1);
    let unit = units[0];
    assert!(unit.include_pci_all());
    assert_eq!(unit.segment(), 0);
    assert_eq!(unit.register_base(), 0xfed9_0000);
    assert_eq!(unit.register_len(), 4096);
    assert_eq!(unit.offset, HEADER_LEN);
    let scopes: Vec<_> = unit.device_scopes().collect();
    assert_eq!(scopes.len(), 1);
    assert_eq!(scopes[0].scope_type, ScopeType::IoApic);
    assert_eq!(scopes[0].start_bus, 0xff);
    assert_eq!(scopes[0].path().collect::<Vec<_>>(), vec![(0, 0)]);
}

#[test]
fn several_units_with_scopes_reserved_memory_and_skipped_structures() {
    let graphics = drhd(0, 0, 0xfed9_0000, &[scope(1, 0, 0, &[(2, 0)])]);
    let mut storage = drhd(
        0,
        1,
        0xfed9_1000,
        &[
            scope(1, 0, 0, &[(0x1c, 4), (0, 0)]),
            scope(2, 0, 0, &[(0x1d, 0)]),
        ],
    );
    storage[5] = 1; // Size: two pages of registers
    let rest = drhd(
        1,
        0,
        0xfed9_2000,
        &[
            scope(3, 2, 0xf0, &[(0x1f, 0)]),
            scope(4, 0, 0, &[(0x1f, 7)]),
        ],
    );
    let usb = rmrr(0, 0x7b80_0000, 0x7b80_ffff, &[scope(1, 0, 0, &[(0x14, 0)])]);
    let unknown = structure(7, &[1, 2, 3, 4, 5, 6], &[]);
    let bytes = table(
        46,
        0b101,
        &[
            graphics,
            storage,
            usb,
            atsr(&[scope(2, 0, 0, &[(1, 0)])]),
            rest,
            unknown,
        ],
    );
    let dmar = Dmar::parse(&bytes).unwrap();
    assert!(dmar.flags().dma_control_opt_in());
    let structures = all(&dmar);
    assert_eq!(structures.len(), 6);
    assert!(structures.iter().all(Result::is_ok));
    let units: Vec<_> = dmar.units().map(Result::unwrap).collect();
    assert_eq!(
        units
            .iter()
            .map(|u| (u.register_base(), u.segment(), u.include_pci_all()))
            .collect::<Vec<_>>(),
        vec![
            (0xfed9_0000, 0, false),
            (0xfed9_1000, 1, false),
            (0xfed9_2000, 0, true)
        ]
    );
    assert_eq!(units[1].register_len(), 8192);
    let scopes: Vec<_> = units[1].device_scopes().collect();
    assert_eq!(scopes.len(), 2);
    assert_eq!(scopes[0].scope_type, ScopeType::PciEndpoint);
    assert_eq!(
        scopes[0].path().collect::<Vec<_>>(),
        vec![(0x1c, 4), (0, 0)]
    );
    assert_eq!(scopes[1].scope_type, ScopeType::PciSubHierarchy);
    let scopes: Vec<_> = units[2].device_scopes().collect();
    assert_eq!(scopes[0].scope_type, ScopeType::IoApic);
    assert_eq!(scopes[0].enumeration_id, 2);
    assert_eq!(scopes[1].scope_type, ScopeType::Hpet);
    let Ok(RemappingStructure::Rmrr(usb)) = structures[2] else {
        panic!("{:?}", structures[2]);
    };
    assert_eq!(
        (usb.segment(), usb.base(), usb.limit()),
        (0, 0x7b80_0000, 0x7b80_ffff)
    );
    assert_eq!(
        usb.device_scopes().next().unwrap().path().next(),
        Some((0x14, 0))
    );
    assert_eq!(
        structures[3],
        Ok(RemappingStructure::Other {
            structure_type: 2,
            length: 16
        })
    );
    assert_eq!(
        structures[5],
        Ok(RemappingStructure::Other {
            structure_type: 7,
            length: 10
        })
    );
}

#[test]
fn a_table_with_no_structures_has_no_units() {
    let bytes = table(39, 0, &[]);
    let dmar = Dmar::parse(&bytes).unwrap();
    assert!(dmar.is_empty());
    assert_eq!(dmar.units().count(), 0);
}

#[test]
fn bad_headers_are_refused() {
    let good = table(39, 1, &[drhd(1, 0, 0xfed9_0000, &[])]);
    assert_eq!(
        Dmar::parse(&good[..40]).unwrap_err(),
        DmarError::TooShort { length: 40 }
    );
    let mut sig = good.clone();
    sig[0] = b'X';
    fix_checksum(&mut sig);
    assert_eq!(
        Dmar::parse(&sig).unwrap_err(),
        DmarError::BadSignature(*b"XMAR")
    );
    // The header claims more than there is (a truncated table).
    assert_eq!(
        Dmar::parse(&good[..good.len() - 1]).unwrap_err(),
        DmarError::BadLength {
            declared: good.len() as u32,
            available: good.len() - 1
        }
    );
    let mut short = good.clone();
    short[4..8].copy_from_slice(&20u32.to_le_bytes());
    fix_checksum(&mut short);
    assert!(matches!(
        Dmar::parse(&short),
        Err(DmarError::BadLength { declared: 20, .. })
    ));
    let mut huge = good.clone();
    huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    fix_checksum(&mut huge);
    assert!(matches!(
        Dmar::parse(&huge),
        Err(DmarError::BadLength { .. })
    ));
    let mut sum = good.clone();
    sum[20] ^= 0x10;
    assert!(matches!(
        Dmar::parse(&sum),
        Err(DmarError::BadChecksum { .. })
    ));
    // Bytes past the declared length are not part of the table.
    let mut longer = good.clone();
    longer.extend_from_slice(&[0xff; 7]);
    assert_eq!(Dmar::parse(&longer).unwrap().units().count(), 1);
}

#[test]
fn framing_errors_end_the_walk() {
    let unit = drhd(1, 0, 0xfed9_0000, &[]);
    // A zero length would loop forever if trusted.
    let zero = vec![0, 0, 0, 0];
    let bytes = table(39, 0, &[unit.clone(), zero, unit.clone()]);
    let dmar = Dmar::parse(&bytes).unwrap();
    assert_eq!(
        all(&dmar),
        vec![
            Ok(RemappingStructure::Drhd(
                dmar.units().next().unwrap().unwrap()
            )),
            Err(DmarError::BadStructureLength {
                offset: HEADER_LEN + 16,
                structure_type: 0,
                length: 0
            }),
        ]
    );
    // Longer than what is left of the table.
    let mut overlong = unit.clone();
    overlong[2] = 200;
    let bytes = table(39, 0, &[overlong]);
    assert_eq!(
        all(&Dmar::parse(&bytes).unwrap()),
        vec![Err(DmarError::BadStructureLength {
            offset: HEADER_LEN,
            structure_type: 0,
            length: 200
        })]
    );
    // A DRHD shorter than its fixed part.
    let mut stub = unit.clone();
    stub.truncate(12);
    stub[2] = 12;
    let bytes = table(39, 0, &[stub]);
    assert_eq!(
        all(&Dmar::parse(&bytes).unwrap()),
        vec![Err(DmarError::BadStructureLength {
            offset: HEADER_LEN,
            structure_type: 0,
            length: 12
        })]
    );
    // An RMRR shorter than its fixed part.
    let mut stub = rmrr(0, 0, 0xfff, &[]);
    stub.truncate(20);
    stub[2] = 20;
    let bytes = table(39, 0, &[stub]);
    assert!(matches!(
        all(&Dmar::parse(&bytes).unwrap())[..],
        [Err(DmarError::BadStructureLength {
            structure_type: 1,
            length: 20,
            ..
        })]
    ));
    // Two stray bytes after the last structure.
    let bytes = table(39, 0, &[unit, vec![0, 0]]);
    let structures = all(&Dmar::parse(&bytes).unwrap());
    assert_eq!(structures.len(), 2);
    assert_eq!(
        structures[1],
        Err(DmarError::StructureTruncated {
            offset: HEADER_LEN + 16
        })
    );
}

#[test]
fn bad_contents_are_reported_and_the_walk_goes_on() {
    let good = drhd(1, 0, 0xfed9_0000, &[]);
    let mut short_scope = drhd(0, 0, 0xfed9_1000, &[scope(1, 0, 0, &[(1, 0)])]);
    short_scope[16 + 1] = 5; // scope length below its fixed part
    let mut odd_scope = drhd(0, 0, 0xfed9_1000, &[scope(1, 0, 0, &[(1, 0)])]);
    odd_scope[16 + 1] = 7; // half a path entry
    let mut long_scope = drhd(0, 0, 0xfed9_1000, &[scope(1, 0, 0, &[(1, 0)])]);
    long_scope[16 + 1] = 10; // past the end of its DRHD
    let zero_base = drhd(0, 0, 0, &[]);
    let odd_base = drhd(0, 0, 0xfed9_0800, &[]);
    let backwards = rmrr(0, 0x2000, 0x1fff, &[]);
    let bytes = table(
        39,
        0,
        &[
            short_scope,
            odd_scope,
            long_scope,
            zero_base,
            odd_base,
            backwards,
            good,
        ],
    );
    let dmar = Dmar::parse(&bytes).unwrap();
    let structures = all(&dmar);
    let scope_at = |n: usize| HEADER_LEN + n * 24 + 16;
    assert_eq!(
        structures[0],
        Err(DmarError::BadDeviceScope {
            offset: scope_at(0),
            length: 5
        })
    );
    assert_eq!(
        structures[1],
        Err(DmarError::BadDeviceScope {
            offset: scope_at(1),
            length: 7
        })
    );
    assert_eq!(
        structures[2],
        Err(DmarError::BadDeviceScope {
            offset: scope_at(2),
            length: 10
        })
    );
    assert_eq!(
        structures[3],
        Err(DmarError::BadRegisterBase {
            offset: HEADER_LEN + 72,
            base: 0
        })
    );
    assert_eq!(
        structures[4],
        Err(DmarError::BadRegisterBase {
            offset: HEADER_LEN + 88,
            base: 0xfed9_0800
        })
    );
    assert_eq!(
        structures[5],
        Err(DmarError::BadRegion {
            offset: HEADER_LEN + 104,
            base: 0x2000,
            limit: 0x1fff
        })
    );
    assert!(
        matches!(structures[6], Ok(RemappingStructure::Drhd(u)) if u.register_base() == 0xfed9_0000)
    );
    assert_eq!(structures.len(), 7);
    // The errors have readable messages.
    assert!(
        structures[0]
            .unwrap_err()
            .to_string()
            .contains("device scope")
    );
}

#[test]
fn garbage_never_panics_and_every_walk_ends() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // Fewer rounds when interpreted by Miri.
    let rounds = if cfg!(miri) { 40 } else { 5000 };
    for round in 0..rounds {
        let len = (next() % 200) as usize;
        let mut body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Bias towards plausible structure types and short lengths.
        if body.len() >= 4 && round % 2 == 0 {
            body[0] = (next() % 3) as u8;
            body[1] = 0;
            body[2] = (next() % 48) as u8;
            body[3] = 0;
        }
        let bytes = table(39, 0, &[body]);
        let dmar = Dmar::parse(&bytes).unwrap();
        let mut count = 0;
        for structure in dmar.structures() {
            count += 1;
            assert!(count <= bytes.len(), "the walk does not end");
            if let Ok(RemappingStructure::Drhd(unit)) = structure {
                for scope in unit.device_scopes() {
                    let _ = scope.path().count();
                }
            }
        }
        // Any prefix of a table is refused or read, never a panic.
        for cut in [0, 4, 36, 47, 48, bytes.len() / 2] {
            let _ = Dmar::parse(&bytes[..cut.min(bytes.len())]);
        }
    }
}
