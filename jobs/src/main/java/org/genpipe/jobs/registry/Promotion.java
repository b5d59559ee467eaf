package org.genpipe.jobs.registry;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.genpipe.common.io.BadInputException;

/**
 * The promotion rule: a candidate run takes the alias from the champion when every objective metric
 * beats the champion's by at least {@code margin}, relative to the champion's value (margin 0.02:
 * a FID of 75 must fall to 73.5 or below; margin 0: any strict improvement). With no objectives the candidate always wins (an explicit
 * promotion); with no champion it wins too. A candidate value that is not finite never wins.
 *
 * @param promote whether the candidate takes the alias
 * @param reasons one line per objective (or why none applied), for the console, the report and the run's tag
 */
public record Promotion(boolean promote, List<String> reasons) {

  /** A metric to beat: lower is better unless {@code higherIsBetter}. */
  public record Objective(String metric, boolean higherIsBetter) {
    /** {@code NAME} or {@code min:NAME} (lower is better), {@code max:NAME} (higher is better). */
    public static Objective parse(String spec) {
      if (spec.startsWith("max:")) {
        return new Objective(spec.substring(4), true);
      }
      return new Objective(spec.startsWith("min:") ? spec.substring(4) : spec, false);
    }

    @Override
    public String toString() {
      return (higherIsBetter ? "max:" : "min:") + metric;
    }
  }

  /**
   * @param candidate the candidate run's metrics (must hold every objective's metric)
   * @param champion the champion's metrics, or null when no version holds the alias
   */
  public static Promotion decide(Map<String, Double> candidate, Map<String, Double> champion, List<Objective> objectives,
      double margin) {
    if (margin < 0 || !Double.isFinite(margin)) {
      throw new BadInputException("--margin must be a finite number >= 0, got " + margin);
    }
    for (Objective o : objectives) {
      if (!candidate.containsKey(o.metric())) {
        throw new BadInputException("the candidate run has no metric '" + o.metric() + "' (evaluate it first); it has: "
            + String.join(", ", new java.util.TreeSet<>(candidate.keySet())));
      }
    }
    List<String> reasons = new ArrayList<>();
    if (objectives.isEmpty()) {
      reasons.add("no objective metric given: promoted as asked");
      return new Promotion(true, reasons);
    }
    if (champion == null) {
      for (Objective o : objectives) {
        double c = candidate.get(o.metric());
        if (!Double.isFinite(c)) {
          reasons.add(o.metric() + " = " + c + " is not finite");
          return new Promotion(false, reasons);
        }
      }
      reasons.add("no version holds the alias yet");
      return new Promotion(true, reasons);
    }
    boolean all = true;
    for (Objective o : objectives) {
      double c = candidate.get(o.metric());
      Double ch = champion.get(o.metric());
      if (!Double.isFinite(c)) {
        reasons.add(o.metric() + " = " + c + " is not finite");
        all = false;
      } else if (ch == null || !Double.isFinite(ch)) {
        reasons.add(o.metric() + " " + fmt(c) + ": the champion has no finite value for it");
      } else {
        double needed = o.higherIsBetter() ? ch + margin * Math.abs(ch) : ch - margin * Math.abs(ch);
        // strictly better, and by the margin
        boolean beats = o.higherIsBetter() ? c > ch && c >= needed : c < ch && c <= needed;
        reasons.add(String.format("%s %s vs champion %s (%s; needs %s %s): %s", o.metric(), fmt(c), fmt(ch),
            o.higherIsBetter() ? "higher is better" : "lower is better", o.higherIsBetter() ? ">=" : "<=", fmt(needed),
            beats ? "beats it" : "does not beat it"));
        all &= beats;
      }
    }
    return new Promotion(all, reasons);
  }

  /** Metric name prefixes the evaluation job writes, the ones compare shows by default. */
  static final Set<String> EVALUATION_PREFIXES = Set.of("fid_", "kid_", "diversity_", "text_diversity_", "ocr_", "l1_",
      "psnr_", "ssim_", "seg_");

  static boolean isEvaluationMetric(String name) {
    return EVALUATION_PREFIXES.stream().anyMatch(name::startsWith);
  }

  static String fmt(double v) {
    return String.format("%.6g", v);
  }
}
