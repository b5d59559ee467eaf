package org.genpipe.jobs.evaluate;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.SparkSession;
import org.genpipe.common.config.ConfigException;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.HadoopConf;
import org.genpipe.common.io.Storage;
import org.genpipe.common.provenance.Provenance;
import org.genpipe.common.records.Manifest;
import org.genpipe.jobs.checkpoint.Checkpoint;
import org.genpipe.jobs.config.EvaluateSettings;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.jobs.config.TrackingSettings;
import org.genpipe.jobs.evaluate.FeatureSets.Kind;
import org.genpipe.jobs.judge.Digests;
import org.genpipe.jobs.judge.DomainExtractor;
import org.genpipe.jobs.judge.FeatureExtractor;
import org.genpipe.jobs.judge.OcrJudge;
import org.genpipe.jobs.spark.TaskProgress;
import org.genpipe.jobs.tracking.ResilientTracker;
import org.genpipe.jobs.tracking.Tracker;
import org.genpipe.jobs.tracking.TrackingSpool;
import org.genpipe.models.GenerativeModel;
import org.genpipe.models.ImageConditioned;
import org.genpipe.models.ModelFactory;
import org.genpipe.models.ModelState;
import org.genpipe.models.Reconstructing;
import org.genpipe.models.TrainableModel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The distributed evaluation job: a checkpoint's model generates samples (and, for autoencoders,
 * reconstructs the reference images) on all executors, which extract features and return float64
 * sufficient statistics (treeAggregate); the driver computes FID and KID against the reference split,
 * whose statistics are computed once and cached by (records manifest, split, extractor). Results go
 * to the console, to {@code <run>/evaluation/step-N.json} and into the training run's MLflow entry.
 *
 * <p>Metric names carry the protocol: {@code fid_<extractor>_<gen|rec>_<samples>_<split>} (e.g.
 * {@code fid_domain_gen_600_test}, {@code fid_inception_gen_10k_test}), and KID as {@code kid_...}
 * with {@code kid_..._std}.
 *
 * <p>An image-to-image model ({@link ImageConditioned}) translates every pair of the split instead
 * of sampling noise: its FID/KID compare the translations with the pairs' targets, and it gets the
 * paired metrics {@code l1_gen_N_split}, {@code psnr_...}, {@code ssim_...} and the segmentation
 * score {@code seg_domain_{pixel_acc,class_acc,iou}_{gen,real}_N_split} (a segmenter trained on the
 * train photos, as the domain extractor is, read on the translations and on the real photos).
 */
public final class EvaluateJob {
  private static final Logger LOG = LoggerFactory.getLogger(EvaluateJob.class);
  private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
  private static final int TREE_DEPTH = 2;
  /** Samples (and reference images) the diversity measure compares pairwise. */
  private static final int DIVERSITY_SAMPLE = 1000;

  private EvaluateJob() {}

  /**
   * One metric with how it was measured.
   *
   * @param perSeed with {@code evaluate.repeats} > 1: its value for each generation seed (the value is
   *     their mean); otherwise empty
   */
  public record Metric(String name, double value, Map<String, String> protocol, List<Double> perSeed) {
    public Metric(String name, double value, Map<String, String> protocol) {
      this(name, value, protocol, List.of());
    }
  }

  /** What an evaluation reports. */
  public record Result(Path checkpoint, long step, String model, String extractor, List<Metric> metrics,
      List<String> warnings, Path report, String trackingLocation, String notLogged, double seconds) {

    public double value(String metric) {
      return metrics.stream().filter(m -> m.name().equals(metric)).findFirst()
          .orElseThrow(() -> new IllegalArgumentException("no metric " + metric)).value();
    }
  }

  /** The reference set's statistics, and its kept features for KID (null when imported from .npz). */
  private record Reference(NpzStats.Stats stats, long count, double[][] kidFeatures, String source) {}

