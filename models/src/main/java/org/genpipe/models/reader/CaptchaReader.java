package org.genpipe.models.reader;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.genpipe.common.image.ImageGrid;
import org.genpipe.common.image.Images;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.PixelRange;
import org.genpipe.models.ModelFactory;
import org.genpipe.models.ModelState;
import org.genpipe.models.TrainableModel;
import org.genpipe.models.nn.FastGrad;
import org.genpipe.models.nn.GraphPlan;
import org.genpipe.models.nn.Graphs;
import org.genpipe.models.nn.Layers;
import org.genpipe.models.nn.Net;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The CAPTCHA reader: a convolutional recogniser trained with CTC. Images [N, C, H, W] in [0, 1]
 * (H and W divisible by 4) become T = W / 4 frames of class scores over the alphabet and the blank:
 *
 * <pre>
 * Conv3 C->w | Conv3 s2 w->2w | Conv3 2w->2w | Conv3 s2 2w->4w | Conv3 4w->4w | Conv3 4w->4w,
 *   each followed by batch norm and ReLU | mean over height: T frames of 4w
 * | Linear 4w->K+1 per frame | log-softmax
 * </pre>
 *
 * The CTC loss and its gradient are computed in Java ({@link Ctc}) on the frames' log-probabilities;
 * the compiled step pauses after them ({@link GraphPlan.Compiled#start}) and finishes with the
 * gradient fed back as a placeholder, so one forward pass serves both. Decoding: greedy (best path)
 * or prefix beam search.
 */
public final class CaptchaReader implements TrainableModel {
  public static final String NAME = "captcha-reader";
  private static final String NET = "reader";

  private final CaptchaReaderSettings settings;
  private final ImageShape shape;
  private final int frames;
  private final int classes;
  private final SameDiff sd = SameDiff.create();
  private final Net net;
  private final GraphPlan.Compiled update;
  private final GraphPlan.Compiled infer;
  private final GraphPlan.Compiled inferFeatures;
  private final Layers layers;

  public CaptchaReader(CaptchaReaderSettings settings, ImageShape shape, long seed) {
    checkShape(settings, shape, "the records");
    this.settings = settings;
    this.shape = shape;
    this.frames = shape.width() / 4;
    this.classes = settings.alphabet().length() + 1;
    layers = new Layers(sd, seed);
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, shape.channels(), shape.height(), shape.width());
    SDVariable g = sd.placeHolder("lossGrad", DataType.FLOAT, -1, frames, classes);
    // the CTC gradient computed in Java comes back as d(loss)/d(logProbs): sum(logProbs * lossGrad)
    // has exactly that gradient
    SDVariable logProbs = sd.identity("logProbs", logProbs(x, true));
    sd.setLossVariables(logProbs.mul(g).sum().rename("surrogate"));
    Graphs.buildGradients(sd);
    List<String> params = layers.takeParams();
    sd.identity("readLogProbs", logProbs(x, false));
    // what the reader sees in an image: its frames' features averaged over the frames (the evaluation's
    // feature extractor for CAPTCHAs), from the inference graph's layers
    sd.identity("readFeatures", sd.getVariable("readFrames").mean(1));
    net = new Net(NET, sd, params, settings.optimizer().updater(settings.decayStart(), settings.decaySteps()));
    List<String> outputs = new ArrayList<>(List.of("logProbs", "surrogate"));
    outputs.addAll(layers.batchStatOutputs());
    update = new GraphPlan.Compiled(sd, outputs, net);
    infer = new GraphPlan.Compiled(sd, List.of("readLogProbs"), List.of());
    inferFeatures = new GraphPlan.Compiled(sd, List.of("readFeatures"), List.of());
  }

  /** Per-frame log-probabilities [N, T, K]; batch statistics when training, running ones when reading. */
  private SDVariable logProbs(SDVariable x, boolean training) {
    int w = settings.width();
    int[] widths = {w, 2 * w, 2 * w, 4 * w, 4 * w, 4 * w};
    int[] strides = {1, 2, 1, 2, 1, 1};
    SDVariable h = x;
    int in = shape.channels();
    long height = shape.height();
    long width = shape.width();
    for (int i = 0; i < widths.length; i++) {
      height /= strides[i];
      width /= strides[i];
      String name = "c" + (i + 1);
      h = layers.conv2d(name, h, in, widths[i], 3, strides[i], 1, false);
      h = FastGrad.relu(sd, layers.batchNorm(name + "/bn", h, widths[i], height * width, training));
      in = widths[i];
    }
    // [N, 4w, H/4, T] -> [N, T, 4w] -> per-frame scores
    SDVariable frameFeatures = h.mean(2).permute(0, 2, 1);
    if (!training) {
      sd.identity("readFrames", frameFeatures);
    }
    SDVariable seq = frameFeatures.reshape(-1, 4 * w);
    SDVariable logits = layers.dense("out", seq, 4 * w, classes).reshape(-1, frames, classes);
    // log-softmax written out (M2.1's logSoftmax(x, dim) has no working backward)
    SDVariable shifted = logits.sub(logits.max(true, 2));
    return shifted.sub(sd.math().log(sd.math().exp(shifted).sum(true, 2)));
  }

  /** Builds readers on executors and in the driver. */
  public record Factory(CaptchaReaderSettings settings, ImageShape shape, long seed) implements ModelFactory {
    @Override
    public CaptchaReader create() {
      return new CaptchaReader(settings, shape, seed);
    }
  }

  /** Fails unless the images fit: sides divisible by 4, enough frames for the longest text. */
  public static void checkShape(CaptchaReaderSettings s, ImageShape shape, String source) {
    int needed = 2 * s.maxLength() - 1; // the longest text with every character repeated
    if (shape.height() % 4 != 0 || shape.width() % 4 != 0 || shape.width() / 4 < needed) {
      throw new BadInputException(source + " hold " + shape + " images; the captcha reader needs height and width"
          + " divisible by 4 and width >= " + 4 * needed + " (" + needed + " frames of 4 pixels for texts of up to"
          + " model.captchaReader.maxLength " + s.maxLength() + " characters)");
    }
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public ImageShape imageShape() {
    return shape;
  }

  @Override
  public PixelRange pixelRange() {
    return PixelRange.ZERO_ONE;
  }

  /** Frames per image (the sequence length CTC aligns the text to). */
  public int frames() {
    return frames;
  }

  /**
   * One CTC step. Metrics: {@code loss} (mean -ln p(text | image)), and on the batch before the
   * update {@code seq_acc} (whole texts read right, greedy) and {@code cer} (character error rate).
   */
  @Override
  public Map<String, Double> trainStep(Minibatch batch, long step, long seed) {
    int[][] labels = labels(batch);
    Map<String, INDArray> ph = new LinkedHashMap<>();
    ph.put("x", batch.images());
    ph.put("lossGrad", Nd4j.zeros(DataType.FLOAT, batch.size(), frames, classes));
    GraphPlan.Compiled.Started run = update.start(ph, "logProbs", new HashSet<>(List.of("lossGrad")));
    float[] lp = run.output().castTo(DataType.FLOAT).dup('c').data().asFloat();
    Ctc.Result ctc = Ctc.lossAndGradient(lp, batch.size(), frames, classes, labels);
    OutAndGrad r = run.finish(Map.of("lossGrad", Nd4j.create(ctc.gradient(), new long[] {batch.size(), frames,
        classes}, 'c')));
    net.apply(r.getGradients(), step);
    layers.updateRunningStats(r.getOutputs(), batch.size());
    Map<String, Double> out = new LinkedHashMap<>();
    out.put("loss", ctc.mean());
    List<String> read = decode(lp, batch.size(), 1);
    out.put("seq_acc", sequenceAccuracy(read, batch.texts()));
    out.put("cer", characterErrorRate(read, batch.texts()));
    return out;
  }

  /** The texts read in images [N, C, H, W] in [0, 1], by beam search of {@code beamWidth} (1: greedy). */
  public List<String> read(INDArray images, int beamWidth) {
    Map<String, INDArray> ph = new LinkedHashMap<>();
    ph.put("x", images);
    layers.feedRunningStats(ph);
    float[] lp = infer.run(ph).getOutputs().get("readLogProbs").castTo(DataType.FLOAT).dup('c').data().asFloat();
    return decode(lp, (int) images.size(0), beamWidth);
  }

  /** Width of {@link #features}: the channels of the last convolution. */
  public int featureSize() {
    return 4 * settings.width();
  }

  /** [N, featureSize] of images [N, C, H, W] in [0, 1]: the last convolution's frames averaged over the frames. */
  public INDArray features(INDArray images) {
    Map<String, INDArray> ph = new LinkedHashMap<>();
    ph.put("x", images);
    layers.feedRunningStats(ph);
    return inferFeatures.run(ph).getOutputs().get("readFeatures").dup();
  }

  /** The texts read with the configured beam width. */
  public List<String> read(INDArray images) {
    return read(images, settings.beamWidth());
  }

  private List<String> decode(float[] lp, int n, int beamWidth) {
    List<String> out = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      int[] k = beamWidth <= 1 ? Ctc.greedy(lp, i, frames, classes) : Ctc.beam(lp, i, frames, classes, beamWidth);
      StringBuilder sb = new StringBuilder();
      for (int c : k) {
        sb.append(settings.alphabet().charAt(c - 1));
      }
      out.add(sb.toString());
    }
    return out;
  }

  /** The batch's texts as class indices (alphabet position + 1; 0 is the blank). */
  int[][] labels(Minibatch batch) {
    if (batch.texts() == null) {
      throw new BadInputException("record " + batch.ids().get(0) + " has no text; the captcha reader learns texts");
    }
    int[][] out = new int[batch.size()][];
    for (int i = 0; i < out.length; i++) {
      String t = batch.texts().get(i);
      if (t == null || t.isEmpty() || t.length() > settings.maxLength()) {
        throw new BadInputException("record " + batch.ids().get(i) + ": text '" + t + "' has " + (t == null ? 0
            : t.length()) + " characters; model.captchaReader.maxLength is " + settings.maxLength());
      }
      out[i] = new int[t.length()];
      for (int j = 0; j < t.length(); j++) {
        int k = settings.alphabet().indexOf(t.charAt(j));
        if (k < 0) {
          throw new BadInputException("record " + batch.ids().get(i) + ": text '" + t + "' has '" + t.charAt(j)
              + "', which is not in model.captchaReader.alphabet '" + settings.alphabet() + "'");
        }
        out[i][j] = k + 1;
      }
    }
    return out;
  }

  /** {@code seq_acc} and {@code cer} of the texts read (with the configured beam) against the records' texts. */
  @Override
  public Map<String, Double> heldOut(Minibatch sample) {
    labels(sample); // the same checks as training: texts it can read
    List<String> read = read(sample.images());
    Map<String, Double> out = new LinkedHashMap<>();
    out.put("seq_acc", sequenceAccuracy(read, sample.texts()));
    out.put("cer", characterErrorRate(read, sample.texts()));
    return out;
  }

  /** Share of texts read exactly. */
  public static double sequenceAccuracy(List<String> read, List<String> truth) {
    int right = 0;
    for (int i = 0; i < read.size(); i++) {
      right += read.get(i).equals(truth.get(i)) ? 1 : 0;
    }
    return (double) right / read.size();
  }

  /** Character error rate: total edit distance over the total length of the true texts. */
  public static double characterErrorRate(List<String> read, List<String> truth) {
    long edits = 0;
    long chars = 0;
    for (int i = 0; i < read.size(); i++) {
      edits += editDistance(read.get(i), truth.get(i));
      chars += truth.get(i).length();
    }
    return chars == 0 ? 0 : (double) edits / chars;
  }

  /** Levenshtein distance (insertions, deletions, substitutions). */
  public static int editDistance(String a, String b) {
    int[] prev = new int[b.length() + 1];
    int[] cur = new int[b.length() + 1];
    for (int j = 0; j <= b.length(); j++) {
      prev[j] = j;
    }
    for (int i = 1; i <= a.length(); i++) {
      cur[0] = i;
      for (int j = 1; j <= b.length(); j++) {
        int sub = prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
        cur[j] = Math.min(sub, Math.min(prev[j] + 1, cur[j - 1] + 1));
      }
      int[] t = prev;
      prev = cur;
      cur = t;
    }
    return prev[b.length()];
  }

  /** {@code readings.png}: held-out images captioned with what the reader reads (and a mark when wrong). */
  @Override
  public Map<String, BufferedImage> reports(Minibatch sample, List<String> classNames, long seed) {
    int n = Math.min(sample.size(), 32);
    INDArray images = sample.images().get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, n));
    List<String> read = read(images);
    ImageGrid grid = new ImageGrid(4, 96);
    for (int i = 0; i < n; i++) {
      String truth = sample.texts() == null ? null : sample.texts().get(i);
      grid.add(Images.fromUnitFloats(images, i), read.get(i) + (truth == null || truth.equals(read.get(i)) ? ""
          : " (" + truth + ")"));
    }
    return Map.of("readings.png", grid.render());
  }

  @Override
  public ModelState state() {
    ModelState s = new ModelState();
    exportTo(s);
    return s;
  }

  @Override
  public void exportTo(ModelState s) {
    net.exportTo(s);
    layers.exportTo(s, NET);
  }

  @Override
  public List<java.nio.FloatBuffer> stateMemory() {
    return org.genpipe.models.nn.StateMemory.of(net, layers);
  }

  @Override
  public void loadState(ModelState state) {
    net.importFrom(state);
    layers.importFrom(state, NET);
  }

  @Override
  public void close() {
    // the graph's arrays are released with the object; nothing is held outside it
  }
}
