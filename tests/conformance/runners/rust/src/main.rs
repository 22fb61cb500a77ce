//! Conformance runner for the Rust SDK: see tests/conformance/README.md.
//!
//!     accelplan-conformance --server HOST:PORT --cases DIR

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use accelplan::{Client, Code, Error, JsonCallError};
use serde_json::{Map, Value};

const DEADLINE: Duration = Duration::from_secs(10);
const DEFAULT_TOLERANCE: f64 = 1e-9;

/// Outcome of one call: the response as proto3 JSON, or the error.
enum Outcome {
    Response(Value),
    Error(Error),
}

/// Parses `request` with the SDK's proto3 JSON parser, calls the RPC, prints the response as proto3 JSON.
async fn call(client: &Client, rpc: &str, request: Value) -> Result<Outcome, String> {
    match client.call_json(rpc, request).await {
        Ok(response) => Ok(Outcome::Response(response)),
        Err(JsonCallError::Call(err)) => Ok(Outcome::Error(err)),
        Err(other) => Err(other.to_string()),
    }
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

// ---- matching rules (tests/conformance/README.md) ----

fn lower_camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper_next = false;
    for c in key.chars() {
        if c == '_' {
            upper_next = true;
        } else if upper_next {
            out.extend(c.to_uppercase());
            upper_next = false;
        } else if out.is_empty() {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A proto3 default, which proto3 JSON leaves out.
fn is_default(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty() || s == "0" || s.ends_with("_UNSPECIFIED"),
        Value::Bool(b) => !b,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Null => false,
    }
}

fn is_int_string(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Canonical decimal form of an integer: a string of digits, or an integral JSON number.
fn as_decimal(v: &Value) -> Option<String> {
    let raw = match v {
        Value::String(s) if is_int_string(s) => s.clone(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64()?;
                if !f.is_finite() || f.fract() != 0.0 {
                    return None;
                }
                format!("{f:.0}")
            }
        }
        _ => return None,
    };
    let (neg, digits) = match raw.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, raw.as_str()),
    };
    let digits = digits.trim_start_matches('0');
    Some(match (neg, digits.is_empty()) {
        (_, true) => "0".to_string(),
        (true, false) => format!("-{digits}"),
        (false, false) => digits.to_string(),
    })
}

fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!("{}...", &s[..s.char_indices().nth(117).map_or(s.len(), |(i, _)| i)])
    } else {
        s
    }
}

fn match_value(expected: &Value, actual: &Value, tol: f64, path: &str) -> Result<(), String> {
    let at = if path.is_empty() {
        "response".to_string()
    } else {
        path.to_string()
    };
    // Rule 3: integers, exactly, when either side is a string of digits.
    let int_string = |v: &Value| matches!(v, Value::String(s) if is_int_string(s));
    if int_string(expected) || int_string(actual) {
        return match (as_decimal(expected), as_decimal(actual)) {
            (Some(e), Some(a)) if e == a => Ok(()),
            _ => Err(format!("{at}: expected {}, got {}", show(expected), show(actual))),
        };
    }
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => match_object(e, a, tol, path),
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!("{at}: expected {} elements, got {}", e.len(), a.len()));
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                match_value(ev, av, tol, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (Value::Number(e), Value::Number(a)) => {
            let (e, a) = (e.as_f64().unwrap_or(f64::NAN), a.as_f64().unwrap_or(f64::NAN));
            let limit = if e == 0.0 { tol } else { tol * e.abs() };
            if (a - e).abs() <= limit {
                Ok(())
            } else {
                Err(format!("{at}: expected {e}, got {a} (tolerance {tol})"))
            }
        }
        (Value::String(e), Value::String(a)) if e == a => Ok(()),
        (Value::Bool(e), Value::Bool(a)) if e == a => Ok(()),
        (Value::Null, Value::Null) => Ok(()),
        _ => Err(format!("{at}: expected {}, got {}", show(expected), show(actual))),
    }
}

fn match_object(
    expected: &Map<String, Value>,
    actual: &Map<String, Value>,
    tol: f64,
    path: &str,
) -> Result<(), String> {
    for (key, ev) in expected {
        let camel = lower_camel(key);
        let sub = if path.is_empty() {
            camel.clone()
        } else {
            format!("{path}.{camel}")
        };
        match actual.iter().find(|(k, _)| lower_camel(k) == camel) {
            Some((_, av)) => match_value(ev, av, tol, &sub)?,
            None if is_default(ev) => {}
            None => return Err(format!("{sub}: expected {}, got nothing", show(ev))),
        }
    }
    Ok(())
}

