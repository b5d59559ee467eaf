package org.genpipe.models.vae;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.genpipe.common.image.ImageGrid;
import org.genpipe.common.image.Images;
import org.genpipe.common.image.ScatterPlot;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.PixelRange;
import org.genpipe.models.Condition;
import org.genpipe.models.GenerativeModel;
import org.genpipe.models.ModelFactory;
import org.genpipe.models.ModelState;
import org.genpipe.models.Reconstructing;
import org.genpipe.models.nn.FastGrad;
import org.genpipe.models.nn.GraphPlan;
import org.genpipe.models.nn.Graphs;
import org.genpipe.models.nn.Layers;
import org.genpipe.models.nn.Net;
import org.genpipe.models.nn.Noise;
import org.genpipe.models.nn.Projection;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The beta-VAE of MISSION.md for 28x28 grey images (Fashion-MNIST):
 *
 * <pre>
 * encoder  Conv 1->8 k3 s2 p1, ReLU | Conv 8->16 k3 s2 p1, ReLU, BN | Conv 16->32 k3 s2 p0, ReLU
 *          | flatten 288 | Linear 288->128, ReLU | Linear 128->L (mu), Linear 128->L (log variance)
 * z        mu + exp(logVar / 2) * eps
 * decoder  Linear L->128, ReLU | Linear 128->288, ReLU | unflatten 32x3x3
 *          | ConvT 32->16 k3 s2 (3->7), ReLU, BN | ConvT 16->8 k3 s2 p1 op1 (7->14), ReLU
 *          | ConvT 8->1 k3 s2 p1 op1 (14->28) | sigmoid
 * loss     Bernoulli reconstruction (BCE summed over pixels) + beta * divergence, averaged over the batch
 * </pre>
 */
public final class BetaVae implements GenerativeModel, Reconstructing {
  public static final String NAME = "beta-vae";
  public static final ImageShape SHAPE = new ImageShape(28, 28, 1);
  private static final String NET = "vae";

  private final BetaVaeSettings settings;
  private final SameDiff sd = SameDiff.create();
  private final Layers layers;
  private final Net net;
  private final List<String> trainOutputs = new ArrayList<>();
  private final GraphPlan.Compiled update;

  /** Builds the model; {@code seed} fixes the initial weights. */
  public BetaVae(BetaVaeSettings settings, long seed) {
    this.settings = settings;
    this.layers = new Layers(sd, seed);
    int latent = settings.latentSize();
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, 1, 28, 28);
    SDVariable eps = sd.placeHolder("eps", DataType.FLOAT, -1, latent);
    SDVariable zIn = sd.placeHolder("z", DataType.FLOAT, -1, latent);

    // training graph: batch statistics in batch norm, sampled z, the loss
    SDVariable[] posterior = encoder(x, latent, true);
    SDVariable mu = posterior[0];
    SDVariable logVar = posterior[1];
    SDVariable z = mu.add(sd.math().exp(logVar.mul(0.5)).mul(eps));
    SDVariable logits = decoder(z, latent, true);
    // Bernoulli log-likelihood: BCE with logits (stable form), summed over pixels, mean over the batch
    SDVariable rec = FastGrad.bceWithLogits(sd, logits, x).sum(1, 2, 3).mean("reconstruction", 0);
    SDVariable div = settings.divergence().perExample(mu, logVar).mean(settings.divergence().metric(), 0);
    sd.setLossVariables(rec.add("loss", div.mul(settings.beta())));
    Graphs.buildGradients(sd);

    // inference graph: running statistics; posterior means and their reconstructions; samples
    SDVariable[] inferred = encoder(x, latent, false);
    sd.identity("mu", inferred[0]);
    sd.nn().sigmoid("recon", decoder(inferred[0], latent, false));
    sd.nn().sigmoid("generated", decoder(zIn, latent, false));

