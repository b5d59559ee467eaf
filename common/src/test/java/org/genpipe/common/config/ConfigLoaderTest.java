package org.genpipe.common.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.genpipe.common.data.OnBadRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigLoaderTest {
  record Job(int shardSize, OnBadRecord mode, List<Integer> sizes, Map<String, String> conf) {
    Job {
      ConfigException.check(shardSize > 0, "shardSize", "must be > 0, got " + shardSize);
    }
  }

  record Root(long seed, Job job) {}

  @TempDir Path dir;

  Root load(String yaml, String... overrides) throws IOException {
    Path f = dir.resolve("c.yaml");
    Files.writeString(f, yaml);
    return ConfigLoader.load(f, Root.class, "test-defaults.yaml", List.of(overrides));
  }

  @Test
  void fileOverDefaultsAndOverridesOverFile() throws IOException {
    Root r = load("job:\n  shardSize: 7\n", "job.mode=skip", "seed=9", "job.sizes=[3, 4]");
    assertThat(r.seed()).isEqualTo(9);
    assertThat(r.job().shardSize()).isEqualTo(7);
    assertThat(r.job().mode()).isEqualTo(OnBadRecord.SKIP);
    assertThat(r.job().sizes()).containsExactly(3, 4);
  }

  @Test
  void unknownKeyNamesItAndTheAllowedKeys() {
    assertThatThrownBy(() -> load("job:\n  shardsize: 7\n"))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("unknown key 'job.shardsize'")
        .hasMessageContaining("allowed keys under 'job': conf, mode, shardSize, sizes");
    assertThatThrownBy(() -> load("", "job.nope=1"))
        .hasMessageContaining("unknown key 'job.nope'");
  }

  @Test
  void invalidValuesNameTheKeyAndWhatIsAllowed() {
    assertThatThrownBy(() -> load("job:\n  shardSize: lots\n"))
        .hasMessageContaining("key 'job.shardSize' has invalid value 'lots', expected an integer");
    assertThatThrownBy(() -> load("job:\n  mode: maybe\n"))
        .hasMessageContaining("key 'job.mode' has invalid value 'maybe'")
        .hasMessageContaining("allowed: fail, skip");
    assertThatThrownBy(() -> load("", "job.shardSize=0"))
        .hasMessageContaining("job.shardSize: must be > 0, got 0");
  }

  @Test
  void missingFileAndBadOverrideSyntax() {
    assertThatThrownBy(() -> ConfigLoader.load(dir.resolve("none.yaml"), Root.class, "test-defaults.yaml", List.of()))
        .hasMessageContaining("none.yaml does not exist");
    assertThatThrownBy(() -> load("", "job.shardSize"))
        .hasMessageContaining("must look like key.sub=value");
  }

  @Test
  void credentialsAreRedactedWhenWritten() throws IOException {
    Root r = load("job:\n  conf:\n    spark.hadoop.fs.s3a.secret.key: hunter2\n    spark.hadoop.fs.s3a.access.key: AKIA1\n    spark.hadoop.fs.s3a.endpoint: http://x\n");
    String yaml = ConfigLoader.toYaml(r);
    assertThat(yaml).doesNotContain("hunter2").doesNotContain("AKIA1").contains("http://x").contains(ConfigLoader.REDACTED);
    assertThat(ConfigLoader.toTree(r).toString()).doesNotContain("hunter2");
  }
}
