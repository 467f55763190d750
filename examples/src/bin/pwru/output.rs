//! Where the events go: lines to standard output or a file rotated by size (pwru's
//! `--output-file`), its rotated copies optionally gzipped and deleted once older than a number
//! of days; and packets to a pcap-ng file rotated by size (`--output-pcapng`).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;

use pwru_core::format::pcapng::PcapngWriter;
use pwru_core::Event;

pub use crate::rotation::Retention;
use crate::rotation::Rotation;

/// A file that is renamed to `NAME.1` (older ones shift to `.2`, ...) once it reaches
/// `max_bytes`; [`Retention`] says which rotated files are kept and how.
pub struct RotatingFile {
    rotation: Rotation,
    max_bytes: u64,
    written: u64,
    file: BufWriter<File>,
}

impl RotatingFile {
    /// Opens (appending to) `path`, first deleting rotated files past their age, as pwru does
    /// when it opens its file.
    pub fn open(path: PathBuf, max_bytes: u64, retention: Retention) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let written = file.metadata()?.len();
        let rotation = Rotation::new(path, retention);
        rotation.remove_expired()?;
        Ok(RotatingFile {
            rotation,
            max_bytes: max_bytes.max(1),
            written,
            file: BufWriter::new(file),
        })
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.rotation.shift()?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.rotation.path())?;
        self.file = BufWriter::new(file);
        self.written = 0;
        self.rotation.after_shift()
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

/// A pcap-ng capture file that is rotated like [`RotatingFile`] (same numbering, retention,
/// gzip and age limit): once a packet would take it past `max_bytes` it is renamed to
/// `NAME.1` and a new file starts with its own section header, so every file opens on its own. Created anew (truncated) when opened, as a
/// capture file cannot be appended to in place.
pub struct PcapngFile {
    rotation: Rotation,
    max_bytes: u64,
    writer: PcapngWriter<BufWriter<File>>,
}

/// Bytes of an Enhanced Packet Block besides the packet: header, options (function names
/// and the annotation comment are short), padding. Only used to decide when to rotate.
const PACKET_BLOCK_OVERHEAD: u64 = 256;

