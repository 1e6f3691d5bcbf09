//! The `weir` binary's own contract, without services: bad flags are usage
//! errors (exit 2) that name the flag and the value, never a panic; API
//! answers map to exit codes (5 for one the CLI cannot read).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};

/// Runs `weir <args>` with every service pointed at a closed port.
fn weir(args: &[&str], api_url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .env("WEIR_API_URL", api_url)
        .env("WEIR_NATS_URL", "nats://127.0.0.1:9")
        .env("WEIR_DATABASE_URL", "postgres://postgres@127.0.0.1:9/none")
        .env("WEIR_KAFKA_BROKERS", "127.0.0.1:9")
        .env_remove("WEIR_TIMEOUT")
        .env_remove("WEIR_WORKER_TTL")
        .output()
        .expect("run weir")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A one-shot HTTP server answering `status` with `body`; its base URL.
fn answer_once(status: &str, body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let status = status.to_owned();
    std::thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let _ = write!(
            conn,
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
    });
    url
}

const CLOSED: &str = "http://127.0.0.1:9";

#[test]
fn absurd_durations_are_usage_errors_naming_flag_and_value() {
    for bad in ["99999999999999999999s", "-1s", "1.5s", "5d"] {
        let o = weir(&["--timeout", bad, "job", "list"], CLOSED);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "--timeout {bad}: {err}");
        assert!(err.contains("--timeout") && err.contains(bad), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let o = weir(&["worker", "--worker-ttl", "99999999999999999999s"], CLOSED);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--worker-ttl") && err.contains("too long"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_bad_duration_from_the_environment_is_a_usage_error_too() {
    let o = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["job", "list"])
        .env("WEIR_API_URL", CLOSED)
        .env("WEIR_TIMEOUT", "5d")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--timeout") && err.contains("5d"), "{err}");
}

#[test]
fn an_api_answer_of_another_shape_exits_5_and_says_where() {
    let api = answer_once("200 OK", r#"[{"tenant":"default","name":7}]"#);
    let o = weir(&["job", "list"], &api);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(
        err.contains("unexpected answer to GET") && err.contains("[0].name"),
        "{err}"
    );
}

#[test]
fn api_errors_map_to_usage_and_unreachable() {
    let api = answer_once(
        "404 Not Found",
        r#"{"error":"job `x` not found in tenant `default`"}"#,
    );
    let o = weir(&["job", "status", "x"], &api);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("job `x` not found"), "{}", stderr(&o));

    let o = weir(&["job", "list"], CLOSED);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot reach the Weir API"),
        "{}",
        stderr(&o)
    );
}
