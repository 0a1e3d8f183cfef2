//! Changes to the registry: each written to the log as an admin record with the entries it
//! touches, in one durable commit, and only then applied in memory.

use super::*;

impl Registry {
    pub(super) async fn commit(
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

    pub(super) async fn install_token(
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

    pub(super) fn token_hashes_of(&self, participant: &str) -> Vec<[u8; 32]> {
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

    /// Grants `role` in `scope`, and registers the documents the grant lets its holder start
    /// ([`Registry::documents_of_grant`]).
    pub async fn grant(
        &self,
        by: &str,
        participant: &str,
        role: Role,
        scope: Scope,
    ) -> Result<(), RegistryError> {
        {
            let _g = self.admin.lock().await;
            if !self.read().participants.contains_key(participant) {
                return Err(RegistryError::NotFound(format!(
                    "participant {participant}"
                )));
            }
            let g = RoleGrant::new(participant, role, &scope);
            if g.name != ALL_SERIES {
                valid_key(g.scope.as_str(), &g.name)?;
            }
            if !self.read().roles.contains(&g) {
                let action = serde_json::json!({ "role_granted": &g });
                let ops = vec![RegistryOp::Put(grant_key(&g), json(&g))];
                self.commit(by, action, ops, |st| {
                    st.roles.insert(g);
                })
                .await?;
            }
        }
        self.documents_of_grant(by, participant, role, &scope).await
    }

    /// The documents a grant lets its holder start, registered so that the holder's first
    /// write finds them: an evaluator's forms for the session's cases, a department
    /// reviewer's response document of the series. (An import registers those its bundle
    /// has; these are for the people added after it.)
    async fn documents_of_grant(
        &self,
        by: &str,
        participant: &str,
        role: Role,
        scope: &Scope,
    ) -> Result<(), RegistryError> {
        let keys: Vec<(DocKey, String)> = match (role, scope) {
            (Role::Evaluator, Scope::Session(session)) => {
                let Some(series) = self.session(session).map(|s| s.series) else {
                    return Ok(());
                };
                self.read()
                    .cases
                    .values()
                    .filter(|c| &c.session == session)
                    .map(|c| {
                        let key = DocKey::Eval {
                            case: c.key.clone(),
                            evaluator: participant.to_string(),
                        };
                        (key, series.clone())
                    })
                    .collect()
            }
            (Role::DepartmentReviewer, Scope::Series(series)) => self
                .participant(participant)
                .and_then(|p| p.department)
                .map(|department| {
                    let key = DocKey::Response {
                        series: series.clone(),
                        department,
                    };
                    (key, series.clone())
                })
                .into_iter()
                .collect(),
            _ => Vec::new(),
        };
        for (key, series) in keys {
            self.register(by, &key, &series).await?;
        }
        Ok(())
    }

    pub async fn revoke_role(
        &self,
        by: &str,
        participant: &str,
        role: Role,
        scope: Scope,
    ) -> Result<bool, RegistryError> {
        let _g = self.admin.lock().await;
        let g = RoleGrant::new(participant, role, &scope);
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

    /// Sets the agenda item under way in `session` (`None`: none): logged as an action of its
    /// own, which the session's timeline and replay show. Returns the session as it is now.
    pub async fn set_agenda_item(
        &self,
        by: &str,
        session: &str,
        item: Option<String>,
    ) -> Result<Session, RegistryError> {
        let _g = self.admin.lock().await;
        let mut s = self
            .read()
            .sessions
            .get(session)
            .cloned()
            .ok_or_else(|| RegistryError::NotFound(format!("session {session}")))?;
        if s.item == item {
            return Ok(s);
        }
        s.item = item;
        let action = serde_json::json!({ "agenda_item": { "session": s.key, "item": s.item } });
        let ops = vec![RegistryOp::Put(format!("session/{}", s.key), json(&s))];
        let kept = s.clone();
        self.commit(by, action, ops, |st| {
            st.sessions.insert(s.key.clone(), s);
        })
        .await?;
        Ok(kept)
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
            id,
            key: Some(key.clone()),
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
            id,
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

/// Writes a secret file readable by its owner only.
pub(super) fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
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
