//! A text console on the firmware's framebuffer, for machines whose only
//! screen is the display (a USB stick on a real PC has no serial cable).
//!
//! The text lives in RAM, in a grid of cells; the framebuffer is only ever
//! written. Video memory is uncached or write-combining on real machines,
//! where a read costs as much as a trip over the bus, so scrolling by
//! copying pixel rows within the framebuffer (a read per byte) is slow
//! enough to be seen. Here, scrolling moves the grid (a ring of rows) and
//! redraws the cells whose character differs from what the screen shows.
//! The renderer draws onto a [`PixelSink`], a trait with no read operation,
//! so "never reads video memory" is a property of the types.
//!
//! Glyphs come pre-rasterised from `noto-sans-mono-bitmap` (7x16 px, one
//! intensity byte per pixel) and are scaled up by an integer factor on
//! large screens so the report is readable from a chair: 1x below 1920
//! pixels wide, 2x from 1920, 3x from 3840 (4K), 4x from 5120; more if the
//! text grid would otherwise outgrow its fixed capacity. Pixels are encoded
//! in whatever format the bootloader reports: RGB, BGR, 8-bit grey, or an
//! unknown layout with channel bit positions, 1 to 8 bytes per pixel.

use core::fmt::{self, Write};

use bootloader_api::info::{FrameBuffer, FrameBufferInfo, PixelFormat};
use noto_sans_mono_bitmap::{FontWeight, RasterHeight, get_raster, get_raster_width};
use spin::Mutex;
use x86_64::VirtAddr;

const HEIGHT: RasterHeight = RasterHeight::Size16;
const WEIGHT: FontWeight = FontWeight::Regular;
/// Height of an unscaled glyph, in pixels.
const GLYPH_HEIGHT: usize = 16;
/// Width of an unscaled glyph, in pixels.
const GLYPH_WIDTH: usize = get_raster_width(WEIGHT, HEIGHT);
/// Unscaled margin around the text, in pixels.
const MARGIN: usize = 4;
/// Largest font scale.
pub const MAX_SCALE: usize = 4;
/// Most bytes a pixel may have (a wider one is refused).
pub const MAX_BYTES_PER_PIXEL: usize = 8;
/// Text grid capacity: columns.
pub const MAX_COLUMNS: usize = 320;
/// Text grid capacity: rows.
pub const MAX_ROWS: usize = 120;
const MAX_CELLS: usize = MAX_COLUMNS * MAX_ROWS;
/// Bytes of one scaled glyph row, the unit written to the sink.
const SPAN_BYTES: usize = GLYPH_WIDTH * MAX_SCALE * MAX_BYTES_PER_PIXEL;

/// Screen widths (pixels) from which each font scale applies, largest
/// first: 4x from 5120, 3x from 3840, 2x from 1920, 1x below.
const SCALE_STEPS: [(usize, usize); 3] = [(5120, 4), (3840, 3), (1920, 2)];

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
    /// The colour's red, green and blue intensities.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Normal => [0xc8, 0xc8, 0xc8],
            Colour::Bright => [0xff, 0xff, 0xff],
            Colour::Warning => [0xff, 0xd0, 0x40],
            Colour::Error => [0xff, 0x50, 0x50],
            Colour::Dim => [0x80, 0x80, 0x80],
        }
    }
}

/// Where the console's pixels go: write-only by construction. A sink
/// offers no way to read what it holds, so nothing drawn through it can
/// read video memory back.
pub trait PixelSink {
    /// Write `bytes` (whole pixels, already in the screen's format) at byte
    /// `offset` from the start of the screen. Bytes past the end are
    /// dropped.
    fn write(&mut self, offset: usize, bytes: &[u8]);
}

/// The bootloader's framebuffer as a [`PixelSink`].
pub struct FramebufferSink {
    buffer: &'static mut [u8],
}

impl FramebufferSink {
    /// Wrap the framebuffer's mapped bytes.
    pub fn new(buffer: &'static mut [u8]) -> FramebufferSink {
        FramebufferSink { buffer }
    }

    /// The virtual address and length of the mapped framebuffer.
    pub fn range(&self) -> (VirtAddr, usize) {
        (VirtAddr::from_ptr(self.buffer.as_ptr()), self.buffer.len())
    }
}

impl PixelSink for FramebufferSink {
    fn write(&mut self, offset: usize, bytes: &[u8]) {
        let end = offset.saturating_add(bytes.len()).min(self.buffer.len());
        if let Some(target) = self.buffer.get_mut(offset..end) {
            target.copy_from_slice(&bytes[..end - offset]);
        }
    }
}

