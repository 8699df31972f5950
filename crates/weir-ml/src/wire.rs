//! Authenticated, size-bounded frames for the cluster's TCP traffic: the AM's control
//! connections, the parameter servers' requests, and any runner's own links
//! ([`crate::NodeContext::connect_peer`], [`crate::NodeContext::accept_peer`]).
//!
//! **Handshake.** Every connection starts with a mutual challenge-response over the job's
//! [`JobSecret`] `K`. The client sends `WEIRAUTH`, a version byte and a fresh 32-byte nonce
//! `nc`; the server answers its own nonce `ns` and `HMAC(K, "weir server" | nc | ns)`; the
//! client checks it and answers `HMAC(K, "weir client" | nc | ns)`, which the server checks.
//! Neither side sends anything else before the other has proven that it holds `K`, and a
//! connection that does not complete the handshake within [`HANDSHAKE_TIMEOUT`] is closed.
//!
//! **Frames.** After the handshake each direction has its own key,
//! `HMAC(K, "weir c2s" | nc | ns)` and `HMAC(K, "weir s2c" | nc | ns)`, and a frame is
//! `len: u32 LE | payload | HMAC(key, seq | len | payload)` with a per-direction sequence
//! number `seq`. A frame that was forged, altered, replayed, reordered or taken from another
//! connection fails its check and closes the connection. The length is checked against the
//! channel's limit before anything is allocated, and the payload (bincode 2) is decoded with
//! that limit too ([`decode_bounded`]), so no length written by a peer can make a reader
//! allocate more than the limit. Traffic is authenticated, not encrypted.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;
use weir_core::io_deadline::read_exact_before;
pub use weir_core::job_secret::SECRET_ENV;
use weir_core::job_secret::{mac, verify};
pub use weir_core::JobSecret;

const GREETING: &[u8; 8] = b"WEIRAUTH";
const VERSION: u8 = 1;
const NONCE: usize = 32;
const TAG: usize = 32;

/// Largest frame on a control connection (node ↔ AM); its messages are small.
pub const CONTROL_FRAME_LIMIT: usize = 1 << 20;
/// Largest frame on a data connection (parameter-server shards, runners' links).
pub const DATA_FRAME_LIMIT: usize = 64 << 20;
/// How long a peer has to complete the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a write may block before the connection is given up (a stalled peer that no
/// longer reads must not hang the writer).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a connection or a frame was refused.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Reading or writing the socket failed.
    #[error("connection to {peer}: {source}")]
    Io {
        /// The other end.
        peer: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The peer closed the connection between two frames.
    #[error("{peer} closed the connection")]
    Closed {
        /// The other end.
        peer: String,
    },
    /// The handshake failed: not a Weir peer, another version, or another job's secret.
    #[error("handshake with {peer} failed: {reason}")]
    Handshake {
        /// The other end.
        peer: String,
        /// What was wrong.
        reason: String,
    },
    /// A frame is longer than the channel allows.
    #[error("frame of {len} bytes from {peer} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The other end.
        peer: String,
        /// The length the peer announced.
        len: usize,
        /// The channel's limit.
        limit: usize,
    },
    /// A frame's authentication tag is wrong: forged, altered, replayed or out of order.
    #[error("frame {seq} from {peer} failed authentication (forged, altered or replayed)")]
    BadTag {
        /// The other end.
        peer: String,
        /// The frame's sequence number on this connection.
        seq: u64,
    },
    /// A frame's payload does not decode into the expected message.
    #[error("undecodable frame: {0}")]
    Decode(String),
    /// A message could not be encoded.
    #[error("cannot encode a message: {0}")]
    Encode(String),
    /// A job secret is malformed, or no secure random numbers were available.
    #[error("job secret: {0}")]
    Secret(String),
}

fn nonce() -> Result<[u8; NONCE], WireError> {
    weir_core::job_secret::random_bytes().map_err(|e| WireError::Secret(e.to_string()))
}

