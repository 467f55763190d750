//! One subprogram body holding several filters behind a selector, optionally with an entry
//! that starts from the skb ([`crate::skb_entry`]).

use crate::insn::{op, Insn};
use crate::skb_entry::{entry_code, SkbEntry, SkbValue, ENTRY_LEN};
use crate::translate_error::TranslateError;

/// Builds ONE function body that runs filter number `R1` of `filters`.
///
/// Entry: R1 = selector index, R2 = data, R3 = data_end (C: `int f(u64 which, u64 data,
/// u64 data_end)`). It moves data/data_end to R1/R2 and continues into the selected filter,
/// whose own `exit` returns; an out-of-range selector returns 0 (no match). Every filter must
/// be a body produced by [`crate::translate()`] (self-contained, forward jumps only), all in the
/// same [`crate::Mode`]. Stack use is that of the largest filter.
pub fn dispatch(filters: &[&[Insn]]) -> Result<Vec<Insn>, TranslateError> {
    build(filters, None, &[])
}

/// [`dispatch`] with one more selector, `entry.selector`, tested first: it takes an skb
/// address (a plain number) as its data argument, reads the skb's header fields through
/// `bpf_rdonly_cast` and runs the L2 filter on the bytes from the MAC header, or the L3
/// filter on those from the network header when the MAC header is not set (`0xffff`), up to
/// `head + tail` in both cases. The filters must be [`crate::Mode::ProbeRead`] bodies (they
/// get kernel addresses), and the program type must let the kernel's verifier accept the
/// kfunc (Linux 6.2+). `entry.selector` must differ from the filters' indices.
pub fn dispatch_with_skb_entry(
    filters: &[&[Insn]],
    entry: &SkbEntry,
) -> Result<Vec<Insn>, TranslateError> {
    build(filters, Some(entry), &[])
}

/// [`dispatch`] with an optional skb entry (as [`dispatch_with_skb_entry`]) and selectors that
/// each return a value read from the skb ([`SkbValue`]), all tested before the filters' own
/// selectors, the entry first, then the values in the order given (put the most used first).
/// Every selector must be unique and none one of the filters' indices.
pub fn dispatch_with_skb_entries(
    filters: &[&[Insn]],
    entry: Option<&SkbEntry>,
    values: &[SkbValue],
) -> Result<Vec<Insn>, TranslateError> {
    build(filters, entry, values)
}

