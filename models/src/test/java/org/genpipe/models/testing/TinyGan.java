package org.genpipe.models.testing;

import java.awt.image.BufferedImage;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.PixelRange;
import org.genpipe.models.Condition;
import org.genpipe.models.GenerativeModel;
import org.genpipe.models.ModelFactory;
import org.genpipe.models.ModelState;
import org.genpipe.models.nn.Graphs;
import org.genpipe.models.nn.Layers;
import org.genpipe.models.nn.Net;
import org.genpipe.models.nn.Noise;
import org.genpipe.models.nn.OptimizerSettings;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A minimal two-network GAN proving the model contract carries alternating updates: G and D with
 * their own Adam optimizers and states, D updated first then G each step, plus an EMA copy of G's
 * weights (non-trainable extra state). Non-saturating loss; MLPs on flattened images.
 *
 * <p>Two SameDiff graphs, one loss each: D's graph takes fake images as a placeholder; G's graph
 * takes D's current weights as placeholders, so a G step computes no D update and vice versa.
 */
public final class TinyGan implements GenerativeModel {
  static final int Z = 4;
  static final int HIDDEN = 8;
  static final double EMA_DECAY = 0.9;

  private final ImageShape shape;
  private final int pixels;
  private final SameDiff dGraph = SameDiff.create();
  private final SameDiff gGraph = SameDiff.create();
  private final Net d;
  private final Net g;
  private float[] ema;

  public record Factory(ImageShape shape, long seed) implements ModelFactory {
    @Override
    public GenerativeModel create() {
      return new TinyGan(shape, seed);
    }
  }

  public TinyGan(ImageShape shape, long seed) {
    this.shape = shape;
    this.pixels = shape.pixels();
    OptimizerSettings adam = OptimizerSettings.adam(2e-3, 0.5, 0.999);

    Layers dl = new Layers(dGraph, seed);
    SDVariable real = dGraph.placeHolder("real", DataType.FLOAT, -1, pixels);
    SDVariable fake = dGraph.placeHolder("fake", DataType.FLOAT, -1, pixels);
    SDVariable dReal = discriminator(dl, real);
    SDVariable dFake = discriminator(dl, fake);
    // non-saturating GAN, D side: softplus(-D(x)) + softplus(D(G(z)))
    dGraph.setLossVariables(dGraph.identity("dLoss",
        dGraph.nn().softplus(dReal.neg()).mean().add(dGraph.nn().softplus(dFake).mean())));
    Graphs.buildGradients(dGraph);
    d = new Net("D", dGraph, dl.takeParams(), adam.updater());

    Layers gl = new Layers(gGraph, seed + 1);
    SDVariable z = gGraph.placeHolder("z", DataType.FLOAT, -1, Z);
    SDVariable gen = gGraph.nn().sigmoid("fake", gl.dense("G/out", z, Z, pixels));
    List<String> gParams = gl.takeParams();
    // D's weights enter G's graph as placeholders of the same names
    Map<String, SDVariable> dWeights = new HashMap<>();
    for (String p : d.params()) {
      dWeights.put(p, gGraph.placeHolder(p, DataType.FLOAT, d.param(p).shape()));
    }
    SDVariable h = gGraph.nn().leakyRelu(gen.mmul(dWeights.get("D/h/W")).add(dWeights.get("D/h/b")), 0.2);
    SDVariable logit = h.mmul(dWeights.get("D/out/W")).add(dWeights.get("D/out/b"));
    gGraph.setLossVariables(gGraph.identity("gLoss", gGraph.nn().softplus(logit.neg()).mean()));
    Graphs.buildGradients(gGraph);
    g = new Net("G", gGraph, gParams, adam.updater());
    ema = generatorParams();
  }

  private SDVariable discriminator(Layers l, SDVariable x) {
    SDVariable h = l.sd().nn().leakyRelu(l.dense("D/h", x, pixels, HIDDEN), 0.2);
    return l.dense("D/out", h, HIDDEN, 1);
  }

  private float[] generatorParams() {
    ModelState s = new ModelState();
    g.exportTo(s);
    return s.get("G/params");
  }

  public Net discriminator() {
    return d;
  }

  public Net generator() {
    return g;
  }

  @Override
  public String name() {
    return "tiny-gan";
  }

  @Override
  public ImageShape imageShape() {
    return shape;
  }

  @Override
  public PixelRange pixelRange() {
    return PixelRange.ZERO_ONE;
  }

  /** D's update only. */
  public double discriminatorStep(INDArray real, long step, long seed) {
    INDArray fake = gGraph.output(Map.of("z", Noise.gaussian(seed, real.size(0), Z)), "fake").get("fake");
    Map<String, INDArray> ph = Map.of("real", real, "fake", fake);
    OutAndGrad r = dGraph.calculateGradientsAndOutputs(ph, List.of("dLoss"), d.params());
    d.apply(r.getGradients(), step);
    return r.getOutputs().get("dLoss").getDouble(0);
  }

  /** G's update only (D's current weights fed as placeholders), then the EMA. */
  public double generatorStep(int n, long step, long seed) {
    Map<String, INDArray> ph = new HashMap<>();
    ph.put("z", Noise.gaussian(seed, n, Z));
    for (String p : d.params()) {
      ph.put(p, d.param(p));
    }
    OutAndGrad r = gGraph.calculateGradientsAndOutputs(ph, List.of("gLoss"), g.params());
    g.apply(r.getGradients(), step);
    float[] now = generatorParams();
    for (int i = 0; i < ema.length; i++) {
      ema[i] = (float) (EMA_DECAY * ema[i] + (1 - EMA_DECAY) * now[i]);
    }
    return r.getOutputs().get("gLoss").getDouble(0);
  }

  @Override
  public Map<String, Double> trainStep(Minibatch batch, long step, long seed) {
    INDArray real = batch.images().reshape(batch.size(), pixels);
    Map<String, Double> l = new LinkedHashMap<>();
    l.put("d_loss", discriminatorStep(real, step, Noise.mix(seed, 1, 0)));
    l.put("g_loss", generatorStep(batch.size(), step, Noise.mix(seed, 2, 0)));
    return l;
  }

  @Override
  public ModelState state() {
    ModelState s = new ModelState();
    g.exportTo(s);
    d.exportTo(s);
    s.put("G/ema", ema.clone());
    return s;
  }

  @Override
  public void loadState(ModelState state) {
    g.importFrom(state);
    d.importFrom(state);
    ema = state.get("G/ema", ema.length).clone();
  }

  @Override
  public INDArray generate(int n, long seed, Condition condition) {
    return gGraph.output(Map.of("z", Noise.gaussian(seed, n, Z)), "fake").get("fake")
        .reshape(n, shape.channels(), shape.height(), shape.width());
  }

  @Override
  public Map<String, BufferedImage> reports(Minibatch sample, List<String> classNames, long seed) {
    return Map.of();
  }

  @Override
  public void close() {}
}
