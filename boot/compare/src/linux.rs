//! A Linux guest for the comparison benchmark, built from Debian packages.
//!
//! `apt-get download` fetches the real kernel package behind
//! `linux-image-amd64`, `fio`, `busybox-static` and the library packages
//! fio needs; `dpkg-deb -x` unpacks them (no root, nothing installed on the
//! host). The initramfs (cpio "newc", gzip) holds busybox, fio with exactly
//! the shared libraries its ELF `NEEDED` entries reach, the NVMe modules in
//! dependency order (Debian builds `nvme` and `nvme-core` as modules and
//! ships no `modules.dep`: the order comes from each module's `depends=`
//! field), and `/init` from `boot/compare/linux/init.sh`.
//!
//! The built kernel and initramfs are cached in a directory and rebuilt only
//! when missing.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The guest's `/init`.
const INIT_SCRIPT: &str = include_str!("../linux/init.sh");
/// The kernel command line; job parameters are appended per boot.
pub const KERNEL_COMMAND_LINE: &str = "console=ttyS0 tsc=reliable nvme.poll_queues=1 quiet";
/// Where libraries go in the guest (Debian's multiarch directory).
const LIBRARY_DIR: &str = "lib/x86_64-linux-gnu";
/// Module loaded last, with the poll-queue parameter (busybox `insmod`
/// does not read the kernel command line).
const NVME_MODULE: &str = "nvme";
const NVME_MODULE_ARGS: &str = "poll_queues=1";

/// A built guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guest {
    /// The kernel (`vmlinuz`), for QEMU's `-kernel`.
    pub kernel: PathBuf,
    /// The initramfs, for QEMU's `-initrd`.
    pub initramfs: PathBuf,
    /// Kernel release, such as `6.1.0-56-amd64`.
    pub kernel_release: String,
    /// Debian version of the kernel package.
    pub kernel_package_version: String,
    /// Debian version of the fio package.
    pub fio_package_version: String,
}

/// The cached guest in `dir`, building it first when missing (or when it
/// was built with another `/init`). Downloaded packages stay in
/// `dir/debs` and are reused.
pub fn ensure(dir: &Path) -> Result<Guest> {
    let info_path = dir.join("guest.info");
    let init = format!("{:016x}", fnv1a(INIT_SCRIPT.as_bytes()));
    if let Ok(text) = fs::read_to_string(&info_path)
        && text.contains(&format!("init = {init}\n"))
        && let Some(guest) = parse_info(dir, &text)
        && guest.kernel.is_file()
        && guest.initramfs.is_file()
    {
        return Ok(guest);
    }
    let guest = build(dir)?;
    let info = format!(
        "kernel_release = {}\nkernel_package_version = {}\nfio_package_version = {}\ninit = {init}\n",
        guest.kernel_release, guest.kernel_package_version, guest.fio_package_version
    );
    fs::write(&info_path, info).with_context(|| format!("writing {}", info_path.display()))?;
    Ok(guest)
}

/// FNV-1a: tells whether the cached initramfs holds this `/init`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn parse_info(dir: &Path, text: &str) -> Option<Guest> {
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        let (key, value) = line.split_once('=')?;
        fields.insert(key.trim(), value.trim().to_owned());
    }
    Some(Guest {
        kernel: dir.join("vmlinuz"),
        initramfs: dir.join("initramfs.gz"),
        kernel_release: fields.get("kernel_release")?.clone(),
        kernel_package_version: fields.get("kernel_package_version")?.clone(),
        fio_package_version: fields.get("fio_package_version")?.clone(),
    })
}

