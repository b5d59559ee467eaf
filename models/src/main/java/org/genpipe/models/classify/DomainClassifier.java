package org.genpipe.models.classify;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Minibatch;
import org.genpipe.models.ModelState;
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

/**
 * A small image classifier trained on the records themselves, whose penultimate layer is the offline
 * feature extractor of the evaluation job (metric names {@code fid_domain...}, never {@code fid}: its
 * numbers are not comparable with published Inception FIDs). Any image size and channel count:
 *
 * <pre>
 * Conv C->32 k3 s2 p1, ReLU | Conv 32->64 k3 s2 p1, ReLU | Conv 64->128 k3 s2 p1, ReLU
 * | global average pool 128 | Linear 128->F  (the features) | ReLU | Linear F->P*K
 * loss: softmax cross-entropy per position (P = 1 for class labels, the text length for texts)
 * </pre>
 *
 * For per-pixel targets (label maps) the head is a segmentation decoder instead, the features
 * feeding it as global context: ReLU(Linear F->128) added to every position of the 128-channel
 * map, ReLU | ConvT 128->64 k4 s2 p1, ReLU | ConvT 64->32 k4 s2 p1, ReLU | ConvT 32->K k4 s2 p1:
 * class scores per pixel, the loss their mean cross-entropy over the labelled pixels. The
 * penultimate features are then those of a segmenter.
 *
 * Inputs are images in [0, 1].
 */
public final class DomainClassifier {
  private static final String NET = "classifier";

  private final ImageShape shape;
  private final Targets targets;
  private final int featureSize;
  private final SameDiff sd = SameDiff.create();
  private final Net net;
  private final GraphPlan.Compiled update;

  public DomainClassifier(ImageShape shape, Targets targets, DomainClassifierSettings settings, long seed) {
    this.shape = shape;
    this.targets = targets;
    this.featureSize = settings.featureSize();
    Layers layers = new Layers(sd, seed);
    int p = targets.positions();
    int k = targets.choices();
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, shape.channels(), shape.height(), shape.width());
    SDVariable t = sd.placeHolder("t", DataType.FLOAT, -1, p, k);
    SDVariable c1 = FastGrad.relu(sd, layers.conv2d("c1", x, shape.channels(), 32, 3, 2, 1));
    SDVariable c2 = FastGrad.relu(sd, layers.conv2d("c2", c1, 32, 64, 3, 2, 1));
    SDVariable c3 = FastGrad.relu(sd, layers.conv2d("c3", c2, 64, 128, 3, 2, 1));
    SDVariable features = sd.identity("features", layers.dense("f", c3.mean(2, 3), 128, featureSize));
    SDVariable logits;
    if (targets.pixels()) {
      if (shape.height() % 8 != 0 || shape.width() != shape.height()) {
        throw new IllegalArgumentException("the segmenting classifier needs square images of a side divisible by 8, got "
            + shape.height() + "x" + shape.width());
      }
      // the features as global context added to every position of c3, then three up-sampling steps
      // back to the image size: k per-pixel class scores
      SDVariable context = layers.dense("ctx", FastGrad.relu(sd, features), featureSize, 128).reshape(-1, 128, 1, 1);
      SDVariable u = FastGrad.relu(sd, FastGrad.channelAdd(sd, c3, context, 2, 3));
      u = FastGrad.relu(sd, layers.deconv2d("u1", u, 128, 64, 4, 2, 1, 0, shape.height() / 8));
      u = FastGrad.relu(sd, layers.deconv2d("u2", u, 64, 32, 4, 2, 1, 0, shape.height() / 4));
      u = layers.deconv2d("u3", u, 32, k, 4, 2, 1, 0, shape.height() / 2);
      logits = u.permute(0, 2, 3, 1).reshape(-1, p, k);
    } else {
      logits = layers.dense("out", FastGrad.relu(sd, features), featureSize, p * k).reshape(-1, p, k);
    }
    sd.identity("logits", logits);
    // log-softmax written out (M2.1's logSoftmax(x, dim) has no working backward)
    SDVariable max = logits.max(true, 2);
    SDVariable shifted = logits.sub(max);
    SDVariable logProb = shifted.sub(sd.math().log(sd.math().exp(shifted).sum(true, 2)));
    SDVariable picked = logProb.mul(t);
    // per-pixel targets: the mean over labelled pixels (void ones have all-zero targets)
    sd.setLossVariables(targets.pixels() ? picked.sum().div(t.sum().add(1e-6)).neg("loss")
        : picked.sum(1, 2).mean().neg("loss"));
    Graphs.buildGradients(sd);
    net = new Net(NET, sd, layers.takeParams(), settings.optimizer().updater());
    update = new GraphPlan.Compiled(sd, List.of("loss", "logits"), net);
  }

  public ImageShape shape() {
    return shape;
  }

  public Targets targets() {
    return targets;
  }

  public int featureSize() {
    return featureSize;
  }

  /** One optimizer step on a batch; returns the loss and the share of positions predicted right. */
  public Map<String, Double> trainStep(Minibatch batch, long step) {
    int[][] indices = targets.indices(batch);
    Map<String, INDArray> ph = Map.of("x", batch.images(), "t", targets.oneHot(indices));
    OutAndGrad r = update.run(ph);
    net.apply(r.getGradients(), step);
    Map<String, Double> out = new LinkedHashMap<>();
    out.put("loss", r.getOutputs().get("loss").getDouble(0));
    out.put("accuracy", accuracy(r.getOutputs().get("logits"), indices));
    return out;
  }

  /** Share of positions predicted right on a labelled batch. */
  public double accuracy(Minibatch batch) {
    return accuracy(sd.output(Map.of("x", batch.images()), "logits").get("logits"), targets.indices(batch));
  }

  /** Penultimate-layer features [N, featureSize] of images [N, C, H, W] in [0, 1]. */
  public INDArray features(INDArray images) {
    return sd.output(Map.of("x", images), "features").get("features");
  }

  /** Predicted index per position (per pixel for label-map targets), [N][positions]. */
  public int[][] predict(INDArray images) {
    INDArray logits = sd.output(Map.of("x", images), "logits").get("logits");
    INDArray arg = logits.argMax(2);
    int[][] out = new int[(int) logits.size(0)][targets.positions()];
    for (int i = 0; i < out.length; i++) {
      for (int p = 0; p < out[i].length; p++) {
        out[i][p] = arg.getInt(i, p);
      }
    }
    return out;
  }

  private static double accuracy(INDArray logits, int[][] indices) {
    INDArray arg = logits.argMax(2);
    long right = 0;
    long total = 0;
    for (int i = 0; i < indices.length; i++) {
      for (int p = 0; p < indices[i].length; p++) {
        if (indices[i][p] >= 0) {
          right += arg.getInt(i, p) == indices[i][p] ? 1 : 0;
          total++;
        }
      }
    }
    return total == 0 ? 0 : (double) right / total;
  }

  /** Parameters and optimizer state. */
  public ModelState state() {
    ModelState s = new ModelState();
    net.exportTo(s);
    return s;
  }

  public void loadState(ModelState state) {
    net.importFrom(state);
  }
}