/// Why a framebuffer cannot carry a console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleError {
    /// Zero, or more than [`MAX_BYTES_PER_PIXEL`], bytes per pixel.
    BytesPerPixel(usize),
    /// The stride is smaller than the width, or the buffer is too short for
    /// `stride x height` pixels.
    Geometry,
    /// Too small for a single text cell.
    TooSmall,
}

impl fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsoleError::BytesPerPixel(n) => write!(f, "{n} bytes per pixel is not supported"),
            ConsoleError::Geometry => f.write_str("stride or length do not match the size"),
            ConsoleError::TooSmall => f.write_str("too small for one line of text"),
        }
    }
}

/// One character cell: an ASCII byte (0 for empty) and its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cell {
    byte: u8,
    colour: Colour,
}

const BLANK: Cell = Cell {
    byte: 0,
    colour: Colour::Normal,
};

/// The console's text memory: what should be on screen (a ring of rows)
/// and what the screen shows now, cell by cell. Large (about 150 KiB), so
/// it is kept in a static rather than built on the stack.
pub struct Cells {
    text: [Cell; MAX_CELLS],
    shown: [Cell; MAX_CELLS],
}

impl Cells {
    /// Empty text memory.
    pub const fn new() -> Cells {
        Cells {
            text: [BLANK; MAX_CELLS],
            shown: [BLANK; MAX_CELLS],
        }
    }
}

impl Default for Cells {
    fn default() -> Self {
        Cells::new()
    }
}

/// The font scale for a screen `width` pixels wide (see the module notes).
pub fn scale_for_width(width: usize) -> usize {
    SCALE_STEPS
        .iter()
        .find(|&&(from, _)| width >= from)
        .map_or(1, |&(_, scale)| scale)
}

/// A text console drawing onto a [`PixelSink`].
pub struct TextConsole<'c, S: PixelSink> {
    sink: S,
    info: FrameBufferInfo,
    cells: &'c mut Cells,
    scale: usize,
    columns: usize,
    rows: usize,
    /// Ring index of the text row shown at the top of the screen.
    top: usize,
    column: usize,
    row: usize,
    colour: Colour,
    /// The text moved (scrolled) since the screen was last brought up to
    /// date: compare every cell before the next character is drawn.
    moved: bool,
}