/// Decodes a bincode 2 payload, refusing any length inside it that would take more than
/// `limit` bytes (at most 256 MiB), and trailing bytes.
///
/// ```
/// // A string that claims 2^40 bytes in a 16-byte payload is refused, not allocated.
/// let mut bytes = vec![253u8]; // bincode's varint tag for a u64 length
/// bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
/// bytes.extend_from_slice(&[b'x'; 7]);
/// assert!(weir_ml::wire::decode_bounded::<String>(&bytes, 1 << 20).is_err());
/// ```
pub fn decode_bounded<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, WireError> {
    fn with<T: DeserializeOwned, const N: usize>(
        bytes: &[u8],
    ) -> Result<(T, usize), bincode::error::DecodeError> {
        bincode::serde::decode_from_slice(bytes, bincode::config::standard().with_limit::<N>())
    }
    let decoded = match limit {
        l if l <= 64 << 10 => with::<T, { 64 << 10 }>(bytes),
        l if l <= 1 << 20 => with::<T, { 1 << 20 }>(bytes),
        l if l <= 16 << 20 => with::<T, { 16 << 20 }>(bytes),
        l if l <= 64 << 20 => with::<T, { 64 << 20 }>(bytes),
        _ => with::<T, { 256 << 20 }>(bytes),
    };
    match decoded {
        Ok((value, used)) if used == bytes.len() => Ok(value),
        Ok((_, used)) => Err(WireError::Decode(format!(
            "{} trailing bytes after the message",
            bytes.len() - used
        ))),
        Err(e) => Err(WireError::Decode(e.to_string())),
    }
}

/// Encodes a message as a bincode 2 payload.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, WireError> {
    bincode::serde::encode_to_vec(message, bincode::config::standard())
        .map_err(|e| WireError::Encode(e.to_string()))
}

/// The sending half of a [`SecureChannel`].
pub struct FrameWriter {
    stream: TcpStream,
    key: [u8; 32],
    seq: u64,
    peer: String,
    /// Set by [`FrameWriter::shutdown`].
    shut: std::sync::atomic::AtomicBool,
}

impl FrameWriter {
    /// Sends one message.
    pub fn send<T: Serialize>(&mut self, message: &T) -> Result<(), WireError> {
        self.send_bytes(&encode(message)?)
    }

    /// Sends one frame with `payload`.
    pub fn send_bytes(&mut self, payload: &[u8]) -> Result<(), WireError> {
        let len = u32::try_from(payload.len()).map_err(|_| WireError::TooLarge {
            peer: self.peer.clone(),
            len: payload.len(),
            limit: u32::MAX as usize,
        })?;
        let tag = mac(
            &self.key,
            &[&self.seq.to_le_bytes(), &len.to_le_bytes(), payload],
        );
        let mut frame = Vec::with_capacity(4 + payload.len() + TAG);
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(payload);
        frame.extend_from_slice(&tag);
        self.seq += 1;
        self.stream
            .write_all(&frame)
            .and_then(|_| self.stream.flush())
            .map_err(|source| WireError::Io {
                peer: self.peer.clone(),
                source,
            })
    }

