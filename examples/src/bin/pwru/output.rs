//! Where the events go: lines to standard output or a file rotated by size (pwru's
//! `--output-file`), and packets to a pcap-ng file rotated the same way (`--output-pcapng`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use pwru_core::format::pcapng::PcapngWriter;
use pwru_core::Event;

/// `path` with `.n` appended: the name of its n-th backup.
fn backup(path: &Path, n: u32) -> PathBuf {
    let mut p = path.to_path_buf().into_os_string();
    p.push(format!(".{n}"));
    p.into()
}

/// Renames `path` to `path.1`, shifting older backups up by one and removing those beyond
/// `max_backups` (0 keeps all).
fn shift_backups(path: &Path, max_backups: u32) -> io::Result<()> {
    let mut top = 0;
    while backup(path, top + 1).exists() {
        top += 1;
    }
    for n in (1..=top).rev() {
        if max_backups != 0 && n >= max_backups {
            fs::remove_file(backup(path, n))?;
        } else {
            fs::rename(backup(path, n), backup(path, n + 1))?;
        }
    }
    fs::rename(path, backup(path, 1))
}

/// A file that is renamed to `NAME.1` (older ones shift to `.2`, ...) once it reaches
/// `max_bytes`, keeping at most `max_backups` old files (0 keeps all).
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    max_backups: u32,
    written: u64,
    file: BufWriter<File>,
}

impl RotatingFile {
    /// Opens (appending to) `path`.
    pub fn open(path: PathBuf, max_bytes: u64, max_backups: u32) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let written = file.metadata()?.len();
        Ok(RotatingFile {
            path,
            max_bytes: max_bytes.max(1),
            max_backups,
            written,
            file: BufWriter::new(file),
        })
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        shift_backups(&self.path, self.max_backups)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.file = BufWriter::new(file);
        self.written = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Rotate between lines: the caller writes one whole line per call.
        if self.written > 0 && self.written + buf.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(buf)?;
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A pcap-ng capture file that is rotated like [`RotatingFile`]: once a packet would take it
/// past `max_bytes` it is renamed to `NAME.1` and a new file starts with its own section
/// header, so every file opens on its own. Created anew (truncated) when opened, as a
/// capture file cannot be appended to in place.
pub struct PcapngFile {
    path: PathBuf,
    max_bytes: u64,
    max_backups: u32,
    writer: PcapngWriter<BufWriter<File>>,
}

/// Bytes of an Enhanced Packet Block besides the packet: header, options (function names
/// and the annotation comment are short), padding. Only used to decide when to rotate.
const PACKET_BLOCK_OVERHEAD: u64 = 256;

impl PcapngFile {
    /// Creates `path` and writes its section header.
    pub fn create(path: PathBuf, max_bytes: u64, max_backups: u32) -> io::Result<Self> {
        let writer = PcapngWriter::new(BufWriter::new(File::create(&path)?))?;
        Ok(PcapngFile {
            path,
            max_bytes: max_bytes.max(1),
            max_backups,
            writer,
        })
    }

    /// Writes `ev`'s packet (events without bytes are counted by the writer, not written).
    pub fn write(&mut self, ev: &Event) -> io::Result<()> {
        let Some(p) = &ev.packet else {
            return self.writer.write_event(ev).map(drop);
        };
        let stats = self.writer.stats();
        // Rotate between blocks, never inside a file's first packet.
        if stats.section_bytes + p.data.len() as u64 + PACKET_BLOCK_OVERHEAD > self.max_bytes
            && stats.interfaces > 0
        {
            self.writer.flush()?;
            shift_backups(&self.path, self.max_backups)?;
            let file = BufWriter::new(File::create(&self.path)?);
            self.writer.restart(file)?;
        }
        self.writer.write_event(ev).map(drop)
    }

    /// Flushes written blocks to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// One event for the output thread: its text or JSON line, and the event itself when it
/// also goes to a pcap-ng file.
pub struct Record {
    /// The line, newline included.
    pub line: Vec<u8>,
    /// The event, for `--output-pcapng`.
    pub packet: Option<Box<Event>>,
}

impl Record {
    /// A line alone (the header).
    pub fn line(line: Vec<u8>) -> Record {
        Record { line, packet: None }
    }
}

/// Every sink the output thread writes: the lines, and the pcap-ng file when asked for.
pub struct Sinks {
    /// Where lines go.
    pub lines: Output,
    /// Where packets go.
    pub pcapng: Option<PcapngFile>,
}

impl Sinks {
    /// Writes one record to its sinks.
    pub fn put(&mut self, r: &Record) -> io::Result<()> {
        self.lines.line(&r.line)?;
        if let (Some(f), Some(ev)) = (&mut self.pcapng, &r.packet) {
            f.write(ev)?;
        }
        Ok(())
    }

