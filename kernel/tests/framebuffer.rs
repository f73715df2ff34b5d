//! The framebuffer console on a 4K (3840x2160) screen in RAM: the font
//! scale, where text lands pixel by pixel, scrolling that redraws from the
//! text grid through a write-only sink, odd pixel formats and sizes, and
//! the real framebuffer mapped write-combining.

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::run_tests)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

mod common;

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use bootloader_api::info::{FrameBufferInfo, PixelFormat};
use bootloader_api::{BootInfo, entry_point};
use kernel::console::framebuffer::{
    Cells, Colour, ConsoleError, PixelSink, TextConsole, encode, scale_for_width,
};
use kernel::memory::write_combining::{self, MemoryType};
use noto_sans_mono_bitmap::{FontWeight, RasterHeight, get_raster};
use spin::Mutex;

entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(boot_info: &'static mut BootInfo) -> ! {
    common::boot_and_test(boot_info, test_main)
}

/// Text memory for the consoles under test (one at a time).
static CELLS: Mutex<Cells> = Mutex::new(Cells::new());

/// A framebuffer in RAM that counts what is written to it. It implements
/// `PixelSink`, which has only `write`: the console cannot read it back.
struct CountingSink {
    pixels: Vec<u8>,
    writes: usize,
    bytes: usize,
}

impl CountingSink {
    fn new(len: usize) -> CountingSink {
        CountingSink {
            pixels: vec![0; len],
            writes: 0,
            bytes: 0,
        }
    }
}

impl PixelSink for CountingSink {
    fn write(&mut self, offset: usize, bytes: &[u8]) {
        self.writes += 1;
        self.bytes += bytes.len();
        let end = (offset + bytes.len()).min(self.pixels.len());
        if offset < end {
            self.pixels[offset..end].copy_from_slice(&bytes[..end - offset]);
        }
    }
}

fn info(
    width: usize,
    height: usize,
    stride: usize,
    bpp: usize,
    format: PixelFormat,
) -> FrameBufferInfo {
    FrameBufferInfo {
        byte_len: stride * height * bpp,
        width,
        height,
        pixel_format: format,
        bytes_per_pixel: bpp,
        stride,
    }
}

fn four_k() -> FrameBufferInfo {
    info(3840, 2160, 3840, 4, PixelFormat::Bgr)
}

/// Check that cell (`column`, `row`) shows `c` in `colour`, pixel by pixel,
/// scaled; `' '` means an empty (black) cell.
fn assert_cell(
    console: &TextConsole<'_, CountingSink>,
    info: &FrameBufferInfo,
    column: usize,
    row: usize,
    c: char,
    colour: Colour,
) {
    let (x0, y0) = console.cell_origin(column, row);
    let (width, height) = console.cell_size();
    let scale = console.scale();
    let bpp = info.bytes_per_pixel;
    let glyph =
        (c != ' ').then(|| get_raster(c, FontWeight::Regular, RasterHeight::Size16).unwrap());
    let [r, g, b] = colour.rgb();
    for y in 0..height {
        for x in 0..width {
            let intensity = glyph
                .as_ref()
                .map_or(0, |glyph| glyph.raster()[y / scale][x / scale]);
            let blend = |channel: u8| (u16::from(channel) * u16::from(intensity) / 255) as u8;
            let expected = if intensity == 0 {
                [0; 8]
            } else {
                encode(info.pixel_format, bpp, [blend(r), blend(g), blend(b)])
            };
            let offset = ((y0 + y) * info.stride + x0 + x) * bpp;
            assert_eq!(
                &console.sink().pixels[offset..offset + bpp],
                &expected[..bpp],
                "cell ({column}, {row}) '{c}', pixel ({x}, {y})"
            );
        }
    }
}

/// Check a whole row of text: `text` from column 0, empty cells after.
fn assert_row(
    console: &TextConsole<'_, CountingSink>,
    info: &FrameBufferInfo,
    row: usize,
    text: &str,
) {
    let (columns, _) = console.size();
    let mut chars = text.chars();
    for column in 0..columns {
        let c = chars.next().unwrap_or(' ');
        assert_cell(console, info, column, row, c, Colour::Normal);
    }
}

