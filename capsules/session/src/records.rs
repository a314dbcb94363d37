//! How a session's history is laid out in kv, as pure functions over bytes.
//!
//! History is a sequence of records `r/<id>/<index>`. Each record holds a header line and a
//! body: the raw JSON messages it stores, joined by commas (no brackets), so the history reply
//! is the record bodies joined by commas inside `[...]`, with no re-encoding.
//!
//! Appends go to the last record (the tail) with a compare-and-swap while it is small; once it
//! would grow past [`MERGE_TARGET`] the tail is sealed (also by CAS) and a new record is
//! claimed with `cas(None)`. A sealed record never changes again, so the header's running
//! totals (messages and bytes up to and including this record) are exact, and a claim can
//! only succeed right after the record it counts from. An append therefore rewrites at most
//! one small record: O(new messages), bounded.
//!
//! An append larger than one kv value (1 MiB) is split into parts: the record carries the
//! first part, and `p/<id>/<token>/<k>` the rest, written before the record is claimed so a
//! reader never sees half of it.

use std::fmt::Write as _;

/// A tail record is extended in place while it stays under this size.
pub const MERGE_TARGET: usize = 64 * 1024;

/// The most body bytes in one kv value (the store allows 1 MiB per value; the rest is room
/// for the header).
pub const PART_MAX: usize = 1024 * 1024 - 1024;

/// The most history one session may hold. The history reply and the agent's request to the
/// model both cross the bus, which carries at most 4 MiB; this leaves room for the system
/// prompt, the tool list and the current turn.
pub const HISTORY_CAP: u64 = 3 * 1024 * 1024;

/// The first line of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Messages in this and all earlier records.
    pub total: u64,
    /// Body bytes (with the commas between messages) in this and all earlier records.
    pub bytes: u64,
    /// No further appends may extend this record.
    pub sealed: bool,
    /// Parts stored outside the record under `token`.
    pub parts: u32,
    /// Names the parts; `-` when there are none.
    pub token: String,
}

/// Encodes a record: `<total> <bytes> <sealed> <parts> <token>\n<body>`.
pub fn encode(h: &Header, body: &[u8]) -> Vec<u8> {
    let mut out = String::with_capacity(48);
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "{} {} {} {} {}",
        h.total,
        h.bytes,
        u8::from(h.sealed),
        h.parts,
        h.token
    );
    let mut v = out.into_bytes();
    v.extend_from_slice(body);
    v
}

/// Splits a stored record into its header and body.
pub fn decode(raw: &[u8]) -> Result<(Header, &[u8]), String> {
    let bad = |why: &str| format!("corrupt history record ({why})");
    let nl = raw
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| bad("no header"))?;
    let line = std::str::from_utf8(&raw[..nl]).map_err(|_| bad("header is not UTF-8"))?;
    let mut f = line.split(' ');
    let mut num = |name: &str| -> Result<u64, String> {
        f.next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(name))
    };
    let total = num("total")?;
    let bytes = num("bytes")?;
    let sealed = match num("sealed")? {
        0 => false,
        1 => true,
        _ => return Err(bad("sealed")),
    };
    let parts = u32::try_from(num("parts")?).map_err(|_| bad("parts"))?;
    let token = f.next().ok_or_else(|| bad("token"))?.to_owned();
    if f.next().is_some() {
        return Err(bad("trailing header fields"));
    }
    Ok((
        Header {
            total,
            bytes,
            sealed,
            parts,
            token,
        },
        &raw[nl + 1..],
    ))
}

/// What an append does next, given the current tail record (if any).
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Claim the record after the tail (`cas(None)`) with these bytes.
    Claim(Vec<u8>),
    /// Replace the tail (`cas(Some(tail))`) with these bytes: the append is done.
    Merge(Vec<u8>),
    /// Replace the tail with its sealed form, then plan again.
    Seal(Vec<u8>),
}

/// The new messages of one append: their comma-joined body and how many there are. When
/// `token` is set the body is larger than one value: the record holds `first` and the
/// remaining `parts` were stored separately under `token`.
#[derive(Debug)]
pub struct Batch<'a> {
    pub count: u64,
    /// The full length of the body.
    pub len: u64,
    /// The bytes that go into the record itself.
    pub first: &'a [u8],
    pub parts: u32,
    pub token: Option<&'a str>,
}

impl<'a> Batch<'a> {
    /// A batch whose body fits in one record; `body` must not be empty.
    pub fn inline(body: &'a [u8], count: u64) -> Self {
        Batch {
            count,
            len: body.len() as u64,
            first: body,
            parts: 0,
            token: None,
        }
    }
}

