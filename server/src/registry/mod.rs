//! Server metadata that carries authority: participants, tokens, role grants, sessions, cases,
//! the document registry and actor bindings.
//!
//! Held in memory (it is small) and persisted through the event log: every change is written as
//! an admin record together with the registry entries it touches, in one durable commit, and
//! only then applied in memory. Permission itself is decided in one place,
//! `toron_domain::policy::decide`; this module only gathers its inputs.
//!
//! Tokens: `toron_` + base58 of 32 random bytes (256 bits). Only their SHA-256 is stored; a
//! presented token is hashed and compared with every stored hash in constant time. Tokens are
//! never logged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};
use toron_protocol::{Refusal, RefusalKind};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use toron_domain::policy::{
    self, Access, DocContext, DocKey, Phase, Role, Scope, Subject, ALL_SERIES,
};
use toron_protocol::rate::TokenBucket;
use toron_protocol::{ActorGate, AdminAction, Attribution, DocumentId};

use crate::clock::Clock;
use crate::store::{PendingEvent, RegistryOp, Store, StoreError};

/// The participant created at bootstrap, organizer of every series.
pub const BOOTSTRAP_ADMIN: &str = "admin";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} exists already")]
    Exists(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Participant {
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub affiliation: String,
    /// official, expert, activist or resident.
    pub kind: String,
    /// name_and_affiliation, affiliation_only or role_only.
    pub attribution: String,
    #[serde(default)]
    pub department: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct RoleGrant {
    pub participant: String,
    pub role: String,
    /// `series` or `session`.
    pub scope: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    pub key: String,
    pub series: String,
    #[serde(default)]
    pub title: String,
    pub phase: String,
    #[serde(default)]
    pub facilitator: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Case {
    pub key: String,
    pub session: String,
    #[serde(default)]
    pub presenters: Vec<String>,
}

/// A department of a series: what people call it and the key documents use.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DepartmentName {
    pub key: String,
    pub name_ko: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DocEntry {
    /// The document id (base58check).
    pub id: String,
    /// The readable key; `None` for a document an organizer created ad hoc.
    pub key: Option<String>,
    pub series: String,
    pub created_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenEntry {
    participant: String,
    issued_at_ms: u64,
    /// After this moment the token no longer authenticates (importer tokens); `None`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at_ms: Option<u64>,
}

/// The series an organizer answers for (see [`Registry::organizes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Organizes {
    Nothing,
    /// These series only.
    Series(BTreeSet<String>),
    /// Every series (an organizer of `*`, such as the bootstrap admin).
    Everything,
}

impl Organizes {
    pub fn covers(&self, series: &str) -> bool {
        match self {
            Organizes::Nothing => false,
            Organizes::Series(s) => series != ALL_SERIES && s.contains(series),
            Organizes::Everything => true,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    participants: BTreeMap<String, Participant>,
    /// SHA-256 of a token → its entry.
    tokens: Vec<([u8; 32], TokenEntry)>,
    roles: BTreeSet<RoleGrant>,
    sessions: BTreeMap<String, Session>,
    cases: BTreeMap<String, Case>,
    docs: HashMap<DocumentId, DocEntry>,
    actors: HashMap<Vec<u8>, String>,
    /// Descriptive data of imports (series, fields, governments, departments, pledges,
    /// templates, participants' profiles, sessions, cases, import batches): kind → key → JSON.
    catalog: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
}

/// What a connection may do with one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub access: Access,
    pub by: Attribution,
    /// The document is not registered yet and this participant may create it.
    pub creates: bool,
}

#[derive(Debug)]
pub struct Registry {
    store: Arc<Store>,
    state: RwLock<State>,
    /// Serialises admin changes so that each sees the previous one applied.
    admin: tokio::sync::Mutex<()>,
    clock: Clock,
    /// Actor ids a batch on its way to the log introduces, held for its participant until the
    /// batch is durable (then they join `State::actors`) or fails (then they are let go): a
    /// binding is never applied before the change that makes it is in the log, yet no other
    /// participant can take the id meanwhile.
    reserved_actors: std::sync::Mutex<HashMap<Vec<u8>, String>>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A fresh bearer token: 256 random bits.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("toron_{}", bs58::encode(bytes).into_string())
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn grant_key(g: &RoleGrant) -> String {
    format!("role/{}/{}/{}:{}", g.participant, g.role, g.scope, g.name)
}

fn valid_key(what: &str, k: &str) -> Result<(), RegistryError> {
    let ok = !k.is_empty()
        && k.len() <= 128
        && k.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::Invalid(format!(
            "{what} `{k}`: use letters, digits, `-`, `_` or `.`"
        )))
    }
}

impl Registry {
    /// Loads everything the log holds.
    pub fn load(store: Arc<Store>, clock: Clock) -> Result<Arc<Self>, RegistryError> {
        let mut st = State::default();
        for (k, v) in store.registry_entries()? {
            let (kind, rest) = k.split_once('/').unwrap_or((k.as_str(), ""));
            let bad =
                |e: serde_json::Error| RegistryError::Invalid(format!("registry entry {k}: {e}"));
            match kind {
                "participant" => {
                    let p: Participant = serde_json::from_slice(&v).map_err(bad)?;
                    st.participants.insert(p.key.clone(), p);
                }
                "token" => {
                    let hash = unhex(rest).and_then(|h| <[u8; 32]>::try_from(h).ok());
                    if let Some(hash) = hash {
                        st.tokens
                            .push((hash, serde_json::from_slice(&v).map_err(bad)?));
                    }
                }
                "role" => {
                    st.roles.insert(serde_json::from_slice(&v).map_err(bad)?);
                }
                "session" => {
                    let s: Session = serde_json::from_slice(&v).map_err(bad)?;
                    st.sessions.insert(s.key.clone(), s);
                }
                "case" => {
                    let c: Case = serde_json::from_slice(&v).map_err(bad)?;
                    st.cases.insert(c.key.clone(), c);
                }
                "doc" => {
                    let d: DocEntry = serde_json::from_slice(&v).map_err(bad)?;
                    if let Ok(id) = d.id.parse::<DocumentId>() {
                        st.docs.insert(id, d);
                    }
                }
                "actor" => {
                    if let Some(actor) = unhex(rest) {
                        st.actors
                            .insert(actor, String::from_utf8_lossy(&v).into_owned());
                    }
                }
                "catalog" => {
                    if let Some((kind, key)) = rest.split_once('/') {
                        st.catalog
                            .entry(kind.to_string())
                            .or_default()
                            .insert(key.to_string(), serde_json::from_slice(&v).map_err(bad)?);
                    }
                }
                _ => tracing::warn!(key = %k, "unknown registry entry ignored"),
            }
        }
        Ok(Arc::new(Self {
            store,
            state: RwLock::new(st),
            admin: tokio::sync::Mutex::new(()),
            clock,
            reserved_actors: std::sync::Mutex::new(HashMap::new()),
        }))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// On an empty data directory: creates the organizer `admin` and its token. The token is
    /// `TORON_ADMIN_TOKEN` if given, else a new one written to `<data>/admin-token` (mode
    /// 0600). Returns where the token is, for the start-up message.
    pub async fn bootstrap(
        &self,
        data: &Path,
        supplied: Option<String>,
    ) -> Result<Option<String>, RegistryError> {
        if !self.read().participants.is_empty() {
            return Ok(None);
        }
        let admin = Participant {
            key: BOOTSTRAP_ADMIN.into(),
            name: "Administrator".into(),
            affiliation: String::new(),
            kind: "official".into(),
            attribution: "role_only".into(),
            department: None,
        };
        self.add_participant("server", admin).await?;
        self.grant(
            "server",
            BOOTSTRAP_ADMIN,
            Role::Organizer,
            Scope::Series(ALL_SERIES.into()),
        )
        .await?;
        let (token, place) = match supplied {
            Some(t) => (t, "the one given in TORON_ADMIN_TOKEN".to_string()),
            None => {
                let t = new_token();
                let path = data.join("admin-token");
                write_secret(&path, &t)?;
                (t, format!("in {}", path.display()))
            }
        };
        self.install_token("server", BOOTSTRAP_ADMIN, &token, None)
            .await?;
        Ok(Some(place))
    }

    /// The participant a bearer token belongs to. Compares against every stored hash without
    /// stopping early, so timing says nothing about which one (nearly) matched.
    pub fn authenticate(&self, token: &str) -> Option<String> {
        let h = token_hash(token);
        let now = self.clock.now_ms();
        let st = self.read();
        let mut found = None;
        for (stored, entry) in &st.tokens {
            if bool::from(stored.ct_eq(&h)) && entry.expires_at_ms.is_none_or(|t| now < t) {
                found = Some(entry.participant.clone());
            }
        }
        found
    }

    /// Whom `actor` belongs to in the log (reservations of batches not yet durable aside).
    pub fn actor_owner(&self, actor: &[u8]) -> Option<String> {
        self.read().actors.get(actor).cloned()
    }

    /// Whom `actor` belongs to, or is held for by a batch on its way to the log.
    fn actor_claimed_by(&self, actor: &[u8]) -> Option<String> {
        self.actor_owner(actor).or_else(|| {
            self.reserved_actors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(actor)
                .cloned()
        })
    }

    /// Holds `actor` for `participant` until its batch is durable; `false` if it is bound or
    /// held already.
    fn reserve_actor(&self, participant: &str, actor: &[u8]) -> bool {
        if self.read().actors.contains_key(actor) {
            return false;
        }
        let mut held = self
            .reserved_actors
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if held.contains_key(actor) {
            return false;
        }
        held.insert(actor.to_vec(), participant.to_string());
        true
    }

    /// The batch that introduced `bindings` is durable: they are bindings now.
    pub fn confirm_actors(&self, bindings: &[(Vec<u8>, String)]) {
        if bindings.is_empty() {
            return;
        }
        let mut st = self.write();
        let mut held = self
            .reserved_actors
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (actor, participant) in bindings {
            held.remove(actor);
            st.actors
                .entry(actor.clone())
                .or_insert_with(|| participant.clone());
        }
    }

    /// The batch that introduced `bindings` did not reach the log: the ids are free again.
    pub fn release_actors(&self, bindings: &[(Vec<u8>, String)]) {
        if bindings.is_empty() {
            return;
        }
        let mut held = self
            .reserved_actors
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (actor, participant) in bindings {
            if held.get(actor) == Some(participant) {
                held.remove(actor);
            }
        }
    }

    /// Whether `participant` holds a token that still authenticates.
    pub fn has_token(&self, participant: &str) -> bool {
        let now = self.clock.now_ms();
        self.read()
            .tokens
            .iter()
            .any(|(_, e)| e.participant == participant && e.expires_at_ms.is_none_or(|t| now < t))
    }

    pub fn participant(&self, key: &str) -> Option<Participant> {
        self.read().participants.get(key).cloned()
    }

    pub fn participants(&self) -> Vec<Participant> {
        self.read().participants.values().cloned().collect()
    }

    pub fn roles_of(&self, participant: &str) -> Vec<RoleGrant> {
        self.read()
            .roles
            .iter()
            .filter(|g| g.participant == participant)
            .cloned()
            .collect()
    }

    pub fn sessions(&self) -> Vec<Session> {
        self.read().sessions.values().cloned().collect()
    }

    fn subject_in(st: &State, participant: &str) -> Subject {
        Subject {
            participant: participant.to_string(),
            department: st
                .participants
                .get(participant)
                .and_then(|p| p.department.clone()),
            roles: st
                .roles
                .iter()
                .filter(|g| g.participant == participant)
                .filter_map(|g| {
                    let role = g.role.parse().ok()?;
                    let scope = if g.scope == "series" {
                        Scope::Series(g.name.clone())
                    } else {
                        Scope::Session(g.name.clone())
                    };
                    Some((role, scope))
                })
                .collect(),
        }
    }

    pub fn subject(&self, participant: &str) -> Subject {
        Self::subject_in(&self.read(), participant)
    }

    /// Whether `participant` is an organizer of any series (admin API access).
    pub fn is_organizer(&self, participant: &str) -> bool {
        self.organizes(participant) != Organizes::Nothing
    }

    /// The series `participant` organizes. An organizer acts only within them: grants,
    /// sessions, phases, cases, documents, imports and reports of other series are out of
    /// reach, and so are the tokens of people who take part elsewhere.
    pub fn organizes(&self, participant: &str) -> Organizes {
        let mut series = BTreeSet::new();
        for (r, s) in self.subject(participant).roles {
            if let (Role::Organizer, Scope::Series(x)) = (r, s) {
                if x == ALL_SERIES {
                    return Organizes::Everything;
                }
                series.insert(x);
            }
        }
        if series.is_empty() {
            Organizes::Nothing
        } else {
            Organizes::Series(series)
        }
    }

    /// The series a grant's scope lies in: the series itself, or the session's series.
    pub fn series_of_scope(&self, scope: &Scope) -> Option<String> {
        match scope {
            Scope::Series(s) => Some(s.clone()),
            Scope::Session(s) => self.read().sessions.get(s).map(|x| x.series.clone()),
        }
    }

    /// Whether `by` may issue or revoke `participant`'s token: an organizer of every series
    /// may; another organizer only for someone whose every role lies within the series they
    /// organize (so neither the bootstrap admin nor another series' people are in reach).
    pub fn may_manage_token_of(&self, by: &str, participant: &str) -> bool {
        let organizes = self.organizes(by);
        match organizes {
            Organizes::Everything => true,
            Organizes::Nothing => false,
            // (Someone without any role yet — a participant just added — is in reach.)
            Organizes::Series(_) => self.roles_of(participant).iter().all(|g| {
                let scope = if g.scope == "series" {
                    Scope::Series(g.name.clone())
                } else {
                    Scope::Session(g.name.clone())
                };
                self.series_of_scope(&scope)
                    .is_some_and(|s| organizes.covers(&s))
            }),
        }
    }

    fn context(st: &State, entry: &DocEntry) -> Option<DocContext> {
        let key: DocKey = entry.key.as_deref()?.parse().ok()?;
        let session_key = match &key {
            DocKey::Case { case } | DocKey::Eval { case, .. } => {
                st.cases.get(case).map(|c| c.session.clone())
            }
            DocKey::Notes { session, .. }
            | DocKey::NotesPrivate { session, .. }
            | DocKey::Triage { session }
            | DocKey::Session { session } => Some(session.clone()),
            DocKey::Report { .. } | DocKey::Response { .. } => None,
        };
        let session = session_key.as_ref().and_then(|k| st.sessions.get(k));
        let presenters = match &key {
            DocKey::Case { case } => st
                .cases
                .get(case)
                .map(|c| c.presenters.clone())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        Some(DocContext {
            series: session
                .map(|s| s.series.clone())
                .unwrap_or_else(|| entry.series.clone()),
            phase: session.and_then(|s| s.phase.parse::<Phase>().ok()),
            facilitator: session.and_then(|s| s.facilitator.clone()),
            session: session_key,
            presenters,
            key,
        })
    }

    /// What `participant` may do with document `id`. This is the question asked for every
    /// `request` and `sync`; the answer comes from `policy::decide`.
    pub fn decide(&self, participant: &str, id: &DocumentId) -> Decision {
        let st = self.read();
        let subject = Self::subject_in(&st, participant);
        let attributed = |access, role: Option<Role>| Decision {
            access,
            by: Attribution {
                participant: Some(participant.to_string()),
                role: role.map(|r| r.as_str().to_string()),
            },
            creates: false,
        };
        // Every rule is `policy`'s; this gathers its inputs.
        let Some(entry) = st.docs.get(id) else {
            let (access, role) = policy::decide_unregistered(&subject, DocKey::is_key_shaped(id));
            let mut d = attributed(access, role);
            d.creates = access == Access::Write;
            return d;
        };
        match Self::context(&st, entry) {
            Some(ctx) => {
                let access = policy::decide(&subject, &ctx);
                attributed(access, policy::acting_role(&subject, &ctx))
            }
            None => {
                let (access, role) =
                    policy::decide_ad_hoc(&subject, entry.created_by == participant);
                attributed(access, role)
            }
        }
    }

    /// Documents `participant` may read, with their keys.
    pub fn readable_documents(&self, participant: &str) -> Vec<(DocEntry, Access)> {
        let ids: Vec<(DocumentId, DocEntry)> = self
            .read()
            .docs
            .iter()
            .map(|(id, e)| (*id, e.clone()))
            .collect();
        let mut out: Vec<(DocEntry, Access)> = ids
            .into_iter()
            .filter_map(|(id, e)| {
                let d = self.decide(participant, &id);
                (d.access != Access::None).then_some((e, d.access))
            })
            .collect();
        out.sort_by(|a, b| a.0.key.cmp(&b.0.key).then(a.0.id.cmp(&b.0.id)));
        out
    }

    /// Where document `id` belongs for the timeline: its key and its session — or, for the
    /// series' own documents (the report, departments' responses), the series' timeline,
    /// kept under the series key. Unkeyed documents belong to none.
    pub fn timeline_context(&self, id: &DocumentId) -> Option<toron_domain::timeline::DocContext> {
        let st = self.read();
        let ctx = Self::context(&st, st.docs.get(id)?)?;
        let session = match (&ctx.key, ctx.session) {
            (_, Some(s)) => s,
            (DocKey::Report { .. } | DocKey::Response { .. }, None) => ctx.series,
            _ => return None,
        };
        Some(toron_domain::timeline::DocContext {
            session,
            key: ctx.key,
        })
    }

    /// Whether `participant` may follow the timeline under `key`: a session's (see
    /// [`Self::may_follow_session`]) or a series' (a role in the series or in one of its
    /// sessions) — entry by entry, only for documents they may read.
    pub fn may_follow_timeline(&self, participant: &str, key: &str) -> bool {
        if self.session(key).is_some() {
            return self.may_follow_session(participant, key);
        }
        let st = self.read();
        Self::subject_in(&st, participant)
            .roles
            .iter()
            .any(|(_, scope)| match scope {
                Scope::Series(x) => x == ALL_SERIES || x == key,
                Scope::Session(x) => st.sessions.get(x).is_some_and(|s| s.series == key),
            })
    }

    /// Whether `key` names a timeline: a session's or a known series'.
    pub fn has_timeline(&self, key: &str) -> bool {
        self.session(key).is_some() || self.knows_series(key)
    }

    /// Whether `participant` takes part in `session` (a role for it, or for its series) and
    /// may therefore follow its timeline — entry by entry, only for documents they may read.
    pub fn may_follow_session(&self, participant: &str, session: &str) -> bool {
        let st = self.read();
        let Some(s) = st.sessions.get(session) else {
            return false;
        };
        Self::subject_in(&st, participant)
            .roles
            .iter()
            .any(|(_, scope)| match scope {
                Scope::Series(x) => x == ALL_SERIES || *x == s.series,
                Scope::Session(x) => x == session,
            })
    }

    pub fn session(&self, key: &str) -> Option<Session> {
        self.read().sessions.get(key).cloned()
    }

    /// Whether `series` is known: imported, or named by a session.
    pub fn knows_series(&self, series: &str) -> bool {
        let st = self.read();
        st.catalog
            .get("series")
            .is_some_and(|m| m.contains_key(series))
            || st.sessions.values().any(|s| s.series == series)
    }

    /// The departments `series` defines (all series' for `None`), as its import listed them.
    pub fn departments(&self, series: Option<&str>) -> Vec<DepartmentName> {
        let st = self.read();
        let mut out: Vec<DepartmentName> = st
            .catalog
            .iter()
            .filter(|(kind, _)| match series {
                Some(s) => kind.strip_prefix("department:") == Some(s),
                None => kind.starts_with("department:"),
            })
            .flat_map(|(_, m)| m.iter())
            .map(|(key, v)| DepartmentName {
                key: key.clone(),
                name_ko: v["name_ko"].as_str().unwrap_or_default().to_string(),
                name_en: v["name_en"].as_str().map(str::to_string),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out.dedup_by(|a, b| a.key == b.key);
        out
    }

    /// The key of the department `given` names — its key, or its Korean or English name —
    /// among `series`' departments (every series' for `None`); otherwise a message naming it
    /// and the departments there are.
    pub fn resolve_department(
        &self,
        series: Option<&str>,
        given: &str,
    ) -> Result<String, RegistryError> {
        let known = self.departments(series);
        let given = given.trim();
        if let Some(d) = known.iter().find(|d| d.key == given) {
            return Ok(d.key.clone());
        }
        let named: Vec<&DepartmentName> = known
            .iter()
            .filter(|d| d.name_ko == given || d.name_en.as_deref() == Some(given))
            .collect();
        if let [d] = named.as_slice() {
            return Ok(d.key.clone());
        }
        let (whose, none) = match series {
            Some(s) => (
                format!("series {s}'s"),
                format!("series {s} defines no departments"),
            ),
            None => (
                "any series'".to_string(),
                "no series defines any departments".to_string(),
            ),
        };
        Err(RegistryError::Invalid(if known.is_empty() {
            format!("department `{given}` is not known: {none} (they come with the series' import)")
        } else {
            format!(
                "department `{given}` is not one of {whose} departments: {}",
                known
                    .iter()
                    .map(|d| format!("{} ({})", d.key, d.name_ko))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }))
    }

    /// The keyed documents registered for `series`, in key order.
    pub fn documents_of_series(&self, series: &str) -> Vec<DocKey> {
        let st = self.read();
        let mut out: Vec<DocKey> = st
            .docs
            .values()
            .filter(|d| d.series == series)
            .filter_map(|d| d.key.as_deref()?.parse().ok())
            .collect();
        out.sort();
        out
    }

    pub fn case(&self, key: &str) -> Option<Case> {
        self.read().cases.get(key).cloned()
    }

    /// The keyed documents of one session: its cases and their evaluations, its notes layers,
    /// its triage and session documents, in key order.
    pub fn documents_of_session(&self, session: &str) -> Vec<DocKey> {
        let Some(s) = self.session(session) else {
            return Vec::new();
        };
        let st = self.read();
        let of_case = |c: &str| st.cases.get(c).is_some_and(|c| c.session == session);
        self.documents_of_series(&s.series)
            .into_iter()
            .filter(|k| match k {
                DocKey::Case { case } | DocKey::Eval { case, .. } => of_case(case),
                DocKey::Notes { session: x, .. }
                | DocKey::NotesPrivate { session: x, .. }
                | DocKey::Triage { session: x }
                | DocKey::Session { session: x } => x == session,
                DocKey::Report { .. } | DocKey::Response { .. } => false,
            })
            .collect()
    }

    /// Whether `participant` holds `role` for exactly `scope`.
    pub fn has_grant(&self, participant: &str, role: Role, scope: &Scope) -> bool {
        self.read()
            .roles
            .contains(&scope_grant(participant, role, scope))
    }

    pub fn case_session(&self, case: &str) -> Option<String> {
        self.read().cases.get(case).map(|c| c.session.clone())
    }

    pub fn document(&self, id: &DocumentId) -> Option<DocEntry> {
        self.read().docs.get(id).cloned()
    }

    // ---- changes (each one durable, logged, then applied) -----------------------------------

    async fn commit(
        &self,
        by: &str,
        action: serde_json::Value,
        ops: Vec<RegistryOp>,
        apply: impl FnOnce(&mut State),
    ) -> Result<(), RegistryError> {
        let event = PendingEvent::Admin(AdminAction {
            at_ms: self.clock.now_ms(),
            by: by.to_string(),
            action: action.to_string(),
        });
        self.store.append_event(event, ops).await?;
        apply(&mut self.write());
        Ok(())
    }

    pub async fn add_participant(&self, by: &str, p: Participant) -> Result<(), RegistryError> {
        valid_key("participant", &p.key)?;
        let _g = self.admin.lock().await;
        if self.read().participants.contains_key(&p.key) {
            return Err(RegistryError::Exists(format!("participant {}", p.key)));
        }
        let ops = vec![RegistryOp::Put(format!("participant/{}", p.key), json(&p))];
        let action = serde_json::json!({ "participant_added": { "key": p.key, "kind": p.kind } });
        self.commit(by, action, ops, |st| {
            st.participants.insert(p.key.clone(), p);
        })
        .await
    }

    /// Issues a new token for `participant`, revoking any earlier one. Returns the token.
    pub async fn issue_token(&self, by: &str, participant: &str) -> Result<String, RegistryError> {
        let token = new_token();
        self.install_token(by, participant, &token, None).await?;
        Ok(token)
    }

    /// Issues a token that stops authenticating `ttl_ms` from now (importer tokens).
    pub async fn issue_expiring_token(
        &self,
        by: &str,
        participant: &str,
        ttl_ms: u64,
    ) -> Result<String, RegistryError> {
        let token = new_token();
        let until = self.clock.now_ms().saturating_add(ttl_ms);
        self.install_token(by, participant, &token, Some(until))
            .await?;
        Ok(token)
    }

    async fn install_token(
        &self,
        by: &str,
        participant: &str,
        token: &str,
        expires_at_ms: Option<u64>,
    ) -> Result<(), RegistryError> {
        let _g = self.admin.lock().await;
        if !self.read().participants.contains_key(participant) {
            return Err(RegistryError::NotFound(format!(
                "participant {participant}"
            )));
        }
        let hash = token_hash(token);
        let entry = TokenEntry {
            participant: participant.to_string(),
            issued_at_ms: self.clock.now_ms(),
            expires_at_ms,
        };
        let mut ops: Vec<RegistryOp> = self
            .token_hashes_of(participant)
            .iter()
            .map(|h| RegistryOp::Delete(format!("token/{}", hex(h))))
            .collect();
        ops.push(RegistryOp::Put(
            format!("token/{}", hex(&hash)),
            json(&entry),
        ));
        let action = match expires_at_ms {
            None => serde_json::json!({ "token_issued": { "participant": participant } }),
            Some(t) => {
                serde_json::json!({ "token_issued": { "participant": participant, "expires_at_ms": t } })
            }
        };
        self.commit(by, action, ops, |st| {
            st.tokens.retain(|(_, e)| e.participant != participant);
            st.tokens.push((hash, entry));
        })
        .await
    }

    fn token_hashes_of(&self, participant: &str) -> Vec<[u8; 32]> {
        self.read()
            .tokens
            .iter()
            .filter(|(_, e)| e.participant == participant)
            .map(|(h, _)| *h)
            .collect()
    }

    /// Revokes `participant`'s token. Returns whether there was one.
    pub async fn revoke_token(&self, by: &str, participant: &str) -> Result<bool, RegistryError> {
        let _g = self.admin.lock().await;
        let hashes = self.token_hashes_of(participant);
        if hashes.is_empty() {
            return Ok(false);
        }
        let ops = hashes
            .iter()
            .map(|h| RegistryOp::Delete(format!("token/{}", hex(h))))
            .collect();
        let action = serde_json::json!({ "token_revoked": { "participant": participant } });
        self.commit(by, action, ops, |st| {
            st.tokens.retain(|(_, e)| e.participant != participant)
        })
        .await?;
        Ok(true)
    }

    pub async fn grant(
        &self,
        by: &str,
        participant: &str,
        role: Role,
        scope: Scope,
    ) -> Result<(), RegistryError> {
        let _g = self.admin.lock().await;
        if !self.read().participants.contains_key(participant) {
            return Err(RegistryError::NotFound(format!(
                "participant {participant}"
            )));
        }
        let g = scope_grant(participant, role, &scope);
        if g.name != ALL_SERIES {
            valid_key(&g.scope, &g.name)?;
        }
        if self.read().roles.contains(&g) {
            return Ok(());
        }
        let action = serde_json::json!({ "role_granted": &g });
        let ops = vec![RegistryOp::Put(grant_key(&g), json(&g))];
        self.commit(by, action, ops, |st| {
            st.roles.insert(g);
        })
        .await
    }

    pub async fn revoke_role(
        &self,
        by: &str,
        participant: &str,
        role: Role,
        scope: Scope,
    ) -> Result<bool, RegistryError> {
        let _g = self.admin.lock().await;
        let g = scope_grant(participant, role, &scope);
        if !self.read().roles.contains(&g) {
            return Ok(false);
        }
        let action = serde_json::json!({ "role_revoked": &g });
        let ops = vec![RegistryOp::Delete(grant_key(&g))];
        self.commit(by, action, ops, |st| {
            st.roles.remove(&g);
        })
        .await?;
        Ok(true)
    }

    /// Creates or updates a session (phase changes are logged like everything else).
    pub async fn put_session(&self, by: &str, s: Session) -> Result<(), RegistryError> {
        valid_key("session", &s.key)?;
        valid_key("series", &s.series)?;
        s.phase
            .parse::<Phase>()
            .map_err(|e| RegistryError::Invalid(e.to_string()))?;
        let _g = self.admin.lock().await;
        if self.read().sessions.get(&s.key) == Some(&s) {
            return Ok(());
        }
        let action = serde_json::json!({ "session": { "key": s.key, "series": s.series, "phase": s.phase, "facilitator": s.facilitator } });
        let ops = vec![RegistryOp::Put(format!("session/{}", s.key), json(&s))];
        self.commit(by, action, ops, |st| {
            st.sessions.insert(s.key.clone(), s);
        })
        .await
    }

    pub async fn put_case(&self, by: &str, c: Case) -> Result<(), RegistryError> {
        valid_key("case", &c.key)?;
        let _g = self.admin.lock().await;
        if !self.read().sessions.contains_key(&c.session) {
            return Err(RegistryError::NotFound(format!("session {}", c.session)));
        }
        if self.read().cases.get(&c.key) == Some(&c) {
            return Ok(());
        }
        let action = serde_json::json!({ "case": &c });
        let ops = vec![RegistryOp::Put(format!("case/{}", c.key), json(&c))];
        self.commit(by, action, ops, |st| {
            st.cases.insert(c.key.clone(), c);
        })
        .await
    }

    /// Stores descriptive data (`kind`/`key` → JSON). Returns whether anything changed: the
    /// same value again is not logged.
    pub async fn put_catalog(
        &self,
        by: &str,
        kind: &str,
        key: &str,
        value: serde_json::Value,
    ) -> Result<bool, RegistryError> {
        valid_key(kind, key)?;
        let _g = self.admin.lock().await;
        if self.read().catalog.get(kind).and_then(|m| m.get(key)) == Some(&value) {
            return Ok(false);
        }
        let action = serde_json::json!({ "catalog": { "kind": kind, "key": key } });
        let ops = vec![RegistryOp::Put(
            format!("catalog/{kind}/{key}"),
            json(&value),
        )];
        let (kind, key) = (kind.to_string(), key.to_string());
        self.commit(by, action, ops, |st| {
            st.catalog.entry(kind).or_default().insert(key, value);
        })
        .await?;
        Ok(true)
    }

    /// The catalog: kind → key → JSON.
    pub fn catalog(&self) -> BTreeMap<String, BTreeMap<String, serde_json::Value>> {
        self.read().catalog.clone()
    }

    /// Logs that an import batch was applied to a session (a timeline entry).
    pub async fn record_import(
        &self,
        by: &str,
        detail: serde_json::Value,
    ) -> Result<(), RegistryError> {
        let _g = self.admin.lock().await;
        let action = serde_json::json!({ "import_applied": detail });
        self.commit(by, action, Vec::new(), |_| {}).await
    }

    /// Registers a keyed document (idempotent: the id is derived from the key).
    pub async fn register(
        &self,
        by: &str,
        key: &DocKey,
        series: &str,
    ) -> Result<DocumentId, RegistryError> {
        let id = key.document_id();
        let _g = self.admin.lock().await;
        if let Some(existing) = self.read().docs.get(&id) {
            // Registered already — or created ad hoc under this id (by a server older than
            // the reservation of key-shaped ids): that content is not this key's.
            return match existing.key {
                Some(_) => Ok(id),
                None => Err(RegistryError::Exists(format!(
                    "document {id} (created by {} without a key), which {key} would be",
                    existing.created_by
                ))),
            };
        }
        let entry = DocEntry {
            id: id.to_string(),
            key: Some(key.to_string()),
            series: series.to_string(),
            created_by: by.to_string(),
        };
        let action = serde_json::json!({ "document_registered": &entry });
        let ops = vec![RegistryOp::Put(format!("doc/{id}"), json(&entry))];
        self.commit(by, action, ops, |st| {
            st.docs.insert(id, entry);
        })
        .await?;
        Ok(id)
    }

    /// Registers a document an organizer or importer creates without a key.
    pub async fn register_ad_hoc(&self, by: &str, id: DocumentId) -> Result<(), RegistryError> {
        let _g = self.admin.lock().await;
        if self.read().docs.contains_key(&id) {
            return Ok(());
        }
        let entry = DocEntry {
            id: id.to_string(),
            key: None,
            series: String::new(),
            created_by: by.to_string(),
        };
        let action = serde_json::json!({ "document_created": &entry });
        let ops = vec![RegistryOp::Put(format!("doc/{id}"), json(&entry))];
        self.commit(by, action, ops, |st| {
            st.docs.insert(id, entry);
        })
        .await
    }
}

fn scope_grant(participant: &str, role: Role, scope: &Scope) -> RoleGrant {
    let (scope, name) = match scope {
        Scope::Series(s) => ("series", s.clone()),
        Scope::Session(s) => ("session", s.clone()),
    };
    RoleGrant {
        participant: participant.to_string(),
        role: role.as_str().to_string(),
        scope: scope.to_string(),
        name,
    }
}

/// Writes a secret file readable by its owner only.
fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

/// Actor bindings as the engine sees them: the registry's map and the ids held for batches on
/// their way to the log, plus the ids this batch holds, which the document actor persists with
/// its changes and confirms once they are durable.
#[derive(Debug)]
pub struct RegistryGate {
    pub registry: Arc<Registry>,
    pub new: Vec<(Vec<u8>, String)>,
    /// The document's key, when it has one: its kind's schema is enforced.
    pub key: Option<DocKey>,
    /// Each participant's allowance of changes per second.
    pub rates: Arc<ChangeRates>,
    /// The findings of a series' report as stored now (asked only when a change links one).
    pub findings: FindingLookup,
}

/// The keys of the findings in a series' report document, or why they cannot be read.
#[derive(Clone)]
pub struct FindingLookup(pub Arc<FindingsOf>);

/// A series key → its report's finding keys.
pub type FindingsOf = dyn Fn(&str) -> Result<BTreeSet<String>, String> + Send + Sync;

impl std::fmt::Debug for FindingLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FindingLookup")
    }
}

/// Changes per second per token: one [`TokenBucket`] per participant (a participant has one
/// token at a time), shared by all their connections and documents.
#[derive(Debug)]
pub struct ChangeRates {
    per_sec: u32,
    buckets: std::sync::Mutex<HashMap<String, TokenBucket>>,
}

/// Full buckets are forgotten once this many are kept (a full one equals a new one).
const KEPT_BUCKETS: usize = 4096;

impl ChangeRates {
    pub fn new(per_sec: u32) -> Self {
        Self {
            per_sec: per_sec.max(1),
            buckets: Default::default(),
        }
    }

    /// Takes `changes` from `participant`'s allowance, or says why not.
    pub fn admit(&self, participant: &str, changes: usize, now_ms: u64) -> Result<(), String> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= KEPT_BUCKETS && !buckets.contains_key(participant) {
            buckets.retain(|_, b| !b.is_full(now_ms));
        }
        let burst = self.per_sec.saturating_mul(10);
        let bucket = buckets
            .entry(participant.to_string())
            .or_insert_with(|| TokenBucket::new(self.per_sec, burst, now_ms));
        bucket.take(changes, now_ms).map_err(|wait_ms| {
            format!(
                "rate limit: more than {} changes per second (bursts up to {burst}) with one token; nothing of these {changes} changes was applied; send them again in {:.1} s",
                self.per_sec,
                wait_ms as f64 / 1000.0
            )
        })
    }
}

impl RegistryGate {
    /// The series a keyed document lies in.
    fn series_of(&self, key: &DocKey) -> Option<String> {
        match key {
            DocKey::Report { series } | DocKey::Response { series, .. } => Some(series.clone()),
            DocKey::Notes { session, .. }
            | DocKey::NotesPrivate { session, .. }
            | DocKey::Triage { session }
            | DocKey::Session { session } => self.registry.session(session).map(|s| s.series),
            DocKey::Case { case } | DocKey::Eval { case, .. } => self
                .registry
                .case_session(case)
                .and_then(|s| self.registry.session(&s))
                .map(|s| s.series),
        }
    }
}

impl ActorGate for RegistryGate {
    fn check(&self, participant: &str, actor: &[u8]) -> Result<(), Refusal> {
        match self.registry.actor_claimed_by(actor) {
            Some(owner) if owner != participant => Err(Refusal::new(
                RefusalKind::Actor,
                format!(
                    "the Automerge actor id {} belongs to another participant",
                    &hex(actor)
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Holds the id for the participant; the document actor confirms it once the batch is
    /// durable, or lets it go (`Registry::confirm_actors`, `Registry::release_actors`).
    fn bind(&mut self, participant: &str, actor: &[u8]) {
        if self.registry.reserve_actor(participant, actor) {
            self.new.push((actor.to_vec(), participant.to_string()));
        }
    }

    fn admit(&mut self, participant: &str, changes: usize, now_ms: u64) -> Result<(), Refusal> {
        self.rates
            .admit(participant, changes, now_ms)
            .map_err(|m| Refusal::new(RefusalKind::Rate, m))
    }

    fn check_content(
        &self,
        doc: &automerge::Automerge,
        changes: &[automerge::Change],
    ) -> Result<(), Refusal> {
        match &self.key {
            Some(k) => toron_domain::schema::check_with(
                k,
                doc,
                changes,
                &SeriesReferences {
                    registry: &self.registry,
                    series: self.series_of(k),
                    findings: &self.findings,
                },
            ),
            None => Ok(()),
        }
    }
}

/// What a document's references are checked against: its series' entries in the registry.
struct SeriesReferences<'a> {
    registry: &'a Registry,
    series: Option<String>,
    findings: &'a FindingLookup,
}

impl toron_domain::schema::References for SeriesReferences<'_> {
    fn department(&self, department: &str) -> Result<(), String> {
        match &self.series {
            // A key exactly: a name would break the export that reads it back.
            Some(s) => match self.registry.resolve_department(Some(s), department) {
                Ok(k) if k == department => Ok(()),
                Ok(k) => Err(format!(
                    "department `{department}` is written by its key, `{k}`"
                )),
                Err(e) => Err(e.to_string()),
            },
            None => Err(format!(
                "department `{department}`: this document belongs to no known series"
            )),
        }
    }

    fn finding(&self, finding: &str) -> Result<(), String> {
        let Some(series) = &self.series else {
            return Err(format!(
                "finding `{finding}`: this document belongs to no known series"
            ));
        };
        let known = (self.findings.0)(series)?;
        if known.contains(finding) {
            return Ok(());
        }
        let shown: Vec<&str> = known.iter().take(12).map(String::as_str).collect();
        Err(if shown.is_empty() {
            format!("no finding `{finding}` in the report of series {series} (it has none yet)")
        } else {
            format!(
                "no finding `{finding}` in the report of series {series}; its findings: {}{}",
                shown.join(", "),
                if known.len() > shown.len() {
                    ", …"
                } else {
                    ""
                }
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// While a batch is on its way to the log, the actor id it introduces is held for its
    /// participant: another may not take it, yet the registry does not call it bound; a failed
    /// batch lets it go, a durable one binds it.
    #[test]
    fn a_held_actor_id_is_nobody_elses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), None).expect("store");
        let reg = Registry::load(store, Clock::manual(0)).expect("registry");
        let x = b"actor-x".to_vec();
        assert!(reg.reserve_actor("P-A", &x));
        assert!(!reg.reserve_actor("P-B", &x), "held for P-A");
        assert_eq!(reg.actor_claimed_by(&x).as_deref(), Some("P-A"));
        assert_eq!(reg.actor_owner(&x), None, "not bound before it is durable");
        reg.release_actors(&[(x.clone(), "P-A".into())]);
        assert_eq!(reg.actor_claimed_by(&x), None, "a failed batch lets it go");
        assert!(reg.reserve_actor("P-B", &x));
        reg.confirm_actors(&[(x.clone(), "P-B".into())]);
        assert_eq!(reg.actor_owner(&x).as_deref(), Some("P-B"));
        assert!(!reg.reserve_actor("P-A", &x), "bound to P-B for good");
    }
}
