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

use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use toron_domain::policy::{self, Access, DocContext, DocKey, Role, Scope, Subject, ALL_SERIES};
use toron_domain::vocab::{self, ParticipantKind};
use toron_protocol::rate::TokenBucket;
use toron_protocol::{ActorGate, AdminAction, Attribution, DocumentId};

use crate::clock::Clock;
use crate::store::{PendingEvent, RegistryOp, Store, StoreError};

mod actors;
mod documents;
mod gate;
pub mod join_codes;
mod records;
mod writes;

pub use gate::{Allowances, ChangeRates, FindingLookup, FindingsOf, RegistryGate};
pub use records::{Case, DepartmentName, DocEntry, Organizes, Participant, RoleGrant, Session};
use records::{JoinCode, TokenEntry};
use writes::write_secret;

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

#[derive(Debug, Default)]
struct State {
    participants: BTreeMap<String, Participant>,
    /// SHA-256 of a token → its entry.
    tokens: Vec<([u8; 32], TokenEntry)>,
    /// SHA-256 of a join code → whose it is, until it is used or expires.
    join_codes: Vec<([u8; 32], JoinCode)>,
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

/// Hex text → bytes (`None` unless it is hex of whole bytes).
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
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
    format!(
        "role/{}/{}/{}:{}",
        g.participant,
        g.role,
        g.scope.as_str(),
        g.name
    )
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
        let st = Self::read_state(&store)?;
        Ok(Arc::new(Self {
            store,
            state: RwLock::new(st),
            admin: tokio::sync::Mutex::new(()),
            clock,
            reserved_actors: std::sync::Mutex::new(HashMap::new()),
        }))
    }

    /// Reads the registry again from the log: on a cluster node, after another node changed
    /// it (the entries arrived through the replicated log, not through this registry).
    pub fn reload(&self) -> Result<(), RegistryError> {
        let st = Self::read_state(&self.store)?;
        *self.write() = st;
        Ok(())
    }

    fn read_state(store: &Store) -> Result<State, RegistryError> {
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
                "join" => {
                    let hash = unhex(rest).and_then(|h| <[u8; 32]>::try_from(h).ok());
                    if let Some(hash) = hash {
                        st.join_codes
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
                    st.docs.insert(d.id, d);
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
        Ok(st)
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
            kind: ParticipantKind::Official.into(),
            attribution: vocab::Attribution::RoleOnly,
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

    /// A participant's grants that reach session `session` (of `series`): those of the
    /// session and of its series, and with `every_series` those over every series (`*`).
    /// In grant order.
    pub fn grants_in_session(
        &self,
        participant: &str,
        session: &str,
        series: Option<&str>,
        every_series: bool,
    ) -> Vec<RoleGrant> {
        let mut grants = self.roles_of(participant);
        grants.retain(|g| match g.scope() {
            Scope::Session(s) => s == session,
            Scope::Series(s) => Some(s.as_str()) == series || (every_series && s == ALL_SERIES),
        });
        grants
    }

    /// The roles of [`Registry::grants_in_session`] for a known session.
    pub fn roles_in_session(
        &self,
        participant: &str,
        s: &Session,
        every_series: bool,
    ) -> Vec<Role> {
        self.grants_in_session(participant, &s.key, Some(&s.series), every_series)
            .into_iter()
            .map(|g| g.role)
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
                .map(|g| (g.role, g.scope()))
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

    /// The series `participant` organizes (`policy::organizes` decides, from their roles).
    pub fn organizes(&self, participant: &str) -> Organizes {
        policy::organizes(&self.subject(participant))
    }

    /// The series a grant's scope lies in: the series itself, or the session's series.
    pub fn series_of_scope(&self, scope: &Scope) -> Option<String> {
        match scope {
            Scope::Series(s) => Some(s.clone()),
            Scope::Session(s) => self.read().sessions.get(s).map(|x| x.series.clone()),
        }
    }

    /// Whether `by` may issue or revoke `participant`'s token (`policy::may_manage_token`
    /// decides, from the series of each of `participant`'s roles).
    pub fn may_manage_token_of(&self, by: &str, participant: &str) -> bool {
        let their_series: Vec<Option<String>> = self
            .roles_of(participant)
            .iter()
            .map(|g| self.series_of_scope(&g.scope()))
            .collect();
        policy::may_manage_token(&self.organizes(by), &their_series)
    }

    fn context(st: &State, entry: &DocEntry) -> Option<DocContext> {
        let key = entry.key.clone()?;
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
            phase: session.map(|s| s.phase),
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
            .filter_map(|d| d.key.clone())
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
            .contains(&RoleGrant::new(participant, role, scope))
    }

    pub fn case_session(&self, case: &str) -> Option<String> {
        self.read().cases.get(case).map(|c| c.session.clone())
    }

    pub fn document(&self, id: &DocumentId) -> Option<DocEntry> {
        self.read().docs.get(id).cloned()
    }

    // ---- changes (each one durable, logged, then applied) -----------------------------------

    /// The catalog: kind → key → JSON.
    pub fn catalog(&self) -> BTreeMap<String, BTreeMap<String, serde_json::Value>> {
        self.read().catalog.clone()
    }
}

#[cfg(test)]
mod tests;
