//! The session store over this capsule's kv namespace (one per principal, isolated by the
//! kernel). Keys:
//!
//! - `m/<id>`: the session's [`Meta`] as JSON
//! - `n/<name>`: the id a name stands for
//! - `r/<id>/<index>` and `p/<id>/<token>/<k>`: history (see [`crate::records`])
//!
//! Handlers of this capsule may run concurrently (two turns in one session), so every write
//! that could race is a compare-and-swap.

use astrid_sdk::prelude::*;

use crate::model::{self, Info, Meta};
use crate::records::{self, Batch, Plan, PlanError};

/// How often a compare-and-swap loop retries before giving up on a pathological race.
const MAX_RACES: usize = 256;

fn store_err(e: KvError) -> CapsuleError {
    CapsuleError::failed(format!("session store: {e}"))
}

fn get(key: &str) -> Result<Option<Vec<u8>>, CapsuleError> {
    kv::get(key).map_err(store_err)
}

fn cas(key: &str, expected: Option<&[u8]>, new: Option<&[u8]>) -> Result<bool, CapsuleError> {
    kv::cas(key, expected, new).map_err(store_err)
}

fn meta_key(id: &str) -> String {
    format!("m/{id}")
}

fn name_key(name: &str) -> String {
    format!("n/{name}")
}

fn decode_meta(raw: &[u8]) -> Result<Meta, CapsuleError> {
    serde_json::from_slice(raw)
        .map_err(|e| CapsuleError::failed(format!("session store: corrupt session record: {e}")))
}

/// The stored meta of `id` and its raw bytes (for a later compare-and-swap).
fn load(id: &str) -> Result<Option<(Vec<u8>, Meta)>, CapsuleError> {
    match get(&meta_key(id))? {
        None => Ok(None),
        Some(raw) => {
            let meta = decode_meta(&raw)?;
            Ok(Some((raw, meta)))
        }
    }
}

/// Finds a session by id, then by name.
fn resolve(s: &str) -> Result<Option<(Vec<u8>, Meta)>, CapsuleError> {
    if model::is_id(s) {
        if let Some(found) = load(s)? {
            return Ok(Some(found));
        }
    }
    if !model::is_name(s) {
        return Ok(None);
    }
    let Some(id) = get(&name_key(s))? else {
        return Ok(None);
    };
    let id = String::from_utf8(id)
        .map_err(|_| CapsuleError::failed("session store: corrupt name index"))?;
    load(&id)
}

/// Applies `change` to the stored meta with a compare-and-swap loop.
fn update_meta(
    mut raw: Vec<u8>,
    mut meta: Meta,
    change: impl Fn(&mut Meta),
) -> Result<Meta, CapsuleError> {
    let key = meta_key(&meta.id);
    for _ in 0..MAX_RACES {
        change(&mut meta);
        let new = serde_json::to_vec(&meta)?;
        if cas(&key, Some(&raw), Some(&new))? {
            return Ok(meta);
        }
        let Some((r, m)) = load(&meta.id)? else {
            return Err(CapsuleError::failed(format!(
                "session `{}` disappeared while being updated",
                meta.name
            )));
        };
        (raw, meta) = (r, m);
    }
    Err(CapsuleError::failed(
        "session store: too many concurrent updates",
    ))
}

/// The number of records of `id` and the last one. `hint` is where the last look ended.
fn probe(id: &str, hint: u64) -> Result<(u64, Option<Vec<u8>>), CapsuleError> {
    let (mut idx, mut tail) = (0, None);
    if hint > 0 {
        if let Some(raw) = get(&records::record_key(id, hint - 1))? {
            (idx, tail) = (hint, Some(raw));
        }
    }
    while let Some(raw) = get(&records::record_key(id, idx))? {
        tail = Some(raw);
        idx += 1;
    }
    Ok((idx, tail))
}

fn message_count(meta: &Meta) -> Result<u64, CapsuleError> {
    match probe(&meta.id, meta.records)?.1 {
        None => Ok(0),
        Some(raw) => Ok(records::decode(&raw).map_err(CapsuleError::failed)?.0.total),
    }
}

enum Created {
    New(Meta),
    /// Someone else holds the name (it may have been created a moment ago).
    NameTaken,
}

fn create(requested: Option<&str>, workspace: Option<String>) -> Result<Created, CapsuleError> {
    for _ in 0..8 {
        let id = model::hex(&random::bytes(8)?);
        let name = requested.map_or_else(|| model::generated_name(&id), str::to_owned);
        let now = time::now_ms();
        let meta = Meta {
            id: id.clone(),
            name: name.clone(),
            workspace: workspace.clone(),
            created_ms: now,
            updated_ms: now,
            records: 0,
        };
        // The meta goes in first, so a name in the index always leads to a session.
        if !cas(&meta_key(&id), None, Some(&serde_json::to_vec(&meta)?))? {
            continue;
        }
        if cas(&name_key(&name), None, Some(id.as_bytes()))? {
            return Ok(Created::New(meta));
        }
        kv::delete(&meta_key(&id)).map_err(store_err)?;
        if requested.is_some() {
            return Ok(Created::NameTaken);
        }
    }
    Err(CapsuleError::failed(
        "could not find a free session id or name; try again",
    ))
}

