//! A debate's roster for the permission tests: one participant per role in session `S1` of
//! series `BM`, one case `C1`, and every kind of document registered and seeded with content.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use toron_cli::sync_client::{url_with_token, ClientError, Connection, DocSync};
use toron_domain::policy::{DocKey, Phase, Role, Scope};
use toron_domain::vocab::{Attribution, ParticipantKind};
use toron_protocol::DocumentId;
use toron_server::registry::{Case, Participant, Session};
use toron_server::Running;

use crate::LIMIT;

pub const SERIES: &str = "BM";
pub const SESSION: &str = "S1";
pub const CASE: &str = "C1";
pub const DEPARTMENT: &str = "welfare";

/// The token of the roster's participant holding `role`, from what [`set_up`] returned.
pub fn token(tokens: &[(Role, String)], role: Role) -> String {
    tokens
        .iter()
        .find(|(r, _)| *r == role)
        .map(|(_, t)| t.clone())
        .unwrap_or_else(|| panic!("no token for {role:?}"))
}

/// The participant holding `role` (one each).
pub fn who(role: Role) -> String {
    format!("P-{}", role.as_str().replace('_', "-"))
}

/// The document kinds the tests walk, as keys relative to the roster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Case,
    OwnEval,
    OtherEval,
    OwnNotes,
    OtherNotes,
    Triage,
    SessionDoc,
    Report,
    Response,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Case,
        Kind::OwnEval,
        Kind::OtherEval,
        Kind::OwnNotes,
        Kind::OtherNotes,
        Kind::Triage,
        Kind::SessionDoc,
        Kind::Report,
        Kind::Response,
    ];

    /// The document key of this kind as seen by `role`'s participant.
    pub fn key(self, role: Role) -> DocKey {
        let me = who(role);
        // "Other" documents belong to somebody who is not `me`.
        let other = if role == Role::Evaluator {
            who(Role::Activist)
        } else {
            who(Role::Evaluator)
        };
        let key = match self {
            Kind::Case => format!("case:{CASE}"),
            Kind::OwnEval => format!("eval:{CASE}:{me}"),
            Kind::OtherEval => format!("eval:{CASE}:{other}"),
            Kind::OwnNotes => format!("notes:{SESSION}:{me}"),
            Kind::OtherNotes => format!("notes:{SESSION}:{other}"),
            Kind::Triage => format!("triage:{SESSION}"),
            Kind::SessionDoc => format!("session:{SESSION}"),
            Kind::Report => format!("report:{SERIES}"),
            Kind::Response => format!("response:{SERIES}:{DEPARTMENT}"),
        };
        key.parse().expect("a document key")
    }
}