    /// Closes both directions of the connection.
    pub fn shutdown(&self) {
        self.shut.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// Marks the connection shut (see [`FrameWriter::is_shut`]) without closing it yet, so
    /// that a last message can still go out.
    pub fn mark_shut(&self) {
        self.shut.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether [`FrameWriter::shutdown`] was called. On Linux a shut-down socket can still
    /// deliver data that arrives afterwards, so readers of the same connection check this.
    pub fn is_shut(&self) -> bool {
        self.shut.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The receiving half of a [`SecureChannel`].
pub struct FrameReader {
    stream: TcpStream,
    key: [u8; 32],
    seq: u64,
    limit: usize,
    peer: String,
}

impl FrameReader {
    /// Receives one message, decoded within the channel's limit.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T, WireError> {
        let payload = self.recv_bytes()?;
        decode_bounded(&payload, self.limit)
    }

    /// Receives one frame's payload (at most the channel's limit).
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, WireError> {
        let mut len = [0u8; 4];
        match self.stream.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                return Err(WireError::Closed {
                    peer: self.peer.clone(),
                })
            }
            Err(source) => return Err(self.io(source)),
        }
        let len_value = u32::from_le_bytes(len) as usize;
        if len_value > self.limit {
            return Err(WireError::TooLarge {
                peer: self.peer.clone(),
                len: len_value,
                limit: self.limit,
            });
        }
        let mut payload = vec![0u8; len_value];
        let mut tag = [0u8; TAG];
        self.stream
            .read_exact(&mut payload)
            .and_then(|_| self.stream.read_exact(&mut tag))
            .map_err(|e| self.io(e))?;
        if !verify(&self.key, &[&self.seq.to_le_bytes(), &len, &payload], &tag) {
            return Err(WireError::BadTag {
                peer: self.peer.clone(),
                seq: self.seq,
            });
        }
        self.seq += 1;
        Ok(payload)
    }

    /// Sets how long a receive may wait (`None`: forever).
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<(), WireError> {
        self.stream
            .set_read_timeout(timeout)
            .map_err(|e| self.io(e))
    }

    fn io(&self, source: std::io::Error) -> WireError {
        WireError::Io {
            peer: self.peer.clone(),
            source,
        }
    }
}

/// An authenticated connection: see the [module documentation](self).
pub struct SecureChannel {
    reader: FrameReader,
    writer: FrameWriter,
}

/// The keys of one connection, from the handshake.
struct SessionKeys {
    send: [u8; 32],
    recv: [u8; 32],
}

fn peer_name(stream: &TcpStream) -> String {
    stream
        .peer_addr()
        .map_or_else(|_| "an unknown peer".into(), |a| a.to_string())
}

impl SecureChannel {
    /// Connects to `address` (`host:port`) and proves that both sides hold `secret`.
    /// Frames from the other side may be up to `limit` bytes.
    pub fn connect(address: &str, secret: &JobSecret, limit: usize) -> Result<Self, WireError> {
        let io = |source| WireError::Io {
            peer: address.to_string(),
            source,
        };
        let addresses: Vec<SocketAddr> = address.to_socket_addrs().map_err(io)?.collect();
        let mut last = None;
        for a in addresses {
            match TcpStream::connect_timeout(&a, HANDSHAKE_TIMEOUT) {
                Ok(stream) => return Self::client(stream, secret, limit),
                Err(e) => last = Some(e),
            }
        }
        Err(io(last.unwrap_or_else(|| {
            std::io::Error::new(ErrorKind::NotFound, "the address resolves to nothing")
        })))
    }

    /// Runs the client side of the handshake on a connected stream.
    pub fn client(
        mut stream: TcpStream,
        secret: &JobSecret,
        limit: usize,
    ) -> Result<Self, WireError> {
        let peer = peer_name(&stream);
        let keys = Self::with_timeouts(&mut stream, &peer, |s, deadline| {
            client_handshake(s, secret, &peer, deadline)
        })?;
        Self::established(stream, peer, keys, limit)
    }

    /// Runs the server side of the handshake on an accepted stream.
    pub fn accept(
        mut stream: TcpStream,
        secret: &JobSecret,
        limit: usize,
    ) -> Result<Self, WireError> {
        let peer = peer_name(&stream);
        let keys = Self::with_timeouts(&mut stream, &peer, |s, deadline| {
            server_handshake(s, secret, &peer, deadline)
        })?;
        Self::established(stream, peer, keys, limit)
    }

