// The closed vocabularies — annotation kinds, triage and evaluation statuses, stances, finding
// types, priorities, participant kinds, roles, phases, sections — as the domain defines them
// (domain/src/vocab.rs). vocab.json is generated from it and a test checks that it still is.
import vocab from "./vocab.json";

/// The values of vocabulary `name` (`"Stance"`), as documents store them, in order.
export const values = (name) => vocab[name].map(([v]) => v);

/// The vocabularies whose words share a value with another's, kept apart by a prefix
/// (`stance_accepted` beside the triage status `accepted`).
const PREFIX = { Stance: "stance_", FindingType: "finding_", Priority: "priority_", EvaluationStatus: "eval_", Attribution: "attribution_" };

/// Every value's words, `{ key: [ko, en] }`, for the interface's dictionary.
export function vocabularyWords() {
  const out = {};
  for (const [name, list] of Object.entries(vocab)) {
    for (const [v, ko, en] of list) out[(PREFIX[name] || "") + v] = [ko, en];
  }
  return out;
}
