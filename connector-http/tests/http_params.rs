//! The settings: the README's example parses and is accepted, and bad settings are
//! refused naming the key and what would be valid.

use connector_http::auth::{Auth, Source};
use connector_http::{HttpConnector, HttpParams, Pagination};

/// The TOML block of the README's "The REST API connector" section.
fn readme_example() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = &readme[readme
        .find("## The REST API connector")
        .expect("the section")..];
    let start = section.find("```toml\n").unwrap() + "```toml\n".len();
    section[start..start + section[start..].find("```").unwrap()].to_owned()
}

#[test]
fn the_readme_example_is_valid() {
    let params: HttpParams = toml::from_str(&readme_example()).unwrap();
    assert_eq!(params.policy, "api");
    assert_eq!(params.rules.len(), 2);
    assert_eq!(params.streams[0].page_size, 100);
    assert!(matches!(
        params.streams[0].pagination,
        Pagination::Cursor { .. }
    ));
    assert_eq!(
        params.auth,
        Some(Auth::Bearer {
            from: Source::Env("EXAMPLE_TOKEN".into())
        })
    );
    // Configuring reads the credential: point it at a file holding one.
    let file = std::env::temp_dir().join(format!("http-params-{}", std::process::id()));
    std::fs::write(&file, "t0ken\n").unwrap();
    let mut params = params;
    params.auth = Some(Auth::Bearer {
        from: Source::File(file.clone()),
    });
    let mut api = HttpConnector::new();
    api.configure(params).unwrap();
    assert_eq!(api.host_key(), "api.example.com:443");
    assert!(!format!("{api:?}").contains("t0ken"));
    let _ = std::fs::remove_file(file);
}

#[test]
fn the_pipelines_example_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../pipelines/http_api.toml");
    let params: HttpParams = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(params.streams.len(), 2);
    assert_eq!(params.streams[1].schema.as_ref().map(Vec::len), Some(3));
    let file = std::env::temp_dir().join(format!("http-params-pipe-{}", std::process::id()));
    std::fs::write(&file, "t0ken").unwrap();
    let mut params = params;
    params.auth = Some(Auth::Bearer {
        from: Source::File(file.clone()),
    });
    HttpConnector::new().configure(params).unwrap();
    let _ = std::fs::remove_file(file);
}

fn refused(edit: &str) -> String {
    let text = format!(
        "base_url = \"http://127.0.0.1:9/\"\n{edit}\n[[streams]]\nname = \"s\"\npath = \"s\"\n"
    );
    let params: HttpParams = match toml::from_str(&text) {
        Ok(p) => p,
        Err(e) => return e.to_string(),
    };
    HttpConnector::new()
        .configure(params)
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_settings_name_the_key_and_what_would_be_valid() {
    assert_eq!(
        refused("[[rules]]\naction = \"transient\""),
        "rules[0]: a rule needs a condition: status, header, body_contains or body_field"
    );
    assert_eq!(
        refused("[[rules]]\nbody_field = \"error.code\"\naction = \"transient\""),
        "rules[0].body_field: `error.code` is not a JSON pointer, expected one starting with `/`"
    );
    let unknown = refused("[[rules]]\nstatus = [500]\naction = \"retry\"");
    assert!(unknown.contains("unknown variant `retry`"), "{unknown}");
    assert!(unknown.contains("line 4"), "{unknown}");
    let policy = refused("policy = \"nope\"");
    assert!(
        policy.starts_with("policy: unknown policy `nope`, expected one of:"),
        "{policy}"
    );
    let text = "base_url = \"ftp://h/\"\n[[streams]]\nname = \"s\"\npath = \"s\"\n";
    let err = HttpConnector::new()
        .configure(toml::from_str(text).unwrap())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "base_url: expected an http:// or https:// URL with a host"
    );
}