  public static Result run(PipelineConfig config, SparkSession spark, boolean showProgress) {
    long started = System.nanoTime();
    EvaluateSettings es = config.requireEvaluate();
    if (!EvaluateSettings.given(es.checkpoint())) {
      throw new ConfigException("evaluate.checkpoint: missing: a checkpoint folder or a run folder");
    }
    Configuration conf = spark.sparkContext().hadoopConfiguration();
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    Checkpoint.Loaded ck = Checkpoint.resolve(es.checkpoint(), conf);
    String ckInfo = ck.dir() + "/" + Checkpoint.INFO;
    if (EvaluateSettings.given(es.model()) && !es.model().equals(ck.info().model())) {
      throw new BadInputException(ck.dir() + " is a checkpoint of model " + ck.info().model() + ", evaluate.model says "
          + es.model());
    }
    PipelineConfig trained = PipelineConfig.fromYaml(ck.info().config(), ckInfo);
    ModelFactory factory = trained.requireModel().factory(ck.info().imageShape(), ck.info().classCount(), ck.info().seed(), ckInfo);
    boolean reconstructs;
    ImageConditioned conditioned;
    String textAlphabet;
    int maxTextLength;
    try (TrainableModel probe = factory.create()) {
      if (!(probe instanceof GenerativeModel)) {
        throw new BadInputException(ck.dir() + " is a checkpoint of " + probe.name() + ", which reads images: the"
            + " evaluation judges generative models (a reader's held-out accuracy is logged by its training run)");
      }
      try {
        probe.loadState(ck.state());
      } catch (IllegalArgumentException e) {
        throw new BadInputException(ck.dir() + "/" + Checkpoint.STATE + " does not fit model " + probe.name() + ": "
            + e.getMessage(), e);
      }
      reconstructs = probe instanceof Reconstructing;
      conditioned = probe instanceof ImageConditioned ic ? ic : null;
      textAlphabet = ((GenerativeModel) probe).textAlphabet();
      maxTextLength = ((GenerativeModel) probe).maxTextLength();
    }
    boolean drawsTexts = textAlphabet != null;
    // image-to-image and text-conditioned models make one image per reference record, for its condition
    boolean perRecord = conditioned != null || drawsTexts;

    Path recordsDir = Storage.path(EvaluateSettings.given(es.records()) ? es.records() : ck.info().records());
    Manifest.Checked checked = Manifest.readChecked(recordsDir, conf);
    Manifest manifest = checked.manifest();
    String dataDigest = checked.dataDigest();
    List<String> warnings = new ArrayList<>();
    if (!dataDigest.equals(ck.info().dataDigest())) {
      warnings.add("the reference records " + recordsDir + " are not the records the checkpoint was trained on ("
          + ck.info().records() + ")");
    }
    Long splitCount = manifest.counts().get(es.split());
    if (splitCount == null || splitCount < 2) {
      throw new BadInputException("evaluate.split: " + recordsDir + " has " + (splitCount == null ? "no split '"
          + es.split() + "'" : splitCount + " record(s) in split '" + es.split() + "'") + "; FID needs at least 2"
          + " (splits: " + manifest.counts() + ")");
    }
    if (!manifest.imageShape().equals(ck.info().imageShape())) {
      throw new BadInputException(recordsDir + " holds " + manifest.imageShape() + " images, the checkpoint's model "
          + "makes " + ck.info().imageShape());
    }
    long samples = es.samples() > 0 && !perRecord ? es.samples() : splitCount;
    if (perRecord && es.samples() > 0 && es.samples() != splitCount) {
      warnings.add("evaluate.samples " + es.samples() + " ignored: " + (drawsTexts
          ? "a text-conditioned model draws one image per " + es.split() + " record's text"
          : "an image-to-image model makes one image per " + es.split() + " pair") + " (" + splitCount + ")");
    }
    if (samples < 2) {
      throw new BadInputException("evaluate.samples: FID needs at least 2 samples, got " + samples);
    }
    Path cacheDir = Storage.path(es.cache());

    // the reader that reads drawn texts, and with extractor: reader gives the features
    boolean readerFeatures = OcrJudge.NAME.equals(es.extractor());
    if (readerFeatures && !drawsTexts && !EvaluateSettings.given(es.reader())) {
      throw new ConfigException("evaluate.extractor: reader: " + ck.info().model() + " draws no texts, so no reader can"
          + " be trained for its alphabet; name a captcha-reader checkpoint in evaluate.reader");
    }
    OcrJudge judge = drawsTexts || readerFeatures ? OcrJudge.obtain(es.reader(), es.readerSteps(), es.split(),
        textAlphabet, maxTextLength, recordsDir,
        manifest, dataDigest, config.seed(), cacheDir, conf, showProgress) : null;

    FeatureExtractor.Spec extractor = switch (es.extractor()) {
      case DomainExtractor.NAME -> DomainExtractor.obtain(recordsDir, manifest, dataDigest, es.domain(),
          config.seed(), es.split(), cacheDir, conf, showProgress);
      case InceptionExtractor.NAME -> InceptionExtractor.spec(es.inceptionGraph(), conf);
      case OcrJudge.NAME -> judge;
      default -> throw new IllegalStateException("extractor " + es.extractor());
    };

    // a translated photo's classes come from a segmenter of the photos (the domain extractor's, when it is one)
    DomainExtractor segmenter = null;
    if (conditioned != null && !conditioned.makesLabelMaps()) {
      segmenter = extractor instanceof DomainExtractor d && d.targets().pixels() ? d
          : DomainExtractor.obtain(recordsDir, manifest, dataDigest, es.domain(), config.seed(), es.split(), cacheDir,
              conf, showProgress);
    }

    // the reference set: imported, cached, or computed in the same job as the samples
    String refKey = Digests.shortSha(dataDigest + "|" + es.split() + "|" + extractor.id() + "|" + es.kidMaxSamples()
        + (conditioned != null && conditioned.makesLabelMaps() ? "|label maps" : ""));
    Path refDir = new Path(cacheDir, "reference-" + refKey);
    Reference reference = EvaluateSettings.given(es.referenceStats())
        ? importStats(Storage.path(es.referenceStats()), extractor, conf)
        : readCached(refDir, conf);

    Map<String, String> common = new LinkedHashMap<>();
    common.put("extractor", extractor.name());
    common.put("resize", extractor.resize());
    common.put("reference_split", es.split());
    List<List<Metric>> perSeed = new ArrayList<>();
    for (int k = 0; k < es.repeats(); k++) {
      // generation seeds seed, seed + 1, ...; the judges (domain classifier, reader) and the reference stay as they are
      long seed = config.seed() + k;
      boolean computeReference = reference == null;
      List<EvaluationTask.Item> items = new ArrayList<>();
      long offset = 0;
      for (Manifest.Shard s : manifest.shards()) {
        if (s.split().equals(es.split())) {
          if (computeReference || reconstructs || perRecord) {
            items.addAll(EvaluationTask.Item.shard(new Path(recordsDir, s.file()), offset, s.rows(), computeReference,
                reconstructs || perRecord));
          }
          offset += s.rows();
        }
      }
      for (long c = 0; !perRecord && c * EvaluationTask.CHUNK < samples; c++) {
        items.add(EvaluationTask.Item.chunk(c, samples));
      }
      String jobId = UUID.randomUUID().toString();
      EvaluationTask task = new EvaluationTask(jobId, factory, ck.state(), extractor, segmenter,
          drawsTexts ? judge : null, new HadoopConf(conf), seed, es.batchSize(), es.kidMaxSamples());
      Broadcast<EvaluationTask> once = jsc.broadcast(task);
      FeatureSets sets;
      TaskProgress bar = showProgress ? new TaskProgress(spark.sparkContext(), es.repeats() == 1 ? "evaluate"
          : "evaluate seed " + seed + " (" + (k + 1) + "/" + es.repeats() + ")", items.size(), "parts") : null;
      try {
        sets = jsc.parallelize(items, Math.max(1, Math.min(items.size(), es.workers() * 8)))
            .mapPartitions(it -> {
              FeatureSets s = new FeatureSets();
              while (it.hasNext()) {
                once.value().run(it.next(), s);
              }
              return List.of(s).iterator();
            })
            .treeAggregate(new FeatureSets(), FeatureSets::merge, FeatureSets::merge, TREE_DEPTH);
      } finally {
        if (bar != null) {
          bar.close();
        }
        once.destroy();
        EvaluationTask.release(jobId);
      }
      if (computeReference) {
        FeatureStats refStats = sets.stats(Kind.REFERENCE);
        reference = new Reference(new NpzStats.Stats(refStats.mean(), refStats.covariance()), refStats.count(),
            sets.keptFeatures(Kind.REFERENCE), "computed from " + recordsDir + " split " + es.split());
        writeCache(refDir, reference, dataDigest, es.split(), extractor, conf);
      }
      common.put("reference_images", reference.count() < 0 ? "unknown (imported)" : String.valueOf(reference.count()));
      List<Metric> metrics = new ArrayList<>();
      List<String> seen = k == 0 ? warnings : new ArrayList<>(); // the same warnings for every seed: said once
      String generatedSet = conditioned != null
          ? "translated from the " + es.split() + " " + conditioned.conditionName() + "s, one per pair (seed "
              + seed + ")"
          : drawsTexts ? "drawn for the " + es.split() + " records' texts, one per record (seed " + seed + ")"
          : "generated from noise (seed " + seed + ")";
      compare(Kind.GENERATED, samples, generatedSet, sets, reference, extractor, es, common, metrics, seen, seed);
      if (reconstructs) {
        compare(Kind.RECONSTRUCTED, splitCount, "reconstructions of the reference images", sets, reference, extractor,
            es, common, metrics, seen, seed);
      }
      if (conditioned != null) {
        pairedMetrics(sets, splitCount, es.split(), generatedSet, conditioned, segmenter, metrics);
      }
      if (drawsTexts) {
        ocrMetrics(sets, splitCount, es.split(), generatedSet, judge, metrics);
      }
      perSeed.add(metrics);
    }
    if (EvaluateSettings.given(es.exportStats())) {
      Path out = Storage.path(es.exportStats());
      try {
        Storage.writeAtomically(out, NpzStats.toBytes(reference.stats()), conf);
      } catch (IOException e) {
        throw Storage.unreachable(out, e);
      }
    }
    List<Metric> metrics = es.repeats() == 1 ? perSeed.get(0) : overSeeds(perSeed, config.seed());

    // report: JSON in the run folder, console by the caller, MLflow
    Path runDir = Checkpoint.runDir(ck.dir());
    Path report = new Path(new Path(runDir, "evaluation"), String.format("step-%08d.json", ck.info().step()));
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("checkpoint", ck.dir().toString());
    json.put("step", ck.info().step());
    json.put("model", ck.info().model());
    json.put("records", recordsDir.toString());
    json.put("records_digest", dataDigest);
    json.put("reference", reference.source());
    json.put("extractor", extractor.protocol());
    json.put("seed", config.seed());
    Map<String, Object> values = new LinkedHashMap<>();
    for (Metric m : metrics) {
      Map<String, Object> entry = new LinkedHashMap<>();
      entry.put("value", m.value());
      if (!m.perSeed().isEmpty()) {
        entry.put("per_seed", m.perSeed());
      }
      entry.put("protocol", m.protocol());
      values.put(m.name(), entry);
    }
    json.put("metrics", values);
    json.put("warnings", warnings);
    json.put("provenance", Provenance.capture(spark.version(), config.seed(),
        org.genpipe.common.config.ConfigLoader.toTree(config)));
    byte[] reportBytes;
    try {
      reportBytes = JSON.writeValueAsBytes(json);
      Storage.writeAtomically(report, reportBytes, conf);
    } catch (IOException e) {
      throw Storage.unreachable(report, e);
    }
    String experiment = EvaluateSettings.given(trained.tracking().experiment()) ? trained.tracking().experiment()
        : ck.info().model() + "-" + manifest.dataset(); // as the training job names it
    String[] logged = track(config, experiment, ck, extractor, metrics, reportBytes, report);
    return new Result(ck.dir(), ck.info().step(), ck.info().model(), describe(extractor), metrics, warnings, report, logged[0], logged[1],
        (System.nanoTime() - started) / 1e9);
  }

