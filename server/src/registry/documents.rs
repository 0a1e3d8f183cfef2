//! Which documents the registry's records call for, and which it holds.

use super::*;

impl Registry {
    /// Every case, in key order.
    pub fn cases(&self) -> Vec<Case> {
        self.read().cases.values().cloned().collect()
    }

    /// Every document the registry's sessions, cases, grants and departments call for, with
    /// its series ([`toron_domain::provision::needed_documents`]).
    pub fn needed_documents(&self) -> BTreeMap<DocKey, String> {
        let st = self.read();
        let sessions: Vec<Session> = st.sessions.values().cloned().collect();
        let cases: Vec<Case> = st.cases.values().cloned().collect();
        let grants: Vec<RoleGrant> = st.roles.iter().cloned().collect();
        let departments: Vec<(String, String)> = st
            .catalog
            .iter()
            .filter_map(|(kind, m)| Some((kind.strip_prefix("department:")?, m)))
            .flat_map(|(series, m)| m.keys().map(move |k| (series.to_string(), k.clone())))
            .collect();
        toron_domain::provision::needed_documents(toron_domain::provision::Holdings {
            sessions: &sessions,
            cases: &cases,
            grants: &grants,
            departments: &departments,
        })
    }

    /// Every registered document that has a key, in key order.
    pub fn keyed_documents(&self) -> Vec<DocKey> {
        let mut out: Vec<DocKey> = self
            .read()
            .docs
            .values()
            .filter_map(|d| d.key.clone())
            .collect();
        out.sort();
        out
    }
}
