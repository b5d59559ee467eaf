package org.genpipe.models.gan;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.genpipe.common.image.ImageGrid;
import org.genpipe.common.image.Images;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.PixelRange;
import org.genpipe.models.Condition;
import org.genpipe.models.GenerativeModel;
import org.genpipe.models.ModelState;
import org.genpipe.models.nn.GraphPlan;
import org.genpipe.models.nn.Graphs;
import org.genpipe.models.nn.LayerStack;
import org.genpipe.models.nn.Layers;
import org.genpipe.models.nn.Net;
import org.genpipe.models.nn.Noise;
import org.nd4j.autodiff.samediff.SDIndex;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The training machinery shared by every GAN of the pipeline (DCGAN, CGAN, AC-GAN): the networks
 * come from an {@link Architecture}, everything else is here, once: the selectable losses
 * ({@link GanLoss}), one-sided label smoothing, WGAN-GP's gradient penalty, differentiable
 * augmentation and instance noise ({@link DiscriminatorView}), the class conditioning (G's input
 * and D's input for CGAN, D's auxiliary classifier for AC-GAN), the D:G update ratio, and G's and
 * D's own optimizers.
 *
 * <p>Two SameDiff graphs, one loss each. D's graph takes real and generated images as
 * placeholders, so a D update computes nothing of G. G's graph holds G (trainable) and D with D's
 * weights as placeholders fed from D's current arrays, so a G update changes nothing of D. A step is
 * D's update on (real, G(z)) and then, every {@code discriminatorSteps}-th step, G's update on the
 * same z; generated images for D come from G in training mode (batch statistics), as in the
 * papers' code. Images are in [-1, 1] (tanh).
 *
 * <p>AC-GAN: D outputs 1 source logit and K class logits; D minimises the source loss plus the
 * class cross-entropy on real and generated images (maximises L_S + L_C); G minimises its source
 * loss plus the class cross-entropy of its images (maximises L_C - L_S with the minimax loss).
 */
public final class Gan implements GenerativeModel {

  /** How the class label enters the model. */
  public enum Conditioning {
    /** Unconditional (DCGAN). */
    NONE,
    /** One-hot label concatenated to G's noise and, as constant planes, to D's input channels (CGAN). */
    INPUT,
    /** One-hot label concatenated to G's noise; D predicts the class with K extra logits (AC-GAN). */
    AUXILIARY
  }

  /** The two networks of one GAN model. */
  public interface Architecture {
    String name();

    Conditioning conditioning();

    /** G from its input [N, latent (+ K)] to images [N, C, H, W] in [-1, 1]. */
    SDVariable generator(Layers l, SDVariable input, boolean training);

    /** D on images [N, C (+ K planes), H, W] to [N, 1] source logits (+ K class logits for AC-GAN). */
    LayerStack discriminator();
  }

  /** Builds a GAN model by name (dcgan, cgan, acgan) on executors and in the driver. */
  public record Factory(String model, GanSettings settings, ImageShape shape, int classes, long seed)
      implements org.genpipe.models.ModelFactory {
    @Override
    public GenerativeModel create() {
      return new Gan(architecture(model, settings, shape, classes), settings, shape, classes, seed);
    }
  }

  /** The architecture of model {@code name}; fails on a shape it cannot read. */
  public static Architecture architecture(String name, GanSettings settings, ImageShape shape, int classes) {
    return switch (name) {
      case Dcgan.NAME -> new Dcgan(false, settings, shape, classes);
      case Dcgan.CONDITIONAL_NAME -> new Dcgan(true, settings, shape, classes);
      case Acgan.NAME -> new Acgan(settings, shape, classes);
      default -> throw new IllegalArgumentException("not a GAN model: " + name);
    };
  }

  private final Architecture arch;
  private final GanSettings settings;
  private final ImageShape shape;
  private final int classes;
  private final LayerStack dStack;
  private final DiscriminatorView view;
  private final SameDiff dGraph = SameDiff.create();
  private final SameDiff gGraph = SameDiff.create();
  private final Layers dLayers;
  private final Layers gLayers;
  private final Net d;
  private final Net g;
  /** D's scalar metrics, d_loss first; {@link #dOutputs} = these + class logits + batch statistics. */
  private final List<String> dMetrics = new ArrayList<>();
  private final List<String> dOutputs = new ArrayList<>();
  private final List<String> gOutputs = new ArrayList<>();
  private final GraphPlan.Compiled generate;
  private final GraphPlan.Compiled dUpdate;
  private final GraphPlan.Compiled gUpdate;
  private LayerStack.Applied dReal;
  private LayerStack.Applied dFake;
  private LayerStack.Applied dHat;
  private LayerStack.Applied gD;
  private double lastGeneratorLoss = Double.NaN;