  /**
   * The metrics of K seeds as one set: each the mean over the seeds, with {@code <name>_std} their
   * sample standard deviation (n - 1); KID's spread over subsets gives way to its spread over seeds.
   */
  static List<Metric> overSeeds(List<List<Metric>> perSeed, long firstSeed) {
    int k = perSeed.size();
    List<Metric> out = new ArrayList<>();
    for (Metric first : perSeed.get(0)) {
      if (first.name().endsWith("_std")) {
        continue;
      }
      double[] values = new double[k];
      for (int i = 0; i < k; i++) {
        String name = first.name();
        long seed = firstSeed + i;
        values[i] = perSeed.get(i).stream().filter(m -> m.name().equals(name)).findFirst()
            .orElseThrow(() -> new IllegalStateException("seed " + seed + " gave no " + name)).value();
      }
      double mean = 0;
      for (double v : values) {
        mean += v / k;
      }
      double ss = 0;
      for (double v : values) {
        ss += (v - mean) * (v - mean);
      }
      Map<String, String> protocol = new LinkedHashMap<>(first.protocol());
      protocol.computeIfPresent("set", (key, set) -> set.replaceAll("\\(seed \\d+\\)", "(seeds " + firstSeed + ".."
          + (firstSeed + k - 1) + ")"));
      protocol.put("repeats", k + " generation seeds, " + firstSeed + ".." + (firstSeed + k - 1) + "; value: their mean,"
          + " _std: their sample standard deviation");
      List<Double> each = java.util.Arrays.stream(values).boxed().toList();
      out.add(new Metric(first.name(), mean, protocol, each));
      out.add(new Metric(first.name() + "_std", Math.sqrt(ss / (k - 1)), protocol));
    }
    return out;
  }