    fn with_timeouts(
        stream: &mut TcpStream,
        peer: &str,
        handshake: impl FnOnce(&mut TcpStream, Instant) -> Result<SessionKeys, WireError>,
    ) -> Result<SessionKeys, WireError> {
        let io = |source| WireError::Io {
            peer: peer.to_string(),
            source,
        };
        stream.set_nonblocking(false).map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        stream
            .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
            .map_err(io)?;
        stream
            .set_write_timeout(Some(HANDSHAKE_TIMEOUT))
            .map_err(io)?;
        // The whole handshake must finish in time, however the bytes trickle in.
        let keys = handshake(stream, Instant::now() + HANDSHAKE_TIMEOUT)?;
        stream.set_read_timeout(None).map_err(io)?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT)).map_err(io)?;
        Ok(keys)
    }

    fn established(
        stream: TcpStream,
        peer: String,
        keys: SessionKeys,
        limit: usize,
    ) -> Result<Self, WireError> {
        // Fails only when the process is out of file descriptors.
        let reader_stream = stream.try_clone().map_err(|source| WireError::Io {
            peer: peer.clone(),
            source,
        })?;
        Ok(SecureChannel {
            reader: FrameReader {
                stream: reader_stream,
                key: keys.recv,
                seq: 0,
                limit,
                peer: peer.clone(),
            },
            writer: FrameWriter {
                stream,
                key: keys.send,
                seq: 0,
                peer,
                shut: std::sync::atomic::AtomicBool::new(false),
            },
        })
    }

    /// Sends one message.
    pub fn send<T: Serialize>(&mut self, message: &T) -> Result<(), WireError> {
        self.writer.send(message)
    }

    /// Receives one message.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T, WireError> {
        self.reader.recv()
    }

    /// The other end, as `ip:port`.
    pub fn peer(&self) -> &str {
        &self.writer.peer
    }

    /// The two halves, for a reader thread and writers elsewhere.
    pub fn split(self) -> (FrameReader, FrameWriter) {
        (self.reader, self.writer)
    }
}

fn read_exact(
    stream: &mut TcpStream,
    buf: &mut [u8],
    peer: &str,
    what: &str,
    deadline: Instant,
) -> Result<(), WireError> {
    read_exact_before(stream, buf, deadline).map_err(|e| WireError::Handshake {
        peer: peer.to_string(),
        reason: format!("no {what} ({e})"),
    })
}

fn write_all(stream: &mut TcpStream, buf: &[u8], peer: &str) -> Result<(), WireError> {
    stream.write_all(buf).map_err(|source| WireError::Io {
        peer: peer.to_string(),
        source,
    })
}

fn client_handshake(
    stream: &mut TcpStream,
    secret: &JobSecret,
    peer: &str,
    deadline: Instant,
) -> Result<SessionKeys, WireError> {
    let nc = nonce()?;
    let mut hello = Vec::with_capacity(GREETING.len() + 1 + NONCE);
    hello.extend_from_slice(GREETING);
    hello.push(VERSION);
    hello.extend_from_slice(&nc);
    write_all(stream, &hello, peer)?;
    let mut reply = [0u8; NONCE + TAG];
    read_exact(stream, &mut reply, peer, "answer to the greeting", deadline)?;
    let (ns, server_tag) = reply.split_at(NONCE);
    if !secret.verify(&[b"weir server", &nc, ns], server_tag) {
        return Err(WireError::Handshake {
            peer: peer.to_string(),
            reason: "the server does not hold this job's secret".into(),
        });
    }
    write_all(stream, &secret.mac(&[b"weir client", &nc, ns]), peer)?;
    Ok(SessionKeys {
        send: secret.mac(&[b"weir c2s", &nc, ns]),
        recv: secret.mac(&[b"weir s2c", &nc, ns]),
    })
}

