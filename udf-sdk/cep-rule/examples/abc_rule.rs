//! A rule written with the Rust pattern API: `a`, then `b`, then `c`
//! (relaxed contiguity), within 60 s, over JSON events with a `kind`
//! field. The same pattern as the CEP bench's YAML rule.
//!
//! It names the one field its conditions read, so the runner reads only
//! that of each event (as it does for a YAML rule), not the whole event.

use std::time::Duration;

use weir_cep::{Field, Pattern, Reads, SharedEvent, WithinType};

fn kind_is(kind: &Field, k: &'static str) -> impl Fn(&SharedEvent) -> bool {
    let kind = kind.clone();
    move |e| e.str(&kind) == Some(k)
}

struct Abc;

impl weir_cep_rule::RuleSource for Abc {
    fn runner(
        config: &weir_cep_rule::ComponentConfig,
    ) -> Result<weir_cep_rule::RuleRunner, String> {
        let mut reads = Reads::new();
        let kind = reads.field("kind").map_err(|e| e.to_string())?;
        let pattern = Pattern::begin("a")
            .where_event(kind_is(&kind, "a"))
            .followed_by("b")
            .where_event(kind_is(&kind, "b"))
            .followed_by("c")
            .where_event(kind_is(&kind, "c"))
            .within(Duration::from_secs(60), WithinType::FirstAndLast);
        weir_cep_rule::RuleRunner::from_json_pattern("abc", pattern, reads, config.options())
    }
}

weir_cep_rule::export_rule_component!(Abc);