  /**
   * {@code l1_gen_N_split}, {@code psnr_...}, {@code ssim_...} of the translations against their
   * targets; {@code seg_domain_{pixel_acc,class_acc,iou}_{gen,real}_N_split} of the segmenter on
   * translated and on real photos (or {@code seg_palette_..._gen_...}: the colours of translated
   * label maps read as classes).
   */
  private static void pairedMetrics(FeatureSets sets, long count, String split, String generatedSet,
      ImageConditioned model, DomainExtractor segmenter, List<Metric> metrics) {
    PairedMetrics p = sets.paired();
    String suffix = "_" + count(count) + "_" + split;
    Map<String, String> protocol = new LinkedHashMap<>();
    protocol.put("set", generatedSet);
    protocol.put("pairs", String.valueOf(p.count()));
    protocol.put("pixel_range", "[0, 1]");
    Map<String, String> l1 = new LinkedHashMap<>(protocol);
    l1.put("definition", "mean absolute pixel difference to the target");
    metrics.add(new Metric("l1_gen" + suffix, p.meanL1(), l1));
    Map<String, String> psnr = new LinkedHashMap<>(protocol);
    psnr.put("definition", "per pair 10 log10(1 / MSE), capped at " + (int) PairedMetrics.PSNR_CAP + " dB, averaged");
    metrics.add(new Metric("psnr_gen" + suffix, p.meanPsnr(), psnr));
    Map<String, String> ssim = new LinkedHashMap<>(protocol);
    ssim.put("definition", "Wang et al. 2004: 11x11 Gaussian window sigma 1.5, K1 0.01, K2 0.03, data range 1,"
        + " mean over valid positions and channels");
    metrics.add(new Metric("ssim_gen" + suffix, p.meanSsim(), ssim));
    for (Kind kind : List.of(Kind.GENERATED, Kind.REAL)) {
      SegmentationScore s = sets.segmentation(kind);
      if (s == null) {
        continue;
      }
      Map<String, String> seg = new LinkedHashMap<>();
      seg.put("set", kind == Kind.GENERATED ? generatedSet : "the real " + split + " photos (the segmenter's ceiling)");
      seg.put("truth", "the " + split + " label maps, each pixel the Cityscapes class of its nearest palette colour"
          + " (void pixels left out)");
      seg.put("segmenter", model.makesLabelMaps() ? "none: the generated label maps' colours read as classes"
          : segmenter.id() + " trained on the train photos (held-out pixel accuracy "
              + String.format("%.4f", segmenter.heldOutAccuracy()) + "); not comparable with FCN-8s scores");
      seg.put("pixels", String.valueOf(s.pixels()));
      String base = "seg_" + (model.makesLabelMaps() ? "palette" : DomainExtractor.NAME) + "_";
      String set = "_" + kind.label + suffix;
      metrics.add(new Metric(base + "pixel_acc" + set, s.pixelAccuracy(), seg));
      metrics.add(new Metric(base + "class_acc" + set, s.classAccuracy(), seg));
      metrics.add(new Metric(base + "iou" + set, s.meanIou(), seg));
    }
  }

