package org.genpipe.models.ddpm;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.Arrays;
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
import org.genpipe.models.ModelFactory;
import org.genpipe.models.ModelState;
import org.genpipe.models.nn.FastGrad;
import org.genpipe.models.nn.GraphPlan;
import org.genpipe.models.nn.Graphs;
import org.genpipe.models.nn.Layers;
import org.genpipe.models.nn.Net;
import org.genpipe.models.nn.Noise;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * A denoising diffusion model (Ho et al. 2020) that predicts the noise eps in x_t with a U-Net,
 * optionally conditioned on a text (the CAPTCHA it should draw), with classifier-free guidance (Ho
 * and Salimans 2022). Images in [-1, 1].
 *
 * <p>The U-Net, for levels l = 0..L-1 of width w * channelMults[l] (each level after the first at
 * half the resolution):
 *
 * <pre>
 * Conv3 C->w | per level: resBlocks x (ResBlock [+ Attention]), then Conv3 s2 (not after the last)
 * | middle: ResBlock, Attention, ResBlock
 * | per level, back up: (resBlocks + 1) x (concat skip, ResBlock [+ Attention]), then nearest x2 + Conv3
 * | GroupNorm, SiLU, Conv3 w->C
 * ResBlock(x): h = Conv3(SiLU(GN(x))) + Dense(SiLU(emb)) per channel; h = Conv3(SiLU(GN(h))); skip(x) + h
 * Attention(x): x + SelfAttention(GN(x)) [+ CrossAttention(LN(.), text tokens)], over the H*W positions
 * </pre>
 *
 * Attention sits in the lowest {@code attentionLevels} levels and the middle. emb = MLP(sinusoidal
 * embedding of t) [+ Dense(mean of the text tokens)]. The text encoder: one-hot characters (padding
 * and a null text of their own) times an embedding matrix, plus position embeddings, then one
 * transformer block (pre-LayerNorm self-attention and a SiLU MLP).
 *
 * <p>Training: t uniform in 0..T-1, eps ~ N(0, I), loss = mean (eps_hat(x_t, t, text) - eps)^2; each
 * example's text is replaced by the null text with probability {@code conditionDropout}. After each
 * update the exponential moving average of the weights moves towards them; samples are drawn with
 * the averaged weights, guided as eps_null + s (eps_text - eps_null).
 */
public final class Ddpm implements GenerativeModel {
  public static final String NAME = "ddpm";
  private static final String NET = "unet";
  /** Token of the positions after a text's end. */
  static final int PAD = 0;
  /** Token of every position of the null text (the dropped condition). */
  static final int NULL = 1;

  private final DdpmSettings settings;
  private final ImageShape shape;
  private final NoiseSchedule schedule;
  private final int vocabulary;
  private final int timeWidth;
  /** Most images one sampling batch draws (doubled by guidance). */
  static final int CHUNK = 32;
  private static final long CHUNK_SALT = 0x4348554eL;
  private final SameDiff sd = SameDiff.create();
  private final Layers layers;
  private final Net net;
  private final INDArray ema;
  private final GraphPlan.Compiled update;
  private final GraphPlan.Compiled predict;