impl PcapngFile {
    /// Creates `path` and writes its section header.
    pub fn create(path: PathBuf, max_bytes: u64, retention: Retention) -> io::Result<Self> {
        let writer = PcapngWriter::new(BufWriter::new(File::create(&path)?))?;
        let rotation = Rotation::new(path, retention);
        rotation.remove_expired()?;
        Ok(PcapngFile {
            rotation,
            max_bytes: max_bytes.max(1),
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
            self.rotation.shift()?;
            let file = BufWriter::new(File::create(self.rotation.path())?);
            self.writer.restart(file)?;
            self.rotation.after_shift()?;
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
    pub fn new(path: Option<&str>, max_mb: u64, retention: Retention) -> io::Result<Self> {
        Ok(match path {
            None => {
                let fd = io::stdout().as_fd().try_clone_to_owned()?;
                Output::Stdout(BufWriter::with_capacity(1 << 16, File::from(fd)))
            }
            Some(p) => Output::File(RotatingFile::open(
                PathBuf::from(p),
                max_mb.saturating_mul(1 << 20),
                retention,
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
    use std::fs;
    use std::path::Path;
    use std::time::{Duration, SystemTime};

    #[test]
    fn rotates_by_size_and_keeps_at_most_the_backups_asked_for() {
        let dir = std::env::temp_dir().join(format!("pwru-rotate-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("out.txt");
        let line = [b'x'; 99];
        let retention = Retention {
            max_backups: 2,
            ..Retention::default()
        };
        let mut f = RotatingFile::open(path.clone(), 250, retention).expect("open");
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
        let mut f = PcapngFile::create(path.clone(), 1000, Retention::default()).expect("create");
        for _ in 0..20 {
            f.write(&ev).expect("write");
        }
        f.flush().expect("flush");
        let mut files = vec![path.clone()];
        files.extend(
            (1..)
                .map(|n| dir.join(format!("out.pcapng.{n}")))
                .take_while(|p| p.exists()),
        );
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

    /// A fresh directory for one test, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!("pwru-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("temp dir");
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn gunzip(p: &Path) -> String {
        let mut text = String::new();
        io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(File::open(p).expect("open .gz")),
            &mut text,
        )
        .expect("a valid gzip stream");
        text
    }

    #[test]
    fn pcapng_rotations_are_gzipped_like_the_text_output() {
        use pwru_core::event::{Interface, LinkType, Meta, PacketBytes, ProbeKind};
        let dir = TempDir::new("gzip-pcapng");
        let path = dir.0.join("out.pcapng");
        let mut ev = Event::new(ProbeKind::Tracepoint, "netif_receive_skb");
        let mut meta = Meta::default();
        meta.interface = Interface::new(2, Some("eth0"));
        ev.meta = Some(meta);
        ev.packet = Some(PacketBytes::new(
            LinkType::Ethernet,
            vec![7; 100].into(),
            100,
        ));
        let retention = Retention {
            compress: true,
            ..Retention::default()
        };
        let mut f = PcapngFile::create(path.clone(), 1000, retention).expect("create");
        for _ in 0..20 {
            f.write(&ev).expect("write");
        }
        f.flush().expect("flush");
        let mut packets = pcapng_blocks(&fs::read(&path).expect("read"))
            .iter()
            .filter(|(k, _)| *k == 6)
            .count();
        let mut n = 1;
        while let Ok(gz) = File::open(dir.0.join(format!("out.pcapng.{n}.gz"))) {
            assert!(!dir.0.join(format!("out.pcapng.{n}")).exists());
            let mut bytes = Vec::new();
            io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut bytes)
                .expect("a valid gzip stream");
            let blocks = pcapng_blocks(&bytes);
            assert_eq!(blocks[0].0, 0x0A0D_0D0A, ".{n}.gz starts a section");
            packets += blocks.iter().filter(|(k, _)| *k == 6).count();
            n += 1;
        }
        assert!(n >= 3, "only {} rotated files", n - 1);
        assert_eq!(packets, 20);
    }

    #[test]
    fn compressed_rotations_decompress_to_the_lines_written() {
        let dir = TempDir::new("gzip");
        let path = dir.0.join("out.txt");
        let retention = Retention {
            compress: true,
            ..Retention::default()
        };
        let mut f = RotatingFile::open(path.clone(), 100, retention).expect("open");
        let lines: Vec<String> = (0..7)
            .map(|i| format!("line {i} {}\n", "y".repeat(40)))
            .collect();
        for l in &lines {
            f.write_all(l.as_bytes()).expect("write");
        }
        f.flush().expect("flush");
        // 48-byte lines, 100-byte files: two lines per file, newest file last.
        assert_eq!(fs::read_to_string(&path).expect("read"), lines[6]);
        for (n, pair) in [(1, &lines[4..6]), (2, &lines[2..4]), (3, &lines[0..2])] {
            let gz = dir.0.join(format!("out.txt.{n}.gz"));
            assert_eq!(gunzip(&gz), pair.concat(), "{}", gz.display());
            assert!(
                !dir.0.join(format!("out.txt.{n}")).exists(),
                "uncompressed copy of .{n} left behind"
            );
        }
        assert!(!dir.0.join("out.txt.4.gz").exists());
    }

    #[test]
    fn rotated_files_older_than_max_age_are_deleted_and_younger_kept() {
        let dir = TempDir::new("max-age");
        let path = dir.0.join("out.txt");
        let day = Duration::from_secs(24 * 60 * 60);
        // Rotated files from an earlier run: one 3 days old, one 12 hours old, one gzipped
        // and 5 days old.
        let aged = |name: &str, age: Duration| {
            let p = dir.0.join(name);
            fs::write(&p, b"old\n").expect("write backup");
            let f = File::options().write(true).open(&p).expect("open backup");
            f.set_modified(SystemTime::now() - age).expect("set mtime");
        };
        aged("out.txt.1", day / 2);
        aged("out.txt.2", 3 * day);
        aged("out.txt.3.gz", 5 * day);
        let retention = Retention {
            max_age: Retention::max_age_days(2),
            ..Retention::default()
        };
        let mut f = RotatingFile::open(path.clone(), 10, retention).expect("open");
        // Opening already removes what is past its age.
        assert!(dir.0.join("out.txt.1").exists(), "a young file was deleted");
        assert!(
            !dir.0.join("out.txt.2").exists(),
            "a 3-day-old file was kept"
        );
        assert!(
            !dir.0.join("out.txt.3.gz").exists(),
            "a 5-day-old .gz was kept"
        );
        // A rotation shifts the young file, keeps it and the new one.
        f.write_all(b"first line\n").expect("write");
        f.write_all(b"second line\n").expect("write");
        f.flush().expect("flush");
        assert_eq!(
            fs::read_to_string(dir.0.join("out.txt.1")).expect("read"),
            "first line\n"
        );
        assert_eq!(
            fs::read_to_string(dir.0.join("out.txt.2")).expect("read"),
            "old\n"
        );
        // Once the shifted file is older than the limit, the next rotation deletes it.
        let f2 = File::options()
            .write(true)
            .open(dir.0.join("out.txt.2"))
            .expect("open");
        f2.set_modified(SystemTime::now() - 3 * day)
            .expect("set mtime");
        f.write_all(b"third line\n").expect("write");
        f.flush().expect("flush");
        assert_eq!(
            fs::read_to_string(dir.0.join("out.txt.2")).expect("read"),
            "first line\n"
        );
        assert!(
            !dir.0.join("out.txt.3").exists(),
            "an expired file survived the rotation"
        );
        assert_eq!(Retention::max_age_days(0), None);
    }
}
