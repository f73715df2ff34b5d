//! Building QEMU command lines and running them with a deadline.
//!
//! Every boot has isa-debug-exit at port 0xf4 (the kernel's exit path),
//! `-no-reboot` (a triple fault becomes an exit instead of a reboot loop),
//! COM1 on QEMU's standard output, and the NVMe trace events
//! `pci_nvme_ub_*` / `pci_nvme_err_*` written to a log file: any
//! `pci_nvme_ub_*` line means the driver broke the NVMe protocol.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use std::{fmt, fs, thread};

use anyhow::{Context, Result, bail};

/// OVMF's code image from Debian's `ovmf` package.
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
/// OVMF's variable store template (copied per boot; OVMF writes to it).
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// Base added by the kernel to every isa-debug-exit status.
const DEBUG_EXIT_BASE: i32 = 0x10;

/// Firmware to boot with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS, QEMU's default.
    Bios,
    /// OVMF (UEFI), from Debian's `ovmf` package.
    Uefi,
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Firmware::Bios => "BIOS",
            Firmware::Uefi => "UEFI",
        })
    }
}

/// What stores an NVMe disk's blocks on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The raw file at [`NvmeDisk::path`].
    File,
    /// QEMU's `null-co` driver of this many bytes: reads return zeroes,
    /// writes are dropped, nothing touches the host's disk. It can never
    /// carry the ownership signature, so the guest treats it as foreign.
    Null {
        /// Size in bytes.
        bytes: u64,
    },
}

/// An NVMe disk given to the guest.
#[derive(Clone, Debug)]
pub struct NvmeDisk {
    /// Backing file (raw); unused with [`Backend::Null`].
    pub path: PathBuf,
    /// Where the blocks live.
    pub backend: Backend,
    /// Controller serial number, as the guest sees it.
    pub serial: String,
    /// Extra `-device nvme` properties, such as `mdts=2` or `bus=rp1`.
    pub properties: Vec<String>,
    /// A `blkdebug` rules file placed between the device and the image:
    /// QEMU's block layer then fails chosen requests with an errno.
    pub blkdebug: Option<PathBuf>,
    /// Extra `-drive` options, such as `throttling.iops-total=50`.
    pub drive_options: Vec<String>,
}

impl NvmeDisk {
    /// A plain disk: `path` behind a controller with serial `serial`.
    pub fn new(path: PathBuf, serial: impl Into<String>) -> NvmeDisk {
        NvmeDisk {
            path,
            backend: Backend::File,
            serial: serial.into(),
            properties: Vec::new(),
            blkdebug: None,
            drive_options: Vec::new(),
        }
    }

    /// A disk on QEMU's `null-co` driver (reads return zeroes) of `bytes`
    /// bytes, behind a controller with serial `serial`.
    pub fn null(bytes: u64, serial: impl Into<String>) -> NvmeDisk {
        NvmeDisk {
            backend: Backend::Null { bytes },
            ..NvmeDisk::new(PathBuf::new(), serial)
        }
    }

    /// The `-drive` argument for this disk under id `id`.
    pub fn drive_argument(&self, id: &str) -> String {
        let mut drive = match self.backend {
            Backend::Null { bytes } => {
                format!("if=none,id={id},driver=null-co,size={bytes},read-zeroes=on")
            }
            Backend::File => {
                let file = match &self.blkdebug {
                    Some(rules) => {
                        format!("blkdebug:{}:{}", rules.display(), self.path.display())
                    }
                    None => self.path.display().to_string(),
                };
                format!("if=none,id={id},file={file},format=raw")
            }
        };
        for option in &self.drive_options {
            drive.push(',');
            drive.push_str(option);
        }
        drive
    }
}

/// An `nvme-ns` namespace on an [`NvmeController`]: its disk file and
/// device properties (`logical_block_size=4096`, `zoned=true`, ...).
#[derive(Clone, Debug)]
pub struct NvmeNamespace {
    /// Backing raw file.
    pub path: PathBuf,
    /// Extra `-device nvme-ns` properties.
    pub properties: Vec<String>,
}