#[test_case]
fn font_scale_grows_with_the_screen() {
    assert_eq!(scale_for_width(640), 1);
    assert_eq!(scale_for_width(1280), 1);
    assert_eq!(scale_for_width(1919), 1);
    assert_eq!(scale_for_width(1920), 2);
    assert_eq!(scale_for_width(2560), 2);
    assert_eq!(scale_for_width(3840), 3);
    assert_eq!(scale_for_width(5120), 4);
    let info = four_k();
    let mut cells = CELLS.lock();
    let console = TextConsole::new(CountingSink::new(info.byte_len), info, &mut cells).unwrap();
    assert_eq!(console.scale(), 3);
    assert_eq!(console.cell_size(), (21, 48));
    // 12-pixel margins: (3840 - 24) / 21 and (2160 - 24) / 48.
    assert_eq!(console.size(), (181, 44));
    // Clearing wrote every byte once, and nothing else was written.
    assert_eq!(console.sink().bytes, info.byte_len);
}

#[test_case]
fn text_lands_in_its_cells_and_nowhere_else() {
    let info = four_k();
    let mut cells = CELLS.lock();
    let mut console = TextConsole::new(CountingSink::new(info.byte_len), info, &mut cells).unwrap();
    console.set_colour(Colour::Warning);
    write!(console, "Az").unwrap();
    console.set_colour(Colour::Normal);
    write!(console, "\n\tq").unwrap();
    assert_eq!(console.cursor(), (9, 1));
    assert_cell(&console, &info, 0, 0, 'A', Colour::Warning);
    assert_cell(&console, &info, 1, 0, 'z', Colour::Warning);
    assert_cell(&console, &info, 2, 0, ' ', Colour::Normal);
    assert_cell(&console, &info, 7, 1, ' ', Colour::Normal);
    assert_cell(&console, &info, 8, 1, 'q', Colour::Normal);
    // Outside the three cells, the screen is black.
    let lit: Vec<(usize, usize)> = [(0, 0), (1, 0), (8, 1)]
        .iter()
        .map(|&(c, r)| console.cell_origin(c, r))
        .collect();
    let (cw, ch) = console.cell_size();
    let pixels = &console.sink().pixels;
    for (index, pixel) in pixels.as_chunks::<4>().0.iter().enumerate() {
        let (x, y) = (index % info.stride, index / info.stride);
        let inside = lit
            .iter()
            .any(|&(x0, y0)| (x0..x0 + cw).contains(&x) && (y0..y0 + ch).contains(&y));
        if !inside {
            assert_eq!(*pixel, [0; 4], "stray pixel at ({x}, {y})");
        }
    }
}

#[test_case]
fn scrolling_redraws_from_the_grid_through_a_write_only_sink() {
    let info = four_k();
    let mut cells = CELLS.lock();
    let mut console = TextConsole::new(CountingSink::new(info.byte_len), info, &mut cells).unwrap();
    let (_, rows) = console.size();
    for line in 0..rows {
        writeln!(console, "line {line}").unwrap();
    }
    // The last newline scrolled once: "line 0" is gone.
    let before = (console.sink().writes, console.sink().bytes);
    write!(console, "last").unwrap();
    let (writes, bytes) = (
        console.sink().writes - before.0,
        console.sink().bytes - before.1,
    );
    for row in 0..rows - 1 {
        assert_row(&console, &info, row, &format!("line {}", row + 1));
    }
    assert_row(&console, &info, rows - 1, "last");
    // Writing four characters on a clean row draws four cells, each a
    // span per pixel row.
    let cell_rows = console.cell_size().1;
    assert_eq!(writes, 4 * cell_rows);
    assert_eq!(bytes, 4 * cell_rows * 21 * 4);

    // One more scroll redraws only the cells whose character changes:
    // at most the text on screen before and after, never the whole screen.
    let before = console.sink().bytes;
    writeln!(console).unwrap();
    let scroll_bytes = console.sink().bytes - before;
    let cell_bytes = 21 * 48 * 4;
    let text_cells: usize = (1..rows)
        .map(|line| format!("line {line}").len())
        .sum::<usize>()
        + 4;
    assert!(scroll_bytes > 0);
    assert!(
        scroll_bytes <= 2 * text_cells * cell_bytes,
        "a scroll wrote {scroll_bytes} bytes for {text_cells} cells of text"
    );
    assert!(scroll_bytes < info.byte_len / 4);
    for row in 0..rows - 2 {
        assert_row(&console, &info, row, &format!("line {}", row + 2));
    }
    assert_row(&console, &info, rows - 2, "last");
    assert_row(&console, &info, rows - 1, "");
}

