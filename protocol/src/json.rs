//! Automerge documents ↔ JSON, the way the JavaScript API shows them: maps as objects, lists
//! as arrays, text objects and strings as strings. JSON strings become collaborative text,
//! as `@automerge/automerge` does by default.

use automerge::transaction::Transactable;
use automerge::{ChangeHash, ObjId, ObjType, Prop, ReadDoc, ScalarValue, Value, ROOT};
use serde_json::{Map, Number, Value as Json};

#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    #[error("the document's root is a map: give a JSON object, not {0}")]
    RootNotObject(&'static str),
    #[error("path `{path}`: {reason}")]
    Path { path: String, reason: String },
}

/// The whole document as JSON.
pub fn doc_to_json(doc: &impl ReadDoc) -> Json {
    obj_to_json(doc, &ROOT, None)
}

/// The whole document as it was at `heads` (a point of its history), read from a copy that
/// holds at least those changes — no replay needed.
pub fn doc_to_json_at(doc: &impl ReadDoc, heads: &[ChangeHash]) -> Json {
    obj_to_json(doc, &ROOT, Some(heads))
}

/// One object as JSON.
pub fn obj_json(doc: &impl ReadDoc, obj: &ObjId) -> Json {
    obj_to_json(doc, obj, None)
}

fn obj_to_json(doc: &impl ReadDoc, obj: &ObjId, at: Option<&[ChangeHash]>) -> Json {
    let get = |prop: Prop| match at {
        Some(h) => doc.get_at(obj, prop, h),
        None => doc.get(obj, prop),
    };
    match doc.object_type(obj) {
        Ok(ObjType::Map) | Ok(ObjType::Table) => {
            let keys: Vec<String> = match at {
                Some(h) => doc.keys_at(obj, h).collect(),
                None => doc.keys(obj).collect(),
            };
            let mut m = Map::new();
            for key in keys {
                if let Ok(Some((v, id))) = get(Prop::Map(key.clone())) {
                    m.insert(key, value_to_json(doc, v, &id, at));
                }
            }
            Json::Object(m)
        }
        Ok(ObjType::List) => {
            let n = match at {
                Some(h) => doc.length_at(obj, h),
                None => doc.length(obj),
            };
            let items = (0..n)
                .filter_map(|i| get(Prop::Seq(i)).ok().flatten())
                .map(|(v, id)| value_to_json(doc, v, &id, at))
                .collect();
            Json::Array(items)
        }
        Ok(ObjType::Text) => Json::String(
            match at {
                Some(h) => doc.text_at(obj, h),
                None => doc.text(obj),
            }
            .unwrap_or_default(),
        ),
        Err(_) => Json::Null,
    }
}

fn value_to_json(doc: &impl ReadDoc, v: Value<'_>, id: &ObjId, at: Option<&[ChangeHash]>) -> Json {
    match v {
        Value::Object(_) => obj_to_json(doc, id, at),
        Value::Scalar(s) => scalar_to_json(&s),
    }
}

/// One scalar as JSON.
pub fn scalar_json(s: &ScalarValue) -> Json {
    scalar_to_json(s)
}

fn scalar_to_json(s: &ScalarValue) -> Json {
    match s {
        ScalarValue::Str(s) => Json::String(s.to_string()),
        ScalarValue::Int(i) => Json::from(*i),
        ScalarValue::Uint(u) => Json::from(*u),
        ScalarValue::F64(f) => f64_json(*f),
        ScalarValue::Counter(c) => Json::from(i64::from(c)),
        ScalarValue::Timestamp(t) => Json::from(*t),
        ScalarValue::Boolean(b) => Json::Bool(*b),
        ScalarValue::Bytes(b) => Json::Array(b.iter().map(|x| Json::from(*x)).collect()),
        ScalarValue::Null | ScalarValue::Unknown { .. } => Json::Null,
    }
}