/// Decides the next step of an append. `tail` is the last existing record. Fails when the
/// history would exceed [`HISTORY_CAP`].
pub fn plan(tail: Option<&[u8]>, batch: &Batch<'_>) -> Result<Plan, PlanError> {
    let (prev_total, prev_bytes, tail) = match tail {
        None => (0, 0, None),
        Some(raw) => {
            let (h, body) = decode(raw).map_err(PlanError::Corrupt)?;
            (h.total, h.bytes, Some((h, body)))
        }
    };
    let sep = u64::from(prev_total > 0);
    let bytes = prev_bytes + sep + batch.len;
    if bytes > HISTORY_CAP {
        return Err(PlanError::Full {
            now: prev_bytes,
            adding: batch.len,
        });
    }
    let total = prev_total + batch.count;
    if let Some((h, body)) = tail {
        if !h.sealed {
            let fits = batch.token.is_none() && body.len() + 1 + batch.first.len() <= MERGE_TARGET;
            if !fits {
                let sealed = Header { sealed: true, ..h };
                return Ok(Plan::Seal(encode(&sealed, body)));
            }
            let merged = Header {
                total,
                bytes,
                sealed: false,
                parts: 0,
                token: "-".to_owned(),
            };
            let mut new_body = Vec::with_capacity(body.len() + 1 + batch.first.len());
            new_body.extend_from_slice(body);
            new_body.push(b',');
            new_body.extend_from_slice(batch.first);
            return Ok(Plan::Merge(encode(&merged, &new_body)));
        }
    }
    let header = Header {
        total,
        bytes,
        // A parted record is never extended: its parts are the end of it.
        sealed: batch.token.is_some(),
        parts: batch.parts,
        token: batch.token.unwrap_or("-").to_owned(),
    };
    Ok(Plan::Claim(encode(&header, batch.first)))
}

/// Why an append cannot proceed.
#[derive(Debug, PartialEq, Eq)]
pub enum PlanError {
    Corrupt(String),
    /// The history would pass the cap: `now` bytes stored, `adding` more.
    Full {
        now: u64,
        adding: u64,
    },
}

/// Cuts a body that does not fit in one value into value-sized pieces.
pub fn split(body: &[u8]) -> Vec<&[u8]> {
    body.chunks(PART_MAX).collect()
}

/// The history reply `{"messages":[...]}` from record bodies in order.
pub fn history_reply<'a>(bodies: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(b"{\"messages\":[");
    let mut first = true;
    for b in bodies {
        if b.is_empty() {
            continue;
        }
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(b);
        first = false;
    }
    out.extend_from_slice(b"]}");
    out
}

/// The kv key of record `index` of session `id`; zero-padded so keys sort in order.
pub fn record_key(id: &str, index: u64) -> String {
    format!("r/{id}/{index:010}")
}

