//! Which relay account a sign-in at an OpenID Connect provider is, once its claims made an
//! operator ([`super::claims::operator`]), and whether it may sign in.
//!
//! A sign-in through a provider is always to a relay account linked to that provider
//! ([`Source::Oidc`], no password): one the administrator added (`relay user add NAME --oidc
//! PROVIDER`), or, with the table's `auto_provision`, one the relay creates at the user's first
//! sign-in with the role their groups give. The account's first sign-in records the provider's
//! issuer and subject, and from then on only that user of the provider is that account:
//! someone who later gets the same user name at the provider is refused ("oidc subject
//! mismatch"). A password or directory account of the same name is never signed in to through
//! a provider, nor an account linked to another provider, and a disabled account stays shut
//! whatever the provider says.
//!
//! [`decide`] is the rule, sans-IO. [`admit`] applies it in one immediate transaction: the
//! relay's database lock keeps its own sign-ins apart, SQLite's write lock keeps `relay user`
//! commands running beside it out, so two first sign-ins at once make one account, and the
//! account, its subject and their audit entries are written together or not at all.

use rusqlite::{Transaction, TransactionBehavior};

use super::claims::{OidcOperator, VerifiedClaims};
use super::config::OidcConfig;
use crate::accounts::auth::Role;
use crate::accounts::users::{self, NewUser, OidcSubject, Source, User};
use crate::store::audit::{self, NewEntry};
use crate::store::db::{Database, DbError};

/// Audit action of an account the relay created at a first sign-in (`auto_provision`).
pub const PROVISIONED: &str = "user.provisioned";
/// Audit action of the first sign-in to an account the administrator linked: the user at the
/// provider is recorded.
pub const BOUND: &str = "user.oidc-bound";

/// What the relay does with a sign-in it lets in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Sign in to the existing account; `bind`: its first sign-in, record the user at the
    /// provider now.
    SignIn {
        /// Record the issuer and subject.
        bind: bool,
    },
    /// Create the account with this role (`auto_provision`), then sign in to it.
    Provision {
        /// The role the groups give.
        role: Role,
    },
}

/// Why a sign-in the provider vouched for does not get in; the words are for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The relay account is disabled.
    #[error("your relay account is disabled: ask your administrator")]
    Disabled,
    /// The relay account of that name signs in with a password (or is not linked).
    #[error("{}", not_linked(account, provider, *signs_in))]
    NotLinked {
        /// The account.
        account: String,
        /// The provider signed in with.
        provider: String,
        /// How the account signs in.
        signs_in: Source,
    },
    /// The relay account is linked to another provider.
    #[error("the relay account {account} signs in with the identity provider {linked}, not with {provider}: ask your administrator")]
    OtherProvider {
        /// The account.
        account: String,
        /// The provider it is linked to.
        linked: String,
        /// The provider signed in with.
        provider: String,
    },
    /// The relay account belongs to another user of the provider (another issuer or subject).
    #[error("the relay account {account} belongs to another user of the identity provider {provider} (oidc subject mismatch): ask your administrator")]
    SubjectMismatch {
        /// The account.
        account: String,
        /// The provider signed in with.
        provider: String,
    },
    /// No relay account, and the table does not create one.
    #[error("you have no relay account: ask your administrator to add you (relay user add {account} --oidc {provider})")]
    NoAccount {
        /// The account name the claims gave.
        account: String,
        /// The provider signed in with.
        provider: String,
    },
    /// No relay account, and the groups give no role to create one with.
    #[error("you have no relay account, and your groups at the identity provider give you no role on the relay: ask your administrator")]
    NoRole,
    /// The table does not let the provider's second factor stand in for the relay's.
    #[error("the relay needs a second factor: the identity provider must vouch for one (require_acr with mfa_replaces_totp), since the relay's own code cannot be typed in this sign-in")]
    NoSecondFactor,
}

fn not_linked(account: &str, provider: &str, source: Source) -> String {
    match source {
        Source::Oidc => format!(
            "the relay account {account} is not linked to the identity provider {provider}: ask \
             your administrator"
        ),
        Source::Local | Source::Ldap => format!(
            "the relay account {account} signs in with a password, not with {provider}: ask your \
             administrator"
        ),
    }
}