// ---- cases ----

fn check(case: &Map<String, Value>, outcome: Outcome) -> Result<(), String> {
    let expect = case
        .get("expect")
        .and_then(Value::as_object)
        .ok_or("case has no \"expect\" object")?;
    let tol = match case.get("tolerance") {
        None => DEFAULT_TOLERANCE,
        Some(t) => t.as_f64().ok_or("\"tolerance\" is not a number")?,
    };
    if let Some(want) = expect.get("response") {
        return match outcome {
            Outcome::Response(got) => match_value(want, &got, tol, ""),
            Outcome::Error(err) => Err(format!(
                "expected a response, got {}: {}",
                code_name(err.code()),
                err.message()
            )),
        };
    }
    let want_code = expect
        .get("code")
        .and_then(Value::as_str)
        .ok_or("\"expect\" has neither \"response\" nor \"code\"")?;
    let err = match outcome {
        Outcome::Error(err) => err,
        Outcome::Response(got) => return Err(format!("expected {want_code}, got response {}", show(&got))),
    };
    if code_name(err.code()) != want_code {
        return Err(format!(
            "expected {want_code}, got {}: {}",
            code_name(err.code()),
            err.message()
        ));
    }
    if let Some(fields) = expect.get("fieldViolations") {
        let want: BTreeSet<&str> = fields
            .as_array()
            .and_then(|a| a.iter().map(Value::as_str).collect::<Option<_>>())
            .ok_or("\"fieldViolations\" is not a list of strings")?;
        let got: BTreeSet<&str> = err.field_violations().iter().map(|v| v.field.as_str()).collect();
        if want != got {
            return Err(format!(
                "expected field violations {want:?}, got {got:?} ({})",
                err.message()
            ));
        }
    }
    Ok(())
}

async fn run_case(client: &Client, case: &Value) -> (String, Result<(), String>) {
    let Some(case) = case.as_object() else {
        return ("<not an object>".into(), Err("case is not a JSON object".into()));
    };
    let name = case
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>")
        .to_string();
    let result = async {
        let rpc = case
            .get("rpc")
            .and_then(Value::as_str)
            .ok_or("case has no \"rpc\" string")?;
        let request = case
            .get("request")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        let outcome = call(client, rpc, request).await?;
        check(case, outcome)
    }
    .await;
    (name, result)
}

fn case_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

fn usage() -> ExitCode {
    eprintln!("usage: accelplan-conformance --server HOST:PORT --cases DIR");
    ExitCode::from(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut server = None;
    let mut cases = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--server" => server = args.next(),
            "--cases" => cases = args.next().map(PathBuf::from),
            _ => {
                if let Some(v) = arg.strip_prefix("--server=") {
                    server = Some(v.to_string());
                } else if let Some(v) = arg.strip_prefix("--cases=") {
                    cases = Some(PathBuf::from(v));
                } else {
                    return usage();
                }
            }
        }
    }
    let (Some(server), Some(cases)) = (server, cases) else {
        return usage();
    };
    let files = match case_files(&cases) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let client = match Client::builder(server.as_str()).timeout(DEADLINE).connect_lazy() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot set up a client for {server}: {e}");
            return ExitCode::from(2);
        }
    };

    let (mut passed, mut failed) = (0usize, 0usize);
    for file in files {
        let parsed: Result<Vec<Value>, String> = std::fs::read_to_string(&file)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str::<Value>(&text).map_err(|e| e.to_string()))
            .and_then(|doc| match doc.get("cases") {
                Some(Value::Array(a)) => Ok(a.clone()),
                _ => Err("no \"cases\" list".to_string()),
            });
        let list = match parsed {
            Ok(list) => list,
            Err(e) => {
                println!("FAIL {}: {e}", file.display());
                failed += 1;
                continue;
            }
        };
        for case in &list {
            let (name, result) = run_case(&client, case).await;
            match result {
                Ok(()) => {
                    println!("PASS {name}");
                    passed += 1;
                }
                Err(why) => {
                    println!("FAIL {name}: {why}");
                    failed += 1;
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
