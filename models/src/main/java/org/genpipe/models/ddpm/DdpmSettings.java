package org.genpipe.models.ddpm;

import static org.genpipe.common.config.ConfigException.check;

import java.io.Serializable;
import java.util.List;
import org.genpipe.models.nn.OptimizerSettings;

/**
 * Config section {@code model.ddpm}: the denoising diffusion model.
 *
 * @param conditioning text (generates the CAPTCHA for a given text) or none (unconditional)
 * @param alphabet the characters a text may have (text conditioning)
 * @param maxLength the longest text (text conditioning)
 * @param width channels of the U-Net's first level
 * @param channelMults channels of each level as multiples of width; one level per entry, each after
 *     the first at half the resolution of the one before (image sides divisible by 2^(levels - 1))
 * @param resBlocks residual blocks per level on the way down (one more on the way up)
 * @param attentionLevels how many of the lowest-resolution levels have attention (self-attention, and
 *     cross-attention to the text); the middle block always has it
 * @param groups GroupNorm groups (every level's channels divisible by it)
 * @param textWidth width of the text encoder's character embeddings and transformer block
 * @param timesteps T, the diffusion steps
 * @param schedule linear or cosine beta schedule
 * @param conditionDropout share of training examples whose text is replaced by the null text
 *     (classifier-free guidance learns the unconditional prediction from them)
 * @param guidance guidance scale at sampling (0: unconditional, 1: conditional, above 1: guided)
 * @param sampler ddim or ddpm (ancestral, T steps): for sample grids and generate's default
 * @param samplerSteps DDIM's steps
 * @param eta DDIM's noise scale (0 deterministic)
 * @param emaDecay decay of the weights' exponential moving average, which samples come from (warmed up as
 *     min(emaDecay, (1 + step) / (10 + step)))
 * @param optimizer the U-Net's and text encoder's optimizer
 */
public record DdpmSettings(
    String conditioning,
    String alphabet,
    int maxLength,
    int width,
    List<Integer> channelMults,
    int resBlocks,
    int attentionLevels,
    int groups,
    int textWidth,
    int timesteps,
    String schedule,
    double conditionDropout,
    double guidance,
    String sampler,
    int samplerSteps,
    double eta,
    double emaDecay,
    OptimizerSettings optimizer)
    implements Serializable {
  public static final String TEXT = "text";
  public static final String NONE = "none";

  public DdpmSettings {
    check(TEXT.equals(conditioning) || NONE.equals(conditioning), "conditioning",
        "'" + conditioning + "' is not allowed; allowed: text, none");
    check(alphabet != null && !alphabet.isEmpty(), "alphabet", "must list at least one character");
    check(alphabet.chars().distinct().count() == alphabet.length(), "alphabet", "has a character twice: '" + alphabet
        + "'");
    check(maxLength >= 1 && maxLength <= 64, "maxLength", "must be in 1..64, got " + maxLength);
    check(width >= 1 && width <= 512, "width", "must be in 1..512, got " + width);
    check(channelMults != null && !channelMults.isEmpty() && channelMults.size() <= 6, "channelMults",
        "must list 1 to 6 levels, got " + channelMults);
    for (int m : channelMults) {
      check(m >= 1 && m <= 16, "channelMults", "each multiple must be in 1..16, got " + channelMults);
      check(m * width % groups == 0, "groups", "each level's channels (" + m * width + ") must be divisible by groups "
          + groups);
    }
    check(resBlocks >= 1 && resBlocks <= 4, "resBlocks", "must be in 1..4, got " + resBlocks);
    check(attentionLevels >= 0 && attentionLevels <= channelMults.size(), "attentionLevels",
        "must be in 0.." + channelMults.size() + " (the number of levels), got " + attentionLevels);
    check(groups >= 1 && width % groups == 0, "groups", "must divide width " + width + ", got " + groups);
    check(textWidth >= 1 && textWidth <= 1024, "textWidth", "must be in 1..1024, got " + textWidth);
    check(timesteps >= 2 && timesteps <= 10_000, "timesteps", "must be in 2..10000, got " + timesteps);
    check(NoiseSchedule.LINEAR.equals(schedule) || NoiseSchedule.COSINE.equals(schedule), "schedule",
        "'" + schedule + "' is not allowed; allowed: linear, cosine");
    check(conditionDropout >= 0 && conditionDropout < 1, "conditionDropout", "must be in [0, 1), got " + conditionDropout);
    check(guidance >= 0 && Double.isFinite(guidance), "guidance", "must be >= 0, got " + guidance);
    check(Sampler.NAMES.contains(sampler), "sampler", "'" + sampler + "' is not allowed; allowed: ddim, ddpm");
    check(samplerSteps >= 1 && samplerSteps <= timesteps, "samplerSteps",
        "must be in 1.." + timesteps + " (timesteps), got " + samplerSteps);
    check(eta >= 0 && eta <= 1, "eta", "must be in [0, 1], got " + eta);
    check(emaDecay >= 0 && emaDecay < 1, "emaDecay", "must be in [0, 1), got " + emaDecay);
    check(optimizer != null, "optimizer", "missing");
  }

  /** The same settings sampling differently; a null argument keeps the configured value. */
  public DdpmSettings withSampling(String sampler, Integer samplerSteps, Double eta, Double guidance) {
    return new DdpmSettings(conditioning, alphabet, maxLength, width, channelMults, resBlocks, attentionLevels, groups,
        textWidth, timesteps, schedule, conditionDropout, guidance != null ? guidance : this.guidance,
        sampler != null ? sampler : this.sampler, samplerSteps != null ? samplerSteps : this.samplerSteps,
        eta != null ? eta : this.eta, emaDecay, optimizer);
  }

  /** Whether the model is conditioned on texts. */
  public boolean textConditioned() {
    return TEXT.equals(conditioning);
  }

  /** The configured sampler, with {@code clip} of x0 to the image range. */
  public Sampler defaultSampler() {
    return new Sampler(sampler, samplerSteps, eta, true);
  }
}