fn build(dir: &Path) -> Result<Guest> {
    for tool in ["apt-get", "apt-cache", "dpkg-deb", "readelf", "gzip"] {
        if !tool_exists(tool) {
            bail!(
                "`{tool}` is needed to build the Linux guest (Debian: apt, dpkg, binutils, gzip)"
            );
        }
    }
    eprintln!(
        "compare: building the Linux guest from Debian packages in {}",
        dir.display()
    );
    let debs = dir.join("debs");
    let tree = dir.join("extract");
    let _ = fs::remove_dir_all(&tree);
    fs::create_dir_all(&debs)?;
    fs::create_dir_all(&tree)?;

    let kernel_package = real_kernel_package()?;
    let release = kernel_package
        .strip_prefix("linux-image-")
        .context("kernel package name")?
        .to_owned();
    let mut packages = vec![kernel_package.clone(), "busybox-static".into()];
    packages.extend(library_closure("fio")?);
    download(&debs, &packages)?;
    let mut versions = BTreeMap::new();
    for deb in fs::read_dir(&debs)? {
        let deb = deb?.path();
        if deb.extension().is_none_or(|e| e != "deb") {
            continue;
        }
        let package = deb_field(&deb, "Package")?;
        if !packages.contains(&package) {
            continue;
        }
        versions.insert(package, deb_field(&deb, "Version")?);
        let status = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&tree)
            .status()
            .context("running dpkg-deb")?;
        if !status.success() {
            bail!("dpkg-deb -x {} failed", deb.display());
        }
    }

    let mut archive = Cpio::default();
    for directory in [
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "lib",
        "lib/x86_64-linux-gnu",
        "lib64",
        "lib/modules",
    ] {
        archive.directory(directory);
    }
    archive.file("init", 0o755, INIT_SCRIPT.as_bytes());
    archive.file("bin/busybox", 0o755, &read_in(&tree, "bin/busybox")?);
    archive.file("usr/bin/fio", 0o755, &read_in(&tree, "usr/bin/fio")?);
    let (interpreter, libraries) = shared_library_closure(&tree, "usr/bin/fio")?;
    archive.file(
        interpreter.trim_start_matches('/'),
        0o755,
        &read_in(&tree, &interpreter)?,
    );
    for (soname, source) in &libraries {
        archive.file(
            &format!("{LIBRARY_DIR}/{soname}"),
            0o755,
            &fs::read(source)?,
        );
    }
    let modules_root = tree.join("lib/modules").join(&release);
    let order = module_load_order(&modules_root, NVME_MODULE)?;
    let mut load_list = String::new();
    for (name, path) in &order {
        let file = format!("{name}.ko");
        archive.file(&format!("lib/modules/{file}"), 0o644, &fs::read(path)?);
        let args = if name == NVME_MODULE {
            NVME_MODULE_ARGS
        } else {
            ""
        };
        load_list.push_str(&format!("{file} {args}\n"));
    }
    archive.file("etc/modules-load", 0o644, load_list.as_bytes());
    archive.device("dev/console", 0o600, 5, 1);

    let initramfs = dir.join("initramfs.gz");
    gzip_to(&archive.finish(), &initramfs)?;
    let kernel = dir.join("vmlinuz");
    fs::copy(tree.join(format!("boot/vmlinuz-{release}")), &kernel)
        .context("copying the kernel out of its package")?;
    let _ = fs::remove_dir_all(&tree);
    Ok(Guest {
        kernel,
        initramfs,
        kernel_release: release,
        kernel_package_version: versions.get(&kernel_package).cloned().unwrap_or_default(),
        fio_package_version: versions.get("fio").cloned().unwrap_or_default(),
    })
}

