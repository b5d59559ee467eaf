package org.genpipe.common.image;

import java.awt.Color;
import java.awt.image.BufferedImage;
import java.util.List;
import java.util.Map;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

/** Curves over steps, e.g. the losses of a training run. */
public final class LinePlot {
  private LinePlot() {}

  /** @param series name -> (steps, values), plotted as lines in insertion order */
  public static BufferedImage render(String title, String xLabel, Map<String, List<double[]>> series) {
    XYChart chart = new XYChartBuilder().width(900).height(500).title(title).xAxisTitle(xLabel).yAxisTitle("value").build();
    chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
    chart.getStyler().setChartBackgroundColor(Color.WHITE);
    chart.getStyler().setXAxisTickMarkSpacingHint(120);
    chart.getStyler().setXAxisDecimalPattern("#,###");
    for (Map.Entry<String, List<double[]>> e : series.entrySet()) {
      if (e.getValue().isEmpty()) {
        continue;
      }
      double[] x = e.getValue().stream().mapToDouble(p -> p[0]).toArray();
      double[] y = e.getValue().stream().mapToDouble(p -> p[1]).toArray();
      chart.addSeries(e.getKey(), x, y).setMarker(SeriesMarkers.NONE);
    }
    return BitmapEncoder.getBufferedImage(chart);
  }
}
