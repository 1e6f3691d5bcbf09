//! Who may do what on NATS, as nats-server configuration. Pure: the text
//! written for a set of tenants is a function of them alone.
//!
//! Every NATS user is named after its token, so a client needs only the
//! token to log in: the user is `u` and the first 20 hex digits of the
//! token's SHA-256 (which Weir stores already), the password is the token
//! itself, and the server holds a bcrypt hash of it. A client's reply
//! subjects (`_INBOX_<user>.…`) are its own, so no other user can read them.

use sha2::{Digest, Sha256};

use crate::domain::tenant::{TenantState, DATA_SUBJECT_ROOT};
use crate::intake::Subjects;

/// The NATS user that logs in with a token whose stored hash is
/// `token_sha256` (`sha256:<hex>`); `None` for a malformed hash.
pub fn user_of_hash(token_sha256: &str) -> Option<String> {
    let hex = token_sha256.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("u{}", &hex[..20]))
}

/// The NATS user that logs in with `token`.
pub fn user_of_token(token: &str) -> String {
    let hex = hex::encode(Sha256::digest(token.as_bytes()));
    format!("u{}", &hex[..20])
}

/// The reply-subject prefix of `user`: the only inboxes it may read.
pub fn inbox_prefix(user: &str) -> String {
    format!("_INBOX_{user}")
}

/// One NATS login: a user, the bcrypt of its password, and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub password_bcrypt: String,
    /// `None`: everything (Weir's services and the admin).
    pub permissions: Option<Permissions>,
    /// Whom the login belongs to, written as a comment.
    pub owner: String,
}

/// Subjects a user may publish on and subscribe to; everything else is denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

/// What tenant `tenant`'s user may do: publish its commands and its data,
/// read its outcomes, events, dead letters, data and its own inbox.
pub fn tenant_permissions(subjects: &Subjects, tenant: &str, user: &str) -> Permissions {
    let data = format!("{DATA_SUBJECT_ROOT}.{tenant}.>");
    Permissions {
        publish: vec![subjects.command(tenant, ">"), data.clone()],
        subscribe: vec![
            subjects.outcome(tenant, ">"),
            subjects.event(tenant, ">"),
            subjects.dead_letter(tenant),
            data,
            format!("{}.>", inbox_prefix(user)),
        ],
    }
}

/// The logins of `tenants` (active ones that have a NATS password), after
/// `service`'s, in a stable order.
pub fn logins(
    subjects: &Subjects,
    service: Login,
    tenants: &[(String, TenantState)],
) -> Vec<Login> {
    let mut out = vec![service];
    let mut tenant_logins: Vec<Login> = tenants
        .iter()
        .filter(|(_, s)| s.active)
        .filter_map(|(name, s)| {
            let user = user_of_hash(&s.token_sha256)?;
            let password_bcrypt = s.nats_password_bcrypt.clone()?;
            Some(Login {
                permissions: Some(tenant_permissions(subjects, name, &user)),
                user,
                password_bcrypt,
                owner: format!("tenant {name}"),
            })
        })
        .collect();
    tenant_logins.sort_by(|a, b| a.owner.cmp(&b.owner));
    out.extend(tenant_logins);
    out
}

/// The tenants that get no NATS user because no bcrypt of their token was
/// ever sent (created before Weir wrote NATS users; `weir tenant
/// rotate-token` gives them one).
pub fn without_login(tenants: &[(String, TenantState)]) -> Vec<&str> {
    tenants
        .iter()
        .filter(|(_, s)| s.active && s.nats_password_bcrypt.is_none())
        .map(|(n, _)| n.as_str())
        .collect()
}

fn quoted(s: &str) -> String {
    // Every value here is checked to be plain ASCII without quotes; JSON's
    // quoting is nats-server's too.
    serde_json::Value::String(s.to_owned()).to_string()
}

fn list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|i| quoted(i)).collect();
    format!("[{}]", items.join(", "))
}