  /**
   * {@code ocr_seq_acc_{gen,real}_N_split} and {@code ocr_cer_{gen,real}_N_split}: what the reader
   * reads in the drawn images against the texts they were drawn for, and in the real images (its
   * ceiling); {@code ocr_seq_acc_ratio_N_split} = gen / real, the share of the ceiling the model reaches.
   */
  private static void ocrMetrics(FeatureSets sets, long count, String split, String generatedSet, OcrJudge judge,
      List<Metric> metrics) {
    String suffix = "_" + count(count) + "_" + split;
    double[] gen = sets.readings(Kind.GENERATED);
    double[] real = sets.readings(Kind.REAL);
    for (Kind kind : List.of(Kind.GENERATED, Kind.REAL)) {
      double[] r = kind == Kind.GENERATED ? gen : real;
      Map<String, String> p = new LinkedHashMap<>();
      p.put("set", kind == Kind.GENERATED ? generatedSet : "the real " + split + " images (the reader's ceiling)");
      p.put("texts", String.valueOf((long) r[2]));
      p.put("reader", judge.source() + " (sequence accuracy " + String.format("%.4f", judge.heldOutSequenceAccuracy())
          + " on " + judge.heldOutRecords() + " " + split + " records; beam " + judge.settings().beamWidth() + ")");
      Map<String, String> acc = new LinkedHashMap<>(p);
      acc.put("definition", "share of images whose reading is exactly the text");
      metrics.add(new Metric("ocr_seq_acc_" + kind.label + suffix, r[0], acc));
      Map<String, String> cer = new LinkedHashMap<>(p);
      cer.put("definition", "edit distance of the readings to the texts over the texts' characters");
      metrics.add(new Metric("ocr_cer_" + kind.label + suffix, r[1], cer));
    }
    Map<String, String> ratio = new LinkedHashMap<>();
    ratio.put("texts", String.valueOf((long) gen[2]));
    ratio.put("definition", "ocr_seq_acc_gen / ocr_seq_acc_real: how often a drawn image shows its text, relative"
        + " to how often the reader reads real images");
    metrics.add(new Metric("ocr_seq_acc_ratio" + suffix, real[0] > 0 ? gen[0] / real[0] : Double.NaN, ratio));
  }

