//! pwru-core's public surface, as a user of the published crate sees it (default features, so
//! none of the `unstable` internals), is what `pwru-core/public-api.txt` lists, no aya type
//! appears in it (pwru-core's semver must not follow aya 0.x), and its docs link to nothing
//! internal (rustdoc builds them without a warning).
//!
//! The surface is read from rustdoc's own index of the crate (`all.html`: every public item
//! with its path) and from the item pages' signatures, where rustdoc names each type's full
//! path in the link title. A change to the surface shows up as a diff of the list: rewrite
//! the file with `PWRU_BLESS=1` after checking the change is intended.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Builds pwru-core's docs with default features into their own target dir; returns the doc
/// directory of the crate.
fn build_docs(root: &Path) -> PathBuf {
    let target = root.join("target/public-api");
    let out = Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "doc",
            "-p",
            "pwru-core",
            "--no-deps",
            "--locked",
            "--target-dir",
        ])
        .arg(&target)
        .env_remove("RUSTDOCFLAGS")
        .output()
        .expect("run cargo doc");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "cargo doc -p pwru-core failed:\n{stderr}"
    );
    // A link to an internal item is a dead link for users of the published crate.
    assert!(
        !stderr.contains("warning"),
        "rustdoc warnings in pwru-core's public docs:\n{stderr}"
    );
    target.join("doc/pwru_core")
}

/// Every item rustdoc lists in `all.html`, as `kind path` (e.g. `struct pwru_core::Tracer`).
fn items(doc: &Path) -> BTreeSet<String> {
    let html = fs::read_to_string(doc.join("all.html")).expect("read all.html");
    let mut out = BTreeSet::new();
    // Sections: <h3 id="structs">Structs</h3><ul class="all-items"><li><a href="...">event::Event</a></li>...
    for section in html.split("<h3 id=\"").skip(1) {
        let kind = section
            .split('"')
            .next()
            .unwrap_or("")
            .trim_end_matches('s');
        for entry in section.split("<li><a href=\"").skip(1) {
            let Some(name) = entry.split('>').nth(1).and_then(|s| s.split('<').next()) else {
                continue;
            };
            out.insert(format!("{kind} pwru_core::{name}"));
        }
    }
    out
}

/// Full paths of the external types named in the item pages' signatures and fields.
fn aya_mentions(doc: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![doc.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("read doc dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "html") {
                continue;
            }
            let html = fs::read_to_string(&path).unwrap_or_default();
            // Links to types carry `title="struct aya::maps::RingBuf"` and the like.
            for part in html.split("title=\"").skip(1) {
                let title = part.split('"').next().unwrap_or("");
                let is_type_link = title.split(' ').nth(1).is_some_and(|p| p.contains("::"));
                if is_type_link && title.contains(" aya") {
                    found.push(format!("{}: {title}", path.display()));
                }
            }
        }
    }
    found
}

#[test]
fn public_surface_is_the_listed_one_and_has_no_aya_type() {
    let root = workspace_root();
    let doc = build_docs(&root);

    let aya = aya_mentions(&doc);
    assert!(
        aya.is_empty(),
        "aya types in pwru-core's public API:\n{}",
        aya.join("\n")
    );

    let listed_path = root.join("pwru-core/public-api.txt");
    let now: Vec<String> = items(&doc).into_iter().collect();
    assert!(now.len() > 20, "rustdoc's index looks empty: {now:?}");
    let text = now.join("\n") + "\n";
    if std::env::var_os("PWRU_BLESS").is_some() {
        fs::write(&listed_path, &text).expect("write public-api.txt");
        return;
    }
    let listed = fs::read_to_string(&listed_path).unwrap_or_default();
    let listed: BTreeSet<&str> = listed.lines().collect();
    let now: BTreeSet<&str> = now.iter().map(String::as_str).collect();
    let added: Vec<_> = now.difference(&listed).collect();
    let removed: Vec<_> = listed.difference(&now).collect();
    assert!(
        added.is_empty() && removed.is_empty(),
        "pwru-core's public API changed; if intended, rerun with PWRU_BLESS=1 and commit \
         pwru-core/public-api.txt.\nadded: {added:#?}\nremoved: {removed:#?}"
    );
}
