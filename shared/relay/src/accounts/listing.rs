//! How `relay user list` and `relay user show` present accounts: an aligned table or text
//! for people, JSON for scripts. None of them shows a password hash or TOTP secret. An account
//! that signs in with an OpenID Connect provider shows the provider (and, once it signed in,
//! who it is there).

use crate::accounts::users::{Source, User, DEFAULT_PERMISSIONS};
use crate::policy::Policy;

const HEADER: [&str; 7] = [
    "NAME",
    "DISPLAY NAME",
    "ORGANISATION",
    "ROLE",
    "2FA",
    "RECORDING",
    "CREATED",
];

/// The account's own recording mode, or `policy` when it follows the policy.
fn own_recording(u: &User) -> &'static str {
    u.recording.map_or("policy", |m| m.name())
}

fn cells(u: &User) -> [String; 7] {
    let mut role = u.role.to_string();
    match (u.source, &u.oidc) {
        (Source::Ldap, _) => role.push_str(", ldap"),
        (Source::Oidc, Some(link)) => role.push_str(&format!(", oidc {}", link.provider)),
        (Source::Oidc, None) => role.push_str(", oidc (not linked)"),
        (Source::Local, _) => {}
    }
    if u.disabled {
        role.push_str(" (disabled)");
    }
    [
        u.name.clone(),
        u.display_name.clone().unwrap_or_else(|| "-".into()),
        u.organisation.clone().unwrap_or_else(|| "-".into()),
        role,
        if u.two_factor { "totp" } else { "-" }.into(),
        own_recording(u).into(),
        sightline_net::cli::utc(u.created_at),
    ]
}

