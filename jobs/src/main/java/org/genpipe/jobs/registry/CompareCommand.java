package org.genpipe.jobs.registry;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import org.apache.hadoop.conf.Configuration;
import org.genpipe.common.image.Images;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.Storage;
import org.genpipe.jobs.cli.ConfigOptions;
import org.genpipe.jobs.cli.Validated;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.jobs.tracking.RunStore;
import org.genpipe.jobs.tracking.TrackedRun;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
    name = "compare",
    mixinStandardHelpOptions = true,
    description = {
      "Compare the runs of an MLflow experiment (tracking.uri: the ./mlruns file store or a server): a table with",
      "one column per run (newest first): status, start, the metrics (default: the evaluation's fid_/kid_/",
      "diversity_/ocr_/l1_/psnr_/ssim_/seg_ metrics and train_seconds; best marked *) and the params whose values",
      "differ between the runs; and a PNG bar chart per metric (--chart). A metric evaluated with --repeats shows",
      "mean +- std over the seeds, and a best value within twice the combined spread of another run's is marked ~:",
      "best here, but not told apart from it by the seeds.",
      "Example: pipeline compare --experiment beta-vae-captcha-render --metric fid_domain_gen_600_test"
    })
public final class CompareCommand implements Callable<Integer>, Validated {
  private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm").withZone(
      ZoneId.systemDefault());
  private static final int MAX_CHARTS = 8;

  @Mixin ConfigOptions options;

  @Option(names = "--experiment", required = true, paramLabel = "NAME", description = "The experiment's name.")
  String experiment;

  @Option(names = "--metric", paramLabel = "NAME", description = "A metric to show (repeatable; default: see above).")
  List<String> metrics = new ArrayList<>();

  @Option(names = "--runs", paramLabel = "N", defaultValue = "10",
      description = "The newest N runs (default: ${DEFAULT-VALUE}).")
  int maxRuns;

  @Option(names = "--chart", paramLabel = "PNG",
      description = "Where the chart goes (default: compare-<experiment>.png; 'none' for no chart).")
  String chart;

  @Override
  public List<String> validate() {
    PipelineConfig config = options.load(List.of());
    check();
    return List.of("compare the newest " + maxRuns + " runs of experiment " + experiment + " in " + config.tracking().uri()
        + (metrics.isEmpty() ? "" : " on " + metrics));
  }

  private void check() {
    if (maxRuns < 1) {
      throw new BadInputException("--runs must be >= 1, got " + maxRuns);
    }
  }

  @Override
  public Integer call() throws IOException {
    PipelineConfig config = options.load(List.of());
    check();
    List<TrackedRun> all = RunStore.open(config.tracking()).runs(experiment);
    if (all.isEmpty()) {
      throw new BadInputException("experiment '" + experiment + "' in " + config.tracking().uri() + " has no runs");
    }
    List<TrackedRun> runs = all.subList(0, Math.min(maxRuns, all.size()));
    Table t = table(runs, metrics);
    System.out.printf("experiment %s in %s: %d of %d runs, newest first%n", experiment, config.tracking().uri(),
        runs.size(), all.size());
    System.out.print(t.render());
    if (!"none".equals(chart)) {
      String target = chart != null ? chart : "compare-" + experiment.replaceAll("[^\\w.-]", "_") + ".png";
      // spreads (kid_..._std) are no metric of their own to chart
      List<String> charted = t.metrics().stream().filter(m -> !m.endsWith("_std")).limit(MAX_CHARTS).toList();
      if (charted.isEmpty()) {
        System.out.println("chart:       none (the runs have no metrics to chart)");
      } else {
        org.apache.hadoop.fs.Path p = Storage.path(target);
        Storage.writeAtomically(p, Images.encodePng(chart(runs, charted)), new Configuration());
        System.out.println("chart:       " + p);
      }
    }
    return 0;
  }

  /** The comparison as rows: a label and one cell per run. */
  record Table(List<String> header, List<List<String>> rows, List<String> metrics) {
    String render() {
      List<List<String>> all = new ArrayList<>();
      all.add(header);
      all.addAll(rows);
      int[] width = new int[header.size()];
      for (List<String> r : all) {
        for (int i = 0; i < r.size(); i++) {
          width[i] = Math.max(width[i], r.get(i).length());
        }
      }
      StringBuilder out = new StringBuilder();
      for (List<String> r : all) {
        StringBuilder line = new StringBuilder();
        for (int i = 0; i < r.size(); i++) {
          line.append(String.format("%-" + (width[i] + 2) + "s", r.get(i)));
        }
        out.append(line.toString().stripTrailing()).append('\n');
      }
      return out.toString();
    }
  }

  /** Rows: status, start, the metrics (best marked *), then "param.&lt;key&gt;" rows for params that differ. */
  static Table table(List<TrackedRun> runs, List<String> wanted) {
    List<String> header = new ArrayList<>();
    header.add("run");
    for (TrackedRun r : runs) {
      header.add((r.name().isBlank() ? "" : r.name() + " ") + "(" + r.shortId() + ")");
    }
    List<List<String>> rows = new ArrayList<>();
    rows.add(row("status", runs.stream().map(TrackedRun::status).toList()));
    rows.add(row("started", runs.stream().map(r -> r.startTime() > 0 ? TIME.format(Instant.ofEpochMilli(r.startTime()))
        : "").toList()));
    List<String> shown = new ArrayList<>(wanted);
    if (shown.isEmpty()) {
      Set<String> names = new TreeSet<>();
      runs.forEach(r -> r.metrics().keySet().stream()
          .filter(k -> Promotion.isEvaluationMetric(k) || k.equals("train_seconds")).forEach(names::add));
      shown.addAll(names);
    }
    for (String m : shown) {
      if (m.endsWith(STD) && shown.contains(m.substring(0, m.length() - STD.length()))) {
        continue; // shown beside its metric
      }
      List<Double> values = runs.stream().map(r -> r.metrics().get(m)).toList();
      List<Double> spreads = runs.stream().map(r -> r.metrics().get(m + STD)).toList();
      int best = -1;
      boolean higher = higherIsBetter(m);
      for (int i = 0; i < values.size(); i++) {
        Double v = values.get(i);
        if (v != null && Double.isFinite(v) && (best < 0 || (higher ? v > values.get(best) : v < values.get(best)))) {
          best = i;
        }
      }
      String mark = m.endsWith(STD) || runs.size() < 2 || best < 0 ? "" : clearlyBest(values, spreads, best) ? " *" : " ~";
      List<String> cells = new ArrayList<>();
      for (int i = 0; i < values.size(); i++) {
        Double v = values.get(i);
        Double std = spreads.get(i);
        cells.add(v == null ? "-" : Promotion.fmt(v) + (std != null ? " +- " + Promotion.fmt(std) : "")
            + (i == best ? mark : ""));
      }
      rows.add(row(m, cells));
    }
    Set<String> params = new LinkedHashSet<>();
    runs.forEach(r -> params.addAll(new TreeSet<>(r.params().keySet())));
    for (String p : new TreeSet<>(params)) {
      List<String> values = runs.stream().map(r -> r.params().get(p)).toList();
      if (values.stream().distinct().count() > 1) {
        rows.add(row("param." + p, values.stream().map(v -> v == null ? "-" : abbreviate(v)).toList()));
      }
    }
    return new Table(header, rows, shown);
  }

  private static final String STD = "_std";

  /**
   * Whether the best value is ahead of every other run's by more than twice their combined spread
   * ({@code <metric>_std}, from {@code evaluate --repeats}; none counts as 0): else it is marked
   * {@code ~}, best but within the noise of the seeds.
   */
  static boolean clearlyBest(List<Double> values, List<Double> spreads, int best) {
    double sb = spreads.get(best) == null ? 0 : spreads.get(best);
    for (int i = 0; i < values.size(); i++) {
      Double v = values.get(i);
      if (i == best || v == null || !Double.isFinite(v)) {
        continue;
      }
      double si = spreads.get(i) == null ? 0 : spreads.get(i);
      if (Math.abs(values.get(best) - v) <= 2 * Math.sqrt(sb * sb + si * si)) {
        return false;
      }
    }
    return true;
  }

  /**
   * For marking the best run: FID, KID, L1, CER, times and losses are better lower; the rest (accuracies,
   * PSNR, SSIM, IoU, diversity) higher; spreads ({@code _std}) are not marked.
   */
  static boolean higherIsBetter(String metric) {
    return !(metric.startsWith("fid_") || metric.startsWith("kid_") || metric.startsWith("l1_")
        || metric.startsWith("ocr_cer") || metric.endsWith("_seconds") || metric.contains("loss"));
  }

  private static List<String> row(String label, List<String> cells) {
    List<String> r = new ArrayList<>();
    r.add(label);
    r.addAll(cells);
    return r;
  }

  private static String abbreviate(String v) {
    return v.length() > 40 ? v.substring(0, 37) + "..." : v;
  }

  /** One bar chart per metric, runs oldest to newest left to right, stacked into one picture. */
  static BufferedImage chart(List<TrackedRun> runs, List<String> metrics) {
    List<TrackedRun> ordered = new ArrayList<>(runs);
    java.util.Collections.reverse(ordered);
    List<String> labels = new ArrayList<>();
    for (TrackedRun r : ordered) {
      labels.add((r.name().isBlank() ? r.shortId() : r.name()) + (labels.contains(r.name()) ? " " + r.shortId() : ""));
    }
    List<BufferedImage> parts = new ArrayList<>();
    for (String m : metrics) {
      CategoryChart c = new CategoryChartBuilder().width(900).height(260).title(m).yAxisTitle("value").build();
      c.getStyler().setChartBackgroundColor(Color.WHITE);
      c.getStyler().setLegendVisible(false);
      c.getStyler().setLabelsVisible(true);
      c.getStyler().setYAxisDecimalPattern("#,##0.###"); // the bars' labels too
      c.getStyler().setXAxisLabelRotation(labels.size() > 4 ? 30 : 0);
      List<String> xs = new ArrayList<>();
      List<Double> ys = new ArrayList<>();
      for (int i = 0; i < ordered.size(); i++) {
        Double v = ordered.get(i).metrics().get(m);
        if (v != null && Double.isFinite(v)) {
          xs.add(labels.get(i));
          ys.add(v);
        }
      }
      if (xs.isEmpty()) {
        continue;
      }
      c.addSeries(m, xs, ys);
      parts.add(BitmapEncoder.getBufferedImage(c));
    }
    int height = parts.stream().mapToInt(BufferedImage::getHeight).sum();
    BufferedImage out = new BufferedImage(900, Math.max(1, height), BufferedImage.TYPE_INT_RGB);
    Graphics2D g = out.createGraphics();
    g.setColor(Color.WHITE);
    g.fillRect(0, 0, out.getWidth(), out.getHeight());
    int y = 0;
    for (BufferedImage p : parts) {
      g.drawImage(p, 0, y, null);
      y += p.getHeight();
    }
    g.dispose();
    return out;
  }
}
