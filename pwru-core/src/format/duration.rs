//! Durations for people: `850ns`, `12.3µs`, `4.56ms`, `1.20s`.

use std::fmt::Write as _;

/// Appends `ns` with a unit chosen so three significant digits show.
pub(crate) fn write_ns(out: &mut String, ns: u64) {
    let f = ns as f64;
    let _ = if ns < 1_000 {
        write!(out, "{ns}ns")
    } else if ns < 1_000_000 {
        write!(out, "{:.3}", f / 1e3).map(|_| trim(out, "µs"))
    } else if ns < 1_000_000_000 {
        write!(out, "{:.3}", f / 1e6).map(|_| trim(out, "ms"))
    } else {
        write!(out, "{:.2}s", f / 1e9)
    };
}

/// Keeps three significant digits of the number just written, then appends `unit`.
fn trim(out: &mut String, unit: &str) {
    // The number is "x.yyy", "xx.yyy" or "xxx.yyy": keep 3 digits in all.
    let start = out
        .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or(0, |i| i + out[i..].chars().next().map_or(1, char::len_utf8));
    let int_digits = out[start..].find('.').unwrap_or(out.len() - start);
    let keep = start
        + int_digits
        + if int_digits >= 3 {
            0
        } else {
            1 + 3 - int_digits
        };
    out.truncate(keep.min(out.len()));
    out.push_str(unit);
}

/// `ns` as [`write_ns`] writes it.
pub(crate) fn ns(ns: u64) -> String {
    let mut s = String::new();
    write_ns(&mut s, ns);
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn three_significant_digits_with_a_unit() {
        let cases = [
            (0, "0ns"),
            (850, "850ns"),
            (1_000, "1.00µs"),
            (12_345, "12.3µs"),
            (123_456, "123µs"),
            (4_560_000, "4.56ms"),
            (1_200_000_000, "1.20s"),
        ];
        for (n, want) in cases {
            assert_eq!(super::ns(n), want, "{n}");
        }
        let mut s = String::from("p50 ");
        super::write_ns(&mut s, 12_345);
        assert_eq!(s, "p50 12.3µs");
    }
}