/// The kv key of part `k` (1-based: part 0 lives in the record) of a parted record.
pub fn part_key(id: &str, token: &str, k: u32) -> String {
    format!("p/{id}/{token}/{k}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail_after(plan: Plan) -> Vec<u8> {
        match plan {
            Plan::Claim(v) | Plan::Merge(v) => v,
            Plan::Seal(_) => panic!("unexpected seal"),
        }
    }

    #[test]
    fn header_round_trips_and_body_may_hold_newlines() {
        let h = Header {
            total: 7,
            bytes: 300,
            sealed: true,
            parts: 2,
            token: "ab12".into(),
        };
        let raw = encode(&h, b"{\"role\":\"user\",\n\"content\":\"x\"}");
        let (back, body) = decode(&raw).unwrap();
        assert_eq!(back, h);
        assert_eq!(body, b"{\"role\":\"user\",\n\"content\":\"x\"}");
    }

    #[test]
    fn corrupt_headers_are_reported() {
        for raw in [
            &b"no newline"[..],
            b"1 2 3 0 -\n",
            b"1 2 0 0\n",
            b"x 2 0 0 -\n",
        ] {
            let e = decode(raw).unwrap_err();
            assert!(e.starts_with("corrupt history record"), "{e}");
        }
    }

    #[test]
    fn first_append_claims_record_zero_and_later_ones_merge() {
        let a = br#"{"role":"user","content":"a"}"#;
        let first = tail_after(plan(None, &Batch::inline(a, 1)).unwrap());
        let (h, body) = decode(&first).unwrap();
        assert_eq!((h.total, h.bytes, h.sealed), (1, a.len() as u64, false));
        assert_eq!(body, a);

        let b = br#"{"role":"assistant","content":"b"}"#;
        let p = plan(Some(&first), &Batch::inline(b, 1)).unwrap();
        let Plan::Merge(merged) = p else {
            panic!("expected a merge, got {p:?}")
        };
        let (h, body) = decode(&merged).unwrap();
        assert_eq!(h.total, 2);
        assert_eq!(h.bytes, (a.len() + 1 + b.len()) as u64);
        assert_eq!(body, [&a[..], b",", &b[..]].concat());
    }

    #[test]
    fn a_full_tail_is_sealed_then_a_new_record_continues_the_totals() {
        let big = vec![b'x'; MERGE_TARGET - 10];
        let tail = tail_after(plan(None, &Batch::inline(&big, 3)).unwrap());
        let more = b"{\"role\":\"user\",\"content\":\"more\"}";
        let Plan::Seal(sealed) = plan(Some(&tail), &Batch::inline(more, 2)).unwrap() else {
            panic!("expected a seal")
        };
        let (h, body) = decode(&sealed).unwrap();
        assert!(h.sealed);
        assert_eq!((h.total, body.len()), (3, big.len()));
        let Plan::Claim(next) = plan(Some(&sealed), &Batch::inline(more, 2)).unwrap() else {
            panic!("expected a claim after the seal")
        };
        let (h, body) = decode(&next).unwrap();
        assert_eq!(h.total, 5);
        assert_eq!(h.bytes, (big.len() + 1 + more.len()) as u64);
        assert_eq!(body, more);
        assert!(!h.sealed);
    }

    #[test]
    fn parted_batches_are_born_sealed_and_never_merged_into() {
        let body = vec![b'y'; PART_MAX + 10];
        let pieces = split(&body);
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[1].len(), 10);
        let batch = Batch {
            count: 1,
            len: body.len() as u64,
            first: pieces[0],
            parts: 1,
            token: Some("t0"),
        };
        let small = tail_after(plan(None, &Batch::inline(b"{}", 1)).unwrap());
        // A parted batch never goes into an unsealed tail, however small.
        let Plan::Seal(sealed) = plan(Some(&small), &batch).unwrap() else {
            panic!("expected a seal")
        };
        let Plan::Claim(rec) = plan(Some(&sealed), &batch).unwrap() else {
            panic!("expected a claim")
        };
        let (h, first) = decode(&rec).unwrap();
        assert!(h.sealed);
        assert_eq!((h.parts, h.token.as_str(), h.total), (1, "t0", 2));
        assert_eq!(first.len(), PART_MAX);
        assert_eq!(h.bytes, 2 + 1 + body.len() as u64);
    }

    #[test]
    fn the_cap_refuses_an_append_that_would_pass_it() {
        let body = vec![b'z'; PART_MAX];
        let rec = encode(
            &Header {
                total: 10,
                bytes: HISTORY_CAP - 100,
                sealed: true,
                parts: 0,
                token: "-".into(),
            },
            b"{}",
        );
        let e = plan(Some(&rec), &Batch::inline(&body[..100], 1)).unwrap_err();
        assert_eq!(
            e,
            PlanError::Full {
                now: HISTORY_CAP - 100,
                adding: 100
            }
        );
        // One byte less (the comma counts) fits exactly.
        assert!(plan(Some(&rec), &Batch::inline(&body[..99], 1)).is_ok());
    }

    /// Applies one append to `recs` the way the store does, without the races.
    fn apply(recs: &mut Vec<Vec<u8>>, batch: &Batch<'_>) {
        loop {
            match plan(recs.last().map(Vec::as_slice), batch).unwrap() {
                Plan::Claim(r) => return recs.push(r),
                Plan::Merge(r) => return *recs.last_mut().unwrap() = r,
                Plan::Seal(r) => *recs.last_mut().unwrap() = r,
            }
        }
    }

    #[test]
    fn many_appends_keep_every_message_in_order_with_exact_totals() {
        let mut recs = Vec::new();
        let mut sent = 0u64;
        for turn in 0..400usize {
            // Turns of 1-3 messages with up to ~1 KiB of text each.
            let n = 1 + turn % 3;
            let msgs: Vec<String> = (0..n)
                .map(|k| {
                    format!(
                        r#"{{"role":"user","content":"{}-{}"}}"#,
                        sent + k as u64,
                        "x".repeat(turn * 3)
                    )
                })
                .collect();
            let body = msgs.join(",");
            apply(&mut recs, &Batch::inline(body.as_bytes(), n as u64));
            sent += n as u64;
        }
        assert!(
            recs.len() > 5,
            "small records merge, full ones are sealed: {}",
            recs.len()
        );
        let mut bytes = 0;
        for (i, r) in recs.iter().enumerate() {
            let (h, body) = decode(r).unwrap();
            assert!(body.len() <= MERGE_TARGET);
            // Every record but the last is sealed; the last still takes merges.
            assert_eq!(h.sealed, i + 1 < recs.len());
            bytes += body.len() as u64 + u64::from(i > 0);
            assert_eq!(h.bytes, bytes);
        }
        let (last, _) = decode(recs.last().unwrap()).unwrap();
        assert_eq!(last.total, sent);
        let reply = history_reply(recs.iter().map(|r| decode(r).unwrap().1));
        let v: serde_json::Value = serde_json::from_slice(&reply).unwrap();
        let contents: Vec<u64> = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                m["content"]
                    .as_str()
                    .unwrap()
                    .split('-')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(contents, (0..sent).collect::<Vec<_>>());
    }

    #[test]
    fn history_reply_joins_bodies_into_one_array() {
        let reply = history_reply([&b"{\"a\":1},{\"b\":2}"[..], b"", b"{\"c\":3}"]);
        let v: serde_json::Value = serde_json::from_slice(&reply).unwrap();
        assert_eq!(v["messages"].as_array().unwrap().len(), 3);
        assert_eq!(history_reply([]), b"{\"messages\":[]}");
    }

    #[test]
    fn record_keys_sort_in_index_order() {
        let mut keys: Vec<String> = [10, 9, 100, 0]
            .iter()
            .map(|&i| record_key("ab", i))
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "r/ab/0000000000",
                "r/ab/0000000009",
                "r/ab/0000000010",
                "r/ab/0000000100"
            ]
        );
    }
}
