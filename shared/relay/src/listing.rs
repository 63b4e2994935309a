//! How `relay user list` shows accounts: an aligned table for people, JSON for scripts.
//! Neither shows the password hash.

use crate::users::User;

const HEADER: [&str; 5] = ["NAME", "DISPLAY NAME", "ORGANISATION", "ROLE", "CREATED"];

fn cells(u: &User) -> [String; 5] {
    let role = if u.disabled {
        format!("{} (disabled)", u.role)
    } else {
        u.role.clone()
    };
    [
        u.name.clone(),
        u.display_name.clone().unwrap_or_else(|| "-".into()),
        u.organisation.clone().unwrap_or_else(|| "-".into()),
        role,
        sightline_net::cli::utc(u.created_at),
    ]
}

/// The accounts as a table with a header line, columns padded to line up, one line each.
pub fn table(users: &[User]) -> String {
    let header = HEADER.map(String::from);
    let rows: Vec<[String; 5]> = users.iter().map(cells).collect();
    let mut widths = [0usize; 5];
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

/// The accounts as a JSON array (`permissions` as names, `created_at` in Unix seconds).
pub fn json(users: &[User]) -> serde_json::Value {
    users
        .iter()
        .map(|u| {
            serde_json::json!({
                "name": u.name,
                "display_name": u.display_name,
                "organisation": u.organisation,
                "role": u.role,
                "permissions": u.permissions.names(),
                "disabled": u.disabled,
                "created_at": u.created_at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::DEFAULT_PERMISSIONS;

    fn user(name: &str, display: Option<&str>) -> User {
        User {
            name: name.into(),
            display_name: display.map(Into::into),
            organisation: None,
            password_hash: "$argon2id$secret".into(),
            role: "operator".into(),
            permissions: DEFAULT_PERMISSIONS,
            disabled: false,
            created_at: 1_700_000_000,
        }
    }

    #[test]
    fn table_lines_up_and_hides_the_hash() {
        let t = table(&[user("alice", Some("Zoë Smith")), user("bob", None)]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "NAME   DISPLAY NAME  ORGANISATION  ROLE      CREATED"
        );
        assert_eq!(
            lines[1],
            "alice  Zoë Smith     -             operator  2023-11-14 22:13:20 UTC"
        );
        assert_eq!(
            lines[2],
            "bob    -             -             operator  2023-11-14 22:13:20 UTC"
        );
        assert!(!t.contains("argon2"));
        assert_eq!(table(&[]).lines().count(), 1, "header only");
    }

    #[test]
    fn json_names_permissions_and_hides_the_hash() {
        let v = json(&[user("alice", None)]);
        assert_eq!(v[0]["name"], "alice");
        assert_eq!(v[0]["display_name"], serde_json::Value::Null);
        assert_eq!(v[0]["permissions"], serde_json::json!(["view", "control"]));
        assert!(!v.to_string().contains("argon2"));
    }
}
