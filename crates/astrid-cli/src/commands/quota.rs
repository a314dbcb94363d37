//! `quota set|show`: a principal's resource limits, kept in its profile by the daemon.

use std::process::ExitCode;

use anyhow::{anyhow, bail};
use astrid_types::wire::{ControlCommand, ControlResponse, QuotaInfo, QuotaSpec};

use super::{unexpected, Ctx};
use crate::args::QuotaCommand;

pub async fn run(ctx: &Ctx, cmd: QuotaCommand) -> anyhow::Result<ExitCode> {
    let client = ctx.connect(true).await?;
    let or_acting = |a: Option<String>| a.unwrap_or_else(|| ctx.principal.clone());
    let command = match cmd {
        QuotaCommand::Set {
            agent,
            memory,
            time,
            storage,
            processes,
            concurrency,
        } => ControlCommand::QuotaSet {
            principal: or_acting(agent),
            quota: QuotaSpec {
                memory_bytes: memory.as_deref().map(parse_size).transpose()?,
                time_ms: time.as_deref().map(parse_time_ms).transpose()?,
                storage_bytes: storage.as_deref().map(parse_size).transpose()?,
                processes,
                concurrency,
            },
        },
        QuotaCommand::Show { agent } => ControlCommand::QuotaShow {
            principal: or_acting(agent),
        },
    };
    match client.control(command).await? {
        ControlResponse::Quota(q) => crate::out::show(ctx.json, &q, show)?,
        other => return Err(unexpected(other)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The quota in effect, each limit marked `(set)` or `(default)`, and current usage.
pub fn show(q: &QuotaInfo) -> String {
    let mark = |set: bool| if set { "set" } else { "default" };
    let s = &q.set;
    format!(
        "quota of `{}`:\n  memory       {:>12}  ({})  per invocation\n  time         {:>12}  ({})  \
         per invocation\n  storage      {:>12}  ({})  used {}\n  processes    {:>12}  ({})  \
         per subprocess sandbox\n  concurrency  {:>12}  ({})  running {}\n",
        q.principal,
        size(q.memory_bytes),
        mark(s.memory_bytes.is_some()),
        format!("{} ms", q.time_ms),
        mark(s.time_ms.is_some()),
        size(q.storage_bytes),
        mark(s.storage_bytes.is_some()),
        size(q.storage_used),
        q.processes,
        mark(s.processes.is_some()),
        q.concurrency,
        mark(s.concurrency.is_some()),
        q.running,
    )
}

fn size(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)];
    for (u, f) in UNITS {
        if n >= f && n.is_multiple_of(f) {
            return format!("{}{u}", n / f);
        }
    }
    format!("{n}B")
}

/// `128MB`, `1GB`, `512KB`, `4096B` or a bare byte count (binary units).
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let t = s.trim().to_ascii_uppercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow!("size `{s}`: expected N followed by B, KB, MB or GB"))?;
    let f: u64 = match unit {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => bail!("size `{s}`: unknown unit `{unit}` (use B, KB, MB or GB)"),
    };
    n.checked_mul(f)
        .filter(|&b| b > 0)
        .ok_or_else(|| anyhow!("size `{s}` must be positive and fit in 64 bits"))
}

/// `500ms`, `5s`, `2m`.
pub fn parse_time_ms(s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow!("time `{s}`: expected N followed by ms, s or m"))?;
    let ms = match unit {
        "ms" => n,
        "s" | "" => n * 1000,
        "m" => n * 60_000,
        _ => bail!("time `{s}`: unknown unit `{unit}` (use ms, s or m)"),
    };
    if ms == 0 {
        bail!("time `{s}` must be positive");
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_parse() {
        assert_eq!(parse_size("128MB").unwrap(), 128 << 20);
        assert_eq!(parse_size("1GB").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("0MB").is_err());
        assert_eq!(parse_time_ms("5s").unwrap(), 5000);
        assert_eq!(parse_time_ms("250ms").unwrap(), 250);
        assert_eq!(parse_time_ms("2m").unwrap(), 120_000);
        assert!(parse_time_ms("0s").is_err());
        assert_eq!(size(128 << 20), "128MB");
        assert_eq!(size(1000), "1000B");
    }
}
