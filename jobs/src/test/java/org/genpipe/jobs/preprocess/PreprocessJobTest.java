package org.genpipe.jobs.preprocess;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.Storage;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.records.Manifest;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.MinibatchIterator;
import org.genpipe.common.records.PixelRange;
import org.genpipe.common.records.RecordSchema;
import org.genpipe.common.records.ShardReader;
import org.genpipe.common.testing.RawFixtures;
import org.genpipe.common.testing.RawFixtures.Item;
import org.genpipe.jobs.SparkTestSession;
import org.genpipe.jobs.config.PipelineConfig;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PreprocessJobTest {
  static SparkSession spark;
  @TempDir Path dir;
  final Configuration conf = new Configuration();

  @BeforeAll
  static void start() {
    spark = SparkTestSession.start(Map.of());
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  PipelineConfig config(String dataset, Path input, Path output, String... more) {
    List<String> o = new ArrayList<>(List.of(
        "preprocess.dataset=" + dataset,
        "preprocess.output=" + output,
        "preprocess.shardSize=3"));
    if (input != null) {
      o.add("preprocess.input=" + input);
    }
    o.addAll(List.of(more));
    return PipelineConfig.load(null, o);
  }

  /** raw -> records -> minibatches, pixel values and labels exactly as in the source. */
  @Test
  void fashionMnistRoundTripIsExact() throws IOException {
    Path raw = dir.resolve("raw");
    List<List<Item>> src = RawFixtures.fashionMnist(raw, 10, 4, true, 11);
    Path out = dir.resolve("records");
    PreprocessJob.Result r = PreprocessJob.run(config("fashion-mnist", raw, out), spark, false);

    Manifest m = r.manifest();
    assertThat(m.counts()).containsExactly(Map.entry("train", 10L), Map.entry("test", 4L));
    assertThat(m.shards()).extracting(Manifest.Shard::file).containsExactly(
        "shards/train-00000-of-00004.parquet", "shards/train-00001-of-00004.parquet",
        "shards/train-00002-of-00004.parquet", "shards/train-00003-of-00004.parquet",
        "shards/test-00000-of-00002.parquet", "shards/test-00001-of-00002.parquet");
    assertThat(m.shards()).extracting(Manifest.Shard::rows).containsExactly(3L, 3L, 3L, 1L, 3L, 1L);
    long trainOfClass0 = src.get(0).stream().filter(i -> i.label() == 0).count();
    assertThat(m.classCounts().get("train").get("T-shirt/top")).isEqualTo(trainOfClass0);
    assertThat(m.imageShape().toString()).isEqualTo("28x28x1");
    assertThat(m.sources()).hasSize(4).allSatisfy(s -> assertThat(s.sha256()).hasSize(64));
    for (Manifest.Shard s : m.shards()) {
      assertThat(Storage.sha256(new org.apache.hadoop.fs.Path(Storage.path(out.toString()), s.file()), conf))
          .isEqualTo(s.sha256());
    }
    assertThat(Files.exists(out.resolve("config.yaml"))).isTrue();

    Manifest back = Manifest.read(Storage.path(out.toString()), conf);
    Iterator<Minibatch> batches = new MinibatchIterator(
        ShardReader.read(back.shardPaths(Storage.path(out.toString()), "train"), conf), 4, PixelRange.ZERO_ONE);
    int i = 0;
    while (batches.hasNext()) {
      Minibatch b = batches.next();
      for (int k = 0; k < b.size(); k++, i++) {
        Item item = src.get(0).get(i);
        assertThat(b.labels().getInt(k)).isEqualTo(item.label());
        float[] px = b.images().get(org.nd4j.linalg.indexing.NDArrayIndex.point(k)).dup().data().asFloat();
        for (int p = 0; p < px.length; p++) {
          assertThat(Math.round(px[p] * 255f)).isEqualTo(item.hwc()[p] & 0xFF);
        }
      }
    }
    assertThat(i).isEqualTo(10);
  }

  /** Spark reads the shards natively; partitions become minibatches on the executors. */
  @Test
  void cifarRecordsReadBackThroughSparkPartitions() throws IOException {
    Path raw = dir.resolve("cifar");
    List<List<Item>> src = RawFixtures.cifar10(raw, 2, 3, 12);
    Path out = dir.resolve("records");
    PreprocessJob.run(config("cifar10", raw, out), spark, false);
    var rows = spark.read().parquet(out.resolve(RecordSchema.SHARDS_DIR).toString())
        .filter("split = 'train'").orderBy("id").repartition(2);
    FlatMapFunction<Iterator<Row>, String> toBatches = PreprocessJobTest::describeBatches;
    List<String> got = rows.toJavaRDD().mapPartitions(toBatches).collect().stream().sorted().toList();
    List<String> expected = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      Item it = src.get(0).get(i);
      expected.add(String.format("train/%05d:%d:%d:%d", i, it.label(), it.hwc()[0] & 0xFF, it.hwc()[1023 * 3 + 2] & 0xFF));
    }
    assertThat(got).isEqualTo(expected);
  }

  /** On an executor: rows -> minibatches -> "id:label:first red:last blue" per record. */
  static Iterator<String> describeBatches(Iterator<Row> it) {
    Iterator<ImageRecord> records = new Iterator<>() {
      public boolean hasNext() { return it.hasNext(); }
      public ImageRecord next() { return ShardReader.fromRow(it.next()); }
    };
    List<String> out = new ArrayList<>();
    new MinibatchIterator(records, 3, PixelRange.MINUS_ONE_ONE).forEachRemaining(b -> {
      for (int k = 0; k < b.size(); k++) {
        int label = b.labels().getInt(k);
        int r = PixelRange.MINUS_ONE_ONE.toByte(b.images().getFloat(k, 0, 0, 0));
        int bl = PixelRange.MINUS_ONE_ONE.toByte(b.images().getFloat(k, 2, 31, 31));
        out.add(b.ids().get(k) + ":" + label + ":" + r + ":" + bl);
      }
    });
    return out.iterator();
  }

  @Test
  void pairsKeepPhotoAndLabelMap() throws IOException {
    Path raw = dir.resolve("cityscapes");
    List<Item> train = RawFixtures.pairs(raw, "train", 4, 8, "png", 13);
    RawFixtures.pairs(raw, "val", 1, 8, "png", 14);
    Path out = dir.resolve("records");
    Manifest m = PreprocessJob.run(config("cityscapes", raw, out,
        "preprocess.cityscapes.height=8", "preprocess.cityscapes.width=8"), spark, false).manifest();
    assertThat(m.pairs()).isTrue();
    List<ImageRecord> back = new ArrayList<>();
    ShardReader.read(m.shardPaths(Storage.path(out.toString()), "train"), conf).forEachRemaining(back::add);
    assertThat(back).hasSize(4);
    assertThat(back.get(3).image()).isEqualTo(train.get(3).hwc());
    assertThat(back.get(3).labelMap()).isEqualTo(train.get(3).labelMapHwc());
  }

  @Test
  void sameInputAndConfigGiveTheSameShards() throws IOException {
    PipelineConfig a = config("captcha-render", null, dir.resolve("a"), "preprocess.captcha.count=12");
    PipelineConfig b = config("captcha-render", null, dir.resolve("b"), "preprocess.captcha.count=12");
    List<String> ha = PreprocessJob.run(a, spark, false).manifest().shards().stream().map(Manifest.Shard::sha256).toList();
    List<String> hb = PreprocessJob.run(b, spark, false).manifest().shards().stream().map(Manifest.Shard::sha256).toList();
    assertThat(ha).hasSize(5).isEqualTo(hb);
  }

  /**
   * The records' digest (what runs record and caches are keyed by) follows the records alone: two
   * preprocess runs of the same input give the same digest though their manifest files differ (creation
   * time), another seed gives another; shard files whose bytes differ (Parquet footers vary between JVMs)
   * but whose records are the same give the same digest.
   */
  @Test
  void theRecordsDigestFollowsTheRecordsNotTheFiles() throws IOException {
    Configuration conf = new Configuration();
    PreprocessJob.run(config("captcha-render", null, dir.resolve("d1"), "preprocess.captcha.count=12"), spark, false);
    PreprocessJob.run(config("captcha-render", null, dir.resolve("d2"), "preprocess.captcha.count=12"), spark, false);
    PreprocessJob.run(config("captcha-render", null, dir.resolve("d3"), "preprocess.captcha.count=12", "seed=7"), spark,
        false);
    Manifest.Checked one = Manifest.readChecked(new org.apache.hadoop.fs.Path(dir.resolve("d1").toUri()), conf);
    Manifest.Checked two = Manifest.readChecked(new org.apache.hadoop.fs.Path(dir.resolve("d2").toUri()), conf);
    Manifest.Checked other = Manifest.readChecked(new org.apache.hadoop.fs.Path(dir.resolve("d3").toUri()), conf);
    assertThat(one.sha256()).isNotEqualTo(two.sha256());
    assertThat(one.dataDigest()).hasSize(64).isEqualTo(two.dataDigest()).isNotEqualTo(one.sha256());
    assertThat(other.dataDigest()).isNotEqualTo(one.dataDigest());
    assertThat(one.manifest().shards()).allSatisfy(sh -> assertThat(sh.contentSha256()).hasSize(64));

    List<Manifest.Shard> rewritten = one.manifest().shards().stream()
        .map(sh -> new Manifest.Shard(sh.file(), sh.split(), sh.rows(), sh.bytes(), "0".repeat(64), sh.contentSha256()))
        .toList();
    Manifest m = one.manifest();
    Manifest sameRecords = new Manifest(m.schemaVersion(), m.dataset(), m.imageShape(), m.pairs(), m.classes(), m.counts(),
        m.classCounts(), rewritten, m.sources(), m.skipped(), m.provenance());
    assertThat(new Manifest.Checked(sameRecords, "f".repeat(64)).dataDigest()).isEqualTo(one.dataDigest());
    // a manifest from before content digests: its file's SHA-256, as before
    List<Manifest.Shard> old = m.shards().stream()
        .map(sh -> new Manifest.Shard(sh.file(), sh.split(), sh.rows(), sh.bytes(), sh.sha256(), null)).toList();
    assertThat(new Manifest.Checked(new Manifest(m.schemaVersion(), m.dataset(), m.imageShape(), m.pairs(), m.classes(),
        m.counts(), m.classCounts(), old, m.sources(), m.skipped(), m.provenance()), "e".repeat(64)).dataDigest())
        .isEqualTo("e".repeat(64));
  }

  @Test
  void existingOutputIsRefusedUnlessOverwrite() throws IOException {
    Path out = dir.resolve("records");
    PipelineConfig c = config("captcha-render", null, out, "preprocess.captcha.count=4");
    PreprocessJob.run(c, spark, false);
    assertThatThrownBy(() -> PreprocessJob.run(c, spark, false))
        .isInstanceOf(BadInputException.class).hasMessageContaining("already exists; pass --overwrite");
    PipelineConfig c6 = config("captcha-render", null, out, "preprocess.captcha.count=6");
    assertThat(PreprocessJob.run(c6, spark, true).manifest().total()).isEqualTo(6);
    assertThat(Manifest.read(Storage.path(out.toString()), conf).total()).isEqualTo(6);
    assertThat(leftovers()).isEmpty();
  }

  @Test
  void corruptInputFailsWithTheFileNamedAndLeavesNothingBehind() throws IOException {
    Path raw = dir.resolve("raw");
    RawFixtures.fashionMnist(raw, 30, 2, true, 15);
    Path images = raw.resolve("train-images-idx3-ubyte.gz");
    byte[] b = Files.readAllBytes(images);
    Files.write(images, java.util.Arrays.copyOf(b, b.length * 2 / 3));
    Path out = dir.resolve("records");
    assertThatThrownBy(() -> PreprocessJob.run(config("fashion-mnist", raw, out), spark, false))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("train-images-idx3-ubyte.gz");
    assertThat(out).doesNotExist();
    assertThat(leftovers()).isEmpty();
  }

  @Test
  void skippedRecordsAreCountedInTheManifest() throws IOException {
    Path raw = dir.resolve("captchas");
    RawFixtures.captchaFolder(raw, List.of("abcd", "ab!d", "x2y3", "toolongtext"), 20, 8, 16);
    Path out = dir.resolve("records");
    String[] opts = {"preprocess.captcha.testFraction=0", "preprocess.captcha.height=8", "preprocess.captcha.width=20"};
    assertThatThrownBy(() -> PreprocessJob.run(config("captcha", raw, out, opts), spark, false))
        .hasMessageContaining("ab!d.png: file name: text 'ab!d' has character '!'");
    assertThat(out).doesNotExist();
    String[] skip = Stream.concat(Stream.of(opts), Stream.of("preprocess.onBadRecord=skip")).toArray(String[]::new);
    Manifest m = PreprocessJob.run(config("captcha", raw, out, skip), spark, false).manifest();
    assertThat(m.total()).isEqualTo(2);
    assertThat(m.skipped()).hasSize(2);
    assertThat(Manifest.read(Storage.path(out.toString()), conf).skipped()).hasSize(2);
  }

  @Test
  void emptyFolderAndMissingPath() throws IOException {
    Path empty = Files.createDirectories(dir.resolve("empty"));
    assertThatThrownBy(() -> PreprocessJob.run(config("captcha", empty, dir.resolve("o")), spark, false))
        .hasMessageContaining("holds no CAPTCHA images");
    assertThatThrownBy(() -> PreprocessJob.run(config("cifar10", dir.resolve("missing"), dir.resolve("o")), spark, false))
        .hasMessageContaining("missing does not exist");
  }

  private List<Path> leftovers() throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.filter(p -> p.getFileName().toString().startsWith(".")).toList();
    }
  }
}