/// `session.v1.open`.
pub fn open(req: model::OpenRequest) -> Result<Info, CapsuleError> {
    if let Some(w) = &req.workspace {
        model::check_workspace(w).map_err(CapsuleError::invalid)?;
    }
    let wanted = req.session.filter(|s| !s.is_empty());
    let Some(s) = wanted else {
        if !req.create {
            return Err(CapsuleError::invalid(
                "no session given; pass an id or a name, or set `create: true`",
            ));
        }
        return match create(None, req.workspace)? {
            Created::New(meta) => Ok(meta.info(0)),
            Created::NameTaken => Err(CapsuleError::failed("generated name clashed; try again")),
        };
    };
    let found = match resolve(&s)? {
        Some(found) => Some(found),
        None if !req.create => {
            return Err(CapsuleError::failed(format!("no session `{s}`")));
        }
        None if !model::is_name(&s) => {
            return Err(CapsuleError::invalid(model::name_error(&s)));
        }
        None => match create(Some(&s), req.workspace.clone())? {
            Created::New(meta) => return Ok(meta.info(0)),
            // Lost a race to create the same name: resume the winner's session.
            Created::NameTaken => resolve(&s)?,
        },
    };
    let (raw, mut meta) = found.ok_or_else(|| {
        CapsuleError::failed(format!("session `{s}` is being created; try again"))
    })?;
    // A resumed session follows the workspace it is used from.
    if let Some(w) = req.workspace {
        if meta.workspace.as_deref() != Some(w.as_str()) {
            meta = update_meta(raw, meta, |m| m.workspace = Some(w.clone()))?;
        }
    }
    let n = message_count(&meta)?;
    Ok(meta.info(n))
}

/// `session.v1.list`: every session, newest first.
pub fn list() -> Result<Vec<Info>, CapsuleError> {
    let mut out = Vec::new();
    for key in kv::list("m/").map_err(store_err)? {
        let Some(raw) = get(&key)? else {
            continue;
        };
        let meta = decode_meta(&raw)?;
        let n = message_count(&meta)?;
        out.push(meta.info(n));
    }
    out.sort_by(|a, b| {
        (b.updated_ms, b.created_ms, &b.id).cmp(&(a.updated_ms, a.created_ms, &a.id))
    });
    Ok(out)
}

fn unknown_id(id: &str) -> CapsuleError {
    CapsuleError::failed(format!("no session with id `{id}`"))
}

/// `session.v1.history`: the reply bytes `{"messages":[...]}`.
pub fn history(id: &str) -> Result<Vec<u8>, CapsuleError> {
    if !model::is_id(id) || load(id)?.is_none() {
        return Err(unknown_id(id));
    }
    let mut bodies = Vec::new();
    let mut idx = 0;
    while let Some(mut raw) = get(&records::record_key(id, idx))? {
        let (h, body) = records::decode(&raw).map_err(CapsuleError::failed)?;
        let start = raw.len() - body.len();
        raw.drain(..start);
        for k in 1..=h.parts {
            let part = get(&records::part_key(id, &h.token, k))?.ok_or_else(|| {
                CapsuleError::failed(format!(
                    "session store: part {k} of record {idx} is missing"
                ))
            })?;
            raw.extend_from_slice(&part);
        }
        bodies.push(raw);
        idx += 1;
    }
    Ok(records::history_reply(bodies.iter().map(Vec::as_slice)))
}