/// A float as JSON. JavaScript has one number type: the official client stores a whole number
/// as a float when it was computed (`0.0` for a passage at a text's first character), and its
/// API shows it as `0`. So does this: a whole float within the range JavaScript counts exactly
/// is the integer, so that no reader of positions, counts or scores refuses what the schema
/// took as one. Any other float stays a float; NaN and infinities (no JSON) are null.
fn f64_json(f: f64) -> Json {
    /// 2^53: above it JavaScript's numbers skip integers.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if f.fract() == 0.0 && f.abs() <= EXACT {
        return Json::from(f as i64);
    }
    Number::from_f64(f).map(Json::Number).unwrap_or(Json::Null)
}

/// Writes `value` at `prop` of `obj` (a map key or a list index; index == length appends).
pub fn put_json(
    tx: &mut impl Transactable,
    obj: &ObjId,
    prop: Prop,
    value: &Json,
) -> Result<(), JsonError> {
    let is_list = matches!(tx.object_type(obj), Ok(ObjType::List));
    let insert = is_list && matches!(prop, Prop::Seq(i) if i == tx.length(obj));
    // Inserts at the end of a list, else puts at `prop`: `$insert` and `$put` are the
    // transaction's methods for the kind of value (object or scalar).
    macro_rules! put {
        ($insert:ident, $put:ident, $v:expr) => {
            if insert {
                let Prop::Seq(i) = prop else { unreachable!() };
                tx.$insert(obj, i, $v)?
            } else {
                tx.$put(obj, prop.clone(), $v)?
            }
        };
    }
    match value {
        Json::Object(m) => {
            let child = put!(insert_object, put_object, ObjType::Map);
            for (k, v) in m {
                put_json(tx, &child, Prop::Map(k.clone()), v)?;
            }
        }
        Json::Array(items) => {
            let child = put!(insert_object, put_object, ObjType::List);
            for (i, v) in items.iter().enumerate() {
                put_json(tx, &child, Prop::Seq(i), v)?;
            }
        }
        Json::String(s) => {
            let child = put!(insert_object, put_object, ObjType::Text);
            tx.splice_text(&child, 0, 0, s)?;
        }
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                put!(insert, put, i);
            } else if let Some(u) = n.as_u64() {
                put!(insert, put, u);
            } else {
                put!(insert, put, n.as_f64().unwrap_or(0.0));
            }
        }
        Json::Bool(b) => put!(insert, put, *b),
        Json::Null => put!(insert, put, ScalarValue::Null),
    }
    Ok(())
}