/// An NVMe controller without a drive of its own, holding `nvme-ns`
/// namespaces (NSIDs 1, 2, ... in order).
#[derive(Clone, Debug)]
pub struct NvmeController {
    /// Device id, which the namespaces name as their bus.
    pub id: String,
    /// Controller serial number.
    pub serial: String,
    /// Extra `-device nvme` properties, such as `mdts=3`.
    pub properties: Vec<String>,
    /// Its namespaces.
    pub namespaces: Vec<NvmeNamespace>,
}

/// A Linux kernel QEMU loads itself (`-kernel`, `-initrd`, `-append`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectKernel {
    /// The kernel image.
    pub kernel: PathBuf,
    /// The initial RAM disk.
    pub initrd: PathBuf,
    /// The kernel command line.
    pub append: String,
}

/// How the machine boots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum BootDevice {
    /// [`Machine::image`] on the machine's default disk interface (IDE on
    /// `pc`, AHCI on `q35`).
    #[default]
    Disk,
    /// [`Machine::image`] on a USB mass-storage stick on an xHCI
    /// controller, first in the boot order: how the image reaches a real PC.
    UsbStick,
    /// No image: QEMU loads a Linux kernel and initrd directly (the
    /// comparison's guest).
    Kernel(DirectKernel),
}

/// The isa-debug-exit device's I/O port: the kernel writes its status
/// there (kernel/src/arch/exit.rs uses the same port).
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Everything about one boot: a typed description of the QEMU machine
/// that [`Machine::command`] renders as a command line.
#[derive(Clone, Debug)]
pub struct Machine {
    /// The bootable image.
    pub image: PathBuf,
    /// Firmware.
    pub firmware: Firmware,
    /// `-machine` type: `pc` or `q35`, with options (`q35,pit=off`).
    pub machine: String,
    /// Guest memory, as QEMU spells it (`512M`).
    pub memory: String,
    /// `-smp`: under TCG `1,maxcpus=2` keeps guest memory barriers (plain
    /// `1` drops them and shadow doorbells hang).
    pub cpus: String,
    /// `-name NAME,debug-threads=on`: QEMU's threads carry names the host
    /// can read in /proc (the comparison measures them).
    pub name: Option<String>,
    /// NVMe disks, one controller each.
    pub disks: Vec<NvmeDisk>,
    /// NVMe controllers with `nvme-ns` namespaces.
    pub controllers: Vec<NvmeController>,
    /// Show a window (otherwise `-display none`).
    pub window: bool,
    /// Extra arguments, placed before the NVMe devices (they may define the
    /// buses the controllers sit on).
    pub extra: Vec<String>,
    /// How the machine boots: the image as a disk or a USB stick, or a
    /// Linux kernel.
    pub boot_device: BootDevice,
    /// Record QEMU's NVMe trace events (`pci_nvme_ub_*`, `pci_nvme_err_*`)
    /// in [`Machine::trace_log`].
    pub trace: bool,
    /// Where the NVMe trace log goes.
    pub trace_log: PathBuf,
    /// Directory for per-boot scratch files (OVMF variables).
    pub scratch_dir: PathBuf,
}

impl Machine {
    /// A headless `pc` machine with 512 MiB, one CPU, NVMe tracing on,
    /// and no disks.
    pub fn new(image: PathBuf, scratch_dir: PathBuf) -> Machine {
        Machine {
            image,
            firmware: Firmware::Bios,
            machine: "pc".into(),
            memory: "512M".into(),
            cpus: "1,maxcpus=2".into(),
            name: None,
            disks: Vec::new(),
            controllers: Vec::new(),
            window: false,
            extra: Vec::new(),
            boot_device: BootDevice::Disk,
            trace: true,
            trace_log: scratch_dir.join("nvme-trace.log"),
            scratch_dir,
        }
    }

    /// Also listen for monitor commands on the Unix socket `socket`.
    pub fn add_monitor(&mut self, socket: &Path) {
        self.extra.push("-monitor".into());
        self.extra
            .push(format!("unix:{},server=on,wait=off", socket.display()));
    }

    /// The QEMU command for this machine. Under UEFI it copies OVMF's
    /// variable store into [`Machine::scratch_dir`].
    pub fn command(&self) -> Result<Command> {
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(self.arguments()?);
        Ok(cmd)
    }