impl Refusal {
    /// A short reason for the audit log.
    pub fn audit_reason(&self) -> &'static str {
        match self {
            Refusal::Disabled => "oidc account disabled",
            Refusal::NotLinked { .. } => "oidc account not linked",
            Refusal::OtherProvider { .. } => "oidc account of another provider",
            Refusal::SubjectMismatch { .. } => "oidc subject mismatch",
            Refusal::NoAccount { .. } => "oidc no relay account",
            Refusal::NoRole => "oidc no relay account and no group role",
            Refusal::NoSecondFactor => "oidc no second factor",
        }
    }
}

/// Whether the user `claims` name, who `operator` is under `cfg`, gets into the relay account
/// `account` (the one named like them, if any), and how.
pub fn decide(
    cfg: &OidcConfig,
    claims: &VerifiedClaims,
    operator: &OidcOperator,
    account: Option<&User>,
) -> Result<Decision, Refusal> {
    let provider = || cfg.name.clone();
    let Some(account) = account else {
        if !cfg.auto_provision {
            return Err(Refusal::NoAccount {
                account: operator.account.to_string(),
                provider: provider(),
            });
        }
        let role = operator.role.ok_or(Refusal::NoRole)?;
        // Checked before anything is created: a refused sign-in leaves no account behind.
        second_factor(operator)?;
        return Ok(Decision::Provision { role });
    };
    if account.disabled {
        return Err(Refusal::Disabled);
    }
    let link = match (account.source, &account.oidc) {
        (Source::Oidc, Some(link)) => link,
        (signs_in, _) => {
            return Err(Refusal::NotLinked {
                account: account.name.clone(),
                provider: provider(),
                signs_in,
            })
        }
    };
    if link.provider != cfg.name {
        return Err(Refusal::OtherProvider {
            account: account.name.clone(),
            linked: link.provider.clone(),
            provider: provider(),
        });
    }
    let bind = match &link.subject {
        None => true,
        Some(s) if s.issuer == claims.issuer && s.subject == claims.subject => false,
        Some(_) => {
            return Err(Refusal::SubjectMismatch {
                account: account.name.clone(),
                provider: provider(),
            })
        }
    };
    second_factor(operator)?;
    Ok(Decision::SignIn { bind })
}

/// An acr outside `require_acr` was refused with the claims; what is left is a table that does
/// not let the provider's second factor stand in for the relay's (whose TOTP cannot be typed
/// in a sign-in at the provider).
fn second_factor(operator: &OidcOperator) -> Result<(), Refusal> {
    match operator.second_factor_done {
        true => Ok(()),
        false => Err(Refusal::NoSecondFactor),
    }
}

/// The account a sign-in got into.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// The relay account, as it is now (linked, its subject recorded).
    pub account: User,
    /// The relay created it at this sign-in.
    pub provisioned: bool,
}