/// Fills the (empty) root map with the fields of a JSON object.
pub fn init_from_json(tx: &mut impl Transactable, value: &Json) -> Result<(), JsonError> {
    let Json::Object(m) = value else {
        return Err(JsonError::RootNotObject(kind(value)));
    };
    for (k, v) in m {
        put_json(tx, &ROOT, Prop::Map(k.clone()), v)?;
    }
    Ok(())
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Splits `a.b.0` or `/a/b/0` into segments.
pub fn parse_path(path: &str) -> Vec<String> {
    let sep = if path.starts_with('/') { '/' } else { '.' };
    path.split(sep)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Sets the value at `path`, creating missing intermediate maps.
pub fn set_path(tx: &mut impl Transactable, path: &str, value: &Json) -> Result<(), JsonError> {
    let segs = parse_path(path);
    let err = |reason: String| JsonError::Path {
        path: path.to_string(),
        reason,
    };
    let Some((last, parents)) = segs.split_last() else {
        return Err(err("empty path".into()));
    };
    let mut obj = ROOT;
    for seg in parents {
        let prop = prop_for(tx, &obj, seg).map_err(err)?;
        obj = match tx.get(&obj, prop.clone())? {
            Some((Value::Object(ObjType::Map | ObjType::List | ObjType::Table), id)) => id,
            Some(_) => return Err(err(format!("`{seg}` is not a map or a list"))),
            None => match prop {
                Prop::Map(k) => tx.put_object(&obj, k, ObjType::Map)?,
                Prop::Seq(i) => return Err(err(format!("index {i} is past the end of the list"))),
            },
        };
    }
    let prop = prop_for(tx, &obj, last).map_err(err)?;
    if let Prop::Seq(i) = prop {
        if i > tx.length(&obj) {
            return Err(err(format!("index {i} is past the end of the list")));
        }
    }
    put_json(tx, &obj, prop, value)
}

fn prop_for(tx: &impl Transactable, obj: &ObjId, seg: &str) -> Result<Prop, String> {
    match tx.object_type(obj) {
        Ok(ObjType::List) => seg
            .parse::<usize>()
            .map(Prop::Seq)
            .map_err(|_| format!("`{seg}` is not a list index")),
        _ => Ok(Prop::Map(seg.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::AutoCommit;
    use serde_json::json;

    #[test]
    fn whole_floats_read_as_the_integers_javascript_shows() {
        let mut doc = AutoCommit::new();
        for (k, f) in [
            ("zero", 0.0),
            ("neg", -0.0),
            ("n", 42.0),
            ("half", 0.5),
            ("big", 1e300),
        ] {
            doc.put(ROOT, k, ScalarValue::F64(f)).expect("put");
        }
        doc.put(ROOT, "nan", ScalarValue::F64(f64::NAN))
            .expect("put");
        let v = doc_to_json(&doc);
        assert_eq!(v["zero"], json!(0));
        assert!(v["zero"].is_u64(), "0.0 reads as the integer 0: {v}");
        assert_eq!(v["neg"], json!(0));
        assert_eq!(v["n"], json!(42));
        assert_eq!(v["half"], json!(0.5));
        assert_eq!(v["big"], json!(1e300));
        assert!(v["nan"].is_null());
        #[derive(serde::Deserialize)]
        struct At {
            zero: usize,
            n: usize,
        }
        let at: At = serde_json::from_value(v).expect("a reader of positions takes them");
        assert_eq!((at.zero, at.n), (0, 42));
    }

    #[test]
    fn json_round_trips_through_automerge() {
        let v = json!({"title": "도서관 정책", "n": 3, "f": 1.5, "ok": true, "none": null, "list": [1, "a", {"x": [2]}]});
        let mut doc = AutoCommit::new();
        init_from_json(&mut doc, &v).expect("init");
        assert_eq!(doc_to_json(&doc), v);
        assert!(matches!(
            init_from_json(&mut doc, &json!([1])),
            Err(JsonError::RootNotObject("an array"))
        ));
    }

    #[test]
    fn a_past_point_reads_like_the_document_was_then() {
        let mut doc = AutoCommit::new();
        init_from_json(&mut doc, &json!({"t": "가나", "l": [1], "m": {"k": 1}})).expect("init");
        doc.commit();
        let then_heads = doc.get_heads();
        let then = doc_to_json(&doc);
        set_path(&mut doc, "m.k", &json!(2)).expect("set");
        set_path(&mut doc, "l.1", &json!({"x": "y"})).expect("append");
        set_path(&mut doc, "new", &json!("다")).expect("add");
        let t = doc.get(ROOT, "t").expect("t").expect("some").1;
        doc.splice_text(&t, 1, 1, "😀라").expect("splice");
        doc.commit();
        assert_ne!(doc_to_json(&doc), then);
        assert_eq!(doc_to_json_at(&doc, &then_heads), then);
        let now = doc.get_heads();
        assert_eq!(doc_to_json_at(&doc, &now), doc_to_json(&doc));
    }

    #[test]
    fn set_path_creates_maps_and_appends_to_lists() {
        let mut doc = AutoCommit::new();
        init_from_json(&mut doc, &json!({"list": [1]})).expect("init");
        set_path(&mut doc, "a.b", &json!(5)).expect("set");
        set_path(&mut doc, "/list/1", &json!("two")).expect("append");
        set_path(&mut doc, "list.0", &json!(0)).expect("overwrite");
        assert_eq!(
            doc_to_json(&doc),
            json!({"list": [0, "two"], "a": {"b": 5}})
        );
        assert!(set_path(&mut doc, "list.7", &json!(1)).is_err());
        assert!(set_path(&mut doc, "list.x", &json!(1)).is_err());
        assert!(set_path(&mut doc, "", &json!(1)).is_err());
    }
}
