//! Reads with a deadline for the whole read, not for each `read` call: a peer that sends
//! one byte just before every read timeout would otherwise hold a connection forever.

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::Instant;

/// Fills `buf` from `stream`, failing with `ErrorKind::TimedOut` once `deadline` passes
/// however the bytes trickle in. The stream's read timeout is changed.
///
/// ```
/// use std::io::Write;
/// use std::time::{Duration, Instant};
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
/// let (mut server, _) = listener.accept().unwrap();
/// client.write_all(b"ab").unwrap();
/// let mut buf = [0u8; 3];
/// let deadline = Instant::now() + Duration::from_millis(100);
/// let e = weir_core::io_deadline::read_exact_before(&mut server, &mut buf, deadline).unwrap_err();
/// assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
/// ```
pub fn read_exact_before(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = read_before(stream, &mut buf[filled..], deadline)?;
        if n == 0 {
            return Err(std::io::Error::new(
                ErrorKind::UnexpectedEof,
                "the peer closed the connection",
            ));
        }
        filled += n;
    }
    Ok(())
}

/// One `read` into `buf` that waits at most until `deadline` (`TimedOut` after it).
pub fn read_before(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> std::io::Result<usize> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                ErrorKind::TimedOut,
                "the deadline passed",
            ));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(buf) {
            Ok(n) => return Ok(n),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}