    /// The QEMU arguments for this machine (see [`Machine::command`]):
    /// [`Machine::common_arguments`], then how it boots.
    pub fn arguments(&self) -> Result<Vec<String>> {
        let (mut args, tail) = self.head_and_tail()?;
        let mut push = |words: &[&str]| args.extend(words.iter().map(|w| w.to_string()));
        let image = self.image.display();
        match &self.boot_device {
            BootDevice::Disk => push(&["-drive", &format!("format=raw,media=disk,file={image}")]),
            BootDevice::UsbStick => {
                push(&[
                    "-drive",
                    &format!("if=none,id=stick,format=raw,file={image}"),
                ]);
                push(&["-device", "qemu-xhci,id=xhci"]);
                push(&["-device", "usb-storage,bus=xhci.0,drive=stick,bootindex=0"]);
            }
            BootDevice::Kernel(linux) => {
                push(&["-kernel", &linux.kernel.display().to_string()]);
                push(&["-initrd", &linux.initrd.display().to_string()]);
                push(&["-append", &linux.append]);
            }
        }
        args.extend(tail);
        Ok(args)
    }

    /// Every QEMU argument except those saying what boots: the machine,
    /// firmware, consoles, the exit device, extra devices, NVMe, tracing.
    pub fn common_arguments(&self) -> Result<Vec<String>> {
        let (mut args, tail) = self.head_and_tail()?;
        args.extend(tail);
        Ok(args)
    }

    /// The arguments before the boot device (machine, CPUs, memory,
    /// consoles, the exit device) and after it (display, firmware, extra
    /// devices, NVMe, tracing). The boot image comes first among the disks,
    /// so SeaBIOS tries it before any NVMe namespace.
    fn head_and_tail(&self) -> Result<(Vec<String>, Vec<String>)> {
        let mut head: Vec<String> = Vec::new();
        let mut push = |words: &[&str]| head.extend(words.iter().map(|w| w.to_string()));
        push(&["-machine", &self.machine, "-cpu", "qemu64"]);
        push(&["-smp", &self.cpus, "-m", &self.memory]);
        if let Some(name) = &self.name {
            push(&["-name", &format!("{name},debug-threads=on")]);
        }
        push(&["-no-reboot", "-serial", "stdio", "-monitor", "none"]);
        let exit = format!("isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=0x04");
        push(&["-device", &exit]);
        let mut args: Vec<String> = Vec::new();
        let mut push = |words: &[&str]| args.extend(words.iter().map(|w| w.to_string()));
        if !self.window {
            push(&["-display", "none"]);
        }
        if self.firmware == Firmware::Uefi {
            let vars = self.scratch_dir.join("OVMF_VARS.fd");
            fs::create_dir_all(&self.scratch_dir)?;
            fs::copy(OVMF_VARS, &vars).with_context(|| {
                format!("copying {OVMF_VARS} (is Debian's `ovmf` package installed?)")
            })?;
            push(&[
                "-drive",
                &format!("if=pflash,format=raw,readonly=on,file={OVMF_CODE}"),
            ]);
            push(&[
                "-drive",
                &format!("if=pflash,format=raw,file={}", vars.display()),
            ]);
        }
        // Extra arguments come before the NVMe devices: they may define the
        // buses (bridges, root ports) the controllers sit on.
        args.extend(self.extra.iter().cloned());
        let mut push = |words: &[&str]| args.extend(words.iter().map(|w| w.to_string()));
        for controller in &self.controllers {
            let id = &controller.id;
            let device = with_properties(
                format!("nvme,id={id},serial={}", controller.serial),
                &controller.properties,
            );
            push(&["-device", &device]);
            for (n, namespace) in controller.namespaces.iter().enumerate() {
                let drive = format!("{id}ns{n}");
                let file = namespace.path.display();
                push(&[
                    "-drive",
                    &format!("if=none,id={drive},file={file},format=raw"),
                ]);
                let device = format!("nvme-ns,drive={drive},bus={id},nsid={}", n + 1);
                push(&["-device", &with_properties(device, &namespace.properties)]);
            }
        }
        for (index, disk) in self.disks.iter().enumerate() {
            push(&["-drive", &disk.drive_argument(&format!("nvme{index}"))]);
            let device = format!("nvme,serial={},drive=nvme{index}", disk.serial);
            push(&["-device", &with_properties(device, &disk.properties)]);
        }
        if self.trace {
            push(&[
                "-trace",
                "enable=pci_nvme_ub_*",
                "-trace",
                "enable=pci_nvme_err_*",
            ]);
            push(&["-D", &self.trace_log.display().to_string()]);
        }
        Ok((head, args))
    }
}

