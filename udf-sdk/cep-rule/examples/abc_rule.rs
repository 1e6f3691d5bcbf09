//! A rule written with the Rust pattern API: `a`, then `b`, then `c`
//! (relaxed contiguity), within 60 s, over JSON events with a `kind`
//! field. The same pattern as the CEP bench's YAML rule.

use std::time::Duration;

use serde_json::Value;
use weir_cep::{Pattern, WithinType};

fn kind(k: &'static str) -> impl Fn(&Value, &dyn weir_cep::Matched<Value>) -> bool {
    move |e, _| e.get("kind").and_then(Value::as_str) == Some(k)
}

struct Abc;

impl weir_cep_rule::RuleSource for Abc {
    fn runner(
        config: &weir_cep_rule::ComponentConfig,
    ) -> Result<weir_cep_rule::RuleRunner, String> {
        let pattern = Pattern::begin("a")
            .where_(kind("a"))
            .followed_by("b")
            .where_(kind("b"))
            .followed_by("c")
            .where_(kind("c"))
            .within(Duration::from_secs(60), WithinType::FirstAndLast);
        weir_cep_rule::RuleRunner::from_pattern("abc", pattern, config.options())
    }
}

weir_cep_rule::export_rule_component!(Abc);
