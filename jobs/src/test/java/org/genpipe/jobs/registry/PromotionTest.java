package org.genpipe.jobs.registry;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Map;
import org.genpipe.common.io.BadInputException;
import org.junit.jupiter.api.Test;

class PromotionTest {
  private static final List<Promotion.Objective> FID = List.of(Promotion.Objective.parse("fid"));

  @Test
  void lowerIsBetterByTheRelativeMargin() {
    Map<String, Double> champion = Map.of("fid", 100.0);
    assertThat(Promotion.decide(Map.of("fid", 98.0), champion, FID, 0.02).promote()).isTrue(); // exactly 2%
    assertThat(Promotion.decide(Map.of("fid", 98.5), champion, FID, 0.02).promote()).isFalse();
    assertThat(Promotion.decide(Map.of("fid", 99.99), champion, FID, 0).promote()).isTrue();
    assertThat(Promotion.decide(Map.of("fid", 100.0), champion, FID, 0).promote()).isFalse(); // a tie keeps
    assertThat(Promotion.decide(Map.of("fid", 98.5), champion, FID, 0.02).reasons().get(0))
        .isEqualTo("fid 98.5000 vs champion 100.000 (lower is better; needs <= 98.0000): does not beat it");
  }

  @Test
  void higherIsBetterWithMaxAndEveryObjectiveMustWin() {
    List<Promotion.Objective> both = List.of(Promotion.Objective.parse("fid"), Promotion.Objective.parse("max:acc"));
    Map<String, Double> champion = Map.of("fid", 50.0, "acc", 0.80);
    assertThat(Promotion.decide(Map.of("fid", 40.0, "acc", 0.90), champion, both, 0.05).promote()).isTrue();
    assertThat(Promotion.decide(Map.of("fid", 40.0, "acc", 0.83), champion, both, 0.05).promote()).isFalse();
    assertThat(Promotion.decide(Map.of("fid", 49.0, "acc", 0.90), champion, both, 0.05).promote()).isFalse();
    // a negative value: the margin is relative to its size
    assertThat(Promotion.decide(Map.of("acc", -0.9), Map.of("acc", -1.0), List.of(Promotion.Objective.parse("max:acc")),
        0.05).promote()).isTrue();
  }

  @Test
  void noChampionOrNoObjectivePromotesAndANonFiniteValueNever() {
    assertThat(Promotion.decide(Map.of("fid", 70.0), null, FID, 0.02).promote()).isTrue();
    assertThat(Promotion.decide(Map.of(), Map.of("fid", 1.0), List.of(), 0.02).promote()).isTrue();
    assertThat(Promotion.decide(Map.of("fid", Double.NaN), null, FID, 0).promote()).isFalse();
    assertThat(Promotion.decide(Map.of("fid", Double.NaN), Map.of("fid", 9.0), FID, 0).promote()).isFalse();
    // a champion without the metric (renamed since): the candidate's finite value wins
    assertThat(Promotion.decide(Map.of("fid", 9.0), Map.of("other", 1.0), FID, 0).promote()).isTrue();
  }

  @Test
  void aMissingMetricNamesWhatTheRunHas() {
    assertThatThrownBy(() -> Promotion.decide(Map.of("kid", 1.0, "loss", 2.0), null, FID, 0))
        .isInstanceOf(BadInputException.class)
        .hasMessage("the candidate run has no metric 'fid' (evaluate it first); it has: kid, loss");
    assertThatThrownBy(() -> Promotion.decide(Map.of("fid", 1.0), null, FID, -0.1))
        .isInstanceOf(BadInputException.class).hasMessageContaining("--margin");
  }
}
