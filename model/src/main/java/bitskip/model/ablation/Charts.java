package bitskip.model.ablation;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;

/** The report's figures, drawn with XChart into PNG files. */
final class Charts {
    private Charts() {}

    static {
        System.setProperty("java.awt.headless", "true");
    }

    /** Figure 2: validation perplexity per variant, one bar series per source. */
    static void bars(Path file, String title, List<String> categories, Map<String, List<Double>> series) throws IOException {
        CategoryChart c = new CategoryChartBuilder().width(900).height(500).title(title).xAxisTitle("variant")
                .yAxisTitle("best validation perplexity").build();
        c.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
        c.getStyler().setLegendLayout(Styler.LegendLayout.Horizontal);
        c.getStyler().setLabelsVisible(true);
        for (Map.Entry<String, List<Double>> e : series.entrySet()) {
            c.addSeries(e.getKey(), categories, e.getValue());
        }
        BitmapEncoder.saveBitmap(c, file.toString(), BitmapEncoder.BitmapFormat.PNG);
    }

    /** Lines on a logarithmic y axis (Figure 3, training curves); each series is (x, y) pairs. */
    static void lines(Path file, String title, String xTitle, String yTitle, boolean logY, Map<String, List<double[]>> series)
            throws IOException {
        XYChart c = new XYChartBuilder().width(900).height(500).title(title).xAxisTitle(xTitle).yAxisTitle(yTitle).build();
        c.getStyler().setYAxisLogarithmic(logY);
        c.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        c.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
        int added = 0;
        for (Map.Entry<String, List<double[]>> e : series.entrySet()) {
            List<Double> x = new ArrayList<>(), y = new ArrayList<>();
            for (double[] p : e.getValue()) {
                if (Double.isFinite(p[1]) && (!logY || p[1] > 0)) {
                    x.add(p[0]);
                    y.add(p[1]);
                }
            }
            if (!x.isEmpty()) {
                c.addSeries(e.getKey(), x, y);
                added++;
            }
        }
        if (added == 0) {
            c.addSeries("(no data yet)", new double[] {0}, new double[] {1});
        }
        BitmapEncoder.saveBitmap(c, file.toString(), BitmapEncoder.BitmapFormat.PNG);
    }
}
