//! Malformed patterns (Flink's `MalformedPatternException` cases) are typed errors.

use std::time::Duration;

use weir_cep::{
    AfterMatchSkip, Always, Condition, Pattern, PatternError, Quantifier, Step, Times, WithinType,
};

type P = Pattern<u32>;

fn err(p: P) -> PatternError {
    match p.compile() {
        Ok(_) => panic!("pattern should be refused"),
        Err(e) => e,
    }
}

fn any() -> Box<dyn Condition<u32>> {
    Box::new(Always)
}

#[test]
fn negated_first_step() {
    let mut s = Step::new("a", any());
    s.negated = true;
    assert_eq!(
        err(Pattern::from_steps(vec![s])),
        PatternError::NegatedStart("a".into())
    );
}

#[test]
fn not_followed_by_at_end_needs_a_window() {
    let p = P::begin("a").not_followed_by("b");
    assert_eq!(
        err(p),
        PatternError::NotFollowedByAtEndWithoutWindow("b".into())
    );
    let ok = P::begin("a")
        .not_followed_by("b")
        .within(Duration::from_secs(1), WithinType::FirstAndLast);
    assert!(ok.compile().is_ok());
    // notNext at the end needs none.
    assert!(P::begin("a").not_next("b").compile().is_ok());
}

#[test]
fn duplicate_names() {
    let p = P::begin("a").followed_by("b").next("a");
    assert_eq!(err(p), PatternError::DuplicateName("a".into()));
}

#[test]
fn skip_to_unknown_step() {
    let p = P::begin_with_skip("a", AfterMatchSkip::SkipToFirst("zz".into())).followed_by("b");
    assert_eq!(err(p), PatternError::UnknownSkipStep("zz".into()));
    let p = P::begin_with_skip("a", AfterMatchSkip::SkipToLast("b".into())).followed_by("b");
    assert!(p.compile().is_ok());
}

#[test]
fn quantifier_twice_or_on_negated() {
    assert_eq!(
        err(P::begin("a").times(2).one_or_more()),
        PatternError::QuantifierAlreadyApplied("a".into())
    );
    assert_eq!(
        err(P::begin("a").not_next("b").times(2)),
        PatternError::QuantifierOnNegated("b".into())
    );
    assert_eq!(
        err(P::begin("a").not_next("b").optional()),
        PatternError::QuantifierOnNegated("b".into())
    );
}

#[test]
fn negation_after_optional() {
    let p = P::begin("a")
        .followed_by("b")
        .optional()
        .not_next("c")
        .followed_by("d");
    assert_eq!(err(p), PatternError::NegationAfterOptional("c".into()));
}

#[test]
fn until_only_on_looping_steps() {
    assert_eq!(
        err(P::begin("a").times(3).until(|_, _| true)),
        PatternError::UntilNotLooping("a".into())
    );
    assert!(P::begin("a")
        .one_or_more()
        .until(|_, _| true)
        .compile()
        .is_ok());
}

#[test]
fn inner_contiguity_and_greedy_need_repetition() {
    assert_eq!(
        err(P::begin("a").consecutive()),
        PatternError::InnerContiguityNotRepeated("a".into())
    );
    assert_eq!(
        err(P::begin("a").allow_combinations()),
        PatternError::InnerContiguityNotRepeated("a".into())
    );
    assert_eq!(
        err(P::begin("a")
            .one_or_more()
            .consecutive()
            .allow_combinations()),
        PatternError::OptionAlreadyApplied("a".into(), "allowCombinations")
    );
    assert_eq!(
        err(P::begin("a").greedy()),
        PatternError::GreedyNotApplicable("a".into())
    );
    assert_eq!(
        err(P::begin("a").one_or_more().allow_combinations().greedy()),
        PatternError::GreedyNotApplicable("a".into())
    );
}

#[test]
fn optional_after_greedy() {
    let p = P::begin("a")
        .one_or_more()
        .greedy()
        .followed_by("b")
        .optional();
    assert_eq!(err(p), PatternError::OptionalAfterGreedy("b".into()));
}

#[test]
fn bad_times_and_windows() {
    assert_eq!(
        err(P::begin("a").times(0)),
        PatternError::BadTimes("a".into())
    );
    assert_eq!(
        err(P::begin("a").times_range(3, 2)),
        PatternError::BadTimes("a".into())
    );
    assert_eq!(
        err(P::begin("a").times_or_more(0)),
        PatternError::BadTimes("a".into())
    );
    assert_eq!(
        err(P::begin("a").within(Duration::ZERO, WithinType::FirstAndLast)),
        PatternError::ZeroWindow
    );
    let p = P::begin("a")
        .followed_by("b")
        .within(Duration::from_secs(5), WithinType::PreviousAndCurrent)
        .within(Duration::from_secs(1), WithinType::FirstAndLast);
    assert_eq!(err(p), PatternError::WindowLongerThanPattern("b".into()));
}

#[test]
fn empty_pattern_and_names() {
    assert_eq!(err(Pattern::from_steps(vec![])), PatternError::Empty);
    assert_eq!(
        err(Pattern::from_steps(vec![Step::new("", any())])),
        PatternError::EmptyName
    );
}

#[test]
fn followed_by_any_cannot_be_negated() {
    let mut s = Step::new("b", any());
    s.negated = true;
    s.contiguity = weir_cep::Contiguity::NonDeterministicRelaxed;
    let p = Pattern::from_steps(vec![Step::new("a", any()), s]);
    assert_eq!(err(p), PatternError::NegatedAny("b".into()));
}

#[test]
fn programmatic_steps_compile_like_the_builder() {
    // What a rule loader does: steps as values, no builder chain.
    let mut b = Step::new(
        "b",
        Box::new(|e: &u32, _: &dyn weir_cep::Matched<u32>| *e == 2),
    );
    b.quantifier = Quantifier {
        times: Times::AtLeast(1),
        greedy: false,
        optional: false,
        inner: weir_cep::Contiguity::Strict,
    };
    let mut c = Step::new(
        "c",
        Box::new(|e: &u32, _: &dyn weir_cep::Matched<u32>| *e == 3),
    );
    c.contiguity = weir_cep::Contiguity::Strict;
    let a = Step::new(
        "a",
        Box::new(|e: &u32, _: &dyn weir_cep::Matched<u32>| *e == 1),
    );
    let nfa = Pattern::from_steps(vec![a, b, c])
        .skip(AfterMatchSkip::SkipPastLastEvent)
        .compile()
        .unwrap();
    let mut key = nfa.new_state();
    let mut out = weir_cep::Outputs::new();
    for (ts, e) in [1u32, 2, 2, 3, 1, 2, 9, 3].into_iter().enumerate() {
        key.process(&nfa, e, ts as i64, &mut out);
    }
    let got: Vec<Vec<u32>> = out
        .matches
        .iter()
        .map(|m| m.events().copied().collect())
        .collect();
    assert_eq!(got, vec![vec![1, 2, 2, 3]]);
}