/// `device` with `,property` appended for each property.
fn with_properties(mut device: String, properties: &[String]) -> String {
    for property in properties {
        device.push(',');
        device.push_str(property);
    }
    device
}

/// How a boot ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The kernel exited through isa-debug-exit with status 0.
    Success,
    /// The kernel reported failure (a test failed, or the application did).
    Failure,
    /// The kernel panicked.
    Panic,
    /// A CPU exception the kernel did not expect.
    CpuException,
    /// The kernel wrote a status this host does not know.
    UnknownStatus(i32),
    /// QEMU ended with status 0: the guest reset, which with `-no-reboot`
    /// is what a triple fault looks like.
    Reset,
    /// No exit within the deadline; QEMU was killed.
    Timeout(Duration),
    /// QEMU itself failed (bad arguments, missing files): its exit code.
    QemuError(i32),
    /// QEMU was killed by a signal.
    Killed,
}

impl Outcome {
    /// Decode QEMU's exit status.
    pub fn from_exit(status: ExitStatus) -> Outcome {
        match status.code() {
            None => Outcome::Killed,
            Some(0) => Outcome::Reset,
            Some(code) if code & 1 == 1 && code >> 1 >= DEBUG_EXIT_BASE => {
                match (code >> 1) - DEBUG_EXIT_BASE {
                    0 => Outcome::Success,
                    1 => Outcome::Failure,
                    2 => Outcome::Panic,
                    3 => Outcome::CpuException,
                    other => Outcome::UnknownStatus(other),
                }
            }
            Some(code) => Outcome::QemuError(code),
        }
    }

    /// True only for a clean success.
    pub fn is_success(&self) -> bool {
        *self == Outcome::Success
    }

    /// The process exit code `./run.sh` passes on (see [`EXIT_STATUSES`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Success => 0,
            Outcome::Failure => 1,
            Outcome::Panic => 2,
            Outcome::CpuException => 3,
            Outcome::Reset => 4,
            Outcome::Timeout(_) => 5,
            Outcome::UnknownStatus(_) | Outcome::QemuError(_) | Outcome::Killed => 6,
        }
    }
}

/// What each exit status of `./run.sh run`, `bench` and `soak` means, in
/// the words of its help text: [`Outcome::exit_code`]'s table.
pub const EXIT_STATUSES: [(i32, &str); 7] = [
    (0, "success"),
    (1, "failure"),
    (2, "panic"),
    (3, "CPU exception"),
    (4, "triple fault or reset"),
    (5, "timeout"),
    (6, "QEMU error"),
];

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Success => write!(f, "the kernel exited with success"),
            Outcome::Failure => write!(f, "the kernel reported failure"),
            Outcome::Panic => write!(f, "the kernel panicked"),
            Outcome::CpuException => write!(f, "the kernel stopped on an unexpected CPU exception"),
            Outcome::UnknownStatus(s) => write!(f, "the kernel exited with unknown status {s}"),
            Outcome::Reset => write!(
                f,
                "the machine reset itself without exiting (a triple fault, or a reboot)"
            ),
            Outcome::Timeout(d) => write!(f, "timed out after {} s; QEMU was killed", d.as_secs()),
            Outcome::QemuError(c) => write!(f, "QEMU failed with exit code {c}"),
            Outcome::Killed => write!(f, "QEMU was killed by a signal"),
        }
    }
}

/// What a boot produced.
#[derive(Debug)]
pub struct Run {
    /// How it ended.
    pub outcome: Outcome,
    /// Everything the guest wrote to COM1.
    pub serial: String,
    /// `pci_nvme_ub_*` lines from the trace log: protocol violations.
    pub nvme_violations: Vec<String>,
    /// `pci_nvme_err_*` lines from the trace log.
    pub nvme_errors: Vec<String>,
    /// Wall time of the boot.
    pub elapsed: Duration,
}

