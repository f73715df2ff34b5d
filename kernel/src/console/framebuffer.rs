//! A text console on the firmware's framebuffer, for machines whose only
//! screen is the display (a USB stick on a real PC has no serial cable).
//!
//! Glyphs come pre-rasterised from `noto-sans-mono-bitmap` (16 px high, one
//! intensity byte per pixel), blended into the framebuffer's pixel format.
//! The console scrolls by moving pixel rows up one text line.

use core::fmt::{self, Write};

use bootloader_api::info::{FrameBuffer, FrameBufferInfo, PixelFormat};
use noto_sans_mono_bitmap::{FontWeight, RasterHeight, get_raster, get_raster_width};
use spin::Mutex;

const HEIGHT: RasterHeight = RasterHeight::Size16;
const WEIGHT: FontWeight = FontWeight::Regular;
const LINE_HEIGHT: usize = 16;
const MARGIN: usize = 4;

/// Text colours the console knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colour {
    /// Light grey.
    Normal,
    /// White, for headings and results.
    Bright,
    /// Yellow, for warnings.
    Warning,
    /// Red, for errors and faults.
    Error,
    /// Dim grey, for debug output.
    Dim,
}

impl Colour {
    fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Normal => [0xc8, 0xc8, 0xc8],
            Colour::Bright => [0xff, 0xff, 0xff],
            Colour::Warning => [0xff, 0xd0, 0x40],
            Colour::Error => [0xff, 0x50, 0x50],
            Colour::Dim => [0x80, 0x80, 0x80],
        }
    }
}

struct Console {
    buffer: &'static mut [u8],
    info: FrameBufferInfo,
    column: usize,
    row: usize,
    columns: usize,
    rows: usize,
    cell_width: usize,
    colour: Colour,
}

static CONSOLE: Mutex<Option<Console>> = Mutex::new(None);

/// Take over the bootloader's framebuffer and clear it.
pub fn init(framebuffer: FrameBuffer) {
    let info = framebuffer.info();
    let cell_width = get_raster_width(WEIGHT, HEIGHT);
    let columns = info.width.saturating_sub(2 * MARGIN) / cell_width;
    let rows = info.height.saturating_sub(2 * MARGIN) / LINE_HEIGHT;
    let console = Console {
        buffer: framebuffer.into_buffer(),
        info,
        column: 0,
        row: 0,
        columns,
        rows,
        cell_width,
        colour: Colour::Normal,
    };
    console.buffer.fill(0);
    *CONSOLE.lock() = Some(console);
}

/// The console's size in text cells (columns, rows), if there is one.
pub fn size() -> Option<(usize, usize)> {
    CONSOLE.lock().as_ref().map(|c| (c.columns, c.rows))
}

/// Write text in `colour`, under the console's lock.
pub fn print(args: fmt::Arguments<'_>, colour: Colour) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        if let Some(console) = CONSOLE.lock().as_mut() {
            console.colour = colour;
            let _ = console.write_fmt(args);
        }
    });
}

/// Write text unless someone holds the console (fault and panic paths).
pub fn try_print(args: fmt::Arguments<'_>, colour: Colour) {
    if let Some(mut guard) = CONSOLE.try_lock()
        && let Some(console) = guard.as_mut()
    {
        console.colour = colour;
        let _ = console.write_fmt(args);
    }
}

impl Console {
    fn newline(&mut self) {
        self.column = 0;
        if self.row + 1 < self.rows {
            self.row += 1;
        } else {
            self.scroll();
        }
    }

    fn scroll(&mut self) {
        let line_bytes = self.info.stride * self.info.bytes_per_pixel * LINE_HEIGHT;
        let top = MARGIN * self.info.stride * self.info.bytes_per_pixel;
        let used = self.rows * line_bytes;
        let end = (top + used).min(self.buffer.len());
        if top + line_bytes <= end {
            self.buffer.copy_within(top + line_bytes..end, top);
            self.buffer[end - line_bytes..end].fill(0);
        }
    }

    fn put_char(&mut self, c: char) {
        match c {
            '\n' => return self.newline(),
            '\r' => {
                self.column = 0;
                return;
            }
            _ => {}
        }
        if self.columns == 0 || self.rows == 0 {
            return;
        }
        if self.column >= self.columns {
            self.newline();
        }
        let glyph = get_raster(c, WEIGHT, HEIGHT).or_else(|| get_raster('?', WEIGHT, HEIGHT));
        let x0 = MARGIN + self.column * self.cell_width;
        let y0 = MARGIN + self.row * LINE_HEIGHT;
        let [r, g, b] = self.colour.rgb();
        if let Some(glyph) = glyph {
            for (dy, line) in glyph.raster().iter().enumerate() {
                for (dx, &intensity) in line.iter().enumerate() {
                    let scale =
                        |channel: u8| (u16::from(channel) * u16::from(intensity) / 255) as u8;
                    self.put_pixel(x0 + dx, y0 + dy, [scale(r), scale(g), scale(b)]);
                }
            }
        }
        self.column += 1;
    }

    fn put_pixel(&mut self, x: usize, y: usize, [r, g, b]: [u8; 3]) {
        if x >= self.info.width || y >= self.info.height {
            return;
        }
        let bpp = self.info.bytes_per_pixel;
        let offset = (y * self.info.stride + x) * bpp;
        let Some(pixel) = self.buffer.get_mut(offset..offset + bpp) else {
            return;
        };
        match self.info.pixel_format {
            PixelFormat::Rgb if bpp >= 3 => pixel[..3].copy_from_slice(&[r, g, b]),
            PixelFormat::Bgr if bpp >= 3 => pixel[..3].copy_from_slice(&[b, g, r]),
            PixelFormat::U8 => pixel[0] = ((u16::from(r) + u16::from(g) + u16::from(b)) / 3) as u8,
            _ => pixel[0] = g,
        }
    }
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            self.put_char(c);
        }
        Ok(())
    }
}
