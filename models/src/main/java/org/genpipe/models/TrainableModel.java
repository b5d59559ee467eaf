package org.genpipe.models;

import java.awt.image.BufferedImage;
import java.util.List;
import java.util.Map;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.PixelRange;

/**
 * The contract every model the training engine trains implements: generative models
 * ({@link GenerativeModel}) and the models that judge them (the CAPTCHA reader). A model knows
 * nothing of Spark, MLflow or files: the engine feeds it batches, moves its {@link #state()} between
 * machines (parameter averaging) and into checkpoints, and asks it for report pictures.
 *
 * <p>Everything random in a step comes from the {@code seed} argument, so a step is a pure function
 * of (state, batch, step, seed): that is what makes retried Spark tasks and resumed runs exact.
 */
public interface TrainableModel extends AutoCloseable {

  /** The registry name, e.g. "beta-vae". */
  String name();

  /** Shape of the images the model reads (and generates). */
  ImageShape imageShape();

  /** Pixel range the model wants its input batches in. */
  PixelRange pixelRange();

  /**
   * One training step on a batch: every network's update for this step (for a GAN, D then G, with
   * their own optimizers).
   *
   * @param step global step, counted from 0 (optimizers use it for bias correction and schedules)
   * @param seed the seed of all noise this step draws
   * @return the step's losses by name, in a stable order; the first is the model's main loss
   */
  Map<String, Double> trainStep(Minibatch batch, long step, long seed);

  /** All state as named flat arrays: parameters, optimizer state, running statistics, EMA copies. */
  ModelState state();

  /**
   * Writes {@link #state()} into {@code into}: into the arrays it already holds under the same names
   * and lengths ({@link ModelState#reuse}), so that a training loop that hands the state on every
   * round need not allocate it every round (arrays of a few hundred kilobytes and more are G1
   * humongous objects: a collection every few rounds). By default, a fresh state's arrays.
   */
  default void exportTo(ModelState into) {
    state().arrays().forEach(into::put);
  }

  /** Replaces all state; the names and lengths must match {@link #state()}. */
  void loadState(ModelState state);

  /**
   * The memory the model trains in, as {@link #exportTo} writes it out: the values of the state's
   * arrays, in its order, cut where the model keeps them apart (the flat parameters, each optimizer
   * moment, each batch norm's running statistics). Writing into them changes the model; a barrier
   * stage's allreduce averages in them in place, without exporting and loading the state every
   * round. Null where a model does not offer them (then it exports and loads).
   */
  default List<java.nio.FloatBuffer> stateMemory() {
    return null;
  }

  /**
   * Model-specific pictures for a finished run (e.g. reconstructions, a latent map), named by file
   * name. {@code sample} is a batch of held-out records.
   */
  Map<String, BufferedImage> reports(Minibatch sample, List<String> classNames, long seed);

  /**
   * Measures on held-out records that the engine logs at every sample point as {@code held_out_<name>}
   * (e.g. a reader's sequence accuracy); none by default.
   */
  default Map<String, Double> heldOut(Minibatch sample) {
    return Map.of();
  }

  @Override
  void close();
}
