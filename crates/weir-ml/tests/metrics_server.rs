//! The `/metrics` endpoint over real TCP: it answers, and what a client sends costs the
//! job a bounded amount: a huge request head gets 431 (it was read without end), stalled
//! clients hold no one else up, and connections beyond the cap get 503.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use weir_ml::metrics_server::{MAX_CONNECTIONS, MAX_HEADER};
use weir_ml::MetricsServer;

fn server() -> MetricsServer {
    MetricsServer::start("127.0.0.1:0", || "weir_up 1\n".to_string()).unwrap()
}

/// Sends `request` and reads the answer (with a timeout, so a server that never answers
/// fails the test instead of hanging it).
fn exchange(address: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(address).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(request);
    let mut answer = Vec::new();
    match s.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if !answer.is_empty() => eprintln!("after the answer: {e}"),
        Err(e) => panic!("no answer: {e}"),
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn metrics_are_served_and_other_paths_are_not_found() {
    let s = server();
    let ok = exchange(s.address(), b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        ok.starts_with("HTTP/1.1 200") && ok.ends_with("weir_up 1\n"),
        "{ok}"
    );
    let missing = exchange(s.address(), b"GET / HTTP/1.1\r\n\r\n");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let post = exchange(s.address(), b"POST /metrics HTTP/1.1\r\n\r\n");
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    let junk = exchange(s.address(), b"\x00\x01\x02 nonsense\r\n\r\n");
    assert!(junk.starts_with("HTTP/1.1 400"), "{junk}");
}

#[test]
fn a_request_head_larger_than_the_limit_gets_431() {
    let s = server();
    let mut request = b"GET /metrics HTTP/1.1\r\nX-Long: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 4 * MAX_HEADER));
    let answer = exchange(s.address(), &request);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}

#[test]
fn stalled_clients_hold_no_one_up_and_the_cap_answers_503() {
    let s = server();
    // Clients that send half a request head and then nothing.
    let stalled: Vec<TcpStream> = (0..MAX_CONNECTIONS)
        .map(|_| {
            let mut c = TcpStream::connect(s.address()).unwrap();
            c.write_all(b"GET /metrics HTTP/1.1\r\nHost").unwrap();
            c
        })
        .collect();
    // Give the server time to take them all.
    std::thread::sleep(Duration::from_millis(300));
    let refused = exchange(s.address(), b"GET /metrics HTTP/1.1\r\n\r\n");
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    drop(stalled);
    // Once they are gone, the endpoint serves again.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let answer = exchange(s.address(), b"GET /metrics HTTP/1.1\r\n\r\n");
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{answer}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_client_that_trickles_its_request_is_cut_off() {
    let s = server();
    let mut c = TcpStream::connect(s.address()).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    // One byte a second, each within any per-read timeout: the server must still give up
    // on the request as a whole.
    let request = b"GET /metrics HTTP/1.1\r\nHost: a-slow-client\r\n";
    let mut closed = false;
    for byte in request.iter() {
        if c.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 64];
        if matches!(c.read(&mut buf), Ok(0)) {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(
        closed,
        "the server kept a trickling client for {} s",
        request.len()
    );
}

#[test]
fn dropping_the_server_closes_its_listener_and_the_port_can_be_bound_again() {
    let s = server();
    let address = s.address().to_string();
    assert!(exchange(&address, b"GET /metrics HTTP/1.1\r\n\r\n").contains("200 OK"));
    drop(s);
    // The accept loop woke up and ended, so the listener is gone.
    assert!(
        TcpStream::connect(&address).is_err(),
        "{address} still accepts connections after the drop"
    );
    std::net::TcpListener::bind(&address).expect("the port is free again");
}

#[test]
fn a_server_on_every_interface_is_stopped_through_the_loopback() {
    let s = MetricsServer::start("0.0.0.0:0", || "up 1\n".to_string()).unwrap();
    let port = s.address().rsplit(':').next().unwrap().to_string();
    drop(s);
    assert!(TcpStream::connect(format!("127.0.0.1:{port}")).is_err());
}