  private static void compare(Kind kind, long count, String set, FeatureSets sets, Reference reference,
      FeatureExtractor.Spec extractor, EvaluateSettings es, Map<String, String> common, List<Metric> metrics,
      List<String> warnings, long seed) {
    FeatureStats s = sets.stats(kind);
    if (s.count() < extractor.dim() || reference.count() >= 0 && reference.count() < extractor.dim()) {
      warnings.add(kind.label + ": " + Math.min(s.count(), reference.count() < 0 ? s.count() : reference.count())
          + " samples for " + extractor.dim() + "-d features: the covariance is singular and the FID is strongly"
          + " biased; use more samples for numbers worth comparing");
    }
    String base = extractor.name() + "_" + kind.label + "_" + count(count) + "_" + es.split();
    Map<String, String> protocol = new LinkedHashMap<>(common);
    protocol.put("samples", String.valueOf(s.count()));
    protocol.put("set", set);
    FrechetDistance.Result fid = FrechetDistance.of(reference.stats().mu(), reference.stats().sigma(), s.mean(),
        s.covariance());
    Map<String, String> fidProtocol = new LinkedHashMap<>(protocol);
    fidProtocol.put("clamped_eigenvalues", fid.clamped() == 0 ? "0"
        : fid.clamped() + " (most negative " + String.format("%.3g", fid.mostNegative()) + ")");
    metrics.add(new Metric("fid_" + base, fid.distance(), fidProtocol));
    double[][] x = reference.kidFeatures();
    double[][] y = sets.keptFeatures(kind);
    if (x == null || y == null) {
      warnings.add("kid_" + base + ": not computed (the imported reference statistics have no features)");
      return;
    }
    // subsets as large as a whole set would all be that set (a std of 0): then half the smaller set
    int smaller = Math.min(x.length, y.length);
    int size = es.kidSubsetSize() < smaller ? es.kidSubsetSize() : Math.max(2, smaller / 2);
    KernelInceptionDistance.Result kid = KernelInceptionDistance.of(x, y, es.kidSubsets(), size, seed);
    Map<String, String> kidProtocol = new LinkedHashMap<>(protocol);
    kidProtocol.put("kid_subsets", String.valueOf(es.kidSubsets()));
    kidProtocol.put("kid_subset_size", String.valueOf(size));
    metrics.add(new Metric("kid_" + base, kid.mean(), kidProtocol));
    metrics.add(new Metric("kid_" + base + "_std", kid.std(), kidProtocol));
    if (kind == Kind.GENERATED) {
      // mode collapse: how much the samples vary, against how much the real images do
      double realSpread = FeatureExtractor.spread(x, DIVERSITY_SAMPLE);
      Map<String, String> div = new LinkedHashMap<>(protocol);
      div.put("definition", "mean feature distance over all pairs of the first " + DIVERSITY_SAMPLE + " samples,"
          + " divided by the same over the first " + DIVERSITY_SAMPLE + " reference images (1: as varied as the data)");
      metrics.add(new Metric("diversity_" + base, FeatureExtractor.spread(y, DIVERSITY_SAMPLE) / realSpread, div));
      double sameText = sets.sameTextSpread();
      if (!Double.isNaN(sameText)) {
        Map<String, String> text = new LinkedHashMap<>(protocol);
        text.put("definition", "mean feature distance between " + EvaluationTask.SAME_TEXT_SAMPLES + " samples drawn"
            + " for the same text (the first " + EvaluationTask.SAME_TEXT_RECORDS + " records' texts), divided by the"
            + " reference images' mean distance (0: one image per text)");
        metrics.add(new Metric("text_diversity_" + base, sameText / realSpread, text));
      }
    }
  }