  public Ddpm(DdpmSettings settings, ImageShape shape, long seed) {
    checkShape(settings, shape, "the records");
    this.settings = settings;
    this.shape = shape;
    this.schedule = NoiseSchedule.of(settings.schedule(), settings.timesteps());
    this.vocabulary = settings.alphabet().length() + 2;
    this.timeWidth = 2 * ((settings.width() + 1) / 2);
    layers = new Layers(sd, seed);
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, shape.channels(), shape.height(), shape.width());
    SDVariable t = sd.placeHolder("t", DataType.FLOAT, -1, timeWidth);
    SDVariable text = settings.textConditioned()
        ? sd.placeHolder("text", DataType.FLOAT, -1, settings.maxLength(), vocabulary) : null;
    SDVariable eps = sd.placeHolder("eps", DataType.FLOAT, -1, shape.channels(), shape.height(), shape.width());
    SDVariable pred = sd.identity("pred", unet(x, t, text));
    SDVariable diff = pred.sub(eps);
    sd.setLossVariables(diff.mul(diff).mean().rename("loss"));
    Graphs.buildGradients(sd);
    net = new Net(NET, sd, layers.takeParams(), settings.optimizer().updater());
    ema = net.flatParams().dup();
    update = new GraphPlan.Compiled(sd, List.of("loss"), net);
    predict = new GraphPlan.Compiled(sd, List.of("pred"), List.of());
  }

  /** Fails unless the image sides halve evenly at every level. */
  public static void checkShape(DdpmSettings s, ImageShape shape, String source) {
    int levels = s.channelMults().size();
    int div = 1 << (levels - 1);
    if (shape.height() % div != 0 || shape.width() % div != 0) {
      throw new BadInputException(source + " hold " + shape + " images; a DDPM U-Net of " + levels + " levels"
          + " (model.ddpm.channelMults " + s.channelMults() + ") needs height and width divisible by " + div);
    }
  }

  private SDVariable unet(SDVariable x, SDVariable t, SDVariable text) {
    int w = settings.width();
    int embWidth = 4 * w;
    SDVariable emb = layers.dense("time/1", t, timeWidth, embWidth);
    emb = layers.dense("time/2", layers.silu(emb), embWidth, embWidth);
    SDVariable tokens = null;
    if (text != null) {
      tokens = textEncoder(text);
      emb = emb.add(layers.dense("text/pool", tokens.mean(1), settings.textWidth(), embWidth));
    }
    SDVariable embAct = layers.silu(emb);
    List<Integer> mults = settings.channelMults();
    int levels = mults.size();
    long h = shape.height();
    long wd = shape.width();
    SDVariable a = layers.conv2d("in", x, shape.channels(), w, 3, 1, 1);
    int ch = w;
    List<SDVariable> skips = new ArrayList<>(List.of(a));
    List<Integer> skipChannels = new ArrayList<>(List.of(w));
    for (int l = 0; l < levels; l++) {
      int out = w * mults.get(l);
      for (int r = 0; r < settings.resBlocks(); r++) {
        a = resBlock("down" + l + "/res" + r, a, ch, out, h, wd, embAct, embWidth);
        ch = out;
        if (attended(l)) {
          a = attention("down" + l + "/attn" + r, a, ch, h, wd, tokens);
        }
        skips.add(a);
        skipChannels.add(ch);
      }
      if (l < levels - 1) {
        a = layers.conv2d("down" + l + "/down", a, ch, ch, 3, 2, 1);
        h /= 2;
        wd /= 2;
        skips.add(a);
        skipChannels.add(ch);
      }
    }
    a = resBlock("mid/res0", a, ch, ch, h, wd, embAct, embWidth);
    a = attention("mid/attn", a, ch, h, wd, tokens);
    a = resBlock("mid/res1", a, ch, ch, h, wd, embAct, embWidth);
    for (int l = levels - 1; l >= 0; l--) {
      int out = w * mults.get(l);
      for (int r = 0; r <= settings.resBlocks(); r++) {
        SDVariable skip = skips.remove(skips.size() - 1);
        int sc = skipChannels.remove(skipChannels.size() - 1);
        a = resBlock("up" + l + "/res" + r, sd.concat(1, a, skip), ch + sc, out, h, wd, embAct, embWidth);
        ch = out;
        if (attended(l)) {
          a = attention("up" + l + "/attn" + r, a, ch, h, wd, tokens);
        }
      }
      if (l > 0) {
        a = layers.conv2d("up" + l + "/up", sd.cnn().upsampling2d(a, 2, 2, true), ch, ch, 3, 1, 1);
        h *= 2;
        wd *= 2;
      }
    }
    a = layers.silu(layers.groupNorm("out/norm", a, ch, settings.groups(), h, wd));
    return layers.conv2d("out", a, ch, shape.channels(), 3, 1, 1);
  }

  /** Whether level l (0 = full resolution) has attention blocks. */
  private boolean attended(int l) {
    return l >= settings.channelMults().size() - settings.attentionLevels();
  }

  private SDVariable resBlock(String name, SDVariable x, int in, int out, long h, long w, SDVariable emb, int embWidth) {
    SDVariable a = layers.silu(layers.groupNorm(name + "/norm1", x, in, groups(in), h, w));
    a = layers.conv2d(name + "/conv1", a, in, out, 3, 1, 1);
    SDVariable shift = layers.dense(name + "/emb", emb, embWidth, out).reshape(-1, out, 1, 1);
    a = FastGrad.channelAdd(sd, a, shift, 2, 3);
    a = layers.silu(layers.groupNorm(name + "/norm2", a, out, groups(out), h, w));
    a = layers.conv2d(name + "/conv2", a, out, out, 3, 1, 1);
    SDVariable skip = in == out ? x : layers.conv2d(name + "/skip", x, in, out, 1, 1, 0);
    return skip.add(a);
  }

  /** GroupNorm groups for a width: the configured number, or fewer where it does not divide (concatenations). */
  private int groups(int channels) {
    int g = Math.min(settings.groups(), channels);
    while (channels % g != 0) {
      g--;
    }
    return g;
  }

  /** x + SelfAttention(GN(x)) [then + CrossAttention(LN(.), text tokens)] over the H*W positions. */
  private SDVariable attention(String name, SDVariable x, int ch, long h, long w, SDVariable tokens) {
    long positions = h * w;
    SDVariable seq = x.reshape(-1, ch, positions).permute(0, 2, 1);
    SDVariable normed = layers.groupNorm(name + "/norm", x, ch, groups(ch), h, w)
        .reshape(-1, ch, positions).permute(0, 2, 1);
    SDVariable out = seq.add(layers.attention(name + "/self", normed, ch, positions, normed, ch, positions, ch));
    if (tokens != null) {
      SDVariable n2 = layers.layerNorm(name + "/crossNorm", out, ch);
      out = out.add(layers.attention(name + "/cross", n2, ch, positions, tokens, settings.textWidth(),
          settings.maxLength(), ch));
    }
    return out.permute(0, 2, 1).reshape(-1, ch, h, w);
  }

  /** Text tokens [N, L, D] from one-hot characters [N, L, V]. */
  private SDVariable textEncoder(SDVariable text) {
    int d = settings.textWidth();
    int len = settings.maxLength();
    SDVariable embed = layers.normalParam("text/embed", 0.02, vocabulary, d);
    SDVariable pos = layers.normalParam("text/pos", 0.02, 1, len, d);
    SDVariable tok = text.reshape(-1, vocabulary).mmul(embed).reshape(-1, len, d).add(pos);
    SDVariable n1 = layers.layerNorm("text/norm1", tok, d);
    tok = tok.add(layers.attention("text/self", n1, d, len, n1, d, len, d));
    SDVariable n2 = layers.layerNorm("text/norm2", tok, d).reshape(-1, d);
    SDVariable mlp = layers.dense("text/mlp2", layers.silu(layers.dense("text/mlp1", n2, d, 2 * d)), 2 * d, d);
    return tok.add(mlp.reshape(-1, len, d));
  }

  /** Builds DDPMs on executors and in the driver. */
  public record Factory(DdpmSettings settings, ImageShape shape, long seed) implements ModelFactory {
    @Override
    public Ddpm create() {
      return new Ddpm(settings, shape, seed);
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
    return PixelRange.MINUS_ONE_ONE;
  }

  @Override
  public String textAlphabet() {
    return settings.textConditioned() ? settings.alphabet() : null;
  }

  @Override
  public int maxTextLength() {
    return settings.textConditioned() ? settings.maxLength() : 0;
  }

  /** One denoising step. Metrics: {@code loss}, the mean squared error of the predicted noise. */
  @Override
  public Map<String, Double> trainStep(Minibatch batch, long step, long seed) {
    int n = batch.size();
    SplittableRandom r = new SplittableRandom(seed);
    int[] t = new int[n];
    boolean[] dropped = new boolean[n];
    for (int i = 0; i < n; i++) {
      t[i] = r.nextInt(settings.timesteps());
      dropped[i] = r.nextDouble() < settings.conditionDropout();
    }
    INDArray x0 = batch.images();
    INDArray eps = Noise.gaussian(Noise.mix(seed, 1, 0), x0.shape());
    Map<String, INDArray> ph = new LinkedHashMap<>();
    ph.put("x", schedule.noised(x0, eps, t));
    ph.put("t", timeFeatures(t));
    if (settings.textConditioned()) {
      if (batch.texts() == null) {
        throw new BadInputException("record " + batch.ids().get(0) + " has no text; the text-conditioned DDPM learns"
            + " images of texts (model.ddpm.conditioning: none learns without them)");
      }
      List<String> texts = new ArrayList<>(n);
      for (int i = 0; i < n; i++) {
        checkText(batch.texts().get(i), "record " + batch.ids().get(i));
        texts.add(dropped[i] ? null : batch.texts().get(i));
      }
      ph.put("text", tokens(texts));
    }
    ph.put("eps", eps);
    OutAndGrad out = update.run(ph);
    double loss = out.getOutputs().get("loss").getDouble(0);
    net.apply(out.getGradients(), step);
    double decay = Math.min(settings.emaDecay(), (1.0 + step) / (10.0 + step));
    INDArray moved = net.flatParams().mul(1 - decay);
    ema.muli(decay).addi(moved);
    Sampler.release(moved);
    Sampler.release(ph.values().toArray(new INDArray[0]));
    Map<String, Double> metrics = new LinkedHashMap<>();
    metrics.put("loss", loss);
    return metrics;
  }

  /** Sinusoidal embedding of the steps [N, timeWidth]: sin(t f_k) then cos(t f_k), f_k = 10000^(-k / half). */
  INDArray timeFeatures(int[] t) {
    int half = timeWidth / 2;
    float[] v = new float[t.length * timeWidth];
    for (int i = 0; i < t.length; i++) {
      for (int k = 0; k < half; k++) {
        double f = Math.exp(-Math.log(10000.0) * k / half);
        v[i * timeWidth + k] = (float) Math.sin(t[i] * f);
        v[i * timeWidth + half + k] = (float) Math.cos(t[i] * f);
      }
    }
    return Nd4j.create(v, new long[] {t.length, timeWidth}, 'c');
  }

  /** One-hot tokens [N, L, V] of the texts; a null entry is the null text (the dropped condition). */
  INDArray tokens(List<String> texts) {
    int len = settings.maxLength();
    float[] v = new float[texts.size() * len * vocabulary];
    for (int i = 0; i < texts.size(); i++) {
      String s = texts.get(i);
      for (int j = 0; j < len; j++) {
        int k = s == null ? NULL : j < s.length() ? settings.alphabet().indexOf(s.charAt(j)) + 2 : PAD;
        v[(i * len + j) * vocabulary + k] = 1f;
      }
    }
    return Nd4j.create(v, new long[] {texts.size(), len, vocabulary}, 'c');
  }

  /**
   * The guided noise prediction with the current weights: for text-conditioned models
   * eps_null + guidance (eps_text - eps_null) (guidance 1: the conditional prediction alone, 0: the
   * unconditional one); {@code texts} null asks for unconditional predictions.
   */
  INDArray predictNoise(INDArray x, int t, List<String> texts, double guidance) {
    int n = (int) x.size(0);
    int[] steps = new int[n];
    Arrays.fill(steps, t);
    if (!settings.textConditioned()) {
      return forward(x, steps, null);
    }
    List<String> nulls = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      nulls.add(null);
    }
    if (texts == null || guidance == 0) {
      return forward(x, steps, nulls);
    }
    if (guidance == 1) {
      return forward(x, steps, texts);
    }
    // one forward pass over [conditional; unconditional]
    List<String> both = new ArrayList<>(texts);
    both.addAll(nulls);
    int[] steps2 = new int[2 * n];
    Arrays.fill(steps2, t);
    INDArray doubled = Nd4j.concat(0, x, x);
    INDArray eps = forward(doubled, steps2, both);
    INDArray cond = eps.get(NDArrayIndex.interval(0, n));
    INDArray uncond = eps.get(NDArrayIndex.interval(n, 2 * n));
    INDArray difference = cond.sub(uncond).muli(guidance);
    INDArray guided = uncond.add(difference);
    Sampler.release(doubled, eps, difference);
    return guided;
  }

  private INDArray forward(INDArray x, int[] t, List<String> texts) {
    Map<String, INDArray> ph = new LinkedHashMap<>();
    ph.put("x", x);
    ph.put("t", timeFeatures(t));
    if (texts != null) {
      ph.put("text", tokens(texts));
    }
    return predict.run(ph).getOutputs().get("pred").dup();
  }

  /**
   * Images for {@code condition.texts()} (one per image; null: unconditional samples) with the
   * configured sampler and guidance, drawn with the averaged weights.
   */
  @Override
  public INDArray generate(int n, long seed, Condition condition) {
    return generate(n, seed, condition, settings.defaultSampler(), settings.guidance());
  }

  /** {@link #generate(int, long, Condition)} with another sampler or guidance scale. */
  public INDArray generate(int n, long seed, Condition condition, Sampler sampler, double guidance) {
    List<String> texts = condition == null ? null : condition.texts();
    if (condition != null && (condition.labels() != null || condition.images() != null)) {
      throw new BadInputException(NAME + " is conditioned on " + (settings.textConditioned() ? "texts" : "nothing")
          + ", not on class labels or images");
    }
    if (texts != null) {
      if (!settings.textConditioned()) {
        throw new BadInputException("model " + NAME + " here is unconditional (model.ddpm.conditioning: none):"
            + " it draws no given text");
      }
      if (texts.size() != n) {
        throw new IllegalArgumentException(texts.size() + " texts for " + n + " images");
      }
      for (String s : texts) {
        checkText(s, "asked text");
      }
    }
    return withAveragedWeights(() -> {
      // in chunks of at most CHUNK images (the activations of one batch stay small)
      List<INDArray> parts = new ArrayList<>();
      for (int start = 0, c = 0; start < n; start += CHUNK, c++) {
        int size = Math.min(CHUNK, n - start);
        List<String> chunkTexts = texts == null ? null : texts.subList(start, start + size);
        parts.add(sampler.sample((xt, t) -> predictNoise(xt, t, chunkTexts, guidance), schedule,
            new long[] {size, shape.channels(), shape.height(), shape.width()}, Noise.mix(seed, CHUNK_SALT, c)));
      }
      if (parts.size() == 1) {
        return toUnit(parts.get(0));
      }
      INDArray all = Nd4j.concat(0, parts.toArray(new INDArray[0]));
      Sampler.release(parts.toArray(new INDArray[0]));
      return toUnit(all);
    });
  }

  /** {@code work} with the exponential moving average of the weights in place of the weights (samples come from it). */
  private <T> T withAveragedWeights(java.util.function.Supplier<T> work) {
    INDArray trained = net.flatParams().dup();
    net.flatParams().assign(ema);
    try {
      return work.get();
    } finally {
      net.flatParams().assign(trained);
      Sampler.release(trained);
    }
  }

  /** {@code denoising.png}: for a few held-out texts, the sampler's estimate of the clean image along the way. */
  @Override
  public Map<String, BufferedImage> reports(Minibatch sample, List<String> classNames, long seed) {
    int n = Math.min(sample.size(), 8);
    List<String> texts = settings.textConditioned() && sample.texts() != null
        ? new ArrayList<>(sample.texts().subList(0, n)) : null;
    List<INDArray> frames = new ArrayList<>();
    Sampler sampler = settings.defaultSampler();
    int[] ts = sampler.timesteps(schedule);
    int every = Math.max(1, ts.length / 7);
    withAveragedWeights(() -> sampler.sample((xt, t) -> {
      INDArray eps = predictNoise(xt, t, texts, settings.guidance());
      int i = indexOf(ts, t);
      if (i % every == 0 || i == ts.length - 1) {
        double ab = schedule.alphaBar(t);
        frames.add(toUnit(xt.sub(eps.mul(Math.sqrt(1 - ab))).divi(Math.sqrt(ab))));
      }
      return eps;
    }, schedule, new long[] {n, shape.channels(), shape.height(), shape.width()}, seed));
    ImageGrid grid = new ImageGrid(frames.size(), 40);
    for (int i = 0; i < n; i++) {
      for (int f = 0; f < frames.size(); f++) {
        String caption = f == 0 && texts != null ? texts.get(i) : null;
        grid.add(Images.fromUnitFloats(frames.get(f), i), caption);
      }
    }
    return Map.of("denoising.png", grid.render());
  }

  /** Images in [-1, 1] to [0, 1], clipped (in place). */
  private static INDArray toUnit(INDArray x) {
    INDArray unit = x.addi(1.0).muli(0.5);
    return Transforms.min(Transforms.max(unit, 0.0, false), 1.0, false);
  }

  private static int indexOf(int[] a, int v) {
    for (int i = 0; i < a.length; i++) {
      if (a[i] == v) {
        return i;
      }
    }
    return -1;
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
    Net.copy(ema, s.reuse(NET + "/ema", Math.toIntExact(ema.length())));
  }

  @Override
  public List<java.nio.FloatBuffer> stateMemory() {
    return org.genpipe.models.nn.StateMemory.of(net,
        out -> out.add(Net.whole(ema, Math.toIntExact(ema.length()), "the EMA parameters")));
  }

  @Override
  public void loadState(ModelState state) {
    net.importFrom(state);
    Net.load(state.get(NET + "/ema", net.paramCount()), ema, "the EMA parameters");
  }

  @Override
  public void close() {
    // the graph's arrays are released with the object; nothing is held outside it
  }
}
