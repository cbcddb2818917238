//! `--catch-maildir DIR`: the user's own MTA delivers the `--confirm`
//! address into a Maildir; the catcher polls `DIR/new` and `DIR/cur` for a
//! file carrying one of this run's tokens. Files are read, never changed.

use super::Registry;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

/// How often the directories are listed.
const POLL: Duration = Duration::from_millis(250);
/// Bytes of one file read at most (the size cap of the SMTP catcher).
const MAX_READ: u64 = super::server::MAX_MESSAGE as u64;
/// File names remembered at most; beyond, the set starts over (a file is
/// then read once more, which does no harm).
const MAX_SEEN: usize = 100_000;

pub(super) async fn watch(
    dir: PathBuf,
    registry: Arc<Registry>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut seen: HashSet<PathBuf> = HashSet::new();
    loop {
        scan(&dir, &registry, &mut seen).await;
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

async fn scan(dir: &Path, registry: &Registry, seen: &mut HashSet<PathBuf>) {
    for sub in ["new", "cur"] {
        let Ok(mut entries) = tokio::fs::read_dir(dir.join(sub)).await else {
            continue;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            // A file moved from new/ to cur/ keeps its unique name
            // (before the `:2,` flags): remember the name, not the path.
            let name = entry
                .file_name()
                .to_string_lossy()
                .split(":2,")
                .next()
                .unwrap_or("")
                .to_string();
            if name.starts_with('.') || !seen.insert(PathBuf::from(&name)) {
                continue;
            }
            if seen.len() > MAX_SEEN {
                seen.clear();
            }
            let Ok(file) = tokio::fs::File::open(entry.path()).await else {
                continue;
            };
            let mut message = Vec::new();
            if file.take(MAX_READ).read_to_end(&mut message).await.is_ok() {
                registry.deliver(&message, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Catcher;
    use crate::relay::model::facts::{Canaries, DeliveryStatus};
    use std::time::Duration;

    #[tokio::test]
    async fn finds_the_token_in_a_delivered_file() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("cur/1.old:2,S"), "old mail, no token").unwrap();
        let c = Catcher::maildir(dir.path().to_path_buf()).unwrap();
        let t = "rs00000000000000ee";
        c.expect(t);
        let path = dir.path().join("new/2.canary");
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let msg =
                format!("Received: from relay.test by mx.example.net\n\nX-Relayscan-Token: {t}\n");
            std::fs::write(path, msg).unwrap();
        });
        let d = c
            .wait(t, Duration::from_secs(10), std::future::pending())
            .await;
        assert_eq!(d.status, DeliveryStatus::Delivered);
        assert_eq!(d.peer, None);
        assert_eq!(d.hops, vec!["from relay.test by mx.example.net"]);
        assert!(Catcher::maildir(dir.path().join("nope")).is_err());
    }
}