  private static String describe(FeatureExtractor.Spec extractor) {
    StringBuilder sb = new StringBuilder(extractor.id());
    extractor.protocol().forEach((k, v) -> {
      if (!k.equals("id")) {
        sb.append(", ").append(k.replace('_', ' ')).append(' ').append(v);
      }
    });
    return sb.toString();
  }

  /** 600 -> "600", 10000 -> "10k", 50000 -> "50k". */
  static String count(long n) {
    return n >= 1000 && n % 1000 == 0 ? (n / 1000) + "k" : String.valueOf(n);
  }

  private static Reference importStats(Path file, FeatureExtractor.Spec extractor, Configuration conf) {
    NpzStats.Stats stats;
    try (var in = Storage.fs(file, conf).open(file)) {
      stats = NpzStats.read(in, file.toString());
    } catch (java.io.FileNotFoundException e) {
      throw new BadInputException("evaluate.referenceStats: " + file + " does not exist");
    } catch (IOException e) {
      throw Storage.unreachable(file, e);
    }
    if (stats.dim() != extractor.dim()) {
      throw new BadInputException(file + ": statistics of dimension " + stats.dim() + ", the extractor "
          + extractor.id() + " gives " + extractor.dim() + "-d features");
    }
    return new Reference(stats, -1, null, "imported from " + file);
  }

