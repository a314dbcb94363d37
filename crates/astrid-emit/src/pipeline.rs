//! Reading input lines, sending them in input order, and printing results in input order
//! while the replies themselves may arrive in any order.

use astrid_client::{Client, Subscription};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::lines::{self, Action};

/// Requests awaiting their reply before we stop reading input, bounding memory and tasks.
const MAX_IN_FLIGHT: usize = 256;

/// An output line in input order, possibly not known yet. The bool says whether it succeeded.
enum Slot {
    Ready(String, bool),
    Waiting(JoinHandle<(String, bool)>),
}

/// Handles every line of `input` and sends one output line per non-blank input line to `out`,
/// in input order. Returns whether every line succeeded.
pub async fn process<R: AsyncBufRead + Unpin>(
    client: &Client,
    mut input: R,
    out: mpsc::UnboundedSender<String>,
) -> std::io::Result<bool> {
    let (order_tx, mut order_rx) = mpsc::channel::<Slot>(MAX_IN_FLIGHT);
    let sequencer = tokio::spawn(async move {
        let mut all_ok = true;
        while let Some(slot) = order_rx.recv().await {
            let (line, ok) = match slot {
                Slot::Ready(line, ok) => (line, ok),
                Slot::Waiting(task) => task.await.unwrap_or_else(|e| {
                    (
                        lines::malformed_line(&format!("internal error: {e}")),
                        false,
                    )
                }),
            };
            all_ok &= ok;
            // A closed stdout is no reason to stop sending what the input asked for.
            let _ = out.send(line);
        }
        all_ok
    });

    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf).await? == 0 {
            break;
        }
        n += 1;
        let slot = match std::str::from_utf8(&buf) {
            Err(_) => Slot::Ready(
                lines::malformed_line(&format!("line {n}: not valid UTF-8")),
                false,
            ),
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => match lines::parse_line(text.trim_end_matches(['\n', '\r']), n) {
                Err(e) => Slot::Ready(lines::malformed_line(&e), false),
                Ok(action) => dispatch(client, action).await,
            },
        };
        if order_tx.send(slot).await.is_err() {
            break;
        }
    }
    drop(order_tx);
    Ok(sequencer.await.unwrap_or(false))
}

/// Sends the action now, so the daemon sees actions in input order, and leaves only the wait
/// for a reply to a task.
async fn dispatch(client: &Client, action: Action) -> Slot {
    match action {
        Action::Publish { topic, payload } => match client.publish(&topic, payload).await {
            Ok(()) => Slot::Ready(lines::published_line(&topic), true),
            Err(e) => Slot::Ready(lines::error_line(&topic, &e.to_string()), false),
        },
        Action::Request {
            topic,
            payload,
            timeout,
        } => match client.send_request(&topic, payload, timeout).await {
            Err(e) => Slot::Ready(lines::error_line(&topic, &e.to_string()), false),
            Ok(pending) => Slot::Waiting(tokio::spawn(async move {
                match pending.wait().await {
                    Ok(reply) => (lines::reply_line(&topic, &reply), true),
                    Err(e) => (lines::error_line(&topic, &e.to_string()), false),
                }
            })),
        },
    }
}

/// Forwards a subscription's events as output lines until it ends, or until `done` fires
/// and nothing more is queued. The daemon sends frames in order, so an event published before
/// the last reply is already queued when the input is done: it is printed, not cut off.
pub async fn print_events(
    mut sub: Subscription,
    out: mpsc::UnboundedSender<String>,
    mut done: watch::Receiver<bool>,
) {
    loop {
        let event = tokio::select! {
            // Queued events first: `done` wins only when none is ready.
            biased;
            event = sub.next() => event,
            _ = done.wait_for(|d| *d) => return,
        };
        let Some(event) = event else { break };
        if out.send(lines::event_line(&event)).is_err() {
            return;
        }
    }
    if let Some(reason) = sub.close_reason() {
        let _ = out.send(lines::malformed_line(&format!(
            "subscription ended: {reason}"
        )));
    }
}

/// Writes each line as it comes, flushing so a reader sees results live.
pub async fn print_lines<W: AsyncWrite + Unpin>(
    mut w: W,
    mut lines: mpsc::UnboundedReceiver<String>,
) {
    while let Some(mut line) = lines.recv().await {
        line.push('\n');
        if w.write_all(line.as_bytes()).await.is_err() || w.flush().await.is_err() {
            return; // stdout closed; nothing left to do with output
        }
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