/// `session.v1.append`: stores the messages after the existing ones; the new total.
pub fn append(req: model::AppendRequest<'_>) -> Result<u64, CapsuleError> {
    let id = req.id.as_str();
    let (raw, meta) = match model::is_id(id).then(|| load(id)).transpose()?.flatten() {
        Some(found) => found,
        None => return Err(unknown_id(id)),
    };
    if req.messages.is_empty() {
        return message_count(&meta);
    }
    let body = model::join_messages(&req.messages).map_err(CapsuleError::invalid)?;
    let count = req.messages.len() as u64;

    // Bodies too big for one value are stored in parts first, so the claim that makes them
    // visible is still a single compare-and-swap.
    let token = (body.len() > records::PART_MAX)
        .then(|| random::bytes(8).map(|b| model::hex(&b)))
        .transpose()?;
    let pieces = records::split(&body);
    let batch = match &token {
        None => Batch::inline(&body, count),
        Some(t) => {
            for (k, piece) in pieces.iter().enumerate().skip(1) {
                let k = k as u32;
                kv::set(&records::part_key(id, t, k), piece).map_err(store_err)?;
            }
            Batch {
                count,
                len: body.len() as u64,
                first: pieces[0],
                parts: (pieces.len() - 1) as u32,
                token: Some(t),
            }
        }
    };

    let (mut idx, mut tail) = probe(id, meta.records)?;
    let (total, records_after) = 'race: {
        for _ in 0..MAX_RACES {
            let plan = match records::plan(tail.as_deref(), &batch) {
                Ok(p) => p,
                Err(e) => {
                    if let Some(t) = &token {
                        for k in 1..pieces.len() {
                            let _ = kv::delete(&records::part_key(id, t, k as u32));
                        }
                    }
                    return Err(plan_error(e, &meta.name));
                }
            };
            match plan {
                Plan::Claim(rec) => {
                    if cas(&records::record_key(id, idx), None, Some(&rec))? {
                        break 'race (header_total(&rec)?, idx + 1);
                    }
                }
                Plan::Merge(rec) => {
                    let key = records::record_key(id, idx - 1);
                    if cas(&key, tail.as_deref(), Some(&rec))? {
                        break 'race (header_total(&rec)?, idx);
                    }
                }
                Plan::Seal(rec) => {
                    let key = records::record_key(id, idx - 1);
                    if cas(&key, tail.as_deref(), Some(&rec))? {
                        tail = Some(rec);
                        continue;
                    }
                }
            }
            // Another append got there first: look again from where we were.
            (idx, tail) = probe(id, idx)?;
        }
        return Err(CapsuleError::failed(
            "session store: too many concurrent appends",
        ));
    };

    // The messages are stored; the meta only carries hints, so failing to update it must not
    // fail an append that already happened (the caller might retry and store them twice).
    let now = time::now_ms();
    if let Err(e) = update_meta(raw, meta, |m| {
        m.updated_ms = m.updated_ms.max(now);
        m.records = m.records.max(records_after);
    }) {
        log::warn(&format!(
            "session {id}: stored messages but not the update time: {e}"
        ));
    }
    Ok(total)
}

fn header_total(rec: &[u8]) -> Result<u64, CapsuleError> {
    Ok(records::decode(rec).map_err(CapsuleError::failed)?.0.total)
}

fn plan_error(e: PlanError, name: &str) -> CapsuleError {
    match e {
        PlanError::Corrupt(m) => CapsuleError::failed(format!("session `{name}`: {m}")),
        PlanError::Full { now, adding } => CapsuleError::failed(format!(
            "session `{name}` is full: it holds {now} bytes of history and {adding} more would pass \
             the {} MiB limit; start a new session",
            records::HISTORY_CAP / (1024 * 1024)
        )),
    }
}

/// `session.v1.rename`: gives the session `id` the free name `name`.
pub fn rename(id: &str, name: &str) -> Result<Info, CapsuleError> {
    if !model::is_name(name) {
        return Err(CapsuleError::invalid(model::name_error(name)));
    }
    let (raw, meta) = match model::is_id(id).then(|| load(id)).transpose()?.flatten() {
        Some(found) => found,
        None => return Err(unknown_id(id)),
    };
    if meta.name == name {
        return Ok(meta.info(message_count(&meta)?));
    }
    // Claim the new name first: a name in the index always leads to a session.
    if !cas(&name_key(name), None, Some(id.as_bytes()))? {
        return Err(CapsuleError::failed(format!(
            "the name `{name}` is taken by another session"
        )));
    }
    let old = meta.name.clone();
    let meta = update_meta(raw, meta, |m| m.name = name.to_string())?;
    cas(&name_key(&old), Some(id.as_bytes()), None)?;
    Ok(meta.info(message_count(&meta)?))
}

/// `session.v1.delete`: removes the session, its name and its whole history.
pub fn delete(id: &str) -> Result<(), CapsuleError> {
    let (raw, meta) = match model::is_id(id).then(|| load(id)).transpose()?.flatten() {
        Some(found) => found,
        None => return Err(unknown_id(id)),
    };
    // The meta goes first, so the session stops resolving at once; what follows is cleanup.
    if !cas(&meta_key(id), Some(&raw), None)? {
        return Err(CapsuleError::failed(format!(
            "session `{}` changed while being deleted; try again",
            meta.name
        )));
    }
    cas(&name_key(&meta.name), Some(id.as_bytes()), None)?;
    for prefix in [format!("r/{id}/"), format!("p/{id}/")] {
        for key in kv::list(&prefix).map_err(store_err)? {
            kv::delete(&key).map_err(store_err)?;
        }
    }
    Ok(())
}
