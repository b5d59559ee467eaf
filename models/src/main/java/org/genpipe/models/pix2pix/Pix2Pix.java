package org.genpipe.models.pix2pix;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.PixelRange;
import org.genpipe.models.Condition;
import org.genpipe.models.GenerativeModel;
import org.genpipe.models.ImageConditioned;
import org.genpipe.models.ModelState;
import org.genpipe.models.gan.GanLoss;
import org.genpipe.models.nn.FastGrad;
import org.genpipe.models.nn.GraphPlan;
import org.genpipe.models.nn.Graphs;
import org.genpipe.models.nn.LayerStack;
import org.genpipe.models.nn.Layers;
import org.genpipe.models.nn.Net;
import org.genpipe.models.nn.Noise;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Pix2Pix (Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", 2017):
 * a U-Net generator G(x) and a PatchGAN discriminator D(x, y) on the concatenated (condition,
 * image) pair, trained with the conditional GAN loss plus lambda * L1(G(x), y).
 *
 * <p>G, at size S with L = log2(S) levels and widths c_k = w * min(2^k, 8) (w = 64 in the paper),
 * as the authors' code builds it: encoder e_0 = Conv4s2(x), e_k = Norm(Conv4s2(LReLU_0.2(e_{k-1})))
 * for 0 < k < L-1, e_{L-1} = Conv4s2(LReLU(e_{L-2})) (1x1, no norm); decoder u_{L-1} =
 * Norm(ConvT4s2(ReLU(e_{L-1}))), u_k = Norm(ConvT4s2(ReLU(concat(e_k, u_{k+1})))), each of the first
 * three followed by dropout, and the output tanh(ConvT4s2(ReLU(concat(e_0, u_1)))). At 256: encoder
 * C64-C128-C256-C512-C512-C512-C512-C512, the decoder mirrored with skip connections. Dropout is
 * G's only noise, at training and at sampling time, as in the paper; its masks are drawn in Java from
 * the step's (or the sampling) seed.
 *
 * <p>D: Conv4s2 w, LReLU; then n-1 more Conv4s2 with widths w * min(2^k, 8), Norm, LReLU; one
 * Conv4s1 (width w * min(2^n, 8)), Norm, LReLU; and a 1-channel Conv4s1: one logit per patch. n = 3
 * is the 70x70 PatchGAN (30x30 logits at 256), n = 1 the 16x16 one, n = 5 the 286x286 "ImageGAN";
 * "pixel" is 1x1 convolutions (w, 2w, 1). D's loss is halved, as in the paper, to slow D down.
 *
 * <p>Two graphs as in {@link org.genpipe.models.gan.Gan}: D's takes (condition, real, generated) as
 * placeholders; G's holds G and D with D's weights as placeholders, so neither update touches the
 * other network. Layers followed by batch norm have no bias; with instance norm (no running
 * statistics, the same at training and sampling time) they keep it, as in the authors' code. With
 * batch norm, sampling normalises with the running statistics. Images are in [-1, 1].
 */
public final class Pix2Pix implements GenerativeModel, ImageConditioned {
  public static final String NAME = "pix2pix";
  /** Decoder blocks (from the innermost) followed by dropout. */
  static final int DROPOUT_BLOCKS = 3;

  /** Builds the model on executors and in the driver. */
  public record Factory(Pix2PixSettings settings, ImageShape shape, long seed) implements org.genpipe.models.ModelFactory {
    @Override
    public GenerativeModel create() {
      return new Pix2Pix(settings, shape, seed);
    }
  }

  private final Pix2PixSettings settings;
  private final ImageShape shape;
  private final int levels;
  private final int[] widths;
  private final LayerStack dStack;
  private final SameDiff dGraph = SameDiff.create();
  private final SameDiff gGraph = SameDiff.create();
  private final Layers dLayers;
  private final Layers gLayers;
  private final Net d;
  private final Net g;
  private final Jitter jitter;
  /** G's dropout mask placeholders: name -> per-example shape. */
  private final Map<String, long[]> masks = new LinkedHashMap<>();
  private final List<String> dOutputs = new ArrayList<>();
  private final List<String> gOutputs = new ArrayList<>();
  private final GraphPlan.Compiled generatePlan;
  private final GraphPlan.Compiled dUpdate;
  private final GraphPlan.Compiled gUpdate;

  public Pix2Pix(Pix2PixSettings settings, ImageShape shape, long seed) {
    checkShape(settings, shape, "the records");
    this.settings = settings;
    this.shape = shape;
    this.levels = Integer.numberOfTrailingZeros(settings.size());
    this.widths = new int[levels];
    for (int k = 0; k < levels; k++) {
      widths[k] = settings.generatorWidth() * Math.min(1 << k, 8);
    }
    this.dStack = discriminator(settings, shape.channels());
    this.jitter = settings.jitter() ? new Jitter(settings.size()) : null;
    dLayers = new Layers(dGraph, seed).normalInit(settings.weightStd());
    d = buildDiscriminatorGraph();
    gLayers = new Layers(gGraph, Noise.mix(seed, 1, 0)).normalInit(settings.weightStd()).external(d);
    g = buildGeneratorGraph();
    generatePlan = new GraphPlan.Compiled(gGraph, List.of("generated"), List.of());
    dUpdate = new GraphPlan.Compiled(dGraph, dOutputs, d);
    gUpdate = new GraphPlan.Compiled(gGraph, gOutputs, g);
  }

  /** Fails unless the records are square images of the configured size that the chosen D can read. */
  public static void checkShape(Pix2PixSettings s, ImageShape shape, String source) {
    if (shape.height() != s.size() || shape.width() != s.size()) {
      throw new BadInputException(source + " hold " + shape + " images; pix2pix with model.pix2pix.size "
          + s.size() + " reads " + s.size() + "x" + s.size() + " pairs (preprocess with preprocess.cityscapes.height"
          + " and width " + s.size() + ", or set model.pix2pix.size to " + shape.height() + " if that is 64, 128 or 256)");
    }
    long[] out = discriminator(s, shape.channels()).outputShape();
    if (out[1] < 1) {
      throw new BadInputException("model.pix2pix.discriminator " + s.discriminator() + " needs larger images than "
          + s.size() + "x" + s.size() + " (its receptive field is " + discriminator(s, shape.channels()).receptiveField()
          + " pixels); use patch70 or patch16");
    }
  }

  /** D's layers for pairs of {@code channels}-channel images (condition and image concatenated). */
  static LayerStack discriminator(Pix2PixSettings s, int channels) {
    int w = s.discriminatorWidth();
    boolean batch = "batch".equals(s.norm());
    LayerStack d = new LayerStack(2L * channels, s.size(), s.size());
    int n = s.discriminatorLayers();
    if (n == 0) {
      d.conv("D/conv0", w, 1, 1, 0, true).leakyRelu(0.2);
      d.conv("D/conv1", 2 * w, 1, 1, 0, !batch);
      norm(d, batch, "D/conv1/bn").leakyRelu(0.2);
      return d.conv("D/out", 1, 1, 1, 0, true);
    }
    d.conv("D/conv0", w, 4, 2, 1, true).leakyRelu(0.2);
    for (int k = 1; k <= n; k++) {
      d.conv("D/conv" + k, w * Math.min(1 << k, 8), 4, k < n ? 2 : 1, 1, !batch);
      norm(d, batch, "D/conv" + k + "/bn").leakyRelu(0.2);
    }
    return d.conv("D/out", 1, 4, 1, 1, true);
  }

  private static LayerStack norm(LayerStack d, boolean batch, String name) {
    return batch ? d.batchNorm(name) : d.instanceNorm();
  }

  private Net buildDiscriminatorGraph() {
    SameDiff sd = dGraph;
    SDVariable cond = images(sd, "cond");
    SDVariable real = images(sd, "real");
    SDVariable fake = images(sd, "fake");
    SDVariable dReal = dStack.apply(dLayers, sd.concat(1, cond, real), "dReal").output();
    SDVariable dFake = dStack.apply(dLayers, sd.concat(1, cond, fake), "dFake").output();
    // the paper halves D's loss (D learns slower relative to G)
    SDVariable loss = settings.loss().discriminator(sd, dReal, dFake, 1.0).mul(0.5);
    sd.setLossVariables(sd.identity("d_loss", loss));
    sd.identity("d_real", score(sd, dReal));
    sd.identity("d_fake", score(sd, dFake));
    dOutputs.addAll(List.of("d_loss", "d_real", "d_fake"));
    dOutputs.addAll(dLayers.batchStatOutputs());
    Graphs.buildGradients(sd);
    return new Net("D", sd, dLayers.takeParams(),
        settings.discriminatorOptimizer().updater(settings.decayStart(), settings.decaySteps()));
  }

  private Net buildGeneratorGraph() {
    SameDiff sd = gGraph;
    SDVariable cond = images(sd, "cond");
    SDVariable fake = sd.identity("fake", generator(gLayers, cond, true));
    List<String> params = gLayers.takeParams();
    sd.identity("generated", generator(gLayers, cond, false));
    SDVariable dOut = dStack.apply(gLayers, sd.concat(1, cond, fake), "gD").output();
    SDVariable gan = sd.identity("g_gan", settings.loss().generator(sd, dOut));
    SDVariable diff = fake.sub(images(sd, "target"));
    SDVariable l1 = sd.identity("g_l1", sd.math().abs(diff).mean());
    sd.setLossVariables(sd.identity("g_loss", gan.add(l1.mul(settings.l1Weight()))));
    gOutputs.addAll(List.of("g_loss", "g_gan", "g_l1", "fake"));
    gOutputs.addAll(gLayers.batchStatOutputs());
    Graphs.buildGradients(sd);
    return new Net("G", sd, params,
        settings.generatorOptimizer().updater(settings.decayStart(), settings.decaySteps()));
  }

  /** The U-Net from condition images [N, C, S, S] to images in [-1, 1] (see the class comment). */
  SDVariable generator(Layers l, SDVariable x, boolean training) {
    SameDiff sd = l.sd();
    int c = shape.channels();
    boolean batch = "batch".equals(settings.norm());
    SDVariable[] e = new SDVariable[levels];
    long side = settings.size();
    e[0] = l.conv2d("G/down0", x, c, widths[0], 4, 2, 1, true);
    for (int k = 1; k < levels; k++) {
      side /= 2;
      boolean normed = k < levels - 1;
      SDVariable h = l.conv2d("G/down" + k, FastGrad.leakyRelu(sd, e[k - 1], 0.2), widths[k - 1], widths[k], 4, 2, 1,
          !(normed && batch));
      e[k] = normed ? norm(l, "G/down" + k + "/bn", h, widths[k], (side / 2) * (side / 2), training) : h;
    }
    SDVariable u = null;
    for (int k = levels - 1; k >= 1; k--) {
      long inSide = settings.size() >> (k + 1);
      SDVariable in = k == levels - 1 ? e[k] : sd.concat(1, e[k], u);
      int inChannels = k == levels - 1 ? widths[k] : 2 * widths[k];
      SDVariable h = l.deconv2d("G/up" + k, FastGrad.relu(sd, in), inChannels, widths[k - 1], 4, 2, 1, 0, inSide,
          !batch);
      u = norm(l, "G/up" + k + "/bn", h, widths[k - 1], 4 * inSide * inSide, training);
      int block = levels - 1 - k;
      if (block < DROPOUT_BLOCKS && settings.dropout() > 0) {
        u = u.mul(mask(sd, "G/dropout" + block, widths[k - 1], 2 * inSide));
      }
    }
    SDVariable in = levels == 1 ? e[0] : sd.concat(1, e[0], u);
    SDVariable out = l.deconv2d("G/out", FastGrad.relu(sd, in), 2 * widths[0], c, 4, 2, 1, 0, settings.size() / 2, true);
    return sd.math().tanh(out);
  }

  private SDVariable norm(Layers l, String name, SDVariable h, int channels, long spatial, boolean training) {
    return "batch".equals(settings.norm()) ? l.batchNorm(name, h, channels, spatial, training) : l.instanceNorm(h);
  }

  private SDVariable mask(SameDiff sd, String name, int channels, long side) {
    if (sd.hasVariable(name)) {
      return sd.getVariable(name);
    }
    masks.put(name, new long[] {channels, side, side});
    return sd.placeHolder(name, DataType.FLOAT, -1, channels, side, side);
  }

  private SDVariable images(SameDiff sd, String name) {
    return sd.placeHolder(name, DataType.FLOAT, -1, shape.channels(), settings.size(), settings.size());
  }

  /** Mean D(x) over patches: sigmoid of the logits for the probabilistic losses, else the raw scores. */
  private SDVariable score(SameDiff sd, SDVariable logits) {
    return settings.loss().probabilistic() ? sd.nn().sigmoid(logits).mean() : logits.mean();
  }

  /** G's dropout masks for {@code n} examples from {@code seed}: 0 or 1 / (1 - rate). */
  Map<String, INDArray> dropoutMasks(int n, long seed) {
    Map<String, INDArray> out = new LinkedHashMap<>();
    SplittableRandom r = new SplittableRandom(seed);
    float keep = (float) (1.0 / (1.0 - settings.dropout()));
    for (Map.Entry<String, long[]> m : masks.entrySet()) {
      long[] s = m.getValue();
      float[] v = new float[Math.toIntExact(n * s[0] * s[1] * s[2])];
      for (int i = 0; i < v.length; i++) {
        v[i] = r.nextDouble() < settings.dropout() ? 0f : keep;
      }
      out.put(m.getKey(), Nd4j.create(v, new long[] {n, s[0], s[1], s[2]}, 'c'));
    }
    return out;
  }

  public Net discriminator() {
    return d;
  }

  public Net generator() {
    return g;
  }

  /** The discriminator's layer list (for its receptive field and output shape). */
  public LayerStack discriminatorLayers() {
    return dStack;
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
    return PixelRange.MINUS_ONE_ONE;
  }

  @Override
  public INDArray conditions(Minibatch pairs) {
    return pick(pairs, settings.labelsToPhoto());
  }

  @Override
  public INDArray targets(Minibatch pairs) {
    return pick(pairs, !settings.labelsToPhoto());
  }

  @Override
  public boolean makesLabelMaps() {
    return !settings.labelsToPhoto();
  }

  @Override
  public String conditionName() {
    return settings.labelsToPhoto() ? "label map" : "photo";
  }

  private static INDArray pick(Minibatch pairs, boolean labelMap) {
    if (pairs.labelMaps() == null) {
      throw new BadInputException(NAME + " trains on image pairs; records " + pairs.ids().get(0)
          + " ... have no label_map (preprocess a paired data set such as cityscapes)");
    }
    return labelMap ? pairs.labelMaps() : pairs.images();
  }

  @Override
  public Map<String, Double> trainStep(Minibatch batch, long step, long seed) {
    int n = batch.size();
    INDArray cond = conditions(batch);
    INDArray target = targets(batch);
    if (jitter != null) {
      int[][] p = jitter.draw(n, Noise.mix(seed, 6, 0));
      cond = jitter.apply(cond, p);
      target = jitter.apply(target, p);
    }
    Map<String, INDArray> gIn = new LinkedHashMap<>();
    gIn.put("cond", cond);
    gIn.putAll(dropoutMasks(n, Noise.mix(seed, 4, 0)));
    // G's forward pass runs once: its image goes to D's update, then G's update goes on from there
    // with D's new weights (as PyTorch reuses G(x) after D's step)
    GraphPlan.Compiled.Started gRun = gUpdate.start(generatorPlaceholders(gIn, target), "fake",
        new java.util.HashSet<>(d.params()));
    Map<String, Double> out = new LinkedHashMap<>();
    discriminatorStep(cond, target, gRun.output(), step, out);
    applyGenerator(gRun.finish(discriminatorWeights()), n, step, out);
    Map<String, Double> ordered = new LinkedHashMap<>();
    for (String k : List.of("d_loss", "g_loss", "g_gan", "g_l1", "d_real", "d_fake")) {
      ordered.put(k, out.get(k));
    }
    return ordered;
  }

  /** D's update on (condition, target) against (condition, G's image). */
  void discriminatorStep(INDArray cond, INDArray target, INDArray fake, long step, Map<String, Double> metrics) {
    Map<String, INDArray> ph = new LinkedHashMap<>();
    ph.put("cond", cond);
    ph.put("real", target);
    ph.put("fake", fake);
    OutAndGrad r = dUpdate.run(ph);
    d.apply(r.getGradients(), step);
    dLayers.updateRunningStats(r.getOutputs(), cond.size(0));
    for (String k : List.of("d_loss", "d_real", "d_fake")) {
      metrics.put(k, r.getOutputs().get(k).getDouble(0));
    }
  }

  /** G's update: adversarial loss through D (D's current weights fed in) + lambda * L1 to the target. */
  void generatorStep(Map<String, INDArray> gIn, INDArray target, int n, long step, Map<String, Double> metrics) {
    applyGenerator(generatorGradients(gIn, target), n, step, metrics);
  }

  private void applyGenerator(OutAndGrad r, int n, long step, Map<String, Double> metrics) {
    g.apply(r.getGradients(), step);
    gLayers.updateRunningStats(r.getOutputs(), n);
    for (String k : List.of("g_loss", "g_gan", "g_l1")) {
      metrics.put(k, r.getOutputs().get(k).getDouble(0));
    }
  }

  /** G's losses and gradients, without an update. */
  OutAndGrad generatorGradients(Map<String, INDArray> gIn, INDArray target) {
    return gUpdate.run(generatorPlaceholders(gIn, target));
  }

  private Map<String, INDArray> generatorPlaceholders(Map<String, INDArray> gIn, INDArray target) {
    Map<String, INDArray> ph = new LinkedHashMap<>(gIn);
    ph.put("target", target);
    ph.putAll(discriminatorWeights());
    return ph;
  }

  private Map<String, INDArray> discriminatorWeights() {
    Map<String, INDArray> w = new LinkedHashMap<>();
    for (String p : d.params()) {
      w.put(p, d.param(p));
    }
    return w;
  }

  @Override
  public ModelState state() {
    ModelState s = new ModelState();
    exportTo(s);
    return s;
  }

  @Override
  public void exportTo(ModelState s) {
    g.exportTo(s);
    gLayers.exportTo(s, "G");
    d.exportTo(s);
    dLayers.exportTo(s, "D");
  }

  @Override
  public List<java.nio.FloatBuffer> stateMemory() {
    return org.genpipe.models.nn.StateMemory.of(g, gLayers, d, dLayers);
  }

  @Override
  public void loadState(ModelState state) {
    g.importFrom(state);
    gLayers.importFrom(state, "G");
    d.importFrom(state);
    dLayers.importFrom(state, "D");
  }

  /**
   * G's images for the condition images of {@code condition} ([n, C, S, S] in [-1, 1]), with the
   * dropout masks drawn from {@code seed}; [n, C, S, S] in [0, 1].
   */
  @Override
  public INDArray generate(int n, long seed, Condition condition) {
    if (condition == null || condition.images() == null) {
      throw new BadInputException(NAME + " translates a " + conditionName() + " into an image: give "
          + conditionName() + "s to generate from (generate --condition-image FILE or --condition-record ID)");
    }
    INDArray cond = condition.images();
    long[] want = {n, shape.channels(), settings.size(), settings.size()};
    if (!java.util.Arrays.equals(cond.shape(), want)) {
      throw new BadInputException(NAME + ": condition images of shape " + java.util.Arrays.toString(cond.shape())
          + ", expected " + java.util.Arrays.toString(want) + " (" + conditionName() + "s of " + settings.size() + "x"
          + settings.size() + " with " + shape.channels() + " channels)");
    }
    Map<String, INDArray> ph = new LinkedHashMap<>();
    ph.put("cond", cond.castTo(DataType.FLOAT));
    ph.putAll(dropoutMasks(n, seed));
    gLayers.feedRunningStats(ph);
    return generatePlan.run(ph).getOutputs().get("generated").add(1.0).muli(0.5);
  }

  /** {@code translations.png}: up to 8 held-out pairs as (condition | generated | target) rows. */
  @Override
  public Map<String, BufferedImage> reports(Minibatch sample, List<String> classNames, long seed) {
    int n = Math.min(8, sample.size());
    INDArray cond = rows(conditions(sample), n);
    INDArray target = rows(targets(sample), n);
    INDArray generated = generate(n, seed, Condition.ofImages(cond));
    return Map.of("translations.png", ImageConditioned.triplets(cond, generated, target, pixelRange(), conditionName()));
  }

  private static INDArray rows(INDArray x, int n) {
    return x.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, n)).dup('c');
  }

  /** The configured adversarial loss (for reports). */
  public GanLoss loss() {
    return settings.loss();
  }

  @Override
  public void close() {
    // the graphs' arrays are released with the object
  }
}