fn server_handshake(
    stream: &mut TcpStream,
    secret: &JobSecret,
    peer: &str,
    deadline: Instant,
) -> Result<SessionKeys, WireError> {
    let mut hello = [0u8; 8 + 1 + NONCE];
    read_exact(stream, &mut hello, peer, "greeting", deadline)?;
    if &hello[..8] != GREETING {
        return Err(WireError::Handshake {
            peer: peer.to_string(),
            reason: "not a Weir cluster connection (bad greeting)".into(),
        });
    }
    if hello[8] != VERSION {
        return Err(WireError::Handshake {
            peer: peer.to_string(),
            reason: format!("protocol version {} (this side speaks {VERSION})", hello[8]),
        });
    }
    let nc = &hello[9..];
    let ns = nonce()?;
    let mut reply = Vec::with_capacity(NONCE + TAG);
    reply.extend_from_slice(&ns);
    reply.extend_from_slice(&secret.mac(&[b"weir server", nc, &ns]));
    write_all(stream, &reply, peer)?;
    let mut client_tag = [0u8; TAG];
    read_exact(
        stream,
        &mut client_tag,
        peer,
        "proof of the job secret",
        deadline,
    )?;
    if !secret.verify(&[b"weir client", nc, &ns], &client_tag) {
        return Err(WireError::Handshake {
            peer: peer.to_string(),
            reason: "wrong job secret".into(),
        });
    }
    Ok(SessionKeys {
        send: secret.mac(&[b"weir s2c", nc, &ns]),
        recv: secret.mac(&[b"weir c2s", nc, &ns]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair(
        client_secret: &JobSecret,
        server_secret: &JobSecret,
    ) -> (
        Result<SecureChannel, WireError>,
        Result<SecureChannel, WireError>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let server_secret = server_secret.clone();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            SecureChannel::accept(stream, &server_secret, CONTROL_FRAME_LIMIT)
        });
        let client = SecureChannel::connect(&address, client_secret, CONTROL_FRAME_LIMIT);
        (client, server.join().unwrap())
    }

    #[test]
    fn both_sides_with_the_secret_exchange_frames_both_ways() {
        let secret = JobSecret::generate().unwrap();
        let (client, server) = pair(&secret, &secret);
        let (mut client, mut server) = (client.unwrap(), server.unwrap());
        client.send(&("hello".to_string(), 7u32)).unwrap();
        assert_eq!(server.recv::<(String, u32)>().unwrap(), ("hello".into(), 7));
        server.send(&vec![1.5f32, 2.5]).unwrap();
        assert_eq!(client.recv::<Vec<f32>>().unwrap(), vec![1.5, 2.5]);
    }

    #[test]
    fn a_wrong_secret_fails_the_handshake_on_both_sides() {
        let (client, server) = pair(
            &JobSecret::generate().unwrap(),
            &JobSecret::generate().unwrap(),
        );
        let client = client.err().expect("the client must refuse");
        let server = server.err().expect("the server must refuse");
        assert!(
            client
                .to_string()
                .contains("does not hold this job's secret"),
            "{client}"
        );
        assert!(server.to_string().contains("handshake"), "{server}");
    }

    #[test]
    fn a_replayed_frame_fails_authentication() {
        let secret = JobSecret::generate().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let server_secret = secret.clone();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut channel =
                SecureChannel::accept(stream, &server_secret, CONTROL_FRAME_LIMIT).unwrap();
            let first = channel.recv::<u32>();
            let second = channel.recv::<u32>();
            (first, second)
        });
        let stream = TcpStream::connect(&address).unwrap();
        let mut raw = stream.try_clone().unwrap();
        let mut channel = SecureChannel::client(stream, &secret, CONTROL_FRAME_LIMIT).unwrap();
        // Capture the bytes of one frame by encoding it the way the writer does, then send it
        // twice: the second copy has a stale sequence number.
        let payload = encode(&5u32).unwrap();
        let tag = mac(
            &channel.writer.key,
            &[
                &0u64.to_le_bytes(),
                &(payload.len() as u32).to_le_bytes(),
                &payload,
            ],
        );
        let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&payload);
        frame.extend_from_slice(&tag);
        raw.write_all(&frame).unwrap();
        raw.write_all(&frame).unwrap();
        channel.writer.seq = 1;
        let (first, second) = server.join().unwrap();
        assert_eq!(first.unwrap(), 5);
        assert!(
            matches!(second, Err(WireError::BadTag { seq: 1, .. })),
            "{second:?}"
        );
    }

    #[test]
    fn a_length_claim_inside_a_small_payload_is_refused_without_allocating_it() {
        // bincode 2: a string whose varint length says 2^40 bytes.
        let mut bytes = vec![253u8];
        bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
        bytes.extend_from_slice(b"abcdefg");
        let error = decode_bounded::<String>(&bytes, CONTROL_FRAME_LIMIT).unwrap_err();
        assert!(error.to_string().contains("undecodable"), "{error}");
    }

    #[test]
    fn bad_hex_secrets_are_refused() {
        assert!(JobSecret::from_hex(&"zz".repeat(32)).is_err());
        assert!(JobSecret::from_hex(&"é".repeat(32)).is_err());
    }
}
