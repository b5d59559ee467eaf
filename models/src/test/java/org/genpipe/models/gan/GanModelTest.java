package org.genpipe.models.gan;

import static org.assertj.core.api.Assertions.assertThat;
import static org.genpipe.models.gan.GanTesting.CIFAR;

import java.util.List;
import java.util.Map;
import org.genpipe.common.records.Minibatch;
import org.genpipe.models.ModelState;
import org.junit.jupiter.api.Test;

class GanModelTest {

  @Test
  void everyLossTrainsAStepOfEachModel() {
    Minibatch batch = GanTesting.squares(8, 10, 1);
    for (GanLoss loss : GanLoss.values()) {
      String norm = loss == GanLoss.WGAN_GP ? "none" : "batch";
      for (String model : List.of("dcgan", "cgan")) {
        GanSettings s = GanTesting.settings(loss, 4, loss.hasTargets() ? 0.1 : 0.0, norm,
            List.of("colour", "translation", "cutout"), 0.1);
        try (Gan gan = (Gan) new Gan.Factory(model, s, CIFAR, 10, 3).create()) {
          Map<String, Double> l = gan.trainStep(batch, 0, 7);
          System.out.println(model + " " + loss + " " + l);
          assertThat(l.values()).allMatch(Double::isFinite);
        }
      }
    }
    GanSettings s = GanTesting.settings(GanLoss.MINIMAX, 4);
    try (Gan gan = (Gan) new Gan.Factory("acgan", s, CIFAR, 10, 3).create()) {
      Map<String, Double> l = gan.trainStep(batch, 0, 7);
      System.out.println("acgan " + l);
      ModelState st = gan.state();
      System.out.println(st);
    }
  }
}
