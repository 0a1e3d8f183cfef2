//! How the document engine asks the registry during a batch: who owns an actor id, whether
//! a participant's change rate allows more, and whether a change's content is valid for its
//! document (departments and findings of its series).

use super::*;

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

/// A series key → its report's findings, each with the departments it is addressed to.
pub type FindingsOf = dyn Fn(&str) -> Result<BTreeMap<String, Vec<String>>, String> + Send + Sync;

impl std::fmt::Debug for FindingLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FindingLookup")
    }
}

/// An allowance per participant: one [`TokenBucket`] each (a participant has one token at a
/// time), shared by all their connections and documents.
#[derive(Debug)]
pub struct Allowances {
    per_sec: u32,
    burst: u32,
    buckets: std::sync::Mutex<HashMap<String, TokenBucket>>,
}

/// Full buckets are forgotten once this many are kept (a full one equals a new one).
const KEPT_BUCKETS: usize = 4096;

impl Allowances {
    pub fn new(per_sec: u32, burst: u32) -> Self {
        Self {
            per_sec: per_sec.max(1),
            burst: burst.max(1),
            buckets: Default::default(),
        }
    }

    /// Takes `n` from `who`'s allowance, or says in how many milliseconds it could.
    pub fn take(&self, who: &str, n: usize, now_ms: u64) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= KEPT_BUCKETS && !buckets.contains_key(who) {
            buckets.retain(|_, b| !b.is_full(now_ms));
        }
        let bucket = buckets
            .entry(who.to_string())
            .or_insert_with(|| TokenBucket::new(self.per_sec, self.burst, now_ms));
        bucket.take(n, now_ms)
    }
}

/// Changes per second per token.
#[derive(Debug)]
pub struct ChangeRates(Allowances);

impl ChangeRates {
    pub fn new(per_sec: u32) -> Self {
        let per_sec = per_sec.max(1);
        Self(Allowances::new(per_sec, per_sec.saturating_mul(10)))
    }

    /// Takes `changes` from `participant`'s allowance, or says why not.
    pub fn admit(&self, participant: &str, changes: usize, now_ms: u64) -> Result<(), String> {
        self.0.take(participant, changes, now_ms).map_err(|wait_ms| {
            format!(
                "rate limit: more than {} changes per second (bursts up to {}) with one token; nothing of these {changes} changes was applied; send them again in {:.1} s",
                self.0.per_sec,
                self.0.burst,
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
        if known.contains_key(finding) {
            return Ok(());
        }
        Err(toron_domain::report::no_such_finding(
            finding,
            series,
            known.keys().map(String::as_str),
        ))
    }

    fn finding_of_department(&self, finding: &str, department: &str) -> Result<(), String> {
        self.finding(finding)?;
        let Some(series) = &self.series else {
            return Err(format!(
                "finding `{finding}`: this document belongs to no known series"
            ));
        };
        let known = (self.findings.0)(series)?;
        let to = known.get(finding).cloned().unwrap_or_default();
        if to.iter().any(|d| d == department) {
            return Ok(());
        }
        Err(format!(
            "finding `{finding}` is addressed to {}, not to {department}: a department answers for its own findings",
            if to.is_empty() { "no department".to_string() } else { to.join(", ") }
        ))
    }
}
