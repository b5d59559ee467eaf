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
  void totalsTravelWithTheirLossesCountsAndFirstNonFiniteLoss() throws Exception {
    List<Map<String, Double>> losses = List.of(Map.of("loss", 0.5), Map.of("loss", Double.NaN));
    RoundResult bad = RoundResult.of(1, worker(1, 1f, 64).state(), 64, losses, 40, 7_000L);
    RoundResult merged = RoundResult.merge(worker(0, 1f, 100), worker(2, 2f, 300)).withoutState();
    for (RoundResult r : List.of(RoundResult.merge(worker(0, 1f, 64), bad).withoutState(), merged)) {
      java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
      r.writeTotals(new java.io.DataOutputStream(b));
      RoundResult back = RoundResult.readTotals(new java.io.DataInputStream(new java.io.ByteArrayInputStream(b.toByteArray())));
      assertThat(back.examples()).isEqualTo(r.examples());
      assertThat(back.workers()).isEqualTo(r.workers());
      assertThat(back.maxComputeNanos()).isEqualTo(r.maxComputeNanos());
      assertThat(back.steps()).isEqualTo(r.steps());
      for (int i = 0; i < r.steps(); i++) {
        assertThat(back.meanLosses(i)).isEqualTo(r.meanLosses(i));
      }
      assertThat(back.nonFinite()).isEqualTo(r.nonFinite());
    }
    assertThat(RoundResult.merge(worker(0, 1f, 64), bad).nonFinite()).isEqualTo("loss loss = NaN at step 41 on worker 1");
  }

  @Test
  void aBarrierRoundReachesTheDriverWithItsStateOrWithout() throws Exception {
    ModelState state = new ModelState().put("w", new float[] {1.5f, -0f, Float.MIN_VALUE}).put("u", new float[] {3f});
    for (ModelState s : java.util.Arrays.asList(state, null)) {
      BarrierAveraging.Round round = new BarrierAveraging.Round(worker(0, 1f, 64).withoutState(), 12_345L, s, s == null);
      java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
      round.write(new java.io.DataOutputStream(b));
      BarrierAveraging.Round back = BarrierAveraging.Round.read(
          new java.io.DataInputStream(new java.io.ByteArrayInputStream(b.toByteArray())));
      assertThat(back.nanos()).isEqualTo(12_345L);
      assertThat(back.last()).isEqualTo(s == null);
      assertThat(back.result().meanLosses(0)).isEqualTo(Map.of("loss", 1.0));
      if (s == null) {
        assertThat(back.state()).isNull();
      } else {
        assertThat(back.state().arrays().keySet()).containsExactly("w", "u");
        assertThat(back.state().get("w")).containsExactly(1.5f, -0f, Float.MIN_VALUE);
      }
    }
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
