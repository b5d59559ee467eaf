package org.genpipe.jobs.train;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import org.genpipe.models.ModelState;
import org.junit.jupiter.api.Test;

/** The weighted average of worker states, whatever the order and grouping of the merges. */
class RoundResultTest {
  private static RoundResult worker(int index, float base, long examples) {
    ModelState s = new ModelState().put("w", new float[] {base, base * 2, -base}).put("u", new float[] {base / 3});
    return RoundResult.of(index, s, examples, List.of(Map.of("loss", (double) base)), 0, 1_000L * index);
  }

  @Test
  void oneWorkerGivesItsOwnStateBack() {
    RoundResult r = RoundResult.merge(new RoundResult(), worker(0, 0.1f, 64));
    assertThat(r.averagedState().get("w")).containsExactly(0.1f, 0.2f, -0.1f);
    assertThat(r.examples()).isEqualTo(64);
  }

  @Test
  void averageIsWeightedByExamplesInAnyOrder() {
    RoundResult a = worker(0, 1f, 100);
    RoundResult b = worker(1, 2f, 300);
    RoundResult c = worker(2, 4f, 100);
    // (1*100 + 2*300 + 4*100) / 500 = 2.2
    float[] left = RoundResult.merge(RoundResult.merge(a, b), c).averagedState().get("w");
    float[] right = RoundResult.merge(worker(2, 4f, 100), RoundResult.merge(worker(1, 2f, 300), worker(0, 1f, 100)))
        .averagedState().get("w");
    assertThat(left).containsExactly(2.2f, 4.4f, -2.2f);
    assertThat(right).containsExactly(left);
    RoundResult all = RoundResult.merge(RoundResult.merge(worker(0, 1f, 100), worker(1, 2f, 300)), worker(2, 4f, 100));
    assertThat(all.workers()).isEqualTo(3);
    assertThat(all.examples()).isEqualTo(500);
    assertThat(all.meanLosses(0).get("loss")).isEqualTo(7.0 / 3);
    assertThat(all.maxComputeNanos()).isEqualTo(2_000L);
  }

  @Test
  void treeLevelsFollowSparksRule() {
    // n = 2..5 at depth 2: one level (a plain reduce); from 6 on, treeAggregate adds a level
    assertThat(ParameterAveraging.hasTreeLevels(2, 2)).isFalse();
    assertThat(ParameterAveraging.hasTreeLevels(5, 2)).isFalse();
    assertThat(ParameterAveraging.hasTreeLevels(6, 2)).isTrue();
    assertThat(ParameterAveraging.hasTreeLevels(64, 2)).isTrue();
    assertThat(ParameterAveraging.hasTreeLevels(64, 1)).isFalse();
  }
}
