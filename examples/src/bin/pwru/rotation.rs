//! Rotated files: the numbering beside the live file (`NAME.1` newest, `NAME.2`, ...), and what
//! a rotation keeps: how many, how old, gzipped or not (pwru's `--output-file-max-backups`,
//! `--output-file-max-age`, `--output-file-compress`). Shared by the text output and the pcap-ng
//! capture, which rotate the same way.

use std::fs::{self, File};
use std::io::{self, BufWriter};
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

/// The rotated files of one live file.
pub struct Rotation {
    path: PathBuf,
    retention: Retention,
}

impl Rotation {
    /// The rotation of the file at `path`.
    pub fn new(path: PathBuf, retention: Retention) -> Rotation {
        Rotation { path, retention }
    }

    /// The live file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn backup_path(&self, b: &Backup) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{}", b.n));
        if b.gz {
            p.push(".gz");
        }
        p.into()
    }

    /// The rotated files beside the live file, newest (lowest number) first. Numbers may
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

    /// Renames the live file (flushed by the caller) to `NAME.1`, shifting every rotated file
    /// up by one, oldest first (so no rename overwrites), and dropping those beyond the number
    /// kept: the one about to become `.1` counts too. The caller then opens a new live file
    /// and calls [`after_shift`](Self::after_shift).
    pub fn shift(&self) -> io::Result<()> {
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
        fs::rename(&self.path, self.backup_path(&Backup { n: 1, gz: false }))
    }

    /// Gzips the new `NAME.1` when asked, then deletes what is past its age.
    pub fn after_shift(&self) -> io::Result<()> {
        if self.retention.compress {
            // On the writer thread, not in the background: the next rotation shifts the
            // numbers, so a gzip still running then would race with the renames.
            gzip_replacing(
                &self.backup_path(&Backup { n: 1, gz: false }),
                &self.backup_path(&Backup { n: 1, gz: true }),
            )?;
        }
        self.remove_expired()
    }

    /// Deletes the rotated files last modified before `max_age` ago.
    pub fn remove_expired(&self) -> io::Result<()> {
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