fn tool_exists(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn output(command: &mut Command) -> Result<String> {
    let out = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The versioned kernel package `linux-image-amd64` depends on.
fn real_kernel_package() -> Result<String> {
    let text = output(Command::new("apt-cache").args(["depends", "linux-image-amd64"]))?;
    depends_of(&text)
        .into_iter()
        .find(|p| p.starts_with("linux-image-") && p != "linux-image-amd64")
        .context("apt-cache names no kernel package behind linux-image-amd64 (run apt-get update?)")
}

/// Package names on the `Depends:` lines of `apt-cache depends` output
/// (virtual packages, shown in angle brackets, are left out).
pub fn depends_of(apt_cache_output: &str) -> Vec<String> {
    apt_cache_output
        .lines()
        .filter_map(|line| line.trim().trim_start_matches('|').strip_prefix("Depends:"))
        .map(str::trim)
        .filter(|name| !name.starts_with('<'))
        .map(str::to_owned)
        .collect()
}

/// `root` and every library package (`lib*`, `zlib1g`) reachable from it
/// through `Depends`. Others (python3, debconf) carry no libraries fio
/// loads; a library they would have provided is reported when the ELF
/// closure is resolved.
fn library_closure(root: &str) -> Result<Vec<String>> {
    let mut seen = BTreeSet::from([root.to_owned()]);
    let mut queue = VecDeque::from([root.to_owned()]);
    while let Some(package) = queue.pop_front() {
        let text = output(Command::new("apt-cache").args([
            "depends",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
            &package,
        ]))?;
        for dependency in depends_of(&text) {
            let library = dependency.starts_with("lib") || dependency == "zlib1g";
            if library && seen.insert(dependency.clone()) {
                queue.push_back(dependency);
            }
        }
    }
    Ok(seen.into_iter().collect())
}

fn download(dir: &Path, packages: &[String]) -> Result<()> {
    let missing: Vec<&String> = packages
        .iter()
        .filter(|p| {
            !fs::read_dir(dir).is_ok_and(|mut entries| {
                entries.any(|e| {
                    e.is_ok_and(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(&format!("{p}_"))
                    })
                })
            })
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("compare: apt-get download of {} packages", missing.len());
    let out = Command::new("apt-get")
        .arg("download")
        .args(&missing)
        .current_dir(dir)
        .output()
        .context("running apt-get download")?;
    if !out.status.success() {
        bail!(
            "apt-get download failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn deb_field(deb: &Path, field: &str) -> Result<String> {
    Ok(
        output(Command::new("dpkg-deb").arg("-f").arg(deb).arg(field))?
            .trim()
            .to_owned(),
    )
}

/// Follow symbolic links inside the unpacked tree `root` (absolute targets
/// are taken relative to `root`).
fn resolve_in(root: &Path, path: &str) -> Result<PathBuf> {
    let mut current = root.join(path.trim_start_matches('/'));
    for _ in 0..32 {
        match fs::read_link(&current) {
            Ok(target) => {
                current = if target.is_absolute() {
                    root.join(target.strip_prefix("/").unwrap_or(&target))
                } else {
                    current.parent().map(|p| p.join(&target)).unwrap_or(target)
                };
            }
            Err(_) => return Ok(current),
        }
    }
    bail!("symbolic link loop at {path}")
}

fn read_in(root: &Path, path: &str) -> Result<Vec<u8>> {
    let resolved = resolve_in(root, path)?;
    fs::read(&resolved).with_context(|| format!("reading {path} from the unpacked packages"))
}

/// What `readelf -d -l` says about one ELF file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElfLinks {
    /// `NEEDED` sonames.
    pub needed: Vec<String>,
    /// `RUNPATH` / `RPATH` directories.
    pub runpath: Vec<String>,
    /// The program interpreter, for executables.
    pub interpreter: Option<String>,
}

/// Parse `readelf -d -l -W` output.
pub fn parse_readelf(text: &str) -> ElfLinks {
    let mut links = ElfLinks::default();
    for line in text.lines() {
        let bracketed = || {
            let start = line.find('[')?;
            let end = line.rfind(']')?;
            (start < end).then(|| line[start + 1..end].to_owned())
        };
        if line.contains("(NEEDED)")
            && let Some(name) = bracketed()
        {
            links.needed.push(name);
        }
        if (line.contains("(RUNPATH)") || line.contains("(RPATH)"))
            && let Some(paths) = bracketed()
        {
            links.runpath.extend(
                paths
                    .split(':')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
            );
        }
        if let Some(rest) = line.split("Requesting program interpreter:").nth(1) {
            links.interpreter = Some(rest.trim().trim_end_matches(']').trim().to_owned());
        }
    }
    links
}

/// The program interpreter of `binary` and every shared library it reaches,
/// as soname and resolved file in the unpacked tree.
fn shared_library_closure(
    root: &Path,
    binary: &str,
) -> Result<(String, BTreeMap<String, PathBuf>)> {
    let mut search: Vec<String> = [
        "lib/x86_64-linux-gnu",
        "usr/lib/x86_64-linux-gnu",
        "lib",
        "usr/lib",
    ]
    .map(str::to_owned)
    .to_vec();
    let describe = |file: &Path| -> Result<ElfLinks> {
        let text = output(Command::new("readelf").args(["-d", "-l", "-W"]).arg(file))?;
        Ok(parse_readelf(&text))
    };
    let links = describe(&resolve_in(root, binary)?)?;
    let interpreter = links
        .interpreter
        .context("fio names no program interpreter")?;
    let mut queue = links.needed;
    search.extend(
        links
            .runpath
            .iter()
            .map(|p| p.trim_start_matches('/').to_owned()),
    );
    let mut found = BTreeMap::new();
    let mut missing = Vec::new();
    while let Some(soname) = queue.pop() {
        if found.contains_key(&soname) || missing.contains(&soname) {
            continue;
        }
        let mut hit = None;
        for dir in &search {
            let candidate = resolve_in(root, &format!("{dir}/{soname}"))?;
            if candidate.is_file() {
                hit = Some(candidate);
                break;
            }
        }
        match hit {
            Some(file) => {
                let links = describe(&file)?;
                queue.extend(links.needed);
                for path in links.runpath {
                    let path = path.trim_start_matches('/').to_owned();
                    if !search.contains(&path) {
                        search.push(path);
                    }
                }
                found.insert(soname, file);
            }
            None => missing.push(soname),
        }
    }
    if !missing.is_empty() {
        bail!(
            "fio needs libraries no downloaded package provides: {}",
            missing.join(", ")
        );
    }
    Ok((interpreter, found))
}

/// Module names compare with `-` and `_` as the same character.
fn module_key(name: &str) -> String {
    name.replace('-', "_")
}

/// The `depends=` field of a kernel module's `.modinfo` section.
pub fn module_depends(module: &[u8]) -> Vec<String> {
    let key = b"\0depends=";
    let Some(start) = module.windows(key.len()).position(|w| w == key) else {
        return Vec::new();
    };
    let value = &module[start + key.len()..];
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end])
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `target` and its dependencies, dependencies first, as module name and
/// file under `modules_root`.
fn module_load_order(modules_root: &Path, target: &str) -> Result<Vec<(String, PathBuf)>> {
    let mut index = BTreeMap::new();
    let mut stack = vec![modules_root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Some(name) = path.file_name().and_then(|n| n.to_str())
                && let Some(stem) = name.strip_suffix(".ko")
            {
                index.insert(module_key(stem), (stem.to_owned(), path.clone()));
            }
        }
    }
    let mut order = Vec::new();
    let mut done = BTreeSet::new();
    visit_module(&index, target, &mut done, &mut order, 0)?;
    Ok(order)
}

fn visit_module(
    index: &BTreeMap<String, (String, PathBuf)>,
    name: &str,
    done: &mut BTreeSet<String>,
    order: &mut Vec<(String, PathBuf)>,
    depth: usize,
) -> Result<()> {
    let key = module_key(name);
    if done.contains(&key) {
        return Ok(());
    }
    if depth > 32 {
        bail!("module dependencies too deep at {name}");
    }
    let (stem, path) = index
        .get(&key)
        .with_context(|| format!("kernel module {name} not in the kernel package"))?;
    for dependency in module_depends(&fs::read(path)?) {
        visit_module(index, &dependency, done, order, depth + 1)?;
    }
    done.insert(key);
    order.push((stem.clone(), path.clone()));
    Ok(())
}

fn gzip_to(data: &[u8], out: &Path) -> Result<()> {
    let file = fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut child = Command::new("gzip")
        .args(["-6", "-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(file)
        .spawn()
        .context("running gzip")?;
    child
        .stdin
        .take()
        .context("gzip's standard input")?
        .write_all(data)?;
    if !child.wait()?.success() {
        bail!("gzip failed");
    }
    Ok(())
}

/// A cpio archive in the "newc" format the kernel unpacks as initramfs.
#[derive(Default)]
pub struct Cpio {
    data: Vec<u8>,
    inode: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, device: (u32, u32), body: &[u8]) {
        self.inode += 1;
        let fields = [
            self.inode,
            mode,
            0,
            0,
            1,
            0,
            u32::try_from(body.len()).unwrap_or(u32::MAX),
            0,
            0,
            device.0,
            device.1,
            u32::try_from(name.len() + 1).unwrap_or(u32::MAX),
            0,
        ];
        self.data.extend_from_slice(b"070701");
        for field in fields {
            self.data
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.data.extend_from_slice(name.as_bytes());
        self.data.push(0);
        self.pad();
        self.data.extend_from_slice(body);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.data.len().is_multiple_of(4) {
            self.data.push(0);
        }
    }

    /// Add a directory.
    pub fn directory(&mut self, name: &str) {
        self.entry(name, 0o040_000 | 0o755, (0, 0), &[]);
    }

    /// Add a regular file with permission bits `mode`.
    pub fn file(&mut self, name: &str, mode: u32, body: &[u8]) {
        self.entry(name, 0o100_000 | mode, (0, 0), body);
    }

    /// Add a character device node.
    pub fn device(&mut self, name: &str, mode: u32, major: u32, minor: u32) {
        self.entry(name, 0o020_000 | mode, (major, minor), &[]);
    }

    /// The archive with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.inode = 0;
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.data
    }
}