/// The `authorization` block for nats-server, to be included from its
/// configuration file.
pub fn render(logins: &[Login]) -> String {
    let mut out = String::from(
        "# Written by `weir serve` from the tenants in PostgreSQL; changes here are overwritten.\nauthorization {\n  users = [\n",
    );
    for l in logins {
        out.push_str(&format!("    # {}\n", l.owner));
        out.push_str(&format!(
            "    {{ user: {}, password: {}",
            quoted(&l.user),
            quoted(&l.password_bcrypt)
        ));
        if let Some(p) = &l.permissions {
            out.push_str(&format!(
                ", permissions: {{ publish: {{ allow: {} }}, subscribe: {{ allow: {} }} }}",
                list(&p.publish),
                list(&p.subscribe)
            ));
        }
        out.push_str(" }\n");
    }
    out.push_str("  ]\n}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tenant::token_hash;

    const BCRYPT: &str = "$2b$04$abcdefghijklmnopqrstuuN5tTKWWYQIIbDoxkYIkjPkx5Di3qcz.";

    fn tenant(token: &str, bcrypt: Option<&str>) -> TenantState {
        TenantState {
            active: true,
            token_sha256: token_hash(token),
            nats_password_bcrypt: bcrypt.map(str::to_owned),
            ..Default::default()
        }
    }

    fn service() -> Login {
        Login {
            user: user_of_token("admin-token"),
            password_bcrypt: BCRYPT.into(),
            permissions: None,
            owner: "Weir's services and the admin".into(),
        }
    }

    #[test]
    fn a_token_names_its_user_whether_known_whole_or_by_its_hash() {
        let u = user_of_token("weir_abc");
        assert_eq!(user_of_hash(&token_hash("weir_abc")), Some(u.clone()));
        assert_eq!(u.len(), 21);
        assert!(u.starts_with('u'));
        assert_ne!(u, user_of_token("weir_abd"));
        assert_eq!(user_of_hash("sha256:xyz"), None);
        assert_eq!(inbox_prefix("u1"), "_INBOX_u1");
    }

    #[test]
    fn a_tenant_may_touch_only_its_own_subjects() {
        let p = tenant_permissions(&Subjects::new("weir"), "alice", "u1");
        assert_eq!(p.publish, vec!["weir.cmd.alice.>", "data.alice.>"]);
        assert_eq!(
            p.subscribe,
            vec![
                "weir.out.alice.>",
                "weir.evt.alice.>",
                "weir.dlq.alice",
                "data.alice.>",
                "_INBOX_u1.>"
            ]
        );
        let all = format!("{:?}", p);
        for foreign in ["bob", "$JS", "_INBOX.", "weir.cmd.*", "weir.>"] {
            assert!(!all.contains(foreign), "{foreign} in {all}");
        }
    }

    #[test]
    fn only_live_tenants_with_a_nats_password_get_a_user() {
        let tenants = vec![
            ("zed".to_owned(), tenant("tz", Some(BCRYPT))),
            ("alice".to_owned(), tenant("ta", Some(BCRYPT))),
            ("old".to_owned(), tenant("to", None)),
            (
                "gone".to_owned(),
                TenantState {
                    active: false,
                    ..tenant("tg", Some(BCRYPT))
                },
            ),
        ];
        let l = logins(&Subjects::new("weir"), service(), &tenants);
        let owners: Vec<&str> = l.iter().map(|l| l.owner.as_str()).collect();
        assert_eq!(
            owners,
            vec![
                "Weir's services and the admin",
                "tenant alice",
                "tenant zed"
            ]
        );
        assert_eq!(l[1].user, user_of_token("ta"));
        assert_eq!(without_login(&tenants), vec!["old"]);
    }

    #[test]
    fn the_configuration_lists_each_user_with_its_permissions() {
        let tenants = vec![("alice".to_owned(), tenant("ta", Some(BCRYPT)))];
        let text = render(&logins(&Subjects::new("weir"), service(), &tenants));
        let alice = user_of_token("ta");
        assert!(text.contains("authorization {\n  users = [\n"), "{text}");
        assert!(
            text.contains(&format!(
                "{{ user: \"{}\", password: \"{BCRYPT}\" }}",
                user_of_token("admin-token")
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "{{ user: \"{alice}\", password: \"{BCRYPT}\", permissions: {{ publish: {{ allow: [\"weir.cmd.alice.>\", \"data.alice.>\"] }}, subscribe: {{ allow: [\"weir.out.alice.>\", \"weir.evt.alice.>\", \"weir.dlq.alice\", \"data.alice.>\", \"_INBOX_{alice}.>\"] }} }} }}"
            )),
            "{text}"
        );
        // The same tenants give the same text: no rewrite, no reload.
        assert_eq!(
            text,
            render(&logins(&Subjects::new("weir"), service(), &tenants))
        );
    }
}
