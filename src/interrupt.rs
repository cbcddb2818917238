//! Ctrl-C and SIGTERM as a stream of interrupts. The engine counts them: the
//! first stops new work, each further one escalates (see [`crate::engine`]).
//! Tests send interrupts by hand instead of signalling the process.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Interrupts as they arrive, one `()` each.
pub struct Interrupts {
    rx: mpsc::UnboundedReceiver<()>,
    forwarder: Option<JoinHandle<()>>,
}

impl Interrupts {
    /// Listen for SIGINT and SIGTERM (Ctrl-C where there are no signals).
    /// On Unix the handlers are installed before this returns, so no signal
    /// sent after it is missed — and none kills the process outright.
    /// Must be called inside a tokio runtime.
    pub fn from_signals() -> Interrupts {
        let (tx, rx) = mpsc::unbounded_channel();
        Interrupts {
            rx,
            forwarder: Some(forward(tx)),
        }
    }

    /// Interrupts sent by hand through the returned sender (tests).
    #[cfg(test)]
    pub(crate) fn manual() -> (mpsc::UnboundedSender<()>, Interrupts) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            tx,
            Interrupts {
                rx,
                forwarder: None,
            },
        )
    }

    /// The next interrupt; `None` when no more can come.
    pub async fn recv(&mut self) -> Option<()> {
        self.rx.recv().await
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        if let Some(forwarder) = self.forwarder.take() {
            forwarder.abort();
        }
    }
}

#[cfg(unix)]
fn forward(tx: mpsc::UnboundedSender<()>) -> JoinHandle<()> {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(()) = int.recv() => {}
                    Some(()) = term.recv() => {}
                    else => return,
                }
                if tx.send(()).is_err() {
                    return;
                }
            }
        }),
        _ => forward_ctrl_c(tx),
    }
}

#[cfg(not(unix))]
fn forward(tx: mpsc::UnboundedSender<()>) -> JoinHandle<()> {
    forward_ctrl_c(tx)
}

fn forward_ctrl_c(tx: mpsc::UnboundedSender<()>) -> JoinHandle<()> {
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(()).is_err() {
                return;
            }
        }
    })
}
