package org.genpipe.jobs.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.factory.Nd4j;

class SampleMonitorTest {
  @Test
  void spreadIsTheMeanPairwiseDistance() {
    // three points: distances 5 (0-1), 10 (0-2), 5 (1-2)
    double[][] p = {{0, 0}, {3, 4}, {6, 8}};
    assertThat(SampleMonitor.spread(Nd4j.create(p))).isCloseTo(20.0 / 3, within(1e-6));
    assertThat(SampleMonitor.spread(Nd4j.create(new double[][] {{1, 2}, {1, 2}, {1, 2}}))).isZero();
  }

  @Test
  void warnsWhenSamplesCollapse() {
    assertThat(SampleMonitor.warning(Map.of("sample_diversity", 0.9, "sample_class_entropy", 0.8))).isNull();
    assertThat(SampleMonitor.warning(Map.of("sample_diversity", 0.3, "sample_class_entropy", 0.8)))
        .contains("possible mode collapse").contains("sample_diversity 0.30").doesNotContain("entropy");
    assertThat(SampleMonitor.warning(Map.of("sample_diversity", 0.9, "sample_class_entropy", 0.2)))
        .contains("sample_class_entropy 0.20");
  }
}
