//! Where the lines go: standard output, or a file rotated by size (pwru's `--output-file`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;

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

    fn backup(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        p.into()
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        // Find the highest existing backup, shift everything up by one, dropping the oldest.
        let mut top = 0;
        while self.backup(top + 1).exists() {
            top += 1;
        }
        for n in (1..=top).rev() {
            if self.max_backups != 0 && n >= self.max_backups {
                fs::remove_file(self.backup(n))?;
            } else {
                fs::rename(self.backup(n), self.backup(n + 1))?;
            }
        }
        fs::rename(&self.path, self.backup(1))?;
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
}