fn build(
    filters: &[&[Insn]],
    entry: Option<&SkbEntry>,
    values: &[SkbValue],
) -> Result<Vec<Insn>, TranslateError> {
    let n = filters.len();
    let mut selectors: Vec<i32> = entry.iter().map(|e| e.selector).collect();
    selectors.extend(values.iter().map(|v| v.selector));
    for (i, s) in selectors.iter().enumerate() {
        if selectors[..i].contains(s) || usize::try_from(*s).is_ok_and(|s| s < n) {
            return Err(TranslateError::DuplicateSelector { selector: *s });
        }
    }
    let value_code = values
        .iter()
        .map(SkbValue::code)
        .collect::<Result<Vec<_>, _>>()?;
    let values_len: usize = value_code.iter().map(Vec::len).sum();
    let compares = n + selectors.len();
    let entry_len = if entry.is_some() { ENTRY_LEN } else { 0 };
    let mut out = Vec::with_capacity(
        compares + 2 + entry_len + values_len + filters.iter().map(|f| f.len() + 2).sum::<usize>(),
    );
    // Where each filter's block (two argument moves, then the filter) starts: after the
    // chain of compares, the out-of-range exit (2 insns), the entry and the values.
    let mut starts = Vec::with_capacity(n);
    let mut start = compares + 2 + entry_len + values_len;
    for filter in filters {
        starts.push(start);
        start += filter.len() + 2;
    }
    let compare = |out: &mut Vec<Insn>, selector: i32, target: usize| {
        let at = out.len();
        let distance = target as i64 - at as i64 - 1;
        if distance > i16::MAX as i64 {
            return Err(TranslateError::JumpTooFar {
                index: at,
                distance,
            });
        }
        out.push(Insn::jmp_imm(op::JEQ, 1, selector, distance as i16));
        Ok(())
    };
    if let Some(e) = entry {
        // (A selector of one of the filters was refused above as given twice.)
        if e.l2 >= n || e.l3 >= n {
            return Err(TranslateError::SkbEntryMismatch {
                selector: e.selector,
                l2: e.l2,
                l3: e.l3,
                filters: n,
            });
        }
        compare(&mut out, e.selector, compares + 2)?;
    }
    let mut value_start = compares + 2 + entry_len;
    for (v, code) in values.iter().zip(&value_code) {
        compare(&mut out, v.selector, value_start)?;
        value_start += code.len();
    }
    for (i, target) in starts.iter().enumerate() {
        compare(&mut out, i as i32, *target)?;
    }
    out.push(Insn::mov32_imm(0, 0));
    out.push(Insn::exit());
    if let Some(e) = entry {
        // The filters proper start after their blocks' two moves (indices checked above).
        let (l2, l3) = (starts[e.l2] + 2, starts[e.l3] + 2);
        out.extend(entry_code(&e.fields, out.len(), l2, l3)?);
    }
    for code in value_code {
        out.extend(code);
    }
    for filter in filters {
        out.push(Insn::mov64_reg(1, 2));
        out.push(Insn::mov64_reg(2, 3));
        out.extend_from_slice(filter);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skb_entry::{Load, LoadSize, SkbFields};

    const FIELDS: SkbFields = SkbFields {
        rdonly_cast: 7,
        sk_buff: 9,
        head: 200,
        tail: 188,
        mac_header: 182,
        network_header: 180,
    };

    fn entry(selector: i32, l2: usize, l3: usize) -> SkbEntry {
        SkbEntry {
            selector,
            fields: FIELDS,
            l2,
            l3,
        }
    }

    #[test]
    fn the_skb_entry_is_tested_first_and_continues_into_its_two_filters() {
        let l2 = [Insn::mov64_imm(0, 2), Insn::exit()];
        let l3 = [Insn::mov64_imm(0, 3), Insn::exit()];
        let body = dispatch_with_skb_entry(&[&l2, &l3], &entry(14, 0, 1)).unwrap();
        let text: Vec<String> = body.iter().map(|i| i.to_string()).collect();
        let expected = [
            "if r1 == 0xe goto pc+4",
            "if r1 == 0x0 goto pc+16",
            "if r1 == 0x1 goto pc+19",
            "w0 = 0",
            "exit",
            // the entry (index 5)
            "r1 = r2",
            "r2 = 9",
            "call kfunc#7",
            "r3 = *(u16 *)(r0 +182)",
            "r4 = *(u16 *)(r0 +180)",
            "r2 = *(u32 *)(r0 +188)",
            "r1 = *(u64 *)(r0 +200)",
            "r2 += r1",
            "if r3 == 0xffff goto pc+2",
            "r1 += r3",
            "goto pc+4",
            "r1 += r4",
            "goto pc+6",
            // filter 0's block (index 18), its filter at 20
            "r1 = r2",
            "r2 = r3",
            "r0 = 2",
            "exit",
            // filter 1's block (index 22), its filter at 24
            "r1 = r2",
            "r2 = r3",
            "r0 = 3",
            "exit",
        ];
        assert_eq!(text, expected);
        // Without the entry, the body is what it always was.
        let plain = dispatch(&[&l2, &l3]).unwrap();
        assert_eq!(plain.len(), body.len() - 1 - ENTRY_LEN);
        assert_eq!(plain[0].to_string(), "if r1 == 0x0 goto pc+3");
    }

    #[test]
    fn an_entry_that_does_not_fit_the_filters_is_refused() {
        let f = [Insn::mov64_imm(0, 1), Insn::exit()];
        assert!(matches!(
            dispatch_with_skb_entry(&[&f, &f], &entry(1, 0, 1)),
            Err(TranslateError::DuplicateSelector { selector: 1 })
        ));
        for bad in [entry(14, 0, 2), entry(14, 5, 0)] {
            assert!(
                matches!(
                    dispatch_with_skb_entry(&[&f, &f], &bad),
                    Err(TranslateError::SkbEntryMismatch { filters: 2, .. })
                ),
                "{bad:?}"
            );
        }
    }

    fn netns_value(selector: i32) -> SkbValue {
        let load = |offset, size| Load { offset, size };
        SkbValue {
            selector,
            rdonly_cast: 7,
            sk_buff: 9,
            paths: vec![
                vec![
                    load(16, LoadSize::U64),
                    load(280, LoadSize::U64),
                    load(120, LoadSize::U32),
                ],
                vec![
                    load(24, LoadSize::U64),
                    load(48, LoadSize::U64),
                    load(120, LoadSize::U32),
                ],
            ],
        }
    }

    #[test]
    fn an_skb_value_follows_its_paths_until_one_gives_a_value() {
        let f = [Insn::mov64_imm(0, 1), Insn::exit()];
        let body = dispatch_with_skb_entries(&[&f], None, &[netns_value(15)]).unwrap();
        let text: Vec<String> = body.iter().map(|i| i.to_string()).collect();
        let expected = [
            "if r1 == 0xf goto pc+3",
            "if r1 == 0x0 goto pc+17",
            "w0 = 0",
            "exit",
            // the value (index 4)
            "r6 = r2",
            "r1 = r6",
            "r2 = 9",
            "call kfunc#7",
            "r0 = *(u64 *)(r0 +16)",
            "r0 = *(u64 *)(r0 +280)",
            "r0 = *(u32 *)(r0 +120)",
            "if r0 != 0x0 goto pc+6",
            "r1 = r6",
            "r2 = 9",
            "call kfunc#7",
            "r0 = *(u64 *)(r0 +24)",
            "r0 = *(u64 *)(r0 +48)",
            "r0 = *(u32 *)(r0 +120)",
            "exit",
            // filter 0's block (index 19)
            "r1 = r2",
            "r2 = r3",
            "r0 = 1",
            "exit",
        ];
        assert_eq!(text, expected);
    }

    #[test]
    fn selectors_are_unique_and_paths_not_empty() {
        let f = [Insn::mov64_imm(0, 1), Insn::exit()];
        let twice = [netns_value(15), netns_value(15)];
        assert!(matches!(
            dispatch_with_skb_entries(&[&f], None, &twice),
            Err(TranslateError::DuplicateSelector { selector: 15 })
        ));
        assert!(matches!(
            dispatch_with_skb_entries(&[&f], Some(&entry(15, 0, 0)), &[netns_value(15)]),
            Err(TranslateError::DuplicateSelector { selector: 15 })
        ));
        let mut empty = netns_value(16);
        empty.paths[1].clear();
        assert!(matches!(
            dispatch_with_skb_entries(&[&f], None, &[empty]),
            Err(TranslateError::EmptySkbValue { selector: 16 })
        ));
    }
}
