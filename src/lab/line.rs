//! Reading the client's command lines, shared by the well-behaved servers
//! and the hostile ones.

use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::time::timeout;

/// Longest command line read: RFC 5321 §4.5.3.1.4 allows 512 octets, and
/// the lab is generous.
pub(super) const MAX_LINE: u64 = 4096;

/// A client silent this long is dropped.
pub(super) const IDLE: Duration = Duration::from_secs(30);

/// One command line, without CRLF; `None` at EOF or after the idle timeout.
pub(super) async fn read_line<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let read = timeout(
        IDLE,
        (&mut *reader).take(MAX_LINE).read_until(b'\n', &mut buf),
    )
    .await;
    match read {
        Err(_) | Ok(Ok(0)) => Ok(None),
        Ok(Err(e)) => Err(e),
        Ok(Ok(_)) => {
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
        }
    }
}
