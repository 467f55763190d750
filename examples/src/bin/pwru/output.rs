//! Where the lines go: standard output, or a file rotated by size (pwru's `--output-file`),
//! its rotated copies optionally gzipped and deleted once older than a number of days.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use flate2::write::GzEncoder;
use flate2::Compression;

/// What happens to the files a rotation leaves behind.
#[derive(Clone, Copy, Debug, Default)]
pub struct Retention {
    /// Keep at most this many rotated files (0 keeps all).
    pub max_backups: u32,
    /// Delete rotated files last written more than this long ago (None keeps all).
    pub max_age: Option<Duration>,
    /// Gzip each rotated file (`NAME.1` becomes `NAME.1.gz`).
    pub compress: bool,
}

impl Retention {
    /// pwru's `--output-file-max-age` counts whole days; 0 keeps every file.
    pub fn max_age_days(days: u32) -> Option<Duration> {
        (days != 0).then(|| Duration::from_secs(u64::from(days) * 24 * 60 * 60))
    }
}

/// A rotated file on disk: `NAME.N` or, gzipped, `NAME.N.gz`.
struct Backup {
    n: u32,
    gz: bool,
}

/// A file that is renamed to `NAME.1` (older ones shift to `.2`, ...) once it reaches
/// `max_bytes`; [`Retention`] says which rotated files are kept and how.
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    retention: Retention,
    written: u64,
    file: BufWriter<File>,
}

impl RotatingFile {
    /// Opens (appending to) `path`, first deleting rotated files past their age, as pwru does
    /// when it opens its file.
    pub fn open(path: PathBuf, max_bytes: u64, retention: Retention) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let written = file.metadata()?.len();
        let this = RotatingFile {
            path,
            max_bytes: max_bytes.max(1),
            retention,
            written,
            file: BufWriter::new(file),
        };
        this.remove_expired()?;
        Ok(this)
    }

    fn backup_path(&self, b: &Backup) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{}", b.n));
        if b.gz {
            p.push(".gz");
        }
        p.into()
    }

    /// The rotated files beside the output file, newest (lowest number) first. Numbers may
    /// have gaps (files deleted by age, or by hand).
    fn backups(&self) -> io::Result<Vec<Backup>> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let Some(name) = self.path.file_name().and_then(|n| n.to_str()) else {
            return Ok(Vec::new());
        };
        let prefix = format!("{name}.");
        let mut found = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let file_name = entry.file_name();
            let Some(rest) = file_name.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
                continue;
            };
            let (digits, gz) = match rest.strip_suffix(".gz") {
                Some(d) => (d, true),
                None => (rest, false),
            };
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                continue;
            }
            if let Ok(n) = digits.parse::<u32>() {
                found.push(Backup { n, gz });
            }
        }
        found.sort_by_key(|b| b.n);
        Ok(found)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        // Shift every rotated file up by one, oldest first (so no rename overwrites), dropping
        // those beyond the number kept: the one about to become `.1` counts too.
        let backups = self.backups()?;
        let keep = self.retention.max_backups as usize;
        for (i, b) in backups.iter().enumerate().rev() {
            let from = self.backup_path(b);
            if keep != 0 && i + 1 >= keep {
                fs::remove_file(from)?;
            } else {
                let to = self.backup_path(&Backup {
                    n: b.n + 1,
                    gz: b.gz,
                });
                fs::rename(from, to)?;
            }
        }
        let first = self.backup_path(&Backup { n: 1, gz: false });
        fs::rename(&self.path, &first)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.file = BufWriter::new(file);
        self.written = 0;
        if self.retention.compress {
            // On the writer thread, not in the background: the next rotation shifts the
            // numbers, so a gzip still running then would race with the renames.
            gzip_replacing(&first, &self.backup_path(&Backup { n: 1, gz: true }))?;
        }
        self.remove_expired()
    }

    /// Deletes the rotated files last modified before `max_age` ago.
    fn remove_expired(&self) -> io::Result<()> {
        let Some(max_age) = self.retention.max_age else {
            return Ok(());
        };
        let Some(cutoff) = SystemTime::now().checked_sub(max_age) else {
            return Ok(());
        };
        for b in self.backups()? {
            let p = self.backup_path(&b);
            let modified = fs::metadata(&p)?.modified()?;
            if modified < cutoff {
                fs::remove_file(&p)?;
            }
        }
        Ok(())
    }
}

/// Writes `from` gzipped to `to` (keeping its modification time, which says its age), then
/// removes `from`; a failure leaves `from` whole and removes the partial `to`.
fn gzip_replacing(from: &Path, to: &Path) -> io::Result<()> {
    let result = (|| {
        let mut input = File::open(from)?;
        let modified = input.metadata()?.modified()?;
        let out = File::create(to)?;
        let mut gz = GzEncoder::new(BufWriter::new(out), Compression::default());
        io::copy(&mut input, &mut gz)?;
        let out = gz.finish()?.into_inner().map_err(|e| e.into_error())?;
        out.sync_all()?;
        out.set_modified(modified)
    })();
    match result {
        Ok(()) => fs::remove_file(from),
        Err(e) => {
            let _ = fs::remove_file(to);
            Err(e)
        }
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
