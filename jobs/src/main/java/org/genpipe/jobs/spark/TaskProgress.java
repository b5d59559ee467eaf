package org.genpipe.jobs.spark;

import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import org.apache.spark.SparkContext;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;

/**
 * A console progress bar (rate and ETA) over the Spark tasks of one job: steps on every successful
 * task end. Use one at a time, around one {@code collect()}.
 */
public final class TaskProgress extends SparkListener implements AutoCloseable {
  private final SparkContext sc;
  private final ProgressBar bar;

  public TaskProgress(SparkContext sc, String task, long tasks, String unit) {
    this.sc = sc;
    this.bar =
        new ProgressBarBuilder()
            .setTaskName(task)
            .setInitialMax(tasks)
            .setUnit(" " + unit, 1)
            .setStyle(ProgressBarStyle.ASCII)
            .showSpeed()
            .setUpdateIntervalMillis(500)
            .continuousUpdate()
            .build();
    sc.addSparkListener(this);
  }

  @Override
  public void onTaskEnd(SparkListenerTaskEnd end) {
    if (end.taskInfo() != null && end.taskInfo().successful()) {
      bar.step();
    }
  }

  @Override
  public void close() {
    sc.removeSparkListener(this);
    bar.close();
  }
}