/// Applies [`decide`] to the database at `now`, for a sign-in from `actor` (the address):
/// creates the account (`auto_provision`) or records the subject (its first sign-in), with
/// their audit entries ([`PROVISIONED`], [`BOUND`]), all in one transaction. A refusal changes
/// nothing.
pub fn admit(
    db: &Database,
    cfg: &OidcConfig,
    claims: &VerifiedClaims,
    operator: &OidcOperator,
    actor: &str,
    now: u64,
) -> Result<Result<Admitted, Refusal>, DbError> {
    let name = operator.account.as_str();
    let subject = OidcSubject {
        issuer: claims.issuer.clone(),
        subject: claims.subject.clone(),
    };
    let who = format!(
        "provider={} issuer={} subject={}",
        cfg.name, claims.issuer, claims.subject
    );
    let record = |action: &str, detail: &str| {
        audit::append(
            db,
            &NewEntry {
                at: now,
                actor,
                action,
                subject: Some(name),
                detail: Some(detail),
                session: None,
            },
        )
    };
    // Twice at most: a change between the lookup and the write (which the write lock held
    // from the lookup on rules out) is decided again on what is there then.
    for _ in 0..2 {
        let tx = Transaction::new_unchecked(db.conn(), TransactionBehavior::Immediate)?;
        let found = users::find(db, name)?;
        let decision = match decide(cfg, claims, operator, found.as_ref()) {
            Ok(d) => d,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let provisioned = match (decision, &found) {
            (Decision::Provision { role }, _) => {
                let new = NewUser {
                    role,
                    ..NewUser::oidc(name, &cfg.name, now)
                };
                if users::insert_provisioned(&tx, &new, &subject)?.is_none() {
                    continue;
                }
                record(PROVISIONED, &format!("role={role} {who}"))?;
                true
            }
            (Decision::SignIn { bind: true }, Some(account)) => {
                if !users::bind_oidc_subject(&tx, account.id, &subject, now)? {
                    continue;
                }
                record(BOUND, &format!("{who} (first sign-in)"))?;
                false
            }
            (Decision::SignIn { .. }, _) => false,
        };
        let Some(account) = users::find(db, name)? else {
            continue;
        };
        tx.commit()?;
        return Ok(Ok(Admitted {
            account,
            provisioned,
        }));
    }
    Err(DbError::Sql(rusqlite::Error::QueryReturnedNoRows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::account_name::AccountName;
    use crate::accounts::password::PasswordPolicy;
    use serde_json::Map;

    const ISSUER: &str = "https://idp.example";
    const NOW: u64 = 1_800_000_000;

    fn cfg(extra: &str) -> OidcConfig {
        let text = format!(
            "name = \"corp\"\nissuer = \"{ISSUER}\"\nclient_id = \"relay\"\n\
             operator_group = \"ops\"\nadmin_group = \"admins\"\n\
             require_acr = [\"mfa\"]\nmfa_replaces_totp = true\n{extra}"
        );
        let cfg: OidcConfig = toml::from_str(&text).unwrap();
        cfg.validate().unwrap();
        cfg
    }

    fn claims(subject: &str) -> VerifiedClaims {
        VerifiedClaims {
            issuer: ISSUER.to_owned(),
            subject: subject.to_owned(),
            auth_time: Some(NOW),
            acr: Some("mfa".to_owned()),
            all: Map::new(),
        }
    }

    fn operator(name: &str, role: Option<Role>) -> OidcOperator {
        OidcOperator {
            account: AccountName::parse(name).unwrap(),
            display_name: None,
            organisation: None,
            role,
            permissions: None,
            second_factor_done: true,
            not_after: None,
        }
    }

    fn account(source: Source, link: Option<(&str, Option<&str>)>) -> User {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Database::create(&dir.path().join("relay.db")).unwrap();
        let new = match link {
            Some((provider, _)) => NewUser::oidc("alice", provider, NOW),
            None => NewUser {
                source,
                password: (source == Source::Local).then_some("alice's long password"),
                two_factor: false,
                ..NewUser::operator("alice", "", NOW)
            },
        };
        users::add(&mut db, new, &PasswordPolicy::DEFAULT).unwrap();
        let mut user = users::get(&db, "alice").unwrap();
        if let (Some(link), Some((_, Some(sub)))) = (&mut user.oidc, link) {
            link.subject = Some(OidcSubject {
                issuer: ISSUER.to_owned(),
                subject: sub.to_owned(),
            });
        }
        user
    }

    #[test]
    fn an_account_linked_to_the_provider_signs_in_and_its_first_sign_in_binds_the_user() {
        let cfg = cfg("");
        let op = operator("alice", Some(Role::Operator));
        let fresh = account(Source::Oidc, Some(("corp", None)));
        assert_eq!(
            decide(&cfg, &claims("sub-a"), &op, Some(&fresh)),
            Ok(Decision::SignIn { bind: true })
        );
        let bound = account(Source::Oidc, Some(("corp", Some("sub-a"))));
        assert_eq!(
            decide(&cfg, &claims("sub-a"), &op, Some(&bound)),
            Ok(Decision::SignIn { bind: false })
        );
        // Without a group role too: the administrator added the account.
        let no_role = operator("alice", None);
        assert_eq!(
            decide(&cfg, &claims("sub-a"), &no_role, Some(&bound)),
            Ok(Decision::SignIn { bind: false })
        );
        // Someone else with the same user name at the provider, or the same subject at
        // another issuer.
        let err = decide(&cfg, &claims("sub-b"), &op, Some(&bound)).unwrap_err();
        assert_eq!(err.audit_reason(), "oidc subject mismatch");
        assert!(
            err.to_string().contains("alice belongs to another user"),
            "{err}"
        );
        let mut elsewhere = claims("sub-a");
        elsewhere.issuer = "https://other.example".to_owned();
        assert!(matches!(
            decide(&cfg, &elsewhere, &op, Some(&bound)),
            Err(Refusal::SubjectMismatch { .. })
        ));
    }

    #[test]
    fn password_directory_and_other_provider_accounts_are_not_signed_in_to() {
        let cfg = cfg("auto_provision = true");
        let op = operator("alice", Some(Role::Admin));
        for source in [Source::Local, Source::Ldap] {
            let err = decide(&cfg, &claims("a"), &op, Some(&account(source, None))).unwrap_err();
            assert_eq!(err.audit_reason(), "oidc account not linked");
            assert_eq!(
                err.to_string(),
                "the relay account alice signs in with a password, not with corp: ask your \
                 administrator"
            );
        }
        let entra = account(Source::Oidc, Some(("entra", None)));
        let err = decide(&cfg, &claims("a"), &op, Some(&entra)).unwrap_err();
        assert_eq!(err.audit_reason(), "oidc account of another provider");
        assert!(err
            .to_string()
            .contains("with the identity provider entra, not with corp"));
        // An OpenID Connect account whose link is damaged: not linked.
        let mut damaged = account(Source::Oidc, Some(("corp", None)));
        damaged.oidc = None;
        let err = decide(&cfg, &claims("a"), &op, Some(&damaged)).unwrap_err();
        assert!(err
            .to_string()
            .contains("is not linked to the identity provider corp"));
    }

    #[test]
    fn a_disabled_account_stays_shut_whatever_it_is() {
        let cfg = cfg("auto_provision = true");
        let op = operator("alice", Some(Role::Admin));
        for mut a in [
            account(Source::Oidc, Some(("corp", Some("a")))),
            account(Source::Oidc, Some(("corp", None))),
            account(Source::Local, None),
        ] {
            a.disabled = true;
            assert_eq!(
                decide(&cfg, &claims("a"), &op, Some(&a)),
                Err(Refusal::Disabled)
            );
        }
    }

    #[test]
    fn without_an_account_only_auto_provision_with_a_group_role_gets_in() {
        let op = operator("carol", Some(Role::Admin));
        let err = decide(&cfg(""), &claims("c"), &op, None).unwrap_err();
        assert_eq!(err.audit_reason(), "oidc no relay account");
        assert_eq!(
            err.to_string(),
            "you have no relay account: ask your administrator to add you (relay user add carol \
             --oidc corp)"
        );
        let auto = cfg("auto_provision = true");
        assert_eq!(
            decide(&auto, &claims("c"), &op, None),
            Ok(Decision::Provision { role: Role::Admin })
        );
        assert_eq!(
            decide(&auto, &claims("c"), &operator("carol", None), None),
            Err(Refusal::NoRole)
        );
    }

    #[test]
    fn no_second_factor_no_entry_and_no_account_created() {
        let mut op = operator("carol", Some(Role::Operator));
        op.second_factor_done = false;
        let auto = cfg("auto_provision = true");
        assert_eq!(
            decide(&auto, &claims("c"), &op, None),
            Err(Refusal::NoSecondFactor)
        );
        let linked = account(Source::Oidc, Some(("corp", None)));
        assert_eq!(
            decide(&auto, &claims("c"), &op, Some(&linked)),
            Err(Refusal::NoSecondFactor)
        );
    }

    fn temp_db() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(&dir.path().join("relay.db")).unwrap();
        (dir, db)
    }

    fn actions(db: &Database) -> Vec<(String, Option<String>, Option<String>)> {
        audit::recent(db, 100)
            .unwrap()
            .into_iter()
            .map(|e| (e.action, e.subject, e.detail))
            .collect()
    }

    #[test]
    fn admit_records_the_subject_once_and_refuses_another_user_after() {
        let (_dir, mut db) = temp_db();
        users::add(
            &mut db,
            NewUser::oidc("alice", "corp", 1),
            &PasswordPolicy::DEFAULT,
        )
        .unwrap();
        let cfg = cfg("");
        let op = operator("alice", None);
        let first = admit(&db, &cfg, &claims("sub-a"), &op, "192.0.2.1", NOW)
            .unwrap()
            .unwrap();
        assert!(!first.provisioned);
        let link = first.account.oidc.unwrap();
        assert_eq!(
            link.subject,
            Some(OidcSubject {
                issuer: ISSUER.to_owned(),
                subject: "sub-a".to_owned()
            })
        );
        assert_eq!(first.account.updated_at, NOW);
        let again = admit(&db, &cfg, &claims("sub-a"), &op, "192.0.2.1", NOW + 1)
            .unwrap()
            .unwrap();
        assert_eq!(again.account.updated_at, NOW, "nothing changed");
        let other = admit(&db, &cfg, &claims("sub-b"), &op, "192.0.2.2", NOW + 2).unwrap();
        assert!(matches!(other, Err(Refusal::SubjectMismatch { .. })));
        assert_eq!(
            actions(&db),
            [(
                BOUND.to_owned(),
                Some("alice".to_owned()),
                Some(format!(
                    "provider=corp issuer={ISSUER} subject=sub-a (first sign-in)"
                ))
            )]
        );
    }

    #[test]
    fn admit_provisions_with_the_group_role_and_a_refusal_writes_nothing() {
        let (_dir, db) = temp_db();
        let op = operator("carol", Some(Role::Admin));
        let refused = admit(&db, &cfg(""), &claims("c"), &op, "192.0.2.1", NOW).unwrap();
        assert!(matches!(refused, Err(Refusal::NoAccount { .. })));
        assert!(users::find(&db, "carol").unwrap().is_none());
        assert!(actions(&db).is_empty());

        let auto = cfg("auto_provision = true");
        let got = admit(&db, &auto, &claims("c"), &op, "192.0.2.1", NOW)
            .unwrap()
            .unwrap();
        assert!(got.provisioned);
        let carol = users::get(&db, "carol").unwrap();
        assert_eq!(carol, got.account);
        assert_eq!(carol.role, Role::Admin);
        assert_eq!(carol.source, Source::Oidc);
        assert_eq!(carol.oidc.as_ref().unwrap().provider, "corp");
        assert!(!carol.two_factor && !carol.disabled);
        assert_eq!(carol.password_hash, users::OIDC_PASSWORD);
        // The names customers see stay the provider's (the account sets none of its own).
        assert_eq!(carol.display_name, None);
        assert_eq!(carol.permissions, users::DEFAULT_PERMISSIONS);
        assert_eq!(
            actions(&db),
            [(
                PROVISIONED.to_owned(),
                Some("carol".to_owned()),
                Some(format!(
                    "role=admin provider=corp issuer={ISSUER} subject=c"
                ))
            )]
        );
        // The next sign-in is to that account; its groups no longer decide the role.
        let op = operator("carol", Some(Role::Operator));
        let next = admit(&db, &auto, &claims("c"), &op, "192.0.2.1", NOW + 1)
            .unwrap()
            .unwrap();
        assert!(!next.provisioned);
        assert_eq!(next.account.role, Role::Admin);
        assert_eq!(actions(&db).len(), 1);
    }

    #[test]
    fn first_sign_ins_at_once_make_one_account() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.db");
        drop(Database::create(&path).unwrap());
        let auto = cfg("auto_provision = true");
        // Two handles on one file, as two processes would have (the relay's own sign-ins are
        // also serialised by its database lock).
        let outcomes: Vec<_> = std::thread::scope(|s| {
            let racers: Vec<_> = ["same", "same", "other"]
                .into_iter()
                .map(|sub| {
                    let (auto, path) = (&auto, &path);
                    s.spawn(move || {
                        let db = Database::open(path).unwrap();
                        let op = operator("carol", Some(Role::Operator));
                        admit(&db, auto, &claims(sub), &op, "192.0.2.1", NOW).unwrap()
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let db = Database::open(&path).unwrap();
        assert_eq!(users::list(&db).unwrap().len(), 1);
        let made = outcomes
            .iter()
            .filter(|o| o.as_ref().is_ok_and(|a| a.provisioned))
            .count();
        assert_eq!(made, 1, "{outcomes:?}");
        let carol = users::get(&db, "carol").unwrap();
        let winner = carol.oidc.unwrap().subject.unwrap().subject;
        // Whoever was first is carol; the other subject is refused, the same one gets in.
        for (sub, outcome) in ["same", "same", "other"].iter().zip(&outcomes) {
            match outcome {
                Ok(_) => assert_eq!(*sub, winner),
                Err(refusal) => {
                    assert_ne!(*sub, winner);
                    assert!(matches!(refusal, Refusal::SubjectMismatch { .. }));
                }
            }
        }
        let provisioned = actions(&db)
            .iter()
            .filter(|(a, ..)| a == PROVISIONED)
            .count();
        assert_eq!(provisioned, 1);
    }
}