/// Registers and seeds every document any role will look at, in `draft`, as the importer
/// (and the department reviewer for the response, the organizer for the report).
async fn seed_documents(server: &Running, tokens: &[(Role, String)]) {
    let reg = server.registry();
    let by = "admin";
    let mut keys: Vec<DocKey> = Vec::new();
    for &role in Role::ALL {
        for kind in Kind::ALL {
            let k = kind.key(role);
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    let token_of = |r: Role| token(tokens, r);
    for key in keys {
        reg.register(by, &key, SERIES).await.expect("register");
        let seeder = match key {
            DocKey::Report { .. } => Role::Organizer,
            DocKey::Response { .. } => Role::DepartmentReviewer,
            _ => Role::Importer,
        };
        let mut conn = connect(server, &token_of(seeder))
            .await
            .expect("seeder connects");
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "key", key.to_string()).expect("put");
        let mut d = DocSync::new(key.document_id(), doc);
        conn.push(&mut d, LIMIT)
            .await
            .unwrap_or_else(|e| panic!("seeding {key}: {e}"));
        conn.close().await;
    }
}

/// The roster on a fresh secured server whose clock only moves when the test moves it
/// (from 2026-09-21); `configure` sets more of the configuration.
pub async fn on_manual_clock(
    configure: impl FnOnce(&mut toron_server::Config),
) -> (
    tempfile::TempDir,
    Running,
    toron_server::clock::Clock,
    Vec<(Role, String)>,
) {
    let clock = toron_server::clock::Clock::manual(1_790_000_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = crate::secure_config(dir.path());
    config.clock = clock.clone();
    configure(&mut config);
    let server = crate::start_with(config).await;
    let tokens = set_up(&server).await;
    (dir, server, clock, tokens)
}

/// A secured server with the roster in place: returns each role's token.
pub async fn set_up(server: &Running) -> Vec<(Role, String)> {
    let reg = server.registry();
    let by = "admin";
    reg.put_session(
        by,
        Session {
            key: SESSION.into(),
            series: SERIES.into(),
            title: "도서관".into(),
            phase: Phase::Draft,
            facilitator: Some(who(Role::Facilitator)),
            item: None,
        },
    )
    .await
    .expect("session");
    reg.put_session(
        by,
        Session {
            key: "S2".into(),
            series: SERIES.into(),
            title: "돌봄".into(),
            phase: Phase::Live,
            facilitator: None,
            item: None,
        },
    )
    .await
    .expect("session 2");
    let mut tokens = Vec::new();
    for &role in Role::ALL {
        let key = who(role);
        let department = (role == Role::DepartmentReviewer).then(|| DEPARTMENT.to_string());
        reg.add_participant(
            by,
            Participant {
                key: key.clone(),
                name: key.clone(),
                affiliation: String::new(),
                kind: ParticipantKind::Expert.into(),
                attribution: Attribution::RoleOnly,
                department,
            },
        )
        .await
        .expect("participant");
        // Organizers, importers and department reviewers work for the series; the others
        // for the session.
        let scope = match role {
            Role::Organizer | Role::Importer | Role::DepartmentReviewer => {
                Scope::Series(SERIES.into())
            }
            _ => Scope::Session(SESSION.into()),
        };
        reg.grant(by, &key, role, scope).await.expect("grant");
        tokens.push((role, reg.issue_token(by, &key).await.expect("token")));
    }
    reg.put_case(
        by,
        Case {
            key: CASE.into(),
            session: SESSION.into(),
            presenters: vec![who(Role::Presenter)],
        },
    )
    .await
    .expect("case");
    seed_documents(server, &tokens).await;
    tokens
}

pub async fn connect(server: &Running, token: &str) -> Result<Connection, ClientError> {
    Connection::connect(&url_with_token(&server.url(), Some(token)), LIMIT).await
}

pub async fn set_phase(server: &Running, phase: Phase) {
    crate::set_phase(server, SESSION, phase.as_str()).await;
}

/// Reads `id` over a fresh connection: `Some(doc)` if served, `None` if unavailable.
pub async fn try_read(server: &Running, token: &str, id: DocumentId) -> Option<DocSync> {
    let mut conn = connect(server, token).await.expect("connect");
    match conn.find(id, LIMIT).await {
        Ok(d) => Some(d),
        Err(ClientError::Unavailable(_)) => None,
        Err(e) => panic!("reading {id}: {e}"),
    }
}

/// How a write attempt ended.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Stored,
    /// `error` + close: the changes were refused.
    Refused(String),
    /// `doc-unavailable`: the document is not visible to this participant at all.
    Unavailable,
}

/// Tries to change `id` over a fresh connection (starting from what the server serves, or
/// from nothing if it serves nothing).
pub async fn try_write(server: &Running, token: &str, id: DocumentId, value: i64) -> WriteOutcome {
    let mut conn = connect(server, token).await.expect("connect");
    let mut d = match conn.find(id, LIMIT).await {
        Ok(d) => d,
        Err(ClientError::Unavailable(_)) => DocSync::new(id, AutoCommit::new()),
        Err(e) => panic!("finding {id}: {e}"),
    };
    d.doc.put(ROOT, "probe", value).expect("put");
    match conn.push(&mut d, LIMIT).await {
        Ok(()) => WriteOutcome::Stored,
        Err(ClientError::Server(m)) => WriteOutcome::Refused(m),
        Err(ClientError::Unavailable(_)) => WriteOutcome::Unavailable,
        Err(e) => panic!("writing {id}: {e}"),
    }
}
