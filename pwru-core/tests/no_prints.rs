//! The library never prints: it reports through return values and the `log` facade. Scans
//! pwru-core's sources (outside comments, doc examples and test modules) for print macros.

use std::path::Path;

const MACROS: [&str; 5] = ["print!(", "println!(", "eprint!(", "eprintln!(", "dbg!("];

fn scan(dir: &Path, found: &mut Vec<String>, files: &mut usize) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read pwru-core/src")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            scan(&path, found, files);
            continue;
        }
        // Whole-file test modules (`mod tests;` under `#[cfg(test)]`).
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("tests.rs") {
            continue;
        }
        *files += 1;
        let text = std::fs::read_to_string(&path).expect("read source");
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("#[cfg(test)]") {
                break; // test modules close each file here
            }
            if code.starts_with("//") {
                continue;
            }
            if MACROS.iter().any(|m| code.contains(m)) {
                found.push(format!("{}:{}: {}", path.display(), i + 1, code));
            }
        }
    }
}

#[test]
fn library_sources_have_no_print_macros() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (mut found, mut files) = (Vec::new(), 0);
    scan(&src, &mut found, &mut files);
    println!("{files} source files scanned");
    assert!(
        files > 20,
        "scanned only {files} files under {}",
        src.display()
    );
    assert!(
        found.is_empty(),
        "print macros in library code:\n{}",
        found.join("\n")
    );
}
