package org.genpipe.jobs.s3;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.sql.SparkSession;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.Storage;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.records.Manifest;
import org.genpipe.common.records.ShardReader;
import org.genpipe.common.testing.RawFixtures;
import org.genpipe.common.testing.RawFixtures.Item;
import org.genpipe.jobs.SparkTestSession;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.jobs.inspect.InspectJob;
import org.genpipe.jobs.preprocess.PreprocessJob;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Records written to and read back from a real S3 server (s3proxy) through hadoop-aws's S3A. */
class S3RoundTripTest {
  static final String SECRET = "s3cr3t-value-never-written";
  @TempDir static Path work;
  static S3ProxyServer s3;
  static SparkSession spark;

  @BeforeAll
  static void start() throws Exception {
    s3 = new S3ProxyServer(work);
    s3.createBucket("records");
    spark = SparkTestSession.start(Map.of(
        "spark.hadoop.fs.s3a.endpoint", s3.endpoint(),
        "spark.hadoop.fs.s3a.path.style.access", "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled", "false",
        "spark.hadoop.fs.s3a.access.key", "test",
        "spark.hadoop.fs.s3a.secret.key", SECRET,
        "spark.hadoop.fs.s3a.attempts.maximum", "1",
        "spark.hadoop.fs.s3a.retry.limit", "1",
        "spark.hadoop.fs.s3a.connection.establish.timeout", "2000",
        // a bucket whose endpoint nothing listens on
        "spark.hadoop.fs.s3a.bucket.unreachable.endpoint", "http://127.0.0.1:9"));
  }

  @AfterAll
  static void stop() throws Exception {
    if (spark != null) {
      spark.stop();
    }
    if (s3 != null) {
      s3.close();
    }
  }

  @Test
  void preprocessWritesToS3AndRecordsReadBackExactly() throws Exception {
    Path raw = work.resolve("raw");
    List<List<Item>> src = RawFixtures.fashionMnist(raw, 7, 2, true, 21);
    PipelineConfig config = PipelineConfig.load(null, List.of(
        "preprocess.dataset=fashion-mnist", "preprocess.input=" + raw,
        "preprocess.output=s3a://records/fm", "preprocess.shardSize=4",
        "spark.conf={spark.hadoop.fs.s3a.secret.key: " + SECRET + "}"));
    PreprocessJob.Result r = PreprocessJob.run(config, spark, false);
    assertThat(r.output().toString()).isEqualTo("s3a://records/fm");

    Configuration conf = spark.sparkContext().hadoopConfiguration();
    org.apache.hadoop.fs.Path out = Storage.path("s3a://records/fm");
    Manifest m = Manifest.read(out, conf);
    assertThat(m.counts()).containsEntry("train", 7L).containsEntry("test", 2L);
    List<ImageRecord> back = new ArrayList<>();
    ShardReader.read(m.shardPaths(out, "train"), conf).forEachRemaining(back::add);
    for (int i = 0; i < 7; i++) {
      assertThat(back.get(i).image()).isEqualTo(src.get(0).get(i).hwc());
      assertThat(back.get(i).label()).isEqualTo(src.get(0).get(i).label());
    }
    // credentials never reach the manifest or the resolved config
    assertThat(Storage.readString(new org.apache.hadoop.fs.Path(out, "manifest.json"), conf)).doesNotContain(SECRET);
    assertThat(Storage.readString(new org.apache.hadoop.fs.Path(out, "config.yaml"), conf)).doesNotContain(SECRET);
    // nothing staged is left in the bucket
    FileSystem fs = out.getFileSystem(conf);
    assertThat(fs.listStatus(new org.apache.hadoop.fs.Path("s3a://records/")))
        .extracting(st -> st.getPath().getName()).containsExactly("fm");

    InspectJob.Result ins = InspectJob.run("s3a://records/fm", "test", 2, 0, work.resolve("grid.png").toString(), conf);
    assertThat(ins.sample()).hasSize(2);
  }

  @Test
  void unreachableS3IsAClearError() {
    PipelineConfig config = PipelineConfig.load(null, List.of(
        "preprocess.dataset=captcha-render", "preprocess.captcha.count=2",
        "preprocess.output=s3a://unreachable/x"));
    assertThatThrownBy(() -> PreprocessJob.run(config, spark, false))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("cannot access s3a://unreachable/x")
        .hasMessageNotContaining(SECRET);
  }
}