  /**
   * @param classes class count of the records (conditional models need at least 2)
   * @param seed initial weights
   */
  public Gan(Architecture arch, GanSettings settings, ImageShape shape, int classes, long seed) {
    this.arch = arch;
    this.settings = settings;
    this.shape = shape;
    this.classes = arch.conditioning() == Conditioning.NONE ? 0 : classes;
    if (arch.conditioning() != Conditioning.NONE && classes < 2) {
      throw new BadInputException(arch.name() + " is conditioned on class labels: the records need at least 2 classes, "
          + "they have " + classes);
    }
    this.dStack = arch.discriminator();
    if (settings.penalised() && !dStack.hasInputGradient()) {
      throw new BadInputException("model.gan.loss wgan-gp: the gradient penalty is per example, and batch norm in "
          + arch.name() + "'s discriminator mixes the examples of a batch; set model.gan.discriminatorNorm: none"
          + (arch.conditioning() == Conditioning.AUXILIARY ? " (AC-GAN's D keeps batch norm: use another loss)" : ""));
    }
    this.view = new DiscriminatorView(settings.augment(), settings.instanceNoise(), settings.instanceNoiseAnnealSteps(),
        shape.channels(), shape.height(), shape.width());
    dLayers = new Layers(dGraph, seed).normalInit(settings.weightStd());
    d = buildDiscriminatorGraph();
    gLayers = new Layers(gGraph, Noise.mix(seed, 1, 0)).normalInit(settings.weightStd()).external(d);
    g = buildGeneratorGraph();
    generate = new GraphPlan.Compiled(gGraph, List.of("fake"), List.of());
    dUpdate = new GraphPlan.Compiled(dGraph, dOutputs, d);
    gUpdate = new GraphPlan.Compiled(gGraph, gOutputs, g);
  }

  private Net buildDiscriminatorGraph() {
    SameDiff sd = dGraph;
    SDVariable real = view.apply(sd, images(sd, "real"), "real");
    SDVariable fake = view.apply(sd, images(sd, "fake"), "fake");
    dReal = dStack.apply(dLayers, withLabelPlanes(sd, real, "realY"), "dReal");
    dFake = dStack.apply(dLayers, withLabelPlanes(sd, fake, "fakeY"), "dFake");
    SDVariable srcReal = source(dReal.output());
    SDVariable srcFake = source(dFake.output());
    SDVariable loss = settings.loss().discriminator(sd, srcReal, srcFake, 1.0 - settings.labelSmoothing());
    if (arch.conditioning() == Conditioning.AUXILIARY || settings.penalised()) {
      metric(sd, "d_adv", loss); // the adversarial part of a D loss with more terms
    }
    metric(sd, "d_real", score(sd, srcReal));
    metric(sd, "d_fake", score(sd, srcFake));
    if (arch.conditioning() == Conditioning.AUXILIARY) {
      SDVariable ceReal = crossEntropy(sd, classLogits(sd, dReal.output(), "realClassLogits"), "realClass");
      SDVariable ceFake = crossEntropy(sd, classLogits(sd, dFake.output(), "fakeClassLogits"), "fakeClass");
      metric(sd, "d_class", ceReal.add(ceFake));
      loss = loss.add(ceReal).add(ceFake);
      dOutputs.add("realClassLogits");
      dOutputs.add("fakeClassLogits");
    }
    if (settings.penalised()) {
      // x^ = eps x + (1 - eps) G(z) per example, on the images as D sees them; D's gradient there
      SDVariable eps = sd.placeHolder("eps", DataType.FLOAT, -1, 1, 1, 1);
      SDVariable hat = real.mul(eps).add(fake.mul(eps.rsub(1.0)));
      dHat = dStack.apply(dLayers, withLabelPlanes(sd, hat, "realY"), "dHat");
      SDVariable out = dHat.output();
      // d(source logit)/d(x^): the output gradient is 1 on the source logit, 0 on class logits
      SDVariable selector = sd.constant(Nd4j.zeros(DataType.FLOAT, 1, dStack.outputShape()[0]).putScalar(0, 1.0));
      SDVariable grad = dHat.inputGradient(sd.onesLike(out).mul(selector));
      if (arch.conditioning() == Conditioning.INPUT) {
        grad = grad.get(SDIndex.all(), SDIndex.interval(0, shape.channels()), SDIndex.all(), SDIndex.all());
      }
      SDVariable norm = sd.math().sqrt(grad.mul(grad).sum(1, 2, 3).add(1e-12));
      SDVariable gp = norm.sub(1.0).mul(norm.sub(1.0)).mean();
      metric(sd, "gp", gp);
      loss = loss.add(gp.mul(settings.gradientPenalty()));
    }
    sd.setLossVariables(sd.identity("d_loss", loss));
    dMetrics.add(0, "d_loss");
    dOutputs.addAll(0, dMetrics);
    dOutputs.addAll(dLayers.batchStatOutputs());
    Graphs.buildGradients(sd);
    return new Net("D", sd, dLayers.takeParams(), settings.discriminatorOptimizer().updater());
  }