#[test_case]
fn odd_formats_and_sizes_are_handled() {
    let mut cells = CELLS.lock();
    // An unknown 32-bit layout (red high, blue low), width not a multiple
    // of the cell, stride with padding.
    let unknown = PixelFormat::Unknown {
        red_position: 16,
        green_position: 8,
        blue_position: 0,
    };
    let layout = info(1001, 333, 1024, 4, unknown);
    let mut console =
        TextConsole::new(CountingSink::new(layout.byte_len), layout, &mut cells).unwrap();
    assert_eq!(console.scale(), 1);
    write!(console, "W").unwrap();
    assert_cell(&console, &layout, 0, 0, 'W', Colour::Normal);
    assert_eq!(
        encode(unknown, 4, [0x12, 0x34, 0x56])[..4],
        [0x56, 0x34, 0x12, 0x00]
    );
    drop(console);
    // 8-bit grey, 24-bit RGB and BGR.
    for (format, bpp) in [
        (PixelFormat::U8, 1),
        (PixelFormat::Rgb, 3),
        (PixelFormat::Bgr, 3),
    ] {
        let layout = info(800, 600, 800, bpp, format);
        let mut console =
            TextConsole::new(CountingSink::new(layout.byte_len), layout, &mut cells).unwrap();
        write!(console, "ok").unwrap();
        assert_cell(&console, &layout, 1, 0, 'k', Colour::Normal);
    }
    assert_eq!(encode(PixelFormat::U8, 1, [30, 60, 90])[0], 60);
    assert_eq!(encode(PixelFormat::Rgb, 3, [1, 2, 3])[..3], [1, 2, 3]);
    assert_eq!(encode(PixelFormat::Bgr, 4, [1, 2, 3])[..4], [3, 2, 1, 0]);
    // Refused, not panicked on.
    let refuse = |layout: FrameBufferInfo, cells: &mut Cells| {
        TextConsole::new(CountingSink::new(layout.byte_len), layout, cells).err()
    };
    assert_eq!(
        refuse(info(640, 480, 640, 0, PixelFormat::Rgb), &mut cells),
        Some(ConsoleError::BytesPerPixel(0))
    );
    assert_eq!(
        refuse(info(640, 480, 640, 9, PixelFormat::Rgb), &mut cells),
        Some(ConsoleError::BytesPerPixel(9))
    );
    assert_eq!(
        refuse(info(640, 480, 600, 4, PixelFormat::Rgb), &mut cells),
        Some(ConsoleError::Geometry)
    );
    let mut short = info(640, 480, 640, 4, PixelFormat::Rgb);
    short.byte_len -= 1;
    assert_eq!(refuse(short, &mut cells), Some(ConsoleError::Geometry));
    assert_eq!(
        refuse(info(6, 10, 6, 4, PixelFormat::Rgb), &mut cells),
        Some(ConsoleError::TooSmall)
    );
    // An unknown layout whose channels do not fit leaves them out.
    let wide = PixelFormat::Unknown {
        red_position: 60,
        green_position: 8,
        blue_position: 0,
    };
    assert_eq!(encode(wide, 2, [0xff, 0x34, 0x56])[..2], [0x56, 0x34]);
}

#[test_case]
fn the_real_framebuffer_is_write_combining() {
    let kernel = common::kernel();
    let (start, len) = kernel::console::framebuffer::mapped_range().expect("a framebuffer");
    if !write_combining::has_pat() {
        panic!("the test machine's CPU has no PAT");
    }
    assert_eq!(
        write_combining::pat_entry(write_combining::WRITE_COMBINING_SLOT),
        Some(MemoryType::WriteCombining)
    );
    // Entries the kernel relies on keep their power-on types.
    assert_eq!(write_combining::pat_entry(0), Some(MemoryType::WriteBack));
    assert_eq!(write_combining::pat_entry(3), Some(MemoryType::Uncacheable));
    for offset in [0, len / 2, len - 1] {
        assert_eq!(
            kernel.memory.memory_type(start + offset as u64),
            Some(MemoryType::WriteCombining),
            "framebuffer byte {offset}"
        );
    }
    // Ordinary memory is untouched.
    let stack_byte = 0u8;
    assert_eq!(
        kernel
            .memory
            .memory_type(x86_64::VirtAddr::from_ptr(&stack_byte)),
        Some(MemoryType::WriteBack)
    );
}