  private static Reference readCached(Path dir, Configuration conf) {
    Path info = new Path(dir, "info.json");
    if (!Storage.exists(info, conf)) {
      return null;
    }
    try {
      Map<?, ?> m = JSON.readValue(Storage.readString(info, conf), Map.class);
      NpzStats.Stats stats = NpzStats.read(new ByteArrayInputStream(readBytes(new Path(dir, "stats.npz"), conf)),
          dir + "/stats.npz");
      ModelState kept = ModelState.fromBytes(readBytes(new Path(dir, "kid-features.gpms"), conf), dir.toString());
      float[] flat = kept.get("features");
      int d = stats.dim();
      double[][] features = new double[flat.length / d][d];
      for (int i = 0; i < features.length; i++) {
        for (int j = 0; j < d; j++) {
          features[i][j] = flat[i * d + j];
        }
      }
      LOG.info("reference statistics from cache {}", dir);
      return new Reference(stats, ((Number) m.get("count")).longValue(), features, "cached in " + dir);
    } catch (IOException e) {
      throw Storage.unreachable(dir, e);
    }
  }

  /** stats.npz (pytorch-fid layout), the kept features, then info.json, which marks the entry complete. */
  private static void writeCache(Path dir, Reference r, String dataDigest, String split, FeatureExtractor.Spec extractor,
      Configuration conf) {
    try {
      Storage.writeAtomically(new Path(dir, "stats.npz"), NpzStats.toBytes(r.stats()), conf);
      float[] flat = new float[r.kidFeatures().length * r.stats().dim()];
      for (int i = 0; i < r.kidFeatures().length; i++) {
        for (int j = 0; j < r.stats().dim(); j++) {
          flat[i * r.stats().dim() + j] = (float) r.kidFeatures()[i][j];
        }
      }
      Storage.writeAtomically(new Path(dir, "kid-features.gpms"), new ModelState().put("features", flat).toBytes(), conf);
      Map<String, Object> info = new LinkedHashMap<>();
      info.put("count", r.count());
      info.put("records_digest", dataDigest);
      info.put("split", split);
      info.put("extractor", extractor.protocol());
      Storage.writeAtomically(new Path(dir, "info.json"), JSON.writeValueAsBytes(info), conf);
    } catch (IOException e) {
      throw Storage.unreachable(dir, e);
    }
  }

  private static byte[] readBytes(Path p, Configuration conf) throws IOException {
    try (var in = Storage.fs(p, conf).open(p)) {
      return in.readAllBytes();
    }
  }

  /** Logs into the training run when the tracking store has it; returns {location, not-logged report}. */
  private static String[] track(PipelineConfig config, String experiment, Checkpoint.Loaded ck,
      FeatureExtractor.Spec extractor, List<Metric> metrics, byte[] report, Path reportPath) {
    TrackingSettings ts = config.tracking();
    Map<String, String> tags = new LinkedHashMap<>();
    tags.put("genpipe.model", ck.info().model());
    tags.put("genpipe.evaluated_checkpoint", ck.dir().toString());
    try (ResilientTracker tracker = ResilientTracker.open(ts)) {
      tracker.attachOrStartRun(ck.info().trackingRunId(), experiment,
          "evaluate-" + ck.info().model() + "-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")),
          tags);
      long now = System.currentTimeMillis();
      List<Tracker.Metric> values = new ArrayList<>();
      // how each metric was measured goes into tags, not params: the params of a run are its training
      // settings, which the MLflow UI's run comparison lines up (eval.* params buried them there)
      Map<String, String> protocolTags = new LinkedHashMap<>(tags);
      for (Metric m : metrics) {
        values.add(new Tracker.Metric(m.name(), m.value(), ck.info().step(), now));
        if (!m.name().endsWith("_std")) {
          m.protocol().forEach((k, v) -> protocolTags.put("eval." + m.name() + "." + k, v));
        }
      }
      extractor.protocol().forEach((k, v) -> protocolTags.put("eval.extractor." + k, v));
      tracker.logMetrics(values);
      tracker.setTags(protocolTags);
      tracker.logArtifact("evaluation/" + reportPath.getName(), report);
      String notLogged = tracker.finish(60, TrackingSpool.beside(reportPath.getParent()));
      String where = tracker.location() + (tracker.attached() ? " (the training run)" : " (a new run: the training run "
          + (ck.info().trackingRunId() == null ? "is not recorded in the checkpoint" : ck.info().trackingRunId()
          + " is not in this store") + ")");
      return new String[] {where, notLogged};
    }
  }
}