  private Net buildGeneratorGraph() {
    SameDiff sd = gGraph;
    SDVariable in = sd.placeHolder("z", DataType.FLOAT, -1, settings.latentSize());
    if (classes > 0) {
      in = sd.concat(1, in, sd.placeHolder("y", DataType.FLOAT, -1, classes));
    }
    SDVariable fake = sd.identity("fake", arch.generator(gLayers, in, true));
    List<String> params = gLayers.takeParams();
    sd.identity("generated", arch.generator(gLayers, in, false));
    gD = dStack.apply(gLayers, withLabelPlanes(sd, view.apply(sd, fake, "gFake"), "gFakeY"), "gD");
    SDVariable loss = settings.loss().generator(sd, source(gD.output()));
    if (arch.conditioning() == Conditioning.AUXILIARY) {
      loss = loss.add(crossEntropy(sd, classLogits(sd, gD.output(), "gClassLogits"), "y"));
    }
    sd.setLossVariables(sd.identity("g_loss", loss));
    gOutputs.addAll(List.of("g_loss", "fake"));
    gOutputs.addAll(gLayers.batchStatOutputs());
    Graphs.buildGradients(sd);
    return new Net("G", sd, params, settings.generatorOptimizer().updater());
  }

  private SDVariable images(SameDiff sd, String name) {
    return sd.placeHolder(name, DataType.FLOAT, -1, shape.channels(), shape.height(), shape.width());
  }

  /** CGAN: the one-hot label as K constant planes after the image channels. */
  private SDVariable withLabelPlanes(SameDiff sd, SDVariable x, String name) {
    if (arch.conditioning() != Conditioning.INPUT) {
      return x;
    }
    SDVariable planes = sd.hasVariable(name) ? sd.getVariable(name)
        : sd.placeHolder(name, DataType.FLOAT, -1, classes, shape.height(), shape.width());
    return sd.concat(1, x, planes);
  }

  private SDVariable source(SDVariable out) {
    return arch.conditioning() == Conditioning.AUXILIARY ? out.get(SDIndex.all(), SDIndex.interval(0, 1)) : out;
  }

  private SDVariable classLogits(SameDiff sd, SDVariable out, String name) {
    return sd.identity(name, out.get(SDIndex.all(), SDIndex.interval(1, 1 + classes)));
  }

  /** Mean over the batch of -log softmax(logits)[label], labels one-hot [N, K] (log-softmax written out). */
  private static SDVariable crossEntropy(SameDiff sd, SDVariable logits, String labels) {
    SDVariable t = sd.hasVariable(labels) ? sd.getVariable(labels)
        : sd.placeHolder(labels, DataType.FLOAT, logits.getShape());
    SDVariable shifted = logits.sub(logits.max(true, 1));
    SDVariable logProb = shifted.sub(sd.math().log(sd.math().exp(shifted).sum(true, 1)));
    return logProb.mul(t).sum(1).mean().neg();
  }

  /** Mean D(x): sigmoid of the logit for the probabilistic losses, else the raw score. */
  private SDVariable score(SameDiff sd, SDVariable src) {
    return settings.loss().probabilistic() ? sd.nn().sigmoid(src).mean() : src.mean();
  }

  private void metric(SameDiff sd, String name, SDVariable v) {
    sd.identity(name, v);
    dMetrics.add(name);
  }

  public Net discriminator() {
    return d;
  }

  public Net generator() {
    return g;
  }

