//! Weir's stock CEP rule component: runs the declarative rule the host
//! hands it in its config (`docs/cep.md`), so users need no toolchain.

struct Stock;

impl weir_cep_rule::RuleSource for Stock {
    fn runner(
        config: &weir_cep_rule::ComponentConfig,
    ) -> Result<weir_cep_rule::RuleRunner, String> {
        weir_cep_rule::declarative(config)
    }
}

weir_cep_rule::export_rule_component!(Stock);
