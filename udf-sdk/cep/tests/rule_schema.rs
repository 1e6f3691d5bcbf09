//! The rule file's JSON Schema (feature `schema`): bounds the checker also
//! enforces are visible to editors.
#![cfg(feature = "schema")]

use serde_json::{json, Value};

#[test]
fn schema_carries_the_bounds() {
    let s = serde_json::to_value(weir_cep::rule::json_schema()).unwrap();
    let defs = &s["$defs"];
    assert_eq!(s["properties"]["name"]["minLength"], json!(1));
    assert_eq!(s["properties"]["within_ms"]["minimum"], json!(1));
    assert_eq!(
        s["properties"]["max_partial_matches_per_key"]["minimum"],
        json!(1)
    );
    assert_eq!(defs["Quantifier"]["properties"]["min"]["minimum"], json!(1));
    assert_eq!(defs["Quantifier"]["properties"]["max"]["minimum"], json!(1));
    assert_eq!(defs["Step"]["properties"]["name"]["minLength"], json!(1));
    assert_eq!(defs["Step"]["properties"]["where"]["minLength"], json!(1));
    let strategies: Vec<&Value> = defs["SkipStrategy"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["const"])
        .collect();
    assert_eq!(
        strategies,
        [
            "no_skip",
            "skip_to_next",
            "skip_past_last_event",
            "skip_to_first",
            "skip_to_last"
        ]
    );
}