/// Boot `machine`, echoing serial output to `echo` (if any), killing QEMU
/// after `timeout`.
pub fn run(
    machine: &Machine,
    timeout: Duration,
    echo: Option<Box<dyn Write + Send>>,
) -> Result<Run> {
    let _ = fs::remove_file(&machine.trace_log);
    let mut cmd = machine.command()?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .context("starting qemu-system-x86_64 (is Debian's `qemu-system-x86` installed?)")?;
    let serial = Arc::new(Mutex::new(String::new()));
    let reader = spawn_reader(&mut child, Arc::clone(&serial), echo);
    let stderr = child.stderr.take();
    let stderr_reader = thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut stderr) = stderr {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        }
        text
    });
    let outcome = wait_with_deadline(&mut child, timeout)?;
    let _ = reader.join();
    let qemu_stderr = stderr_reader.join().unwrap_or_default();
    let elapsed = start.elapsed();
    if let Outcome::QemuError(_) = outcome {
        eprint!("{qemu_stderr}");
    }
    let trace = fs::read_to_string(&machine.trace_log).unwrap_or_default();
    let pick = |prefix: &str| {
        trace
            .lines()
            .filter(|l| l.contains(prefix))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let serial = serial.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(Run {
        outcome,
        serial,
        nvme_violations: pick("pci_nvme_ub_"),
        nvme_errors: pick("pci_nvme_err_"),
        elapsed,
    })
}

fn spawn_reader(
    child: &mut Child,
    serial: Arc<Mutex<String>>,
    mut echo: Option<Box<dyn Write + Send>>,
) -> thread::JoinHandle<()> {
    let stdout = child.stdout.take();
    thread::spawn(move || {
        let Some(stdout) = stdout else { return };
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        while let Ok(n) = reader.read_until(b'\n', &mut line) {
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&line).replace('\r', "");
            if let Some(out) = echo.as_mut() {
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
            if let Ok(mut s) = serial.lock() {
                s.push_str(&text);
            }
            line.clear();
        }
    })
}

fn wait_with_deadline(child: &mut Child, timeout: Duration) -> Result<Outcome> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().context("waiting for QEMU")? {
            return Ok(Outcome::from_exit(status));
        }
        if start.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Outcome::Timeout(timeout));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Send one human-monitor command to a QEMU listening on the Unix socket
/// `socket` (see [`Machine::add_monitor`]) and return its answer.
pub fn monitor_command(socket: &Path, command: &str, timeout: Duration) -> Result<String> {
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    let deadline = Instant::now() + timeout;
    let mut stream = loop {
        match UnixStream::connect(socket) {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Err(error) => return Err(error).context("connecting to QEMU's monitor"),
        }
    };
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    stream.write_all(format!("{command}\n").as_bytes())?;
    let mut text = String::new();
    let mut buffer = [0u8; 4096];
    // The answer is complete at the second prompt (the first greets).
    while text.matches("(qemu)").count() < 2 && Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buffer[..n])),
            Err(_) => continue,
        }
    }
    if text.matches("(qemu)").count() < 2 {
        bail!("QEMU's monitor did not answer {command:?} in time");
    }
    Ok(text.replace('\r', ""))
}

