package org.genpipe.jobs.preprocess;

import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import org.genpipe.common.config.ConfigLoader;
import org.genpipe.common.data.BadRecords;
import org.genpipe.common.data.Datasets;
import org.genpipe.common.data.Inventory;
import org.genpipe.common.data.OnBadRecord;
import org.genpipe.common.data.PreprocessSettings;
import org.genpipe.common.data.RawDataset;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.HadoopConf;
import org.genpipe.common.io.Storage;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.provenance.Provenance;
import org.genpipe.common.records.Manifest;
import org.genpipe.common.records.RecordSchema;
import org.genpipe.common.records.ShardWriter;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.jobs.spark.TaskProgress;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Raw data set in its official format -> sharded Parquet records + {@code manifest.json}.
 *
 * <p>The driver lists and checks the input ({@link RawDataset#inventory}), cuts each split into
 * shards of {@code shardSize} consecutive items, and runs one Spark task per group of consecutive
 * shards; a task reads its items in one pass and writes its shard files, hashing them as it goes. Shard contents and names depend only on
 * the input and config, never on the number of executors. Everything is written under a hidden
 * staging folder beside the output, which becomes the output by rename once the manifest is written.
 */
public final class PreprocessJob {
  private static final Logger LOG = LoggerFactory.getLogger(PreprocessJob.class);

  private PreprocessJob() {}

  /** What a run produced. */
  public record Result(Path output, Manifest manifest, long millis) {}

  /** One shard: items [from, to) of a split, written as shard {@code index} of {@code total}. */
  record ShardTask(Inventory.Split split, int index, int total, int from, int to) implements Serializable {}

  /**
   * What a task wrote, or the bad-input message that stopped it: bad input is returned rather than
   * thrown, since retrying cannot fix it and Spark does not keep the exception type for the driver.
   */
  record ShardResult(
      Manifest.Shard shard, Map<Integer, Long> labelCounts, List<BadRecords.Skipped> skipped, String error)
      implements Serializable {}

  public static Result run(PipelineConfig config, SparkSession spark, boolean overwrite) {
    long start = System.currentTimeMillis();
    PreprocessSettings s = config.requirePreprocess();
    RawDataset dataset = Datasets.create(s, config.seed());
    Configuration conf = spark.sparkContext().hadoopConfiguration();
    Path output = Storage.path(s.output());
    if (Storage.exists(output, conf) && !overwrite) {
      throw new BadInputException(output + " already exists; pass --overwrite to replace it");
    }
    BadRecords bad = new BadRecords(s.onBadRecord());
    Inventory inv;
    try {
      inv = dataset.inventory(conf, bad);
    } catch (IOException e) {
      throw new BadInputException("cannot read input " + s.input() + ": " + e.getMessage(), e);
    }
    List<ShardTask> shards = plan(inv, s.shardSize());
    List<List<ShardTask>> tasks = group(shards, 2 * spark.sparkContext().defaultParallelism());
    LOG.info("{}: {} items in {} shards ({} Spark tasks) -> {}", dataset.name(),
        inv.splits().stream().mapToInt(Inventory.Split::count).sum(), shards.size(), tasks.size(), output);

    Path staging = Storage.stagingDir(output);
    try {
      JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
      HadoopConf hconf = new HadoopConf(conf);
      String shardsDir = new Path(staging, RecordSchema.SHARDS_DIR).toString();
      OnBadRecord mode = s.onBadRecord();
      List<ShardResult> results;
      try (TaskProgress p = new TaskProgress(spark.sparkContext(), "preprocess " + dataset.name(), tasks.size(), "tasks")) {
        results =
            jsc.parallelize(tasks, Math.max(1, tasks.size()))
                .flatMap(group -> writeShards(dataset, inv, group, shardsDir, mode, hconf.get()).iterator())
                .collect();
      }
      for (ShardResult r : results) {
        if (r.error() != null) {
          throw new BadInputException(r.error());
        }
      }
      List<Manifest.SourceFile> sources = checksum(jsc, inv.sourceFiles(), hconf);
      Manifest manifest =
          manifest(dataset.name(), inv, results, sources, bad.skipped(), config, spark.version());
      Storage.writeAtomically(new Path(staging, RecordSchema.MANIFEST), manifest.toJson(), conf);
      Storage.writeAtomically(new Path(staging, "config.yaml"), config.toYaml(), conf);
      Storage.commit(staging, output, overwrite, conf);
      return new Result(output, manifest, System.currentTimeMillis() - start);
    } catch (RuntimeException | IOException e) {
      Storage.deleteQuietly(staging, conf);
      BadInputException b = BadInputException.findIn(e);
      if (b != null) {
        throw b;
      }
      if (e instanceof IOException io) {
        throw Storage.unreachable(output, io);
      }
      throw (RuntimeException) e;
    }
  }

  /** Consecutive items, {@code shardSize} per shard, per split. */
  static List<ShardTask> plan(Inventory inv, int shardSize) {
    List<ShardTask> tasks = new ArrayList<>();
    for (Inventory.Split split : inv.splits()) {
      int total = Math.max(1, (split.count() + shardSize - 1) / shardSize);
      for (int k = 0; k < total; k++) {
        int from = Math.min(split.count(), k * shardSize);
        int to = Math.min(split.count(), from + shardSize);
        tasks.add(new ShardTask(split, k, total, from, to));
      }
    }
    return tasks;
  }

  /**
   * Consecutive shards of a split go to one task, at most {@code perSplit} tasks per split: a task
   * reads its items in one pass, which matters for gzipped inputs that cannot seek.
   */
  static List<List<ShardTask>> group(List<ShardTask> shards, int perSplit) {
    List<List<ShardTask>> tasks = new ArrayList<>();
    Map<String, List<ShardTask>> bySplit = new LinkedHashMap<>();
    shards.forEach(t -> bySplit.computeIfAbsent(t.split().name(), k -> new ArrayList<>()).add(t));
    for (List<ShardTask> split : bySplit.values()) {
      int n = Math.min(split.size(), Math.max(1, perSplit));
      for (int g = 0; g < n; g++) {
        tasks.add(new ArrayList<>(split.subList(g * split.size() / n, (g + 1) * split.size() / n)));
      }
    }
    return tasks;
  }

  /**
   * Writes a group of consecutive shards of one split, reading their items in one pass; returns one
   * result per shard, or a single result carrying the bad-input error that stopped it.
   */
  static List<ShardResult> writeShards(
      RawDataset dataset, Inventory inv, List<ShardTask> group, String shardsDir, OnBadRecord mode, Configuration conf)
      throws IOException {
    ShardTask first = group.get(0);
    ShardTask last = group.get(group.size() - 1);
    BadRecords bad = new BadRecords(mode);
    GroupWriter w = new GroupWriter(group, shardsDir, conf);
    try {
      dataset.read(inv, first.split(), first.from(), last.to(), conf,
          (item, r) -> {
            try {
              w.write(item, r);
            } catch (IOException e) {
              throw new UncheckedIOException(e);
            }
          },
          bad);
      return w.finish(bad);
    } catch (BadInputException | UncheckedIOException e) {
      w.abort();
      BadInputException b = BadInputException.findIn(e);
      if (b == null) {
        throw e;
      }
      return List.of(new ShardResult(null, Map.of(), List.of(), b.getMessage()));
    }
  }

  /** Routes records to the shard their item index falls in; shards are opened and closed in order. */
  private static final class GroupWriter {
    private final List<ShardTask> group;
    private final String shardsDir;
    private final Configuration conf;
    private final List<ShardResult> done = new ArrayList<>();
    private int current = -1;
    private ShardWriter writer;
    private Map<Integer, Long> labels;

    GroupWriter(List<ShardTask> group, String shardsDir, Configuration conf) {
      this.group = group;
      this.shardsDir = shardsDir;
      this.conf = conf;
    }

    void write(int item, ImageRecord r) throws IOException {
      while (current < 0 || item >= group.get(current).to()) {
        next();
      }
      writer.write(r);
      if (r.label() != null) {
        labels.merge(r.label(), 1L, Long::sum);
      }
    }

    /** Closes the open shard (if any) and opens the next. */
    private void next() throws IOException {
      if (writer != null) {
        ShardTask t = group.get(current);
        ShardWriter.Written wr = writer.finish();
        done.add(new ShardResult(
            new Manifest.Shard(RecordSchema.SHARDS_DIR + "/" + name(t), t.split().name(), wr.rows(), wr.bytes(), wr.sha256(),
                wr.contentSha256()),
            labels, List.of(), null));
      }
      current++;
      if (current < group.size()) {
        writer = new ShardWriter(new Path(shardsDir, name(group.get(current))), conf);
        labels = new TreeMap<>();
      } else {
        writer = null;
      }
    }

    private static String name(ShardTask t) {
      return RecordSchema.shardName(t.split().name(), t.index(), t.total());
    }

    /** Closes the remaining shards (empty ones included) and attaches the skips to the first. */
    List<ShardResult> finish(BadRecords bad) throws IOException {
      while (current < group.size()) {
        next();
      }
      if (!bad.skipped().isEmpty()) {
        ShardResult f = done.get(0);
        done.set(0, new ShardResult(f.shard(), f.labelCounts(), List.copyOf(bad.skipped()), null));
      }
      return done;
    }

    void abort() {
      try {
        if (writer != null) {
          writer.close();
        }
      } catch (IOException | RuntimeException ignored) {
        // the driver deletes the staging folder
      }
    }
  }

  private static List<Manifest.SourceFile> checksum(JavaSparkContext jsc, List<String> files, HadoopConf hconf) {
    if (files.isEmpty()) {
      return List.of();
    }
    int slices = Math.min(files.size(), Math.max(1, jsc.defaultParallelism() * 2));
    return jsc.parallelize(files, slices)
        .map(f -> {
          Path p = new Path(f);
          Configuration c = hconf.get();
          return new Manifest.SourceFile(f, Storage.fs(p, c).getFileStatus(p).getLen(), Storage.sha256(p, c));
        })
        .collect();
  }

  static Manifest manifest(
      String dataset,
      Inventory inv,
      List<ShardResult> results,
      List<Manifest.SourceFile> sources,
      List<BadRecords.Skipped> inventorySkips,
      PipelineConfig config,
      String sparkVersion) {
    Map<String, Long> counts = new LinkedHashMap<>();
    Map<String, Map<String, Long>> classCounts = new LinkedHashMap<>();
    List<Manifest.Skip> skipped = new ArrayList<>();
    inventorySkips.forEach(k -> skipped.add(new Manifest.Skip(k.item(), k.reason())));
    for (Inventory.Split split : inv.splits()) {
      counts.put(split.name(), 0L);
      if (!inv.classes().isEmpty()) {
        Map<String, Long> byClass = new LinkedHashMap<>();
        inv.classes().forEach(c -> byClass.put(c, 0L));
        classCounts.put(split.name(), byClass);
      }
    }
    for (ShardResult r : results) {
      counts.merge(r.shard().split(), r.shard().rows(), Long::sum);
      Map<String, Long> byClass = classCounts.getOrDefault(r.shard().split(), new HashMap<>());
      r.labelCounts().forEach((label, n) -> byClass.merge(inv.classes().get(label), n, Long::sum));
      r.skipped().forEach(k -> skipped.add(new Manifest.Skip(k.item(), k.reason())));
    }
    return new Manifest(
        RecordSchema.VERSION,
        dataset,
        inv.shape(),
        inv.pairs(),
        inv.classes(),
        counts,
        classCounts.isEmpty() ? null : classCounts,
        results.stream().map(ShardResult::shard).toList(),
        sources,
        skipped,
        Provenance.capture(sparkVersion, config.seed(), ConfigLoader.toTree(config)));
  }
}