/// The accounts as a table with a header line, columns padded to line up, one line each.
pub fn table(users: &[User]) -> String {
    let header = HEADER.map(String::from);
    let rows: Vec<[String; 7]> = users.iter().map(cells).collect();
    let mut widths = [0usize; 7];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The accounts as a JSON array (`permissions` as names, `recording` the account's own mode or
/// `"policy"`, `created_at` in Unix seconds).
pub fn json(users: &[User]) -> serde_json::Value {
    users
        .iter()
        .map(|u| {
            serde_json::json!({
                "name": u.name,
                "display_name": u.display_name,
                "organisation": u.organisation,
                "role": u.role.as_str(),
                "source": u.source.as_str(),
                "oidc": oidc(u),
                "permissions": mask_names(u),
                "session_limit_secs": u.session_limit_secs,
                "recording": own_recording(u),
                "two_factor": u.two_factor,
                "disabled": u.disabled,
                "created_at": u.created_at,
            })
        })
        .collect()
}

/// The provider of an account that signs in with OpenID Connect, and the issuer and subject
/// of its user there once recorded (null before the first sign-in); null for other accounts.
fn oidc(u: &User) -> serde_json::Value {
    match &u.oidc {
        None => serde_json::Value::Null,
        Some(link) => serde_json::json!({
            "provider": link.provider,
            "issuer": link.subject.as_ref().map(|s| &s.issuer),
            "subject": link.subject.as_ref().map(|s| &s.subject),
        }),
    }
}

/// The account's own permission mask: `"all"` when it does not narrow the policy.
fn mask_names(u: &User) -> serde_json::Value {
    if u.permissions == DEFAULT_PERMISSIONS {
        serde_json::json!("all")
    } else {
        serde_json::json!(u.permissions.names())
    }
}

/// One account in detail, with what it may do under `policy`.
pub fn show(u: &User, policy: &Policy, recovery_codes_left: usize) -> serde_json::Value {
    let effective = u.effective_permissions(policy.allowed());
    serde_json::json!({
        "name": u.name,
        "display_name": u.display_name,
        "organisation": u.organisation,
        "role": u.role.as_str(),
        "source": u.source.as_str(),
        "oidc": oidc(u),
        "disabled": u.disabled,
        "two_factor": u.two_factor,
        "recovery_codes_left": recovery_codes_left,
        "permissions": mask_names(u),
        "effective_permissions": effective.names(),
        "session_limit_secs": u.session_limit_secs,
        "effective_session_limit_secs": u.effective_session_limit(policy.max_session_secs()),
        "recording": own_recording(u),
        "effective_recording": u.effective_recording(policy.recording.mode).name(),
        "created_at": u.created_at,
        "updated_at": u.updated_at,
    })
}

/// [`show`]'s result as text, one `key: value` line each.
pub fn show_text(v: &serde_json::Value) -> String {
    let text = |key: &str| match &v[key] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        serde_json::Value::Array(a) if a.is_empty() => "none".into(),
        serde_json::Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    let minutes = |key: &str| {
        v[key]
            .as_u64()
            .map_or("policy".into(), |s| format!("{} min", s / 60))
    };
    let time = |key: &str| {
        v[key]
            .as_u64()
            .filter(|t| *t > 0)
            .map_or("-".into(), sightline_net::cli::utc)
    };
    let two_factor = if v["two_factor"].as_bool() == Some(true) {
        format!("totp, {} recovery codes left", v["recovery_codes_left"])
    } else {
        "none".into()
    };
    let link = &v["oidc"];
    let password = match (v["source"].as_str(), link["provider"].as_str()) {
        (Some("oidc"), Some(p)) => format!("none: signs in with the identity provider {p}"),
        (Some("oidc"), None) => "none: signs in with an identity provider (not linked)".into(),
        _ => text("source"),
    };
    let provider_user = match (link["issuer"].as_str(), link["subject"].as_str()) {
        (Some(i), Some(s)) => format!("{s} at {i}"),
        _ => "- (recorded at the first sign-in)".into(),
    };
    let status = if v["disabled"].as_bool() == Some(true) {
        "disabled"
    } else {
        "enabled"
    };
    let mut lines = vec![
        ("name", text("name")),
        ("display name", text("display_name")),
        ("organisation", text("organisation")),
        ("role", text("role")),
        ("password", password),
    ];
    if !link.is_null() {
        lines.push(("provider user", provider_user));
    }
    lines.extend([
        ("status", status.into()),
        ("two-factor", two_factor),
        ("permissions", text("permissions")),
        ("may do", text("effective_permissions")),
        ("session limit", minutes("session_limit_secs")),
        ("effective limit", minutes("effective_session_limit_secs")),
        ("recording", text("recording")),
        ("recorded", text("effective_recording")),
        ("created", time("created_at")),
        ("changed", time("updated_at")),
    ]);
    lines
        .iter()
        .map(|(k, val)| format!("{k:<16}{val}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::auth::Role;
    use crate::accounts::users::{OidcLink, OidcSubject};
    use sightline_core::cert::Permissions;

    fn user(name: &str, display: Option<&str>) -> User {
        User {
            id: 1,
            name: name.into(),
            display_name: display.map(Into::into),
            organisation: None,
            password_hash: "$argon2id$secret".into(),
            role: Role::Operator,
            source: Source::Local,
            oidc: None,
            permissions: DEFAULT_PERMISSIONS,
            session_limit_secs: None,
            recording: None,
            disabled: false,
            two_factor: true,
            created_at: 1_700_000_000,
            updated_at: 0,
        }
    }

    #[test]
    fn table_lines_up_and_hides_the_hash() {
        let mut bob = user("bob", None);
        bob.recording = Some(sightline_core::cert::RecordingMode::Required);
        let t = table(&[user("alice", Some("Zoë Smith")), bob]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "NAME   DISPLAY NAME  ORGANISATION  ROLE      2FA   RECORDING  CREATED"
        );
        assert_eq!(
            lines[1],
            "alice  Zoë Smith     -             operator  totp  policy     2023-11-14 22:13:20 UTC"
        );
        assert_eq!(
            lines[2],
            "bob    -             -             operator  totp  required   2023-11-14 22:13:20 UTC"
        );
        assert!(!t.contains("argon2"));
        assert_eq!(table(&[]).lines().count(), 1, "header only");
    }

    #[test]
    fn json_names_permissions_and_hides_the_hash() {
        let v = json(&[user("alice", None)]);
        assert_eq!(v[0]["name"], "alice");
        assert_eq!(v[0]["display_name"], serde_json::Value::Null);
        assert_eq!(v[0]["permissions"], "all");
        assert_eq!(v[0]["recording"], "policy");
        assert!(!v.to_string().contains("argon2"));
    }

    #[test]
    fn show_gives_what_the_policy_and_the_mask_allow() {
        let mut u = user("alice", None);
        u.permissions = Permissions::VIEW.union(Permissions::CLIPBOARD);
        u.session_limit_secs = Some(600);
        let v = show(&u, &Policy::default(), 7);
        assert_eq!(v["permissions"], serde_json::json!(["view", "clipboard"]));
        // The default policy allows view and control, not the clipboard.
        assert_eq!(v["effective_permissions"], serde_json::json!(["view"]));
        assert_eq!(v["effective_session_limit_secs"], 600);
        let t = show_text(&v);
        assert!(t.contains("may do          view\n"), "{t}");
        assert!(
            t.contains("two-factor      totp, 7 recovery codes left\n"),
            "{t}"
        );
        assert!(t.contains("session limit   10 min\n"), "{t}");
        assert!(t.contains("recording       policy\n"), "{t}");
        assert!(t.contains("recorded        off\n"), "{t}");
        assert!(!t.contains("argon2"));
    }

    #[test]
    fn an_oidc_account_shows_its_provider_and_its_user_there() {
        let mut carol = user("carol", None);
        carol.source = Source::Oidc;
        carol.two_factor = false;
        carol.oidc = Some(OidcLink {
            provider: "corp".into(),
            subject: None,
        });
        let t = table(std::slice::from_ref(&carol));
        assert!(
            t.lines().nth(1).unwrap().contains("operator, oidc corp  -"),
            "{t}"
        );
        let v = json(std::slice::from_ref(&carol));
        assert_eq!(v[0]["source"], "oidc");
        assert_eq!(
            v[0]["oidc"],
            serde_json::json!({"provider": "corp", "issuer": null, "subject": null})
        );
        let text = show_text(&show(&carol, &Policy::default(), 0));
        assert!(
            text.contains("password        none: signs in with the identity provider corp\n"),
            "{text}"
        );
        assert!(
            text.contains("provider user   - (recorded at the first sign-in)\n"),
            "{text}"
        );
        carol.oidc = Some(OidcLink {
            provider: "corp".into(),
            subject: Some(OidcSubject {
                issuer: "https://idp.example".into(),
                subject: "c-123".into(),
            }),
        });
        let text = show_text(&show(&carol, &Policy::default(), 0));
        assert!(
            text.contains("provider user   c-123 at https://idp.example\n"),
            "{text}"
        );
        // Other accounts have no such line.
        let alice = show_text(&show(&user("alice", None), &Policy::default(), 0));
        assert!(alice.contains("password        local\n"), "{alice}");
        assert!(!alice.contains("provider user"), "{alice}");
        assert_eq!(
            json(&[user("alice", None)])[0]["oidc"],
            serde_json::Value::Null
        );
    }
}