    /// What went to the pcap-ng file, if there is one.
    pub fn pcapng_stats(&self) -> Option<pwru_core::format::pcapng::PcapngStats> {
        self.pcapng.as_ref().map(|f| f.writer.stats())
    }

    /// Flushes every sink.
    pub fn flush(&mut self) -> io::Result<()> {
        self.lines.flush()?;
        match &mut self.pcapng {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// The sink for event lines.
pub enum Output {
    /// Standard output, through its own descriptor (a duplicate of fd 1, so the writer thread
    /// never holds the process's stdout lock) and buffer; the writer flushes after each burst.
    Stdout(BufWriter<File>),
    /// A rotated file.
    File(RotatingFile),
}

impl Output {
    /// Standard output, or the file when a path is given.
    pub fn new(path: Option<&str>, max_mb: u64, backups: u32) -> io::Result<Self> {
        Ok(match path {
            None => {
                let fd = io::stdout().as_fd().try_clone_to_owned()?;
                Output::Stdout(BufWriter::with_capacity(1 << 16, File::from(fd)))
            }
            Some(p) => Output::File(RotatingFile::open(
                PathBuf::from(p),
                max_mb.saturating_mul(1 << 20),
                backups,
            )?),
        })
    }

    /// Writes one complete line (the caller includes the newline).
    pub fn line(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.write_all(line),
            Output::File(f) => f.write_all(line),
        }
    }

    /// Flushes buffered lines.
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::File(f) => f.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_at_most_the_backups_asked_for() {
        let dir = std::env::temp_dir().join(format!("pwru-rotate-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("out.txt");
        let line = [b'x'; 99];
        let mut f = RotatingFile::open(path.clone(), 250, 2).expect("open");
        for i in 0..10u8 {
            let mut l = line.to_vec();
            l[0] = b'0' + i;
            l.push(b'\n');
            f.write_all(&l).expect("write");
        }
        f.flush().expect("flush");
        // 100-byte lines, 250-byte files: 2 lines per file; 10 lines = 5 files, 3 kept.
        let read = |p: &std::path::Path| fs::read_to_string(p).expect("read");
        assert_eq!(
            read(&path).lines().map(|l| &l[..1]).collect::<String>(),
            "89"
        );
        assert_eq!(
            read(&dir.join("out.txt.1"))
                .lines()
                .map(|l| &l[..1])
                .collect::<String>(),
            "67"
        );
        assert_eq!(
            read(&dir.join("out.txt.2"))
                .lines()
                .map(|l| &l[..1])
                .collect::<String>(),
            "45"
        );
        assert!(
            !dir.join("out.txt.3").exists(),
            "more backups than asked for"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    /// Lengths of the whole blocks of a pcap-ng file, failing on a partial one.
    fn pcapng_blocks(file: &[u8]) -> Vec<(u32, usize)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < file.len() {
            let word = |o: usize| u32::from_le_bytes(file[o..o + 4].try_into().unwrap());
            let (kind, len) = (word(at), word(at + 4) as usize);
            assert!(len >= 12 && at + len <= file.len(), "partial block");
            assert_eq!(word(at + len - 4) as usize, len);
            out.push((kind, len));
            at += len;
        }
        out
    }

    #[test]
    fn pcapng_files_rotate_between_blocks_and_each_starts_a_section() {
        use pwru_core::event::{Interface, LinkType, Meta, PacketBytes, ProbeKind};
        let dir = std::env::temp_dir().join(format!("pwru-rotate-pcapng-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("out.pcapng");
        let mut ev = Event::new(ProbeKind::Tracepoint, "netif_receive_skb");
        let mut meta = Meta::default();
        meta.interface = Interface::new(2, Some("eth0"));
        ev.meta = Some(meta);
        ev.packet = Some(PacketBytes::new(
            LinkType::Ethernet,
            vec![7; 100].into(),
            100,
        ));
        let mut f = PcapngFile::create(path.clone(), 1000, 0).expect("create");
        for _ in 0..20 {
            f.write(&ev).expect("write");
        }
        f.flush().expect("flush");
        let mut files = vec![path.clone()];
        files.extend((1..).map(|n| backup(&path, n)).take_while(|p| p.exists()));
        assert!(files.len() >= 3, "{files:?}");
        let mut packets = 0;
        for p in &files {
            let bytes = fs::read(p).expect("read");
            assert!(
                bytes.len() <= 1000,
                "{} is {} bytes",
                p.display(),
                bytes.len()
            );
            let blocks = pcapng_blocks(&bytes);
            assert_eq!(blocks[0].0, 0x0A0D_0D0A, "{} starts a section", p.display());
            assert_eq!(blocks[1].0, 1, "then describes its interface");
            packets += blocks.iter().filter(|(k, _)| *k == 6).count();
        }
        assert_eq!(packets, 20);
        let _ = fs::remove_dir_all(&dir);
    }
}