  @Override
  public String name() {
    return arch.name();
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
  public int classCount() {
    return classes;
  }

  @Override
  public Map<String, Double> trainStep(Minibatch batch, long step, long seed) {
    int n = batch.size();
    int[] realLabels = classes > 0 ? labels(batch) : null;
    int[] fakeLabels = classes > 0 ? randomLabels(n, Noise.mix(seed, 2, 0)) : null;
    Map<String, INDArray> gIn = generatorInputs(n, Noise.mix(seed, 1, 0), fakeLabels);
    boolean generatorTurn = (step + 1) % settings.discriminatorSteps() == 0;
    // on G's turn its forward pass runs once: its images go to D's update, then G's update goes on
    // from there with D's new weights (as PyTorch reuses G(z) after D's step)
    GraphPlan.Compiled.Started gRun = generatorTurn ? gUpdate.start(generatorPlaceholders(gIn, fakeLabels, n, step,
        seed), "fake", new java.util.HashSet<>(d.params())) : null;
    INDArray fake = generatorTurn ? gRun.output() : generate.run(gIn).getOutputs().get("fake");
    Map<String, Double> out = new LinkedHashMap<>();
    discriminatorStep(batch.images(), realLabels, fake, fakeLabels, step, seed, out);
    if (generatorTurn) {
      lastGeneratorLoss = applyGenerator(gRun.finish(discriminatorWeights()), n, step / settings.discriminatorSteps());
    }
    out.put("g_loss", lastGeneratorLoss);
    return reorder(out);
  }

  /** D's update on real images and G's images; fills the step's D metrics. */
  public void discriminatorStep(INDArray real, int[] realLabels, INDArray fake, int[] fakeLabels, long step,
      long seed, Map<String, Double> metrics) {
    int n = (int) real.size(0);
    Map<String, INDArray> ph = new LinkedHashMap<>();
    ph.put("real", real);
    ph.put("fake", fake);
    ph.putAll(view.draw("real", n, step, Noise.mix(seed, 3, 0)));
    ph.putAll(view.draw("fake", n, step, Noise.mix(seed, 3, 1)));
    ph.putAll(dStack.dropoutMasks(dReal, n, Noise.mix(seed, 4, 0)));
    ph.putAll(dStack.dropoutMasks(dFake, n, Noise.mix(seed, 4, 1)));
    conditionInputs(ph, "real", realLabels);
    conditionInputs(ph, "fake", fakeLabels);
    if (settings.penalised()) {
      ph.put("eps", Nd4j.create(Noise.uniform(new SplittableRandom(Noise.mix(seed, 5, 0)), n, 0, 1),
          new long[] {n, 1, 1, 1}, 'c'));
      ph.putAll(dStack.dropoutMasks(dHat, n, Noise.mix(seed, 4, 2)));
    }
    OutAndGrad r = dUpdate.run(ph);
    d.apply(r.getGradients(), step);
    dLayers.updateRunningStats(r.getOutputs(), n);
    Map<String, INDArray> o = r.getOutputs();
    for (String name : dMetrics) {
      metrics.put(name, o.get(name).getDouble(0));
    }
    if (arch.conditioning() == Conditioning.AUXILIARY) {
      metrics.put("acc_real", accuracy(o.get("realClassLogits"), realLabels));
      metrics.put("acc_fake", accuracy(o.get("fakeClassLogits"), fakeLabels));
    }
  }

  /** G's update on the noise and labels of {@code gIn}; returns G's loss. */
  public double generatorStep(Map<String, INDArray> gIn, int[] labels, int n, long updateIndex, long step, long seed) {
    return applyGenerator(generatorGradients(gIn, labels, n, step, seed), n, updateIndex);
  }

  private double applyGenerator(OutAndGrad r, int n, long updateIndex) {
    g.apply(r.getGradients(), updateIndex);
    gLayers.updateRunningStats(r.getOutputs(), n);
    return r.getOutputs().get("g_loss").getDouble(0);
  }

  /** G's loss and its gradients for G's parameters, without an update. */
  OutAndGrad generatorGradients(Map<String, INDArray> gIn, int[] labels, int n, long step, long seed) {
    return gUpdate.run(generatorPlaceholders(gIn, labels, n, step, seed));
  }

  private Map<String, INDArray> discriminatorWeights() {
    Map<String, INDArray> w = new LinkedHashMap<>();
    for (String p : d.params()) {
      w.put(p, d.param(p));
    }
    return w;
  }

  private Map<String, INDArray> generatorPlaceholders(Map<String, INDArray> gIn, int[] labels, int n, long step,
      long seed) {
    Map<String, INDArray> ph = new LinkedHashMap<>(gIn);
    ph.putAll(discriminatorWeights());
    ph.putAll(view.draw("gFake", n, step, Noise.mix(seed, 3, 2)));
    ph.putAll(dStack.dropoutMasks(gD, n, Noise.mix(seed, 4, 3)));
    if (arch.conditioning() == Conditioning.INPUT) {
      ph.put("gFakeY", labelPlanes(labels));
    }
    return ph;
  }

  /** G's placeholders: noise from {@code seed} and, for conditional models, one-hot labels. */
  public Map<String, INDArray> generatorInputs(int n, long seed, int[] labels) {
    Map<String, INDArray> ph = new LinkedHashMap<>();
    ph.put("z", Noise.gaussian(seed, n, settings.latentSize()));
    if (classes > 0) {
      ph.put("y", oneHot(labels));
    }
    return ph;
  }

  private void conditionInputs(Map<String, INDArray> ph, String prefix, int[] labels) {
    if (arch.conditioning() == Conditioning.INPUT) {
      ph.put(prefix + "Y", labelPlanes(labels));
    } else if (arch.conditioning() == Conditioning.AUXILIARY) {
      ph.put(prefix + "Class", oneHot(labels));
    }
  }

  private Map<String, Double> reorder(Map<String, Double> m) {
    Map<String, Double> out = new LinkedHashMap<>();
    out.put("d_loss", m.remove("d_loss"));
    out.put("g_loss", m.remove("g_loss"));
    out.putAll(m);
    return out;
  }

  private int[] labels(Minibatch batch) {
    if (batch.labels() == null) {
      throw new BadInputException(arch.name() + " is conditioned on class labels; the records have none (ids "
          + batch.ids().get(0) + " ...)");
    }
    int[] out = batch.labels().toIntVector();
    for (int i = 0; i < out.length; i++) {
      if (out[i] < 0 || out[i] >= classes) {
        throw new BadInputException("record " + batch.ids().get(i) + " has label " + out[i] + ", expected 0.."
            + (classes - 1));
      }
    }
    return out;
  }

  private int[] randomLabels(int n, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    int[] out = new int[n];
    for (int i = 0; i < n; i++) {
      out[i] = r.nextInt(classes);
    }
    return out;
  }

  private INDArray oneHot(int[] labels) {
    float[] v = new float[labels.length * classes];
    for (int i = 0; i < labels.length; i++) {
      v[i * classes + labels[i]] = 1f;
    }
    return Nd4j.create(v, new long[] {labels.length, classes}, 'c');
  }

  private INDArray labelPlanes(int[] labels) {
    int hw = shape.height() * shape.width();
    float[] v = new float[labels.length * classes * hw];
    for (int i = 0; i < labels.length; i++) {
      java.util.Arrays.fill(v, (i * classes + labels[i]) * hw, (i * classes + labels[i] + 1) * hw, 1f);
    }
    return Nd4j.create(v, new long[] {labels.length, classes, shape.height(), shape.width()}, 'c');
  }

  private static double accuracy(INDArray logits, int[] labels) {
    INDArray arg = logits.argMax(1);
    int right = 0;
    for (int i = 0; i < labels.length; i++) {
      right += arg.getInt(i) == labels[i] ? 1 : 0;
    }
    return (double) right / labels.length;
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
   * Images from noise drawn from {@code seed}; conditional models generate the condition's labels,
   * or label i mod K for image i when there is none (balanced classes).
   */
  @Override
  public INDArray generate(int n, long seed, Condition condition) {
    int[] labels = null;
    if (classes > 0) {
      labels = new int[n];
      for (int i = 0; i < n; i++) {
        labels[i] = condition != null && condition.labels() != null ? condition.labels()[i] : i % classes;
        if (labels[i] < 0 || labels[i] >= classes) {
          throw new BadInputException("class " + labels[i] + " is out of range: " + arch.name() + " was trained on "
              + classes + " classes (0.." + (classes - 1) + ")");
        }
      }
    }
    Map<String, INDArray> ph = generatorInputs(n, seed, labels);
    gLayers.feedRunningStats(ph);
    return gGraph.output(ph, "generated").get("generated").add(1.0).muli(0.5);
  }

  /** A 10-column grid of samples; conditional models: one row per class (first 10 classes). */
  @Override
  public Map<String, BufferedImage> reports(Minibatch sample, List<String> classNames, long seed) {
    int rows = classes > 0 ? Math.min(classes, 10) : 10;
    int[] labels = new int[rows * 10];
    for (int i = 0; i < labels.length; i++) {
      labels[i] = classes > 0 ? i / 10 : 0;
    }
    INDArray images = generate(labels.length, seed, classes > 0 ? Condition.ofLabels(labels) : null);
    ImageGrid grid = new ImageGrid(10, 40);
    for (int i = 0; i < labels.length; i++) {
      String caption = null;
      if (classes > 0 && i % 10 == 0) {
        caption = labels[i] < classNames.size() ? classNames.get(labels[i]) : String.valueOf(labels[i]);
      }
      grid.add(Images.fromUnitFloats(images, i), caption);
    }
    return Map.of("samples.png", grid.render());
  }

  @Override
  public void close() {
    // the graphs' arrays are released with the object
  }
}