impl<'c, S: PixelSink> TextConsole<'c, S> {
    /// A console on `sink`, laid out as `info` says, with its text in
    /// `cells`. Clears the screen (every byte of `stride x height`
    /// pixels is written once).
    pub fn new(
        sink: S,
        info: FrameBufferInfo,
        cells: &'c mut Cells,
    ) -> Result<TextConsole<'c, S>, ConsoleError> {
        let bpp = info.bytes_per_pixel;
        if bpp == 0 || bpp > MAX_BYTES_PER_PIXEL {
            return Err(ConsoleError::BytesPerPixel(bpp));
        }
        let needed = info
            .stride
            .checked_mul(info.height)
            .and_then(|pixels| pixels.checked_mul(bpp));
        if info.stride < info.width || needed.is_none_or(|needed| needed > info.byte_len) {
            return Err(ConsoleError::Geometry);
        }
        let mut scale = scale_for_width(info.width);
        let grid = |scale: usize| {
            let columns = info.width.saturating_sub(2 * MARGIN * scale) / (GLYPH_WIDTH * scale);
            let rows = info.height.saturating_sub(2 * MARGIN * scale) / (GLYPH_HEIGHT * scale);
            (columns, rows)
        };
        while scale < MAX_SCALE && {
            let (columns, rows) = grid(scale);
            columns > MAX_COLUMNS || rows > MAX_ROWS
        } {
            scale += 1;
        }
        let (columns, rows) = grid(scale);
        if columns == 0 || rows == 0 {
            return Err(ConsoleError::TooSmall);
        }
        cells.text.fill(BLANK);
        cells.shown.fill(BLANK);
        let mut console = TextConsole {
            sink,
            info,
            cells,
            scale,
            columns: columns.min(MAX_COLUMNS),
            rows: rows.min(MAX_ROWS),
            top: 0,
            column: 0,
            row: 0,
            colour: Colour::Normal,
            moved: false,
        };
        console.clear_screen();
        Ok(console)
    }

    /// The font scale in use.
    pub fn scale(&self) -> usize {
        self.scale
    }

    /// Size in text cells: (columns, rows).
    pub fn size(&self) -> (usize, usize) {
        (self.columns, self.rows)
    }

    /// Size of one text cell in pixels: (width, height).
    pub fn cell_size(&self) -> (usize, usize) {
        (GLYPH_WIDTH * self.scale, GLYPH_HEIGHT * self.scale)
    }

    /// Pixel position of the top-left corner of cell (`column`, `row`).
    pub fn cell_origin(&self, column: usize, row: usize) -> (usize, usize) {
        let (width, height) = self.cell_size();
        let margin = MARGIN * self.scale;
        (margin + column * width, margin + row * height)
    }

    /// The cursor: (column, row) where the next character goes.
    pub fn cursor(&self) -> (usize, usize) {
        (self.column, self.row)
    }

    /// The sink (tests inspect what was written through it).
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The sink, mutably.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Set the colour of text written from now on.
    pub fn set_colour(&mut self, colour: Colour) {
        self.colour = colour;
    }

    /// Bring the screen up to date with the text (after a scroll); called
    /// at the end of every write, so callers need it only after
    /// [`put_char`](Self::put_char).
    pub fn refresh(&mut self) {
        if !self.moved {
            return;
        }
        self.moved = false;
        for row in 0..self.rows {
            for column in 0..self.columns {
                self.draw_if_changed(column, row);
            }
        }
    }

    /// Write one character at the cursor (control characters: `\n`, `\r`,
    /// `\t`; anything outside printable ASCII shows as `?`).
    pub fn put_char(&mut self, c: char) {
        match c {
            '\n' => return self.newline(),
            '\r' => {
                self.column = 0;
                return;
            }
            '\t' => {
                let next = (self.column / 8 + 1) * 8;
                while self.column < next.min(self.columns) {
                    self.put_char(' ');
                }
                return;
            }
            _ => {}
        }
        if self.column >= self.columns {
            self.newline();
        }
        let byte = if c.is_ascii_graphic() || c == ' ' {
            c as u8
        } else {
            b'?'
        };
        let index = self.text_index(self.column, self.row);
        self.cells.text[index] = Cell {
            byte,
            colour: self.colour,
        };
        if !self.moved {
            self.draw_if_changed(self.column, self.row);
        }
        self.column += 1;
    }

    fn newline(&mut self) {
        self.column = 0;
        if self.row + 1 < self.rows {
            self.row += 1;
            return;
        }
        // Scroll: the ring's top row becomes the new bottom row, emptied.
        let bottom = self.top;
        self.top = (self.top + 1) % self.rows;
        let start = bottom * self.columns;
        self.cells.text[start..start + self.columns].fill(BLANK);
        self.moved = true;
    }

    fn text_index(&self, column: usize, row: usize) -> usize {
        ((self.top + row) % self.rows) * self.columns + column
    }

    fn draw_if_changed(&mut self, column: usize, row: usize) {
        let wanted = self.cells.text[self.text_index(column, row)];
        let shown = &mut self.cells.shown[row * self.columns + column];
        if *shown != wanted {
            *shown = wanted;
            self.draw_cell(column, row, wanted);
        }
    }

    /// Draw one cell: each glyph row is encoded once, scaled horizontally,
    /// and written `scale` times (vertical scaling).
    fn draw_cell(&mut self, column: usize, row: usize, cell: Cell) {
        let bpp = self.info.bytes_per_pixel;
        let (x0, y0) = self.cell_origin(column, row);
        let glyph = match cell.byte {
            0 | b' ' => None,
            byte => get_raster(char::from(byte), WEIGHT, HEIGHT)
                .or_else(|| get_raster('?', WEIGHT, HEIGHT)),
        };
        let [r, g, b] = cell.colour.rgb();
        let span_len = GLYPH_WIDTH * self.scale * bpp;
        let mut span = [0u8; SPAN_BYTES];
        for glyph_row in 0..GLYPH_HEIGHT {
            span[..span_len].fill(0);
            if let Some(line) = glyph.as_ref().and_then(|g| g.raster().get(glyph_row)) {
                for (dx, &intensity) in line.iter().enumerate().take(GLYPH_WIDTH) {
                    if intensity == 0 {
                        continue;
                    }
                    let blend =
                        |channel: u8| (u16::from(channel) * u16::from(intensity) / 255) as u8;
                    let pixel = encode(self.info.pixel_format, bpp, [blend(r), blend(g), blend(b)]);
                    for copy in 0..self.scale {
                        let at = (dx * self.scale + copy) * bpp;
                        span[at..at + bpp].copy_from_slice(&pixel[..bpp]);
                    }
                }
            }
            for copy in 0..self.scale {
                let y = y0 + glyph_row * self.scale + copy;
                let offset = (y * self.info.stride + x0) * bpp;
                self.sink.write(offset, &span[..span_len]);
            }
        }
    }

    /// Paint the whole `stride x height` area black, a row at a time.
    fn clear_screen(&mut self) {
        let zeros = [0u8; 1024];
        let row_bytes = self.info.stride * self.info.bytes_per_pixel;
        for y in 0..self.info.height {
            let mut done = 0;
            while done < row_bytes {
                let chunk = (row_bytes - done).min(zeros.len());
                self.sink.write(y * row_bytes + done, &zeros[..chunk]);
                done += chunk;
            }
        }
    }
}

