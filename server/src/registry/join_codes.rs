//! One-time join codes: what an invite link carries instead of a token.
//!
//! A link opened in a browser stays in its history, where the next person at a shared
//! computer finds it. So the invite link holds a code that the page exchanges, at once, for a
//! token of its own (`POST /api/v1/join`): once used, the code is spent, and the history keeps
//! nothing that opens anything. Each exchange gives a token for that device — a participant may
//! join from a phone and a laptop — and issuing a participant's token (`token issue`) or
//! revoking it ends them all.

use super::*;

/// How long an unused join code stays good.
pub const JOIN_CODE_TTL_MS: u64 = 14 * 24 * 3600 * 1000;
/// Device tokens one participant may hold; the oldest goes when another is made.
pub const DEVICE_TOKENS: usize = 8;

/// Join codes start with this, so the page tells them from tokens pasted by hand.
pub const JOIN_CODE_PREFIX: &str = "j_";

/// Why a join code was not exchanged.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("this invite link was used already or is not valid; ask the organizer for a new one")]
    Unknown,
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl Registry {
    /// A new join code for `participant`, good for [`JOIN_CODE_TTL_MS`] or one exchange.
    pub async fn issue_join_code(
        &self,
        by: &str,
        participant: &str,
    ) -> Result<String, RegistryError> {
        let _g = self.admin.lock().await;
        if !self.read().participants.contains_key(participant) {
            return Err(RegistryError::NotFound(format!(
                "participant {participant}"
            )));
        }
        let code = format!("{JOIN_CODE_PREFIX}{}", new_token());
        let hash = token_hash(&code);
        let now = self.clock.now_ms();
        let entry = JoinCode {
            participant: participant.to_string(),
            issued_at_ms: now,
            expires_at_ms: now.saturating_add(JOIN_CODE_TTL_MS),
        };
        // Expired codes of anybody's go with this write.
        let mut ops: Vec<RegistryOp> = self
            .read()
            .join_codes
            .iter()
            .filter(|(_, c)| c.expires_at_ms <= now)
            .map(|(h, _)| RegistryOp::Delete(format!("join/{}", hex(h))))
            .collect();
        ops.push(RegistryOp::Put(
            format!("join/{}", hex(&hash)),
            json(&entry),
        ));
        let action = serde_json::json!({ "join_code_issued": { "participant": participant } });
        self.commit(by, action, ops, |st| {
            st.join_codes.retain(|(_, c)| c.expires_at_ms > now);
            st.join_codes.push((hash, entry));
        })
        .await?;
        Ok(code)
    }

    /// Exchanges a join code for a new token of `participant`'s (a device's); the code is
    /// spent in the same write. Returns (participant, token).
    pub async fn redeem_join_code(&self, code: &str) -> Result<(String, String), JoinError> {
        let _g = self.admin.lock().await;
        let hash = token_hash(code);
        let now = self.clock.now_ms();
        let found = {
            let st = self.read();
            let mut found = None;
            for (h, c) in &st.join_codes {
                if bool::from(h.ct_eq(&hash)) && now < c.expires_at_ms {
                    found = Some(c.participant.clone());
                }
            }
            found
        };
        let participant = found.ok_or(JoinError::Unknown)?;
        let token = new_token();
        let token_hash_ = token_hash(&token);
        let entry = TokenEntry {
            participant: participant.clone(),
            issued_at_ms: now,
            expires_at_ms: None,
        };
        // The participant's oldest device tokens beyond the allowance go.
        let mut theirs: Vec<([u8; 32], u64)> = self
            .read()
            .tokens
            .iter()
            .filter(|(_, e)| e.participant == participant && e.expires_at_ms.is_none())
            .map(|(h, e)| (*h, e.issued_at_ms))
            .collect();
        theirs.sort_by_key(|(_, at)| *at);
        let dropped: Vec<[u8; 32]> = theirs
            .iter()
            .take((theirs.len() + 1).saturating_sub(DEVICE_TOKENS))
            .map(|(h, _)| *h)
            .collect();
        let mut ops = vec![
            RegistryOp::Delete(format!("join/{}", hex(&hash))),
            RegistryOp::Put(format!("token/{}", hex(&token_hash_)), json(&entry)),
        ];
        ops.extend(
            dropped
                .iter()
                .map(|h| RegistryOp::Delete(format!("token/{}", hex(h)))),
        );
        let action = serde_json::json!({ "joined_with_code": { "participant": participant } });
        self.commit(&participant, action, ops, |st| {
            st.join_codes.retain(|(h, _)| *h != hash);
            st.tokens.retain(|(h, _)| !dropped.contains(h));
            st.tokens.push((token_hash_, entry));
        })
        .await?;
        Ok((participant, token))
    }
}