    net = new Net(NET, sd, layers.takeParams(), settings.optimizer().updater());
    trainOutputs.add("loss");
    trainOutputs.add("reconstruction");
    trainOutputs.add(settings.divergence().metric());
    trainOutputs.addAll(layers.batchStatOutputs());
    update = new GraphPlan.Compiled(sd, trainOutputs, net);
  }

  /** Posterior mean and log variance. */
  private SDVariable[] encoder(SDVariable x, int latent, boolean training) {
    SDVariable h = FastGrad.relu(sd, layers.conv2d("enc1", x, 1, 8, 3, 2, 1));
    h = FastGrad.relu(sd, layers.conv2d("enc2", h, 8, 16, 3, 2, 1));
    h = layers.batchNorm("enc2bn", h, 16, 7 * 7, training);
    h = FastGrad.relu(sd, layers.conv2d("enc3", h, 16, 32, 3, 2, 0));
    h = h.reshape(-1, 288);
    h = FastGrad.relu(sd, layers.dense("enc4", h, 288, 128));
    return new SDVariable[] {layers.dense("mu", h, 128, latent), layers.dense("logVar", h, 128, latent)};
  }

  /** Decoder logits. */
  private SDVariable decoder(SDVariable z, int latent, boolean training) {
    SDVariable h = FastGrad.relu(sd, layers.dense("dec1", z, latent, 128));
    h = FastGrad.relu(sd, layers.dense("dec2", h, 128, 288));
    h = h.reshape(-1, 32, 3, 3);
    h = FastGrad.relu(sd, layers.deconv2d("dec3", h, 32, 16, 3, 2, 0, 0, 3));
    h = layers.batchNorm("dec3bn", h, 16, 7 * 7, training);
    h = FastGrad.relu(sd, layers.deconv2d("dec4", h, 16, 8, 3, 2, 1, 1, 7));
    return layers.deconv2d("dec5", h, 8, 1, 3, 2, 1, 1, 14);
  }

  /** Builds beta-VAEs on executors and in the driver. */
  public record Factory(BetaVaeSettings settings, long seed) implements ModelFactory {
    @Override
    public GenerativeModel create() {
      return new BetaVae(settings, seed);
    }
  }

  /** Fails with a clear message when records are not 28x28 grey. */
  public static void checkShape(ImageShape shape, String source) {
    if (!SHAPE.equals(shape)) {
      throw new BadInputException(source + ": the beta-VAE reads 28x28x1 images, the records have "
          + shape.height() + "x" + shape.width() + "x" + shape.channels());
    }
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public ImageShape imageShape() {
    return SHAPE;
  }

  @Override
  public PixelRange pixelRange() {
    return PixelRange.ZERO_ONE;
  }

  public long parameterCount() {
    return net.paramCount();
  }

  @Override
  public Map<String, Double> trainStep(Minibatch batch, long step, long seed) {
    int n = batch.size();
    Map<String, INDArray> ph = new LinkedHashMap<>();
    ph.put("x", batch.images());
    ph.put("eps", Noise.gaussian(seed, n, settings.latentSize()));
    OutAndGrad r = update.run(ph);
    net.apply(r.getGradients(), step);
    layers.updateRunningStats(r.getOutputs(), n);
    Map<String, Double> losses = new LinkedHashMap<>();
    for (int i = 0; i < 3; i++) {
      losses.put(trainOutputs.get(i), r.getOutputs().get(trainOutputs.get(i)).getDouble(0));
    }
    return losses;
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
  public INDArray generate(int n, long seed, Condition condition) {
    return decodeLatents(Noise.gaussian(seed, n, settings.latentSize()));
  }

  /** Decoder outputs for given latents [n, L], in [0, 1]. */
  public INDArray decodeLatents(INDArray z) {
    Map<String, INDArray> ph = new LinkedHashMap<>();
    ph.put("z", z);
    layers.feedRunningStats(ph);
    return sd.output(ph, "generated").get("generated");
  }

  /** Posterior means [N, L] and reconstructions from them [N, 1, 28, 28] (inference mode). */
  public Map<String, INDArray> encode(INDArray images) {
    Map<String, INDArray> ph = new LinkedHashMap<>();
    ph.put("x", images);
    layers.feedRunningStats(ph);
    return sd.output(ph, "mu", "recon");
  }

  @Override
  public INDArray reconstruct(INDArray images) {
    return encode(images).get("recon");
  }

  @Override
  public Map<String, BufferedImage> reports(Minibatch sample, List<String> classNames, long seed) {
    Map<String, BufferedImage> out = new LinkedHashMap<>();
    Map<String, INDArray> enc = encode(sample.images());
    int shown = (int) Math.min(32, sample.size());
    ImageGrid pairs = new ImageGrid(16, 56);
    for (int row = 0; row < shown; row += 16) {
      int end = Math.min(shown, row + 16);
      for (int i = row; i < end; i++) {
        pairs.add(Images.fromUnitFloats(sample.images(), i), i == row ? "input" : "");
      }
      for (int i = row; i < end; i++) {
        pairs.add(Images.fromUnitFloats(enc.get("recon"), i), i == row ? "recon" : "");
      }
    }
    out.put("reconstructions.png", pairs.render());
    INDArray samples = generate(100, seed, null);
    ImageGrid grid = new ImageGrid(10, 56);
    for (int i = 0; i < 100; i++) {
      grid.add(Images.fromUnitFloats(samples, i), null);
    }
    out.put("samples.png", grid.render());
    out.put("latent-map.png", latentMap(enc.get("mu"), sample, classNames));
    return out;
  }

  private BufferedImage latentMap(INDArray mu, Minibatch sample, List<String> classNames) {
    double[][] xy = Projection.toTwoDimensions(mu.castTo(DataType.DOUBLE).toDoubleMatrix());
    List<String> groups = new ArrayList<>();
    for (int i = 0; i < sample.size(); i++) {
      if (sample.labels() != null) {
        int label = sample.labels().getInt(i);
        groups.add(label < classNames.size() ? classNames.get(label) : String.valueOf(label));
      } else if (sample.texts() != null) {
        groups.add(sample.texts().get(i));
      } else {
        groups.add("all");
      }
    }
    String axes = settings.latentSize() == 2 ? "z" : "PCA of mu,";
    return ScatterPlot.render("Latent space (" + sample.size() + " held-out images)",
        axes + " 1", axes + " 2", xy, groups);
  }

  @Override
  public void close() {
    // the graph's arrays are released with the object; nothing is held outside it
  }
}
