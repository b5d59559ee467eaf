package org.genpipe.models.testing;

import java.awt.image.BufferedImage;
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
 * A deterministic one-network test model (no noise, no batch norm): image -> dense 4, tanh -> dense
 * back, sigmoid; mean squared error averaged over the batch. With plain SGD, averaging N workers
 * after every step equals one step on the N-times batch, which the engine's tests check.
 */
public final class TinyAutoencoder implements GenerativeModel {
  private final ImageShape shape;
  private final SameDiff sd = SameDiff.create();
  private final Net net;
  private final int pixels;

  public record Factory(ImageShape shape, OptimizerSettings optimizer, long seed) implements ModelFactory {
    @Override
    public GenerativeModel create() {
      return new TinyAutoencoder(shape, optimizer, seed);
    }
  }

  public TinyAutoencoder(ImageShape shape, OptimizerSettings optimizer, long seed) {
    this.shape = shape;
    this.pixels = shape.pixels();
    Layers layers = new Layers(sd, seed);
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, pixels);
    SDVariable h = sd.math().tanh(layers.dense("enc", x, pixels, 4));
    SDVariable out = sd.nn().sigmoid("out", layers.dense("dec", h, 4, pixels));
    SDVariable diff = out.sub(x);
    sd.setLossVariables(sd.identity("loss", diff.mul(diff).mean()));
    Graphs.buildGradients(sd);
    net = new Net("ae", sd, layers.takeParams(), optimizer.updater());
  }

  @Override
  public String name() {
    return "tiny-autoencoder";
  }

  @Override
  public ImageShape imageShape() {
    return shape;
  }

  @Override
  public PixelRange pixelRange() {
    return PixelRange.ZERO_ONE;
  }

  @Override
  public Map<String, Double> trainStep(Minibatch batch, long step, long seed) {
    Map<String, INDArray> ph = Map.of("x", batch.images().reshape(batch.size(), pixels));
    OutAndGrad r = sd.calculateGradientsAndOutputs(ph, List.of("loss"), net.params());
    net.apply(r.getGradients(), step);
    Map<String, Double> l = new LinkedHashMap<>();
    l.put("loss", r.getOutputs().get("loss").getDouble(0));
    return l;
  }

  @Override
  public ModelState state() {
    ModelState s = new ModelState();
    net.exportTo(s);
    return s;
  }

  @Override
  public void loadState(ModelState state) {
    net.importFrom(state);
  }

  @Override
  public INDArray generate(int n, long seed, Condition condition) {
    INDArray noise = Noise.gaussian(seed, n, pixels).muli(0.1).addi(0.5);
    return sd.output(Map.of("x", noise), "out").get("out").reshape(n, shape.channels(), shape.height(), shape.width());
  }

  @Override
  public Map<String, BufferedImage> reports(Minibatch sample, List<String> classNames, long seed) {
    return Map.of();
  }

  @Override
  public void close() {}
}
