//! A process of `weir launch` lives as long as its launcher. The launcher holds each
//! process's standard input open and writes nothing to it after the job secret; when the
//! launcher stops the job, or dies in any way (SIGKILL included), the pipe closes, and a
//! process given `--exit-when-stdin-closes` exits. Over `ssh host command` (no terminal),
//! the end of the local `ssh` client does not signal the remote command, but its standard
//! input does end.

use std::io::Read;
use std::sync::Once;

/// The exit code of a process whose standard input closed (as if hung up: 128 + SIGHUP).
pub(crate) const EXIT_CODE: i32 = 129;

/// Started once per process.
static WATCH: Once = Once::new();

/// Starts a thread that reads standard input to its end and then ends the process (once per
/// process; later calls do nothing).
pub(crate) fn watch() {
    WATCH.call_once(|| {
        let started = std::thread::Builder::new()
            .name("weir-stdin-lifeline".into())
            .spawn(|| {
                read_to_end(&mut std::io::stdin().lock());
                // The launcher that read this process's standard error may be gone too: a
                // failed write of the message must not keep the process alive.
                let _ = std::panic::catch_unwind(|| {
                    tracing::warn!(
                        "standard input closed (`--exit-when-stdin-closes`): the launcher is \
                         gone, so this process ends"
                    );
                });
                std::process::exit(EXIT_CODE);
            });
        if let Err(e) = started {
            tracing::warn!("cannot watch standard input (`--exit-when-stdin-closes`): {e}");
        }
    });
}

/// Reads and drops what `input` holds until its end or an error (a closed or broken pipe
/// ends the launcher's hold as well), in a fixed buffer.
fn read_to_end(input: &mut impl Read) {
    let mut buffer = [0u8; 4096];
    loop {
        match input.read(&mut buffer) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_ends_at_the_end_of_the_input_or_at_an_error() {
        let mut bytes: &[u8] = &[7u8; 10_000];
        read_to_end(&mut bytes);
        assert!(bytes.is_empty());
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
        }
        read_to_end(&mut Broken);
    }
}
