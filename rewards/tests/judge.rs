//! The judge against a real chat-completions server on 127.0.0.1, started by each test: good
//! answers, 500s, malformed replies, time-outs, errors that must not be retried, and the cache.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{TIDY, bedroom, close, prepare, view};
use metaspatial_rewards::builtin::judge::{Judge, JudgeParams};
use metaspatial_rewards::{Registry, Reward, RewardOutcome, RewardSet};

/// What the server does with one request.
#[derive(Clone)]
enum Reply {
    /// 200 with a chat completion whose content is this text.
    Content(&'static str),
    /// This status with a short body.
    Status(u16),
    /// 200 with this raw body.
    Raw(&'static str),
    /// Wait this long, then hang up without answering.
    Hang(Duration),
}

const GRADES: &str = "```json\n{\"realism_and_3d_geometric_consistency\": {\"grade\": 8, \"comment\": \"ok\"},\n\
    \"functionality_and_activity_based_alignment\": {\"grade\": 7, \"comment\": \"ok\"},\n\
    \"layout_and_furniture\": {\"grade\": 7, \"comment\": \"ok\"},\n\
    \"color_scheme_and_material_choices\": {\"grade\": 9, \"comment\": \"ok\"},\n\
    \"overall_aesthetic_and_atmosphere\": {\"grade\": 8, \"comment\": \"ok\"}}\n```";

/// A server answering the n-th connection with `replies[n]`; records each request.
struct Server {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

fn serve(replies: Vec<Reply>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&requests);
    std::thread::spawn(move || {
        for reply in replies {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let log = Arc::clone(&log);
            // One thread per connection, so a hanging reply does not hold up the retry.
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    head.push_str(&line);
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                log.lock()
                    .unwrap()
                    .push(head + &String::from_utf8_lossy(&body));
                let (status, body) = match reply {
                    Reply::Content(text) => {
                        (200, serde_json::json!({"choices": [{"message": {"role": "assistant", "content": text}}]}).to_string())
                    }
                    Reply::Status(s) => (s, "{\"error\": \"server trouble\"}".to_owned()),
                    Reply::Raw(b) => (200, b.to_owned()),
                    Reply::Hang(d) => {
                        std::thread::sleep(d);
                        return;
                    }
                };
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    Server { url, requests }
}

fn judge(server: &Server, retries: u32, cache: Option<std::path::PathBuf>) -> Judge {
    let params: JudgeParams = ron::from_str(&format!(
        "(base_url: \"{}\", model: \"judge-model\", timeout_s: 0.5, retries: {retries}, backoff_s: 0.01)",
        server.url
    ))
    .unwrap();
    Judge::new(params, Some("sk-test".into()), cache).unwrap()
}

fn score(j: &Judge, seed: u8) -> RewardOutcome {
    let room = bedroom();
    let prepared = prepare(&room, TIDY);
    let views = [view(seed)];
    j.score(&prepared.context(&room).with_views(&views))
}

#[test]
fn grades_become_the_mean_over_ten() {
    let server = serve(vec![Reply::Content(GRADES)]);
    let out = score(&judge(&server, 0, None), 1);
    assert_eq!(out.failure, None);
    assert!((out.value - 0.78).abs() < 1e-12);
    close(out.components["color_scheme_and_material_choices"], 9.0);
    let requests = server.requests.lock().unwrap();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert!(r.starts_with("POST /v1/chat/completions"), "{r}");
    assert!(
        r.to_ascii_lowercase()
            .contains("authorization: bearer sk-test")
    );
    assert!(
        r.contains("data:image/png;base64,iVBORw0KGgo"),
        "the render is sent as a PNG data URL"
    );
    assert!(r.contains("judge-model") && r.contains("A calm bedroom"));
}

#[test]
fn transient_failures_are_retried() {
    for bad in [
        Reply::Status(500),
        Reply::Status(429),
        Reply::Raw("<html>not json</html>"),
        Reply::Content("I cannot grade this."),
        Reply::Hang(Duration::from_secs(2)),
    ] {
        let server = serve(vec![bad, Reply::Content(GRADES)]);
        let out = score(&judge(&server, 2, None), 2);
        assert_eq!(out.failure, None);
        assert!((out.value - 0.78).abs() < 1e-12);
        assert_eq!(server.requests.lock().unwrap().len(), 2);
    }
}

#[test]
fn persistent_failures_and_client_errors_fail_with_a_reason() {
    let server = serve(vec![
        Reply::Status(500),
        Reply::Status(503),
        Reply::Status(500),
    ]);
    let why = score(&judge(&server, 2, None), 3).failure.unwrap();
    assert!(why.starts_with("after 3 attempt(s): HTTP 500"), "{why}");
    let server = serve(vec![Reply::Status(401), Reply::Content(GRADES)]);
    let why = score(&judge(&server, 2, None), 3).failure.unwrap();
    assert!(why.contains("HTTP 401"), "{why}");
    assert_eq!(
        server.requests.lock().unwrap().len(),
        1,
        "a bad key is not retried"
    );
}

#[test]
fn identical_renders_are_judged_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(vec![Reply::Content(GRADES), Reply::Content(GRADES)]);
    let j = judge(&server, 0, Some(dir.path().to_path_buf()));
    let a = score(&j, 5);
    assert_eq!(score(&j, 5), a);
    assert_eq!(server.requests.lock().unwrap().len(), 1);
    assert_eq!(score(&j, 6).failure, None);
    assert_eq!(server.requests.lock().unwrap().len(), 2);
    // A new judge finds the grades on disk.
    let offline = serve(vec![]);
    assert_eq!(
        score(&judge(&offline, 0, Some(dir.path().to_path_buf())), 5),
        a
    );
}

#[test]
fn no_view_no_request() {
    let server = serve(vec![]);
    let room = bedroom();
    let prepared = prepare(&room, TIDY);
    assert!(
        judge(&server, 0, None)
            .score(&prepared.context(&room))
            .failure
            .is_some()
    );
}

/// Regression: `api_key_env: "…"` was refused ("Expected option but found the string") because
/// `params` lost the config's implicit `Some`; `cache_dir` is taken from the config's directory.
#[test]
fn optional_params_take_plain_values_and_the_cache_lives_beside_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rewards.ron");
    let config = |extra: &str| {
        format!(
            "(rewards: [(reward: \"judge\", weight: 1.0,\n  params: (base_url: \"http://127.0.0.1:9/v1\", model: \"m\", {extra}))])"
        )
    };
    let build = |text: String| {
        std::fs::write(&path, text).unwrap();
        RewardSet::from_file(&path, &Registry::with_builtins())
    };
    let unset = "METASPATIAL_TEST_NEVER_SET_KEY";
    let e = build(config(&format!("api_key_env: \"{unset}\""))).unwrap_err();
    assert!(
        e.to_string().contains(&format!(
            "the environment variable `{unset}` (api_key_env) is not set"
        )),
        "{e}"
    );
    build(config("view: \"top\", cache_dir: \"grades\"")).unwrap();
    assert!(dir.path().join("grades").is_dir());
}
