package org.genpipe.jobs.registry;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import org.genpipe.jobs.tracking.TrackedRun;
import org.junit.jupiter.api.Test;

/** The compare table with spreads over seeds ({@code evaluate --repeats}): mean +- std, and * only for a real lead. */
class CompareTableTest {
  private static TrackedRun run(String name, Map<String, Double> metrics) {
    return new TrackedRun(name + "0123456789abcdef", name, "1", "FINISHED", 0, 0, "", metrics, Map.of(), Map.of());
  }

  @Test
  void aMetricWithItsSpreadIsShownAsMeanPlusMinusStdAndALeadWithinTheNoiseIsMarkedTilde() {
    List<TrackedRun> runs = List.of(
        run("a", Map.of("fid_domain_gen_600_test", 63.2, "fid_domain_gen_600_test_std", 9.5,
            "kid_domain_gen_600_test", 900.0, "kid_domain_gen_600_test_std", 10.0)),
        run("b", Map.of("fid_domain_gen_600_test", 75.4, "fid_domain_gen_600_test_std", 8.0,
            "kid_domain_gen_600_test", 1300.0, "kid_domain_gen_600_test_std", 20.0)));
    String out = CompareCommand.table(runs, List.of()).render();
    // 75.4 - 63.2 = 12.2 < 2 * sqrt(9.5^2 + 8^2) = 24.8: not told apart by the seeds
    assertThat(out).containsPattern("fid_domain_gen_600_test +63\\.2000 \\+- 9\\.50000 ~ +75\\.4000 \\+- 8\\.00000\n");
    // 400 > 2 * sqrt(10^2 + 20^2) = 44.7: a real lead
    assertThat(out).containsPattern("kid_domain_gen_600_test +900\\.000 \\+- 10\\.0000 \\* +1300\\.00 \\+- 20\\.0000\n");
    assertThat(out).doesNotContain("_std ");
  }

  @Test
  void withoutSpreadsTheBestIsMarkedAndATieIsNot() {
    List<TrackedRun> runs = List.of(run("a", Map.of("fid_domain_gen_600_test", 70.0, "l1_gen_500_val", 0.2)),
        run("b", Map.of("fid_domain_gen_600_test", 80.0, "l1_gen_500_val", 0.2)));
    String out = CompareCommand.table(runs, List.of()).render();
    assertThat(out).containsPattern("fid_domain_gen_600_test +70\\.0000 \\* +80\\.0000\n");
    assertThat(out).containsPattern("l1_gen_500_val +0\\.200000 ~ +0\\.200000\n");
  }
}