/// Check that QEMU and (for UEFI) OVMF are installed.
pub fn check_installed(firmware: Firmware) -> Result<()> {
    let found = Command::new("qemu-system-x86_64")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        bail!("qemu-system-x86_64 not found: install Debian's `qemu-system-x86` (./run.sh does)");
    }
    if firmware == Firmware::Uefi && !Path::new(OVMF_CODE).exists() {
        bail!("{OVMF_CODE} not found: install Debian's `ovmf` (./run.sh does)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_follow_the_outcomes() {
        let outcomes = [
            Outcome::Success,
            Outcome::Failure,
            Outcome::Panic,
            Outcome::CpuException,
            Outcome::Reset,
            Outcome::Timeout(Duration::from_secs(1)),
            Outcome::QemuError(1),
        ];
        for (outcome, (status, _)) in outcomes.iter().zip(EXIT_STATUSES) {
            assert_eq!(outcome.exit_code(), status, "{outcome}");
        }
        // isa-debug-exit makes QEMU exit with (value << 1) | 1; the kernel
        // adds DEBUG_EXIT_BASE to its status.
        use std::os::unix::process::ExitStatusExt;
        let exit = |value: i32| Outcome::from_exit(ExitStatus::from_raw(((value << 1) | 1) << 8));
        assert_eq!(exit(DEBUG_EXIT_BASE), Outcome::Success);
        assert_eq!(exit(DEBUG_EXIT_BASE + 2), Outcome::Panic);
        assert_eq!(exit(DEBUG_EXIT_BASE + 9), Outcome::UnknownStatus(9));
    }

    #[test]
    fn controllers_render_with_their_namespaces_before_the_disks() {
        let mut machine = Machine::new(PathBuf::from("x.img"), std::env::temp_dir());
        machine.extra = vec!["-device".into(), "pcie-root-port,id=rp1".into()];
        machine.controllers.push(NvmeController {
            id: "ctrl0".into(),
            serial: "C0".into(),
            properties: vec!["bus=rp1".into()],
            namespaces: vec![NvmeNamespace {
                path: PathBuf::from("ns.img"),
                properties: vec!["logical_block_size=4096".into()],
            }],
        });
        machine
            .disks
            .push(NvmeDisk::new(PathBuf::from("d.img"), "D0"));
        machine.name = Some("probe".into());
        machine.trace = false;
        let args = machine.arguments().unwrap();
        let at = |word: &str| args.iter().position(|a| a == word).unwrap_or(usize::MAX);
        assert!(at("pcie-root-port,id=rp1") < at("nvme,id=ctrl0,serial=C0,bus=rp1"));
        assert!(
            at("nvme,id=ctrl0,serial=C0,bus=rp1")
                < at("if=none,id=ctrl0ns0,file=ns.img,format=raw")
        );
        assert!(
            at("nvme-ns,drive=ctrl0ns0,bus=ctrl0,nsid=1,logical_block_size=4096")
                < at("nvme,serial=D0,drive=nvme0")
        );
        assert!(args.contains(&"probe,debug-threads=on".to_owned()));
        assert!(args.contains(&"isa-debug-exit,iobase=0xf4,iosize=0x04".to_owned()));
        assert!(!args.contains(&"-trace".to_owned()), "tracing off");
    }

    #[test]
    fn a_direct_kernel_boot_has_no_image() {
        let mut machine = Machine::new(PathBuf::from("x.img"), std::env::temp_dir());
        machine.boot_device = BootDevice::Kernel(DirectKernel {
            kernel: PathBuf::from("vmlinuz"),
            initrd: PathBuf::from("initrd"),
            append: "console=ttyS0".into(),
        });
        let args = machine.arguments().unwrap();
        assert!(!args.iter().any(|a| a.contains("x.img")), "{args:?}");
        let at = args.iter().position(|a| a == "-append").unwrap();
        assert_eq!(args[at + 1], "console=ttyS0");
    }

    #[test]
    fn drive_arguments_name_the_backend() {
        let mut file = NvmeDisk::new(PathBuf::from("disks/a.img"), "S0");
        file.drive_options.push("cache=none".into());
        assert_eq!(
            file.drive_argument("nvm"),
            "if=none,id=nvm,file=disks/a.img,format=raw,cache=none"
        );
        let null = NvmeDisk::null(1 << 30, "S0");
        assert_eq!(
            null.drive_argument("nvm"),
            "if=none,id=nvm,driver=null-co,size=1073741824,read-zeroes=on"
        );
        let machine = Machine {
            disks: vec![null],
            ..Machine::new(PathBuf::from("x.img"), std::env::temp_dir())
        };
        let args: Vec<String> = machine
            .command()
            .unwrap()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(
            args.iter().any(|a| a.contains("driver=null-co")),
            "{args:?}"
        );
        assert!(
            !args
                .iter()
                .any(|a| a.contains("format=raw,media=disk") && a.contains("null"))
        );
    }
}