impl<S: PixelSink> Write for TextConsole<'_, S> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            self.put_char(c);
        }
        self.refresh();
        Ok(())
    }
}

/// Encode an RGB colour as one pixel of `format`, `bpp` bytes long (the
/// first `bpp` bytes of the result).
pub fn encode(format: PixelFormat, bpp: usize, [r, g, b]: [u8; 3]) -> [u8; MAX_BYTES_PER_PIXEL] {
    let mut pixel = [0u8; MAX_BYTES_PER_PIXEL];
    match format {
        PixelFormat::Rgb if bpp >= 3 => pixel[..3].copy_from_slice(&[r, g, b]),
        PixelFormat::Bgr if bpp >= 3 => pixel[..3].copy_from_slice(&[b, g, r]),
        PixelFormat::Unknown {
            red_position,
            green_position,
            blue_position,
        } => {
            // Each channel is 8 bits at its bit offset; a channel that does
            // not fit in the pixel is left out.
            let bits = bpp * 8;
            let mut value = 0u64;
            for (position, channel) in [(red_position, r), (green_position, g), (blue_position, b)]
            {
                let position = usize::from(position);
                if position + 8 <= bits {
                    value |= u64::from(channel) << position;
                }
            }
            pixel = value.to_le_bytes();
        }
        // Grey (U8), and RGB/BGR with too few bytes for three channels:
        // the channels' mean in the first byte.
        _ => pixel[0] = ((u16::from(r) + u16::from(g) + u16::from(b)) / 3) as u8,
    }
    pixel
}

static CELLS: Mutex<Cells> = Mutex::new(Cells::new());
static CONSOLE: Mutex<Option<TextConsole<'static, FramebufferSink>>> = Mutex::new(None);

/// Take over the bootloader's framebuffer and clear it. A framebuffer the
/// console cannot use is reported on serial and left alone.
pub fn init(framebuffer: FrameBuffer) {
    let info = framebuffer.info();
    let Some(cells) = CELLS.try_lock() else {
        return; // already initialised
    };
    let cells = spin::MutexGuard::leak(cells);
    match TextConsole::new(FramebufferSink::new(framebuffer.into_buffer()), info, cells) {
        Ok(console) => *CONSOLE.lock() = Some(console),
        Err(error) => super::serial::print(format_args!(
            "framebuffer {}x{} ({:?}, {} bytes per pixel) not used: {error}\n",
            info.width, info.height, info.pixel_format, info.bytes_per_pixel
        )),
    }
}

/// The console's size in text cells (columns, rows), if there is one.
pub fn size() -> Option<(usize, usize)> {
    CONSOLE.lock().as_ref().map(TextConsole::size)
}

/// The framebuffer's resolution and font scale, if there is a console.
pub fn resolution() -> Option<(usize, usize, usize)> {
    CONSOLE
        .lock()
        .as_ref()
        .map(|c| (c.info.width, c.info.height, c.scale))
}

/// Where the console's framebuffer is mapped (virtual start, length), if
/// there is a console.
pub fn mapped_range() -> Option<(VirtAddr, usize)> {
    CONSOLE.lock().as_ref().map(|c| c.sink.range())
}

/// Map the framebuffer write-combining (see [`crate::memory::write_combining`]),
/// once `memory` exists. Failure only costs speed, so it is logged.
pub fn use_write_combining(memory: &crate::memory::Memory) {
    let Some((start, len)) = mapped_range() else {
        return;
    };
    if let Some((width, height, scale)) = resolution() {
        log::info!("framebuffer: {width}x{height}, font scale {scale}");
    }
    match memory.map_write_combining(start, len) {
        Ok(pages) => log::debug!("framebuffer: write-combining over {pages}"),
        Err(error) => log::warn!("framebuffer: left as mapped ({error}); the screen may be slow"),
    }
}

/// Write text in `colour`, under the console's lock.
pub fn print(args: fmt::Arguments<'_>, colour: Colour) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        if let Some(console) = CONSOLE.lock().as_mut() {
            console.set_colour(colour);
            let _ = console.write_fmt(args);
        }
    });
}

/// Write text unless someone holds the console (fault and panic paths).
pub fn try_print(args: fmt::Arguments<'_>, colour: Colour) {
    if let Some(mut guard) = CONSOLE.try_lock()
        && let Some(console) = guard.as_mut()
    {
        console.set_colour(colour);
        let _ = console.write_fmt(args);
    }
}
